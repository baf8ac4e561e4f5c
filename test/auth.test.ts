// API keys: stored only as HMAC hashes, refused when revoked (within 15 seconds on a running instance),
// expired or of another tenant, and 403 for a suspended tenant or a missing scope. Managed by the CLI.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHmac } from "node:crypto";
import { authHeaders, postJson, runCli, startTestService, type TestService } from "./harness.ts";

let svc: TestService;
beforeAll(async () => {
  svc = await startTestService();
});
afterAll(async () => {
  await svc.stop();
});

const cli = (...args: string[]) => runCli(svc, ...args);

const recommend = (key: string, tenant: string) =>
  postJson(svc.http, "/api/v1/recommend", { customerId: "cust_12345", channelId: "ch_email" }, authHeaders(key, tenant));

describe("the CLI and key storage", () => {
  let key = "";

  test("creates a tenant and a key that is printed once and stored only as its HMAC", async () => {
    const tenant = await cli("tenants", "create", "globex", "--name", "Globex", "--plan", "professional");
    expect(tenant.code).toBe(0);
    const created = await cli("keys", "create", "globex", "--name", "ci", "--scopes", "decide");
    expect(created.code).toBe(0);
    key = created.stdout.match(/krn_[0-9A-Za-z]{32,}/)?.[0] ?? "";
    expect(key).not.toBe("");

    const rows = await svc.db.sql`select * from api_keys where tenant_id = 'globex'`;
    expect(rows.length).toBe(1);
    const row = rows[0] as Record<string, unknown>;
    expect(row.key_hash).toBe(createHmac("sha256", svc.app.config.apiKeyPepper).update(key).digest("hex"));
    // No column holds the key itself.
    for (const value of Object.values(row)) expect(String(value)).not.toContain(key.slice(12));

    const listed = await cli("keys", "list", "globex");
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain(key.slice(0, 12));
    expect(listed.stdout).not.toContain(key);
  });

  test("the new key decides for its tenant, which has no flow yet (404), and is refused for another", async () => {
    const own = await recommend(key, "globex");
    expect(own.status).toBe(404);
    expect(own.json.code).toBe("NOT_FOUND");
    const other = await recommend(key, "demo");
    expect(other.status).toBe(401);
  });

  test("bad CLI calls exit 2 with a message", async () => {
    const bad = await cli("keys", "create", "nope");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("tenant nope does not exist");
    const scopes = await cli("keys", "create", "globex", "--scopes", "root");
    expect(scopes.code).toBe(2);
  });

  test("a revoked key is refused within 15 seconds although it was cached", async () => {
    const created = await cli("keys", "create", "demo", "--name", "to-revoke");
    const victim = created.stdout.match(/krn_[0-9A-Za-z]{32,}/)?.[0] ?? "";
    expect((await recommend(victim, "demo")).status).toBe(200);
    const prefix = victim.slice(0, 12);
    const revoked = await cli("keys", "revoke", "demo", prefix);
    expect(revoked.code).toBe(0);
    const started = Date.now();
    let status = 200;
    while (status === 200 && Date.now() - started < 16_000) {
      status = (await recommend(victim, "demo")).status;
      if (status === 200) await Bun.sleep(250);
    }
    expect(status).toBe(401);
    expect(Date.now() - started).toBeLessThanOrEqual(15_000);
    // The demo key is untouched.
    expect((await recommend(svc.key, "demo")).status).toBe(200);
  }, 20_000);
});

describe("refusals", () => {
  test("a missing key, a malformed key and an expired key are all the same 401; a missing tenant is said plainly", async () => {
    const bodies = new Set<string>();
    const noKey = await postJson(
      svc.http,
      "/api/v1/recommend",
      { customerId: "c", channelId: "ch_email" },
      { "content-type": "application/json", "x-tenant-id": "demo" },
    );
    const noTenant = await postJson(
      svc.http,
      "/api/v1/recommend",
      { customerId: "c", channelId: "ch_email" },
      { "content-type": "application/json", "x-api-key": svc.key },
    );
    const malformed = await recommend("not-a-key", "demo");
    const created = await cli("keys", "create", "demo", "--name", "short-lived", "--expires-days", "1");
    const expiring = created.stdout.match(/krn_[0-9A-Za-z]{32,}/)?.[0] ?? "";
    await svc.db.sql`update api_keys set expires_at = now() - interval '1 second' where prefix = ${expiring.slice(0, 12)}`;
    const expired = await recommend(expiring, "demo");
    for (const r of [noKey, malformed, expired]) {
      expect(r.status).toBe(401);
      expect(r.json.code).toBe("UNAUTHORIZED");
      bodies.add(r.json.error);
    }
    expect(bodies.size).toBe(1);
    // Naming the missing header tells nothing about any key.
    expect(noTenant.status).toBe(401);
    expect(noTenant.json.code).toBe("UNAUTHORIZED");
    expect(noTenant.json.details).toEqual([{ field: "x-tenant-id", message: expect.stringContaining("x-tenant-id is required") }]);
  });

  test("a suspended tenant gets 403", async () => {
    const created = await cli("keys", "create", "globex", "--name", "suspend-me");
    const key = created.stdout.match(/krn_[0-9A-Za-z]{32,}/)?.[0] ?? "";
    expect((await cli("tenants", "suspend", "globex")).code).toBe(0);
    const res = await recommend(key, "globex");
    expect(res.status).toBe(403);
    expect(res.json.code).toBe("FORBIDDEN");
    expect((await cli("tenants", "activate", "globex")).code).toBe(0);
  });
});
