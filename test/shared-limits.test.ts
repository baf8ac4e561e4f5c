// A shared rate limit stays exact on a loaded machine: three service processes on one database and one
// Redis, both cores kept busy by a CPU stressor, 300 concurrent Recommends of a tenant whose plan allows
// 100 a minute, spread over the three. Exactly 100 pass, in each of three rounds (three tenants), and no
// instance fell back to counting alone: being busy is no reason to stop sharing the limit.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBase62 } from "../src/ids.ts";
import {
  authHeaders,
  createTestDatabase,
  OPERATOR_KEY,
  operatorHeaders,
  postJson,
  processEnv,
  type SpawnedService,
  spawnService,
  type TestDatabase,
  waitFor,
} from "./harness.ts";

let db: TestDatabase;
const services: SpawnedService[] = [];
let stress: ReturnType<typeof Bun.spawn> | null = null;

beforeAll(async () => {
  db = await createTestDatabase();
  const env = processEnv({
    DATABASE_URL: db.url,
    SEED_DEMO: "false",
    // The plans' own limits, not the harness's raised ones.
    RATE_LIMIT_OVERRIDE_PER_MINUTE: "",
    MONTHLY_DECISION_QUOTA_OVERRIDE: "",
    REDIS_KEY_PREFIX: `kaireon_shared_${randomBase62(10)}`,
  });
  // One at a time: the first migrates the empty database.
  for (let i = 0; i < 3; i++) services.push(await spawnService(env, 60_000));
}, 180_000);
afterAll(async () => {
  stress?.kill();
  await stress?.exited;
  for (const s of services) s.proc.kill("SIGTERM");
  await Promise.all(services.map((s) => s.exited));
  await db?.drop();
}, 60_000);

/** A community tenant (100 calls a minute) with an admin key and one offer on one channel. */
async function communityTenant(base: string): Promise<{ tenantId: string; key: string }> {
  const tenantId = `shared_${randomBase62(6).toLowerCase()}`;
  const call = async (path: string, body: object, headers = operatorHeaders()) => {
    const res = await postJson(base, path, body, headers);
    if (res.status !== 200) throw new Error(`${path}: ${res.status} ${res.text}`);
    return res.json;
  };
  await call("/api/v1/tenants", { tenantId, name: tenantId, plan: "community" });
  const { key } = await call(`/api/v1/tenants/${tenantId}/api-keys`, { name: "burst", scopes: ["admin"] });
  const admin = { ...operatorHeaders(), "x-tenant-id": tenantId, "x-api-key": OPERATOR_KEY };
  await call("/api/v1/categories", { categoryId: "cat", name: "Cards" }, admin);
  await call("/api/v1/channels", { channelId: "ch", name: "Web", type: "web" }, admin);
  await call("/api/v1/offers", { offerId: "off", categoryId: "cat", name: "Card" }, admin);
  await call("/api/v1/creatives", { creativeId: "cr", offerId: "off", channelId: "ch", name: "cr", status: "active", content: { h: "x" } }, admin);
  const flow = await call("/api/v1/decision-flows", { decisionFlowId: "df", name: "Main", isDefault: true, definition: {} }, admin);
  await call("/api/v1/decision-flows/df/publish", { version: flow.version }, admin);
  return { tenantId, key };
}

async function fallbacks(s: SpawnedService): Promise<number> {
  const text = await (await fetch(`${s.http}/metrics`)).text();
  return [...text.matchAll(/^kaireon_rate_limit_fallback_total\{[^}]*\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
}

describe("a shared limit under CPU load", () => {
  test("three instances, both cores busy, 300 concurrent calls at a limit of 100: exactly 100 pass, three times", async () => {
    const tenants = [];
    for (let i = 0; i < 3; i++) tenants.push(await communityTenant(services[0]?.http as string));
    stress = Bun.spawn(["stress-ng", "--cpu", "2", "--timeout", "300", "--quiet"], { stdout: "ignore", stderr: "ignore" });
    await Bun.sleep(500);
    for (const { tenantId, key } of tenants) {
      const body = { customerId: "c1", channelId: "ch" };
      // Every instance answers the tenant before its burst; the calls that pass here count too.
      let warm = 0;
      let last = "";
      await waitFor(async () => {
        for (const s of services) {
          const res = await postJson(s.http, "/api/v1/recommend", body, authHeaders(key, tenantId));
          if (res.status !== 200) {
            last = `${res.status} ${res.text}`;
            return false;
          }
          warm++;
        }
        return true;
      }, 30_000).catch((err) => {
        throw new Error(`${err.message}: ${last}`);
      });
      const before = await Promise.all(services.map(fallbacks));
      const results = await Promise.all(
        Array.from({ length: 300 }, (_, i) =>
          postJson((services[i % 3] as SpawnedService).http, "/api/v1/recommend", body, authHeaders(key, tenantId)),
        ),
      );
      const statuses = results.map((r) => r.status);
      expect({ tenantId, passed: statuses.filter((s) => s === 200).length }).toEqual({ tenantId, passed: 100 - warm });
      expect(statuses.filter((s) => s === 429)).toHaveLength(200 + warm);
      expect(await Promise.all(services.map(fallbacks))).toEqual(before);
    }
  }, 240_000);
});
