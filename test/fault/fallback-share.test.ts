// While Redis is down each instance counts alone, and allows only its share of a limit
// (RATE_LIMIT_FALLBACK_INSTANCES), so that N instances together stay near the limit; /readyz says how
// limits are counted, and the fallback gauge is set.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type App, startApp } from "../../src/app.ts";
import { loadConfig } from "../../src/config.ts";
import { randomBase62 } from "../../src/ids.ts";
import { createLogger } from "../../src/log.ts";
import { authHeaders, createCommunityTenant, createTestDatabase, postJson, type TestDatabase, testEnv } from "../harness.ts";
import { type PrivateRedis, startPrivateRedis } from "./servers.ts";

let db: TestDatabase;
let redis: PrivateRedis;
let app: App;
const base = () => `http://127.0.0.1:${app.listeners.port}`;

beforeAll(async () => {
  db = await createTestDatabase();
  redis = await startPrivateRedis();
  const env = testEnv({
    DATABASE_URL: db.url,
    REDIS_URL: redis.url,
    REDIS_KEY_PREFIX: `kaireon_share_${randomBase62(8)}`,
    RATE_LIMIT_OVERRIDE_PER_MINUTE: "",
    MONTHLY_DECISION_QUOTA_OVERRIDE: "",
    RATE_LIMIT_FALLBACK_INSTANCES: "4",
  });
  app = await startApp(loadConfig(env), createLogger("error"));
}, 60_000);
afterAll(async () => {
  await app?.stop();
  await redis?.kill();
  await db?.drop();
}, 30_000);

const readiness = async () => (await (await fetch(`${base()}/readyz`)).json()) as { details: { rateLimits: string } };

describe("with Redis down", () => {
  test("an instance allows a quarter of the limit when told there are four, and says it counts alone", async () => {
    const { tenantId, key } = await createCommunityTenant(base());
    expect((await readiness()).details.rateLimits).toBe("shared");
    await redis.kill();
    // The first call finds Redis gone and is counted here; so is everything after it.
    const first = await postJson(base(), "/api/v1/recommend", { customerId: "c1", channelId: "ch" }, authHeaders(key, tenantId));
    expect(first.status).toBe(200);
    const results = await Promise.all(
      Array.from({ length: 100 }, () => postJson(base(), "/api/v1/recommend", { customerId: "c1", channelId: "ch" }, authHeaders(key, tenantId))),
    );
    const warm = 1;
    expect(results.filter((r) => r.status === 200).length).toBe(25 - warm);
    expect((await readiness()).details.rateLimits).toBe("per-instance (Redis unavailable)");
    const metrics = await (await fetch(`${base()}/metrics`)).text();
    expect(metrics).toMatch(/^kaireon_rate_limit_redis_fallback 1$/m);
  }, 60_000);
});
