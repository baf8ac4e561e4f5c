// A change to who may call reaches every instance within a second, not at the key cache's expiry: two
// instances on one database, each with the longest key cache allowed; a key revoked and a tenant
// suspended through one are refused by the other at once, and a reactivated tenant's keys pass again.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type App, startApp } from "../src/app.ts";
import { loadConfig } from "../src/config.ts";
import { createLogger } from "../src/log.ts";
import { authHeaders, createTestDatabase, operatorHeaders, postJson, REDIS_URL, type TestDatabase, testEnv } from "./harness.ts";

let db: TestDatabase;
let a: App;
let b: App;
const url = (app: App) => `http://127.0.0.1:${app.listeners.port}`;

beforeAll(async () => {
  db = await createTestDatabase();
  const config = () => loadConfig(testEnv({ DATABASE_URL: db.url, REDIS_URL, API_KEY_CACHE_TTL_MS: "15000" }));
  a = await startApp(config(), createLogger("error"));
  b = await startApp(config(), createLogger("error"));
}, 60_000);
afterAll(async () => {
  await a?.stop();
  await b?.stop();
  await db?.drop();
}, 30_000);

const RECOMMEND = { customerId: "cust_12345", channelId: "ch_email" };

/** How long until `app` answers `status` to a Recommend with `key`, polling every 20 ms; at most 5 s. */
async function untilStatus(app: App, key: string, status: number): Promise<number> {
  const start = performance.now();
  for (;;) {
    const res = await postJson(url(app), "/api/v1/recommend", RECOMMEND, authHeaders(key));
    if (res.status === status) return performance.now() - start;
    if (performance.now() - start > 5_000) throw new Error(`still ${res.status} after 5 s`);
    await Bun.sleep(20);
  }
}

async function operator(app: App, method: string, path: string, body?: object) {
  const res = await fetch(`${url(app)}${path}`, { method, headers: operatorHeaders(), body: body && JSON.stringify(body) });
  const json = (await res.json()) as Record<string, any>;
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

describe("access changes across instances", () => {
  test("a key revoked on one instance is refused by the other within a second", async () => {
    const created = await operator(a, "POST", "/api/v1/tenants/demo/api-keys", { name: "short-lived", scopes: ["decide"] });
    const key = created.key as string;
    // Both instances have the key cached as valid.
    expect((await postJson(url(a), "/api/v1/recommend", RECOMMEND, authHeaders(key))).status).toBe(200);
    expect((await postJson(url(b), "/api/v1/recommend", RECOMMEND, authHeaders(key))).status).toBe(200);
    const res = await fetch(`${url(a)}/api/v1/api-keys/${created.apiKey.apiKeyId}`, { method: "DELETE", headers: authHeaders() });
    expect(res.status).toBe(200);
    expect(await untilStatus(b, key, 401)).toBeLessThan(1_000);
  }, 30_000);

  test("a tenant suspended on one instance is refused by the other within a second, and back when reactivated", async () => {
    expect((await postJson(url(b), "/api/v1/recommend", RECOMMEND)).status).toBe(200);
    const tenant = await operator(a, "GET", "/api/v1/tenants/demo");
    const suspended = await operator(a, "PATCH", "/api/v1/tenants/demo", { status: "suspended", version: tenant.version });
    expect(await untilStatus(b, authHeaders()["x-api-key"] as string, 403)).toBeLessThan(1_000);
    await operator(a, "PATCH", "/api/v1/tenants/demo", { status: "active", version: suspended.version });
    expect(await untilStatus(b, authHeaders()["x-api-key"] as string, 200)).toBeLessThan(1_000);
  }, 30_000);

  test("a change made in SQL by hand is announced too", async () => {
    expect((await postJson(url(b), "/api/v1/recommend", RECOMMEND)).status).toBe(200);
    await db.sql`update tenants set status = 'suspended' where id = 'demo'`;
    expect(await untilStatus(b, authHeaders()["x-api-key"] as string, 403)).toBeLessThan(1_000);
    await db.sql`update tenants set status = 'active' where id = 'demo'`;
    expect(await untilStatus(b, authHeaders()["x-api-key"] as string, 200)).toBeLessThan(1_000);
  }, 30_000);
});
