// Customer profiles end to end: upsert, get and the decision that uses them; validation, tenancy and
// scopes; erasure with its audit row; a 20,000-line NDJSON import with bad lines; the gRPC service.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { CustomerService } from "../gen/kaireon/v1/customer_pb.ts";
import { authHeaders, createTenantWithKey, DEMO_KEY, postJson, startTestService, type TestService } from "./harness.ts";

let svc: TestService;
let acmeKey: string;
let decideOnlyKey: string;
beforeAll(async () => {
  svc = await startTestService();
  acmeKey = await createTenantWithKey(svc, "acme");
  decideOnlyKey = await createTenantWithKey(svc, "demo-decide", ["decide"]);
  // A decide-only key of the demo tenant itself.
  await svc.db.sql`update api_keys set tenant_id = 'demo' where tenant_id = 'demo-decide'`;
});
afterAll(async () => {
  await svc.stop();
});

/** The JSON bodies these tests read: a customer, an erasure, an error, or an import report. */
interface Body {
  customerId: string;
  attributes: Record<string, unknown>;
  segments: string[];
  updatedAt: string;
  code: string;
  details: { field: string; message: string }[];
  deleted: { profile: number; interactions: number; traces: number; optOuts: number };
  processed: number;
  succeeded: number;
  failed: number;
  errors: { line: number; message: string }[];
  errorsTruncated: boolean;
}

