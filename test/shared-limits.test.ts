// A shared rate limit stays exact on a loaded machine: three service processes on one database and one
// Redis, both cores kept busy by a CPU stressor, 300 concurrent Recommends of a tenant whose plan allows
// 100 a minute, spread over the three. Exactly 100 pass, in each of three rounds (three tenants), and no
// instance fell back to counting alone: being busy is no reason to stop sharing the limit.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBase62 } from "../src/ids.ts";
import {
  authHeaders,
  createCommunityTenant,
  createTestDatabase,
  fallbacks,
  postJson,
  processEnv,
  type SpawnedService,
  spawnService,
  type TestDatabase,
  warmUp,
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

describe("a shared limit under CPU load", () => {
  test("three instances, both cores busy, 300 concurrent calls at a limit of 100: exactly 100 pass, three times", async () => {
    const tenants = [];
    for (let i = 0; i < 3; i++) tenants.push(await createCommunityTenant(services[0]?.http as string));
    stress = Bun.spawn(["stress-ng", "--cpu", "2", "--timeout", "300", "--quiet"], { stdout: "ignore", stderr: "ignore" });
    await Bun.sleep(500);
    for (const { tenantId, key } of tenants) {
      const body = { customerId: "c1", channelId: "ch" };
      const warm = await warmUp(services.map((x) => x.http), tenantId, key);
      const before = await Promise.all(services.map((x) => fallbacks(x.http)));
      const results = await Promise.all(
        Array.from({ length: 300 }, (_, i) =>
          postJson((services[i % 3] as SpawnedService).http, "/api/v1/recommend", body, authHeaders(key, tenantId)),
        ),
      );
      const statuses = results.map((r) => r.status);
      expect({ tenantId, passed: statuses.filter((s) => s === 200).length }).toEqual({ tenantId, passed: 100 - warm });
      expect(statuses.filter((s) => s === 429)).toHaveLength(200 + warm);
      expect(await Promise.all(services.map((x) => fallbacks(x.http)))).toEqual(before);
    }
  }, 240_000);
});
