// The OpenAPI document: valid OpenAPI 3.1 by the schemas of the specification (checked with an npm
// validator), listing exactly the routes the REST app serves, with answers that match their schemas;
// and the page that renders it.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Validator } from "@seriousme/openapi-schema-validator";
import { commentsJson, protoComments } from "../scripts/proto-comments.ts";
import protoCommentsFile from "../src/transport/proto-comments.json" with { type: "json" };
import { httpStatusOf } from "../src/errors.ts";
import { connectCodeOf } from "../src/transport/connect.ts";
import { createRestApp } from "../src/transport/rest.ts";
import { authHeaders, startTestService, TUTORIAL_RECOMMEND, TUTORIAL_RESPOND, type TestService } from "./harness.ts";

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
    // A trace's stages: each stage's fields are those of its kind's message, written inline, as the schema says.
    const rec = (await (
      await fetch(`${svc.http}/api/v1/recommend`, { method: "POST", headers: authHeaders(), body: TUTORIAL_RECOMMEND })
    ).json()) as Json;
    const trace = (await (await fetch(`${svc.http}/api/v1/decision-traces/${rec.traceId}`, { headers: authHeaders() })).json()) as Json;
    const stageProperties = Object.keys(schemas.TraceStage?.properties ?? {});
    for (const key of ["input", "computed", "candidatesIn", "drops", "scores", "finalOrder"]) expect(stageProperties).toContain(key);
    expect(stageProperties).not.toContain("filter");
    for (const stage of trace.stages as Json[]) for (const key of Object.keys(stage)) expect(stageProperties).toContain(key);
    const traceSchema = schemaOf("get", "/api/v1/decision-traces/{traceId}");
    expect(violations(trace, traceSchema, "trace")).toEqual([]);
    // An error answer is the documented error shape.
    const error = (await (await fetch(`${svc.http}/api/v1/offers/nope`, { headers: authHeaders() })).json()) as Json;
    expect(Object.keys(error).sort()).toEqual([...(schemas.Error?.required ?? [])].sort());
  });
});

/** Checks a JSON value against a schema of the document: types, enums, required and nested properties. */
function violations(value: unknown, schema: Json, at: string, out: string[] = []): string[] {
  if (typeof schema.$ref === "string") return violations(value, doc.components.schemas[schema.$ref.split("/").pop() as string], at, out);
  const types = schema.type === undefined ? [] : ([] as string[]).concat(schema.type);
  const kind = value === null ? "null" : Array.isArray(value) ? "array" : typeof value;
  const fits = (t: string) => t === kind || (t === "integer" && Number.isInteger(value)) || (t === "number" && kind === "number");
  if (types.length > 0 && !types.some(fits)) out.push(`${at}: ${kind} is not ${types.join(" or ")}`);
  if (Array.isArray(schema.enum) && !schema.enum.includes(value)) out.push(`${at}: ${String(value)} is not one of the enum`);
  // A 64-bit integer written as a string is digits; a timestamp is one Date reads.
  if (schema.format === "int64" && kind === "string" && !/^-?\d+$/.test(value as string))
    out.push(`${at}: ${String(value)} is not an int64`);
  if ((schema.format === "date-time" || /At$/.test(at)) && kind === "string" && Number.isNaN(Date.parse(value as string))) {
    out.push(`${at}: ${String(value)} is not a timestamp`);
  }
  if (kind === "array" && schema.items) {
    for (const [i, v] of (value as unknown[]).entries()) violations(v, schema.items, `${at}[${i}]`, out);
  }
  if (kind === "object") {
    const object = value as Json;
    for (const name of schema.required ?? []) if (!(name in object)) out.push(`${at}.${name}: required`);
    for (const [k, v] of Object.entries(object)) {
      const property =
        schema.properties?.[k] ?? (typeof schema.additionalProperties === "object" ? schema.additionalProperties : undefined);
      if (property) violations(v, property, `${at}.${k}`, out);
      else if (schema.properties && !schema.additionalProperties) out.push(`${at}.${k}: not a property`);
    }
  }
  return out;
}

const operations = () =>
  Object.entries(doc.paths as Record<string, Json>).flatMap(([path, ops]) =>
    Object.entries(ops).map(([method, op]) => ({ path, method, op: op as Json })),
  );

