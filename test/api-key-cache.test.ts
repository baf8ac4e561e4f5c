// The API-key cache under a flood of made-up keys: unknown keys churn their own bounded cache, and every
// real key stays cached, so no valid call reads the database for its key (counted by
// kaireon_api_key_lookups_total).

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBase62 } from "../src/ids.ts";
import { authHeaders, createTenantWithKey, DEMO_KEY, postJson, startTestService, type TestService } from "./harness.ts";

let svc: TestService;
const KEYS = 20;
let keys: { tenant: string; key: string }[] = [];

beforeAll(async () => {
  // Room for the real keys; far less than the flood.
  svc = await startTestService({ API_KEY_CACHE_SIZE: String(KEYS + 5), API_KEY_MISS_CACHE_SIZE: "50" });
  keys = [{ tenant: "demo", key: DEMO_KEY }];
  for (let i = 1; i < KEYS; i++) keys.push({ tenant: `flood_${i}`, key: await createTenantWithKey(svc, `flood_${i}`) });
});
afterAll(async () => {
  await svc.stop();
});

const lookups = () => svc.app.deps.metrics.apiKeyLookups.get();
const call = (tenant: string, key: string) =>
  postJson(svc.http, "/api/v1/recommend", { customerId: "cust_12345", channelId: "ch_email" }, authHeaders(key, tenant));

describe("API key cache", () => {
  test("1,000 unknown keys evict no real key; each unknown key is one lookup, a real key none after its first", async () => {
    for (const k of keys) expect((await call(k.tenant, k.key)).status).not.toBe(401);
    const before = lookups();
    const unknown = Array.from({ length: 1000 }, () => `krn_${randomBase62(40)}`);
    for (let i = 0; i < unknown.length; i += 50) {
      const answers = await Promise.all(unknown.slice(i, i + 50).map((k) => call("demo", k)));
      for (const a of answers) expect(a.status).toBe(401);
    }
    expect(lookups() - before).toBe(1000);
    const afterFlood = lookups();
    for (const k of keys) expect((await call(k.tenant, k.key)).status).not.toBe(401);
    expect(lookups()).toBe(afterFlood);
    // An unknown key seen just now is remembered too (within its own bound).
    const last = unknown[unknown.length - 1] as string;
    expect((await call("demo", last)).status).toBe(401);
    expect(lookups()).toBe(afterFlood);
  }, 60_000);
});
