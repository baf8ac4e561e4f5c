// The OpenAPI document: valid OpenAPI 3.1 by the schemas of the specification (checked with an npm
// validator), listing exactly the routes the REST app serves, with answers that match their schemas;
// and the page that renders it.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Validator } from "@seriousme/openapi-schema-validator";
import { createRestApp } from "../src/transport/rest.ts";
import { authHeaders, startTestService, type TestService } from "./harness.ts";

let svc: TestService;
let doc: Record<string, any>;
beforeAll(async () => {
  svc = await startTestService();
  const res = await fetch(`${svc.http}/api/v1/openapi.json`);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toContain("application/json");
  doc = (await res.json()) as Record<string, any>;
});
afterAll(async () => {
  await svc.stop();
});

type Json = Record<string, any>;

describe("the OpenAPI document", () => {
  test("is valid OpenAPI 3.1", async () => {
    const validator = new Validator();
    // The validator resolves references in the object it is given, so it gets a copy.
    const result = await validator.validate(structuredClone(doc));
    if (!result.valid) console.error(JSON.stringify(result.errors, null, 2));
    expect(result.valid).toBe(true);
    expect(validator.version).toBe("3.1");
    // Every $ref resolves.
    expect(() => validator.resolveRefs()).not.toThrow();
  });

  test("lists every route the REST app serves, and nothing else", () => {
    // The app as the service builds it; its router knows what it serves.
    const app = createRestApp(svc.app.deps, {} as never, { ready: async () => ({}) });
    const served = app.routes.map((r) => `${r.method} ${r.path.replace(/:([A-Za-z]+)/g, "{$1}")}`).sort();
    const documented = Object.entries(doc.paths as Record<string, Json>)
      .flatMap(([path, ops]) => Object.keys(ops).map((method) => `${method.toUpperCase()} ${path}`))
      .sort();
    expect(documented).toEqual(served);
    expect(served.length).toBeGreaterThan(70);
    for (const needed of [
      "POST /api/v1/recommend",
      "POST /api/v1/respond",
      "GET /api/v1/decision-traces/{traceId}",
      "PATCH /api/v1/offers/{offerId}",
    ]) {
      expect(documented).toContain(needed);
    }
    const ids = Object.values(doc.paths as Record<string, Json>).flatMap((ops) => Object.values(ops).map((op: Json) => op.operationId));
    expect(new Set(ids).size).toBe(ids.length);
  });

  test("answers carry the fields their schemas name", async () => {
    const schemas = doc.components.schemas as Record<string, Json>;
    const schemaOf = (method: string, path: string) => {
      const ref = doc.paths[path][method].responses["200"].content["application/json"].schema.$ref as string;
      return schemas[ref.split("/").pop() as string] as Json;
    };
    const calls: [string, string, string, unknown?][] = [
      ["post", "/api/v1/recommend", "/api/v1/recommend", { customerId: "cust_12345", channelId: "ch_email" }],
      ["get", "/api/v1/offers/{offerId}", "/api/v1/offers/act_cashback"],
      ["get", "/api/v1/offers", "/api/v1/offers?limit=3"],
      ["get", "/api/v1/decision-flows/{decisionFlowId}", "/api/v1/decision-flows/df_credit_cards"],
      ["get", "/api/v1/settings", "/api/v1/settings"],
      ["get", "/api/v1/experiments/{experimentId}/results", "/api/v1/experiments/exp_cc_cta_test/results"],
      ["get", "/api/v1/catalog", "/api/v1/catalog"],
    ];
    for (const [method, path, url, body] of calls) {
      const res = await fetch(`${svc.http}${url}`, { method, headers: authHeaders(), body: body ? JSON.stringify(body) : undefined });
      expect(res.status).toBe(200);
      const json = (await res.json()) as Json;
      const properties = Object.keys(schemaOf(method, path).properties);
      for (const key of Object.keys(json)) expect(properties).toContain(key);
    }
    // An error answer is the documented error shape.
    const error = (await (await fetch(`${svc.http}/api/v1/offers/nope`, { headers: authHeaders() })).json()) as Json;
    expect(Object.keys(error).sort()).toEqual([...(schemas.Error?.required ?? [])].sort());
  });
});

describe("the documentation page", () => {
  test("renders every operation and schema of the document, without a script", async () => {
    const res = await fetch(`${svc.http}/api/v1/docs`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/html");
    const page = await res.text();
    expect(page.startsWith("<!doctype html>")).toBe(true);
    expect(page).not.toContain("<script");
    expect(page).toContain('href="/api/v1/openapi.json"');
    for (const [path, ops] of Object.entries(doc.paths as Record<string, Json>)) {
      for (const op of Object.values(ops)) expect(page).toContain(`id="op-${op.operationId}"`);
      expect(page).toContain(`<code>${path}</code>`);
    }
    for (const name of Object.keys(doc.components.schemas)) expect(page).toContain(`id="schema-${name}"`);
    // Links to schemas lead somewhere on the page.
    for (const [, target] of page.matchAll(/href="#(schema-[^"]+)"/g)) expect(page).toContain(`id="${target}"`);
  });
});
