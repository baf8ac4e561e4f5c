// The operator above the tenants: with OPERATOR_API_KEY, tenants are created, listed, read, suspended and
// given their plan, limits, quota and first admin key, over REST and native gRPC, each write in the
// tenant's audit log as "operator". A tenant's own keys read those fields and never reach this API.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { OperatorService } from "../gen/kaireon/v1/operator_pb.ts";
import { authHeaders, DEMO_KEY, OPERATOR_KEY, operatorHeaders, startTestService, type TestService, waitFor } from "./harness.ts";

let svc: TestService;
beforeAll(async () => {
  svc = await startTestService();
});
afterAll(async () => {
  await svc.stop();
});

type Json = Record<string, any>;

async function send(method: string, path: string, body?: unknown, headers: Record<string, string> = operatorHeaders()) {
  const res = await fetch(`${svc.http}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, json: (text ? JSON.parse(text) : null) as Json };
}

const grpcCode = (p: Promise<unknown>) =>
  p.then(
    () => "OK",
    (e) => Code[ConnectError.from(e).code],
  );

describe("the operator over REST", () => {
  test("creates a tenant with its plan and limits, and its first admin key, which works at once", async () => {
    const created = await send("POST", "/api/v1/tenants", {
      tenantId: "contoso",
      name: "Contoso Bank",
      plan: "professional",
      rateLimitPerMinute: 5000,
      monthlyDecisionQuota: 42000,
    });
    expect(created.status).toBe(200);
    expect(created.json).toMatchObject({
      tenantId: "contoso",
      name: "Contoso Bank",
      plan: "professional",
      status: "active",
      rateLimitPerMinute: 5000,
      monthlyDecisionQuota: "42000",
      effectiveMonthlyDecisionQuota: "42000",
      version: 1,
    });
    expect((await send("POST", "/api/v1/tenants", { tenantId: "contoso" })).status).toBe(409);
    const bad = await send("POST", "/api/v1/tenants", { tenantId: "Not A Tenant!", plan: "platinum" });
    expect(bad.status).toBe(400);
    expect(bad.json.details.map((d: Json) => d.field)).toEqual(["tenantId"]);
    expect((await send("POST", "/api/v1/tenants", { tenantId: "plan_checked", plan: "platinum" })).json.details).toEqual([
      { field: "plan", message: "plan must be one of community, professional, enterprise" },
    ]);

    const key = await send("POST", "/api/v1/tenants/contoso/api-keys", { name: "first admin", scopes: ["admin"] });
    expect(key.status).toBe(200);
    expect(key.json.key).toMatch(/^krn_/);
    expect(key.json.apiKey).toMatchObject({ name: "first admin", scopes: ["admin"] });
    const tenant = authHeaders(key.json.key, "contoso");
    const settings = await send("GET", "/api/v1/settings", undefined, tenant);
    expect(settings.status).toBe(200);
    expect(settings.json).toMatchObject({ tenantId: "contoso", plan: "professional", effectiveRateLimitPerMinute: 5000 });
    expect((await send("POST", "/api/v1/tenants/nobody/api-keys", { name: "x", scopes: ["admin"] })).status).toBe(404);

    // The tenant's log says who did it.
    const log = await send("GET", "/api/v1/audit-log", undefined, tenant);
    expect(log.json.entries.map((e: Json) => [e.action, e.actorKeyId]).reverse()).toEqual([
      ["tenant.create", "operator"],
      ["api_key.create", "operator"],
    ]);
  });

  test("reads, lists by page, changes the plan and quota, and suspends and activates", async () => {
    for (const id of ["page_a", "page_b", "page_c"]) expect((await send("POST", "/api/v1/tenants", { tenantId: id })).status).toBe(200);
    const seen: string[] = [];
    let cursor = "";
    do {
      const page = await send("GET", `/api/v1/tenants?limit=2${cursor ? `&cursor=${cursor}` : ""}`);
      expect(page.status).toBe(200);
      expect(page.json.tenants.length).toBeLessThanOrEqual(2);
      seen.push(...page.json.tenants.map((t: Json) => t.tenantId));
      cursor = page.json.nextCursor;
    } while (cursor);
    expect(seen).toEqual([...seen].sort());
    expect(seen).toEqual(expect.arrayContaining(["demo", "page_a", "page_b", "page_c"]));

    const got = await send("GET", "/api/v1/tenants/page_a");
    expect(got.json).toMatchObject({ tenantId: "page_a", plan: "community", status: "active" });
    expect((await send("GET", "/api/v1/tenants/nobody")).status).toBe(404);
    const changed = await send("PATCH", "/api/v1/tenants/page_a", {
      plan: "enterprise",
      monthlyDecisionQuota: 10,
      version: got.json.version,
    });
    expect(changed.json).toMatchObject({ plan: "enterprise", monthlyDecisionQuota: "10", version: got.json.version + 1 });
    expect((await send("PATCH", "/api/v1/tenants/page_a", { plan: "community", version: got.json.version })).status).toBe(409);
    expect((await send("PATCH", "/api/v1/tenants/page_a", { status: "gone", version: changed.json.version })).json.details).toEqual([
      { field: "status", message: "status must be one of active, suspended" },
    ]);

    // Suspended, its keys get 403 (within the key cache's lifetime); active again, they work.
    const key = (await send("POST", "/api/v1/tenants/page_a/api-keys", { name: "k", scopes: ["admin"] })).json.key as string;
    const tenant = authHeaders(key, "page_a");
    expect((await send("GET", "/api/v1/settings", undefined, tenant)).status).toBe(200);
    const suspended = await send("PATCH", "/api/v1/tenants/page_a", { status: "suspended", version: changed.json.version });
    expect(suspended.json.status).toBe("suspended");
    await waitFor(async () => (await send("GET", "/api/v1/settings", undefined, tenant)).status === 403, 20_000, 200);
    await send("PATCH", "/api/v1/tenants/page_a", { status: "active", version: suspended.json.version });
    await waitFor(async () => (await send("GET", "/api/v1/settings", undefined, tenant)).status === 200, 20_000, 200);
    const audit = await send("GET", "/api/v1/audit-log?resourceType=tenant", undefined, tenant);
    expect(audit.json.entries.filter((e: Json) => e.actorKeyId === "operator").length).toBe(4);
  }, 60_000);

  test("only the operator key: a tenant's key is 403, a missing or wrong key 401; operator calls spend no tenant window", async () => {
    const tenantKey = await send("GET", "/api/v1/tenants", undefined, authHeaders());
    expect(tenantKey.status).toBe(403);
    expect(tenantKey.json.error).toContain("operator key");
    expect((await send("GET", "/api/v1/tenants", undefined, { "x-api-key": DEMO_KEY })).status).toBe(401);
    expect((await send("GET", "/api/v1/tenants", undefined, { "x-api-key": `krn_${"x".repeat(40)}` })).status).toBe(401);
    expect((await send("GET", "/api/v1/tenants", undefined, {})).status).toBe(401);
    const res = await fetch(`${svc.http}/api/v1/tenants`, { headers: operatorHeaders() });
    expect(res.headers.get("ratelimit")).toBeNull();
    // The operator key acts on a tenant's own routes with x-tenant-id; an unknown tenant is 401 as always.
    expect((await send("GET", "/api/v1/settings", undefined, { "x-tenant-id": "demo", "x-api-key": OPERATOR_KEY })).status).toBe(200);
    expect((await send("GET", "/api/v1/settings", undefined, { "x-tenant-id": "nobody", "x-api-key": OPERATOR_KEY })).status).toBe(401);
  });
});

describe("the operator over gRPC", () => {
  test("the same calls, with the same refusals", async () => {
    const client = createClient(OperatorService, createGrpcTransport({ baseUrl: svc.grpc }));
    const headers = { "x-api-key": OPERATOR_KEY };
    const created = await client.createTenant(
      { tenant: { tenantId: "fabrikam", plan: "community", adminRateLimitPerMinute: 50 } },
      { headers },
    );
    expect(created.tenant).toMatchObject({ tenantId: "fabrikam", name: "fabrikam", plan: "community", adminRateLimitPerMinute: 50 });
    const updated = await client.updateTenant(
      { tenant: { tenantId: "fabrikam", plan: "professional", version: created.tenant?.version }, updateMask: { paths: ["plan"] } },
      { headers },
    );
    expect(updated.tenant?.plan).toBe("professional");
    expect(updated.tenant?.adminRateLimitPerMinute).toBe(50);
    const key = await client.createTenantApiKey({ tenantId: "fabrikam", name: "first", scopes: ["admin", "decide"] }, { headers });
    expect(key.key).toMatch(/^krn_/);
    const got = await client.getTenant({ tenantId: "fabrikam" }, { headers });
    expect(got.tenant?.plan).toBe("professional");
    const listed = await client.listTenants({ limit: 100 }, { headers });
    expect(listed.tenants.map((t) => t.tenantId)).toContain("fabrikam");

    expect(await grpcCode(client.listTenants({}, { headers: { "x-tenant-id": "demo", "x-api-key": DEMO_KEY } }))).toBe("PermissionDenied");
    expect(await grpcCode(client.listTenants({}, {}))).toBe("Unauthenticated");
    expect(await grpcCode(client.createTenant({ tenant: { tenantId: "fabrikam" } }, { headers }))).toBe("AlreadyExists");
    expect(await grpcCode(client.getTenant({ tenantId: "nobody" }, { headers }))).toBe("NotFound");
    expect(await grpcCode(client.getTenant({ tenantId: "" }, { headers }))).toBe("InvalidArgument");
  });
});

describe("without OPERATOR_API_KEY", () => {
  test("the operator API refuses every call", async () => {
    const closed = await startTestService({ OPERATOR_API_KEY: "" });
    try {
      const res = await fetch(`${closed.http}/api/v1/tenants`, { headers: operatorHeaders() });
      expect(res.status).toBe(401);
      const settings = await fetch(`${closed.http}/api/v1/settings`, { headers: { "x-tenant-id": "demo", "x-api-key": OPERATOR_KEY } });
      expect(settings.status).toBe(401);
    } finally {
      await closed.stop();
    }
  });
});