const send = async (method: string, path: string, body?: unknown, headers = authHeaders()) => {
  const res = await fetch(`${svc.http}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as Body };
};

const personalizedRate = async (customerId: string) => {
  const rec = await postJson(svc.http, "/api/v1/recommend", {
    customerId,
    channelId: "ch_email",
    decisionFlowId: "df_credit_cards",
    maxOffers: 3,
    placement: "hero_offer",
  });
  expect(rec.status).toBe(200);
  const platinum = rec.json.recommendations.find((r: { offerId: string }) => r.offerId === "act_platinum_cc");
  return platinum.personalization.personalized_rate as number;
};

describe("profiles", () => {
  test("an upsert is what get returns and what the next Recommend uses", async () => {
    // cust_12345's demo loyalty_score of 85 takes 2.5 off the base rate; the profile is now cached.
    expect(await personalizedRate("cust_12345")).toBe(17.49);
    const put = await send("PUT", "/api/v1/customers/cust_12345", {
      attributes: { first_name: "Sarah", loyalty_score: 60, credit_score: 720 },
      segments: ["premium"],
    });
    expect(put.status).toBe(200);
    expect(put.json).toMatchObject({
      customerId: "cust_12345",
      attributes: { first_name: "Sarah", loyalty_score: 60, credit_score: 720 },
      segments: ["premium"],
    });
    expect(Date.parse(put.json.updatedAt)).toBeGreaterThan(Date.now() - 60_000);
    const got = await send("GET", "/api/v1/customers/cust_12345");
    expect(got.status).toBe(200);
    expect(got.json).toEqual(put.json);
    // 60 is in the 50-79 band: 1.25 off instead of 2.5.
    expect(await personalizedRate("cust_12345")).toBe(18.74);

    const audit = await svc.db.sql`select * from audit_log where resource_id = 'cust_12345' and action = 'customer.upsert'`;
    expect(audit.length).toBe(1);
    expect(audit[0]?.actor_key_id).toBeTruthy();
    expect(audit[0]?.tenant_id).toBe("demo");
    expect(audit[0]?.details).toMatchObject({ created: false, segmentsChanged: true });
    // Names of what changed, never the values.
    expect(audit[0]?.details.changedAttributes).toEqual(["age", "last_name", "loyalty_score", "tier"]);
    await expect(svc.db.sql`delete from audit_log`).rejects.toThrow(/append-only/);
  });

  test("violations are a 400 naming each field; nothing is written", async () => {
    const attributes = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`a${i}`, i]));
    const res = await send("PUT", "/api/v1/customers/cust_bad", { attributes, segments: ["ok", "x".repeat(65)] });
    expect(res.status).toBe(400);
    expect(res.json.code).toBe("VALIDATION_ERROR");
    expect(res.json.details).toEqual([
      { field: "attributes", message: "attributes must have at most 64 keys" },
      { field: "segments[1]", message: "segments[1] must be at most 64 characters" },
    ]);
    const many = await send("PUT", `/api/v1/customers/${"c".repeat(257)}`, { segments: Array.from({ length: 65 }, () => "s") });
    expect(many.status).toBe(400);
    expect(many.json.details.map((d) => d.field)).toEqual(["customerId", "segments"]);
    expect((await svc.db.sql`select 1 from customer_profiles where customer_id = 'cust_bad'`).length).toBe(0);
    expect((await send("GET", "/api/v1/customers/cust_bad")).status).toBe(404);
  });

  test("another tenant's customer is 404; a decide-only key is 403", async () => {
    expect((await send("GET", "/api/v1/customers/cust_12345", undefined, authHeaders(acmeKey, "acme"))).status).toBe(404);
    expect((await send("GET", "/api/v1/customers/cust_12345", undefined, authHeaders(decideOnlyKey))).status).toBe(403);
    expect((await send("PUT", "/api/v1/customers/cust_x", { attributes: {} }, authHeaders(decideOnlyKey))).status).toBe(403);
    expect((await send("DELETE", "/api/v1/customers/cust_12345", undefined, authHeaders(decideOnlyKey))).status).toBe(403);
    // acme's erasure of "cust_12345" touches nothing of demo's.
    const other = await send("DELETE", "/api/v1/customers/cust_12345", undefined, authHeaders(acmeKey, "acme"));
    expect(other.json.deleted).toEqual({ profile: 0, interactions: 0, traces: 0, optOuts: 0 });
    expect((await send("GET", "/api/v1/customers/cust_12345")).status).toBe(200);
  });
});

describe("erasure", () => {
  test("removes the profile, interactions, traces and opt-outs in one go and audits it", async () => {
    const id = "cust_erase_me";
    expect((await send("PUT", `/api/v1/customers/${id}`, { attributes: { loyalty_score: 90 } })).status).toBe(200);
    const rec = await postJson(svc.http, "/api/v1/recommend", { customerId: id, channelId: "ch_email", maxOffers: 2, trace: true });
    expect(rec.status).toBe(200);
    for (const outcomeType of ["impression", "click", "opt_out"]) {
      const r = await postJson(svc.http, "/api/v1/respond", {
        customerId: id,
        offerId: "act_platinum_cc",
        channelId: "ch_email",
        outcomeType,
      });
      expect(r.status).toBe(200);
    }
    const del = await send("DELETE", `/api/v1/customers/${id}`);
    expect(del.status).toBe(200);
    expect(del.json as unknown).toEqual({ customerId: id, deleted: { profile: 1, interactions: 3, traces: 1, optOuts: 1 } });
    for (const table of ["customer_profiles", "interactions", "decision_traces", "contact_opt_outs"]) {
      expect((await svc.db.sql`select 1 from ${svc.db.sql(table)} where customer_id = ${id}`).length).toBe(0);
    }
    expect((await send("GET", `/api/v1/customers/${id}`)).status).toBe(404);
    expect((await send("GET", `/api/v1/decision-traces/${rec.json.traceId}`)).status).toBe(404);
    const audit = await svc.db.sql`select * from audit_log where resource_id = ${id} order by id`;
    expect(audit.map((a) => a.action)).toEqual(["customer.upsert", "customer.erase"]);
    expect(audit[1]?.details.deleted).toEqual({ profile: 1, interactions: 3, traces: 1, optOuts: 1 });
    // Erasing again is harmless.
    expect((await send("DELETE", `/api/v1/customers/${id}`)).json.deleted.profile).toBe(0);
  });
});

describe("import", () => {
  test("20,000 NDJSON lines stream in; bad lines are reported by number and the rest imported", async () => {
    const bad = new Map<number, string>([
      [7, "{not json"],
      [5000, JSON.stringify({ attributes: { loyalty_score: 1 } })],
      [12_345, JSON.stringify({ customerId: "imp_x", segments: "gold" })],
      [19_999, JSON.stringify({ customerId: "imp_long", attributes: { blob: "x".repeat(70 * 1024) } })],
    ]);
    const total = 20_000;
    const encoder = new TextEncoder();
    let n = 0;
    // Streamed in pieces of 100 lines, so the body is chunked with no length.
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (n >= total) return controller.close();
        let text = "";
        for (let k = 0; k < 100 && n < total; k++) {
          n++;
          text += `${bad.get(n) ?? JSON.stringify({ customerId: `imp_${n}`, attributes: { loyalty_score: n % 100 }, segments: ["imported"] })}\n`;
        }
        controller.enqueue(encoder.encode(text));
      },
    });
    const res = await fetch(`${svc.http}/api/v1/customers/import`, {
      method: "POST",
      headers: { ...authHeaders(), "content-type": "application/x-ndjson" },
      body,
    });
    const report = (await res.json()) as Body;
    expect(res.status).toBe(200);
    expect(report).toMatchObject({ processed: 20_000, succeeded: 19_996, failed: 4, errorsTruncated: false });
    expect(report.errors).toEqual([
      { line: 7, message: "line is not valid JSON" },
      { line: 5000, message: "customerId is required" },
      { line: 12_345, message: "segments must be an array of strings" },
      { line: 19_999, message: "line exceeds 65536 bytes" },
    ]);
    const [count] = await svc.db
      .sql`select count(*)::int as n from customer_profiles where tenant_id = 'demo' and customer_id like 'imp\\_%'`;
    expect(count?.n).toBe(19_996);
    const one = await send("GET", "/api/v1/customers/imp_42");
    expect(one.json).toMatchObject({ attributes: { loyalty_score: 42 }, segments: ["imported"] });
    const [audited] = await svc.db.sql`select count(*)::int as n from audit_log where action = 'customer.import'`;
    expect(audited?.n).toBe(19_996);
  });

  test("only NDJSON is accepted, with an admin key", async () => {
    const json = await fetch(`${svc.http}/api/v1/customers/import`, { method: "POST", headers: authHeaders(), body: "{}" });
    expect(json.status).toBe(400);
    const denied = await fetch(`${svc.http}/api/v1/customers/import`, {
      method: "POST",
      headers: { ...authHeaders(decideOnlyKey), "content-type": "application/x-ndjson" },
      body: '{"customerId":"imp_denied"}\n',
    });
    expect(denied.status).toBe(403);
    expect((await svc.db.sql`select 1 from customer_profiles where customer_id = 'imp_denied'`).length).toBe(0);

    // The error list is capped, and says so; the counts still cover every line.
    const garbage = await fetch(`${svc.http}/api/v1/customers/import`, {
      method: "POST",
      headers: { ...authHeaders(), "content-type": "application/x-ndjson" },
      body: `${"[]\n".repeat(1005)}{"customerId":"imp_last"}`,
    });
    const report = (await garbage.json()) as Body;
    expect(report).toMatchObject({ processed: 1006, succeeded: 1, failed: 1005, errorsTruncated: true });
    expect(report.errors.length).toBe(1000);
    expect(report.errors[999]).toEqual({ line: 1000, message: "line must be a JSON object" });
  });

  test("other routes still refuse a chunked body over MAX_BODY_BYTES", async () => {
    const big = JSON.stringify({ attributes: { blob: "x".repeat(300 * 1024) } });
    const res = await fetch(`${svc.http}/api/v1/customers/cust_big`, {
      method: "PUT",
      headers: authHeaders(),
      body: new ReadableStream({
        start(c) {
          c.enqueue(new TextEncoder().encode(big));
          c.close();
        },
      }),
    });
    expect(res.status).toBe(413);
  });
});

describe("gRPC", () => {
  test("UpsertCustomer and GetCustomer need an admin key", async () => {
    const client = createClient(CustomerService, createGrpcTransport({ baseUrl: svc.grpc }));
    const headers = { "x-tenant-id": "demo", "x-api-key": DEMO_KEY };
    const up = await client.upsertCustomer(
      { customerId: "cust_grpc", attributes: { loyalty_score: 99, nested: { a: [1, "b"] } }, segments: ["vip"] },
      { headers },
    );
    expect(up.customer?.attributes).toEqual({ loyalty_score: 99, nested: { a: [1, "b"] } });
    const got = await client.getCustomer({ customerId: "cust_grpc" }, { headers });
    expect(got.customer?.segments).toEqual(["vip"]);
    expect(got.customer?.updatedAt).toEqual(up.customer?.updatedAt);
    const rest = await send("GET", "/api/v1/customers/cust_grpc");
    expect(rest.json.attributes).toEqual({ loyalty_score: 99, nested: { a: [1, "b"] } });
    const code = (p: Promise<unknown>) =>
      p.then(
        () => null,
        (e: unknown) => ConnectError.from(e).code,
      );
    expect(await code(client.getCustomer({ customerId: "nope" }, { headers }))).toBe(Code.NotFound);
    expect(await code(client.upsertCustomer({ customerId: "" }, { headers }))).toBe(Code.InvalidArgument);
    expect(await code(client.getCustomer({ customerId: "cust_grpc" }, { headers: { ...headers, "x-api-key": decideOnlyKey } }))).toBe(
      Code.PermissionDenied,
    );
    const del = await client.deleteCustomer({ customerId: "cust_grpc" }, { headers });
    expect(del.deleted?.profile).toBe(1);
  });
});