describe("descriptions, required fields, examples and servers", () => {
  test("the comments file is the comments of proto/ (run bun scripts/proto-comments.ts)", () => {
    const fresh = protoComments();
    expect(commentsJson(protoCommentsFile as Record<string, string>)).toBe(commentsJson(fresh));
    expect(fresh["kaireon.v1.RecommendRequest.customer_id"]).toStartWith("Required. The customer to decide for");
  });

  test("every property of every schema has a description, the proto comment of its field", () => {
    const missing: string[] = [];
    let total = 0;
    for (const [name, schema] of Object.entries(doc.components.schemas as Record<string, Json>)) {
      for (const [property, s] of Object.entries((schema.properties ?? {}) as Record<string, Json>)) {
        total++;
        if (!s.description) missing.push(`${name}.${property}`);
      }
    }
    expect(missing).toEqual([]);
    expect(total).toBeGreaterThan(300);
    // The description is the contract's comment on the field.
    expect(doc.components.schemas.RecommendRequest.properties.channelId.description).toBe(
      "Required. The delivery channel; it determines which creatives can be chosen.",
    );
    expect(doc.components.schemas.Offer.properties.priority.description).toContain("the marketer's emphasis");
  });

  test("every operation has a summary and a description, the comment of its RPC", () => {
    for (const { path, method, op } of operations()) {
      expect(`${method} ${path}: ${op.summary ? "summary" : ""}`).toBe(`${method} ${path}: summary`);
      if (op.tags[0] !== "Operations") expect(op.description).toMatch(/\S/);
    }
    expect(doc.paths["/api/v1/recommend"].post.description).toStartWith("RecommendService runs a tenant's decision flow");
    expect(doc.paths["/api/v1/offers/{offerId}"].delete.description).toStartWith("Deletes the offer's creatives with it");
  });

  test("the document names its server, relative to where it is served", () => {
    expect(doc.servers).toEqual([expect.objectContaining({ url: "/" })]);
  });

  test("errors answer the error schema", () => {
    for (const { op } of operations().filter(({ op }) => op.tags[0] !== "Operations")) {
      for (const status of ["400", "401", "404", "500"]) {
        expect(op.responses[status].content["application/json"].schema).toEqual({ $ref: "#/components/schemas/Error" });
      }
    }
  });

  test("the required fields are exactly those the service refuses a request without", async () => {
    expect(doc.components.schemas.RecommendRequest.required).toEqual(["customerId", "channelId"]);
    expect(doc.components.schemas.RespondRequest.required).toEqual(["customerId", "offerId", "channelId", "outcomeType"]);
    // A patch sends only what it changes; a key in the path need not be in the body.
    expect(doc.paths["/api/v1/offers/{offerId}"].patch.requestBody.content["application/json"].schema.required).toBeUndefined();
    expect(doc.paths["/api/v1/offers/{offerId}"].put.requestBody.content["application/json"].schema.required).toEqual([
      "categoryId",
      "name",
    ]);
    let checked = 0;
    for (const { path, method, op } of operations()) {
      const schema = op.requestBody?.content?.["application/json"]?.schema as Json | undefined;
      if (method !== "post" || !schema || path.includes("{")) continue;
      const required = (schema.$ref ? doc.components.schemas[schema.$ref.split("/").pop()] : schema).required ?? [];
      const res = await fetch(`${svc.http}${path}`, { method: "POST", headers: authHeaders(), body: "{}" });
      const body = (await res.json()) as Json;
      const refused = (body.details ?? []) as { field: string; message: string }[];
      const saidRequired = refused.filter((d) => / is required$/.test(d.message)).map((d) => d.field);
      // Each field the service calls required is documented so; each documented one is refused when missing.
      expect(`${path}: ${saidRequired.filter((f) => !required.includes(f))}`).toBe(`${path}: `);
      if (required.length > 0) expect(res.status).toBe(400);
      const named = new Set(refused.map((d) => d.field));
      // Fields checked only once others are valid (the variants of an experiment) are not always named.
      expect(`${path}: ${required.filter((f: string) => !named.has(f) && saidRequired.length === 0)}`).toBe(`${path}: `);
      checked++;
    }
    expect(checked).toBeGreaterThan(8);
  });

  test("examples fit their schemas, and the service accepts them", async () => {
    let checked = 0;
    for (const { path, method, op } of operations()) {
      const media = op.requestBody?.content?.["application/json"];
      if (!media?.example) continue;
      expect(`${method} ${path}: ${violations(media.example, media.schema, "body").join("; ")}`).toBe(`${method} ${path}: `);
      checked++;
    }
    expect(checked).toBeGreaterThanOrEqual(8);
    // The tutorial's requests, verbatim, and the demo tenant answers the first as the tutorial does.
    expect(doc.paths["/api/v1/recommend"].post.requestBody.content["application/json"].example).toEqual(JSON.parse(TUTORIAL_RECOMMEND));
    expect(doc.paths["/api/v1/respond"].post.requestBody.content["application/json"].example).toEqual(JSON.parse(TUTORIAL_RESPOND));
    const example = doc.paths["/api/v1/recommend"].post.requestBody.content["application/json"].example;
    const res = await fetch(`${svc.http}/api/v1/recommend`, { method: "POST", headers: authHeaders(), body: JSON.stringify(example) });
    expect(res.status).toBe(200);
    const answer = (await res.json()) as Json;
    expect(answer.recommendations.map((r: Json) => r.offerId).slice(0, 2)).toEqual(["act_platinum_cc", "act_cashback"]);
    // A create's example, under a new id, creates: the examples are bodies the service takes.
    const category = structuredClone(doc.paths["/api/v1/categories"].post.requestBody.content["application/json"].example);
    category.categoryId = "cat_from_example";
    expect(
      (await fetch(`${svc.http}/api/v1/categories`, { method: "POST", headers: authHeaders(), body: JSON.stringify(category) })).status,
    ).toBe(200);
    const offer = structuredClone(doc.paths["/api/v1/offers"].post.requestBody.content["application/json"].example);
    offer.offerId = "act_from_example";
    expect((await fetch(`${svc.http}/api/v1/offers`, { method: "POST", headers: authHeaders(), body: JSON.stringify(offer) })).status).toBe(
      200,
    );
  });

  test("the schema checker of these tests finds what is wrong", () => {
    expect(violations({ channelId: 5 }, { $ref: "#/components/schemas/RecommendRequest" }, "body")).toEqual([
      "body.customerId: required",
      "body.channelId: number is not string",
    ]);
    expect(
      violations(
        { offerId: "a", categoryId: "c", name: "n", colour: "red", createdAt: "soon" },
        { $ref: "#/components/schemas/Offer" },
        "o",
      ),
    ).toEqual(["o.colour: not a property", "o.createdAt: soon is not a timestamp"]);
    expect(violations({ monthlyDecisionQuota: "lots" }, { $ref: "#/components/schemas/TenantSettings" }, "s")).toEqual([
      "s.monthlyDecisionQuota: lots is not an int64",
    ]);
  });

  // Answers that are not JSON (batch decisions answer NDJSON), and the one whose example would be this
  // document itself; and the streamed bodies, NDJSON.
  const ANSWER_EXEMPT = ["getMetrics", "getApiDocs", "getOpenApiDocument", "recommendBatch"];
  const BODY_EXEMPT = ["importCustomers", "recommendBatch"];

  test("every operation has an example request body and answer, each fitting its schema", () => {
    const missing: string[] = [];
    let bodies = 0;
    let answers = 0;
    for (const { path, method, op } of operations()) {
      const where = `${method} ${path} (${op.operationId})`;
      if (op.requestBody && !BODY_EXEMPT.includes(op.operationId)) {
        const media = op.requestBody.content["application/json"];
        if (media?.example === undefined) missing.push(`${where}: body`);
        else {
          expect(`${where}: ${violations(media.example, media.schema, "body").join("; ")}`).toBe(`${where}: `);
          bodies++;
        }
      }
      if (ANSWER_EXEMPT.includes(op.operationId)) {
        expect(op.responses["200"].content["application/json"]?.example).toBeUndefined();
        continue;
      }
      const answer = op.responses["200"].content["application/json"];
      if (answer?.example === undefined) missing.push(`${where}: answer`);
      else {
        expect(`${where}: ${violations(answer.example, answer.schema, "answer").join("; ")}`).toBe(`${where}: `);
        answers++;
      }
    }
    expect(missing).toEqual([]);
    expect(answers).toBe(operations().length - ANSWER_EXEMPT.length);
    expect(bodies).toBe(operations().filter(({ op }) => op.requestBody).length - BODY_EXEMPT.length);
    // A patch changes a field and names the version it read; an answer's ids are the demo catalog's.
    expect(doc.paths["/api/v1/offers/{offerId}"].patch.requestBody.content["application/json"].example).toEqual({
      priority: 95,
      version: 1,
    });
    expect(doc.paths["/api/v1/offers/{offerId}"].get.responses["200"].content["application/json"].example.offerId).toBe("act_platinum_cc");
  });

  test("the error table is the service's codes, with their HTTP status and gRPC code", () => {
    const table = doc["x-errors"] as Json[];
    expect(table.map((r) => r.code).sort()).toEqual(Object.keys(httpStatusOf).sort());
    for (const row of table) {
      expect(row.httpStatus).toBe(httpStatusOf[row.code as keyof typeof httpStatusOf]);
      expect(row.grpcCode).toBe(connectCodeOf[row.code as keyof typeof connectCodeOf]);
      expect(row.meaning).toMatch(/\S/);
    }
    expect(doc.components.schemas.Error.properties.code.enum.sort()).toEqual(Object.keys(httpStatusOf).sort());
  });
});

describe("the documentation page", () => {
  test("renders every operation and schema of the document, with a search box", async () => {
    const res = await fetch(`${svc.http}/api/v1/docs`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/html");
    const page = await res.text();
    expect(page.startsWith("<!doctype html>")).toBe(true);
    // One inline script, the search; nothing fetched from elsewhere.
    expect(page.match(/<script/g)?.length).toBe(1);
    expect(page).not.toMatch(/<script[^>]*src=|<link[^>]*href="http|src="http/);
    expect(page).toContain('<input id="search" type="search"');
    // Descriptions and required marks reach the page.
    expect(page).toContain("Required. The delivery channel; it determines which creatives can be chosen.");
    expect(page).toContain('<code>customerId</code> <span class="req">required</span>');
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
