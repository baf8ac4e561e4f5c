// Shared limits on a Redis Cluster: a three-master cluster started by the test, two instances pointed at
// it with REDIS_CLUSTER_NODES, three tenants whose keys hash to the three masters. 300 concurrent calls
// per tenant, all at once over both instances, at a limit of 100: exactly 100 pass for each, every check
// answered by the cluster (no fallback to per-instance windows), each tenant's window on its own master.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import Redis from "ioredis";
import { type App, startApp } from "../src/app.ts";
import { loadConfig } from "../src/config.ts";
import { randomBase62 } from "../src/ids.ts";
import { createLogger } from "../src/log.ts";
import { startRedisCluster, type PrivateRedisCluster } from "./fault/servers.ts";
import { authHeaders, createCommunityTenant, createTestDatabase, fallbacks, postJson, type TestDatabase, testEnv, warmUp } from "./harness.ts";

let cluster: PrivateRedisCluster;
let db: TestDatabase;
const apps: App[] = [];
const prefix = `kaireon_cluster_${randomBase62(8)}`;
const base = (app: App) => `http://127.0.0.1:${app.listeners.port}`;

beforeAll(async () => {
  cluster = await startRedisCluster(3);
  db = await createTestDatabase();
  const env = testEnv({
    DATABASE_URL: db.url,
    REDIS_URL: "",
    REDIS_CLUSTER_NODES: cluster.nodes.join(","),
    REDIS_KEY_PREFIX: prefix,
    RATE_LIMIT_OVERRIDE_PER_MINUTE: "",
    MONTHLY_DECISION_QUOTA_OVERRIDE: "",
  });
  for (let i = 0; i < 2; i++) apps.push(await startApp(loadConfig(env), createLogger("error")));
}, 120_000);
afterAll(async () => {
  for (const app of apps) await app.stop();
  await db?.drop();
  await cluster?.stop();
}, 60_000);

/** The master port serving each slot range, from CLUSTER SLOTS. */
async function slotOwners(): Promise<{ from: number; to: number; port: number }[]> {
  const client = new Redis(cluster.ports[0] as number, "127.0.0.1");
  try {
    const slots = await client.cluster("SLOTS");
    return slots.map(([from, to, master]) => ({ from, to, port: Number(master?.[1]) }));
  } finally {
    client.disconnect();
  }
}

/** A tenant id whose `{tenant}` hash tag lands on the master at `port`. */
async function tenantOn(port: number, owners: { from: number; to: number; port: number }[]): Promise<string> {
  const client = new Redis(port, "127.0.0.1");
  try {
    for (;;) {
      const id = `cl_${randomBase62(6).toLowerCase()}`;
      const slot = Number(await client.cluster("KEYSLOT", `{${id}}`));
      if (owners.some((o) => o.port === port && slot >= o.from && slot <= o.to)) return id;
    }
  } finally {
    client.disconnect();
  }
}

describe("rate limits on a Redis Cluster", () => {
  test("three tenants on three masters, 300 concurrent calls each over two instances at a limit of 100: exactly 100 each", async () => {
    const owners = await slotOwners();
    expect(new Set(owners.map((o) => o.port)).size).toBe(3);
    const tenants = [];
    for (const port of cluster.ports) {
      const tenantId = await tenantOn(port, owners);
      tenants.push({ port, ...(await createCommunityTenant(base(apps[0] as App), tenantId)) });
    }
    const bases = apps.map(base);
    const warm = new Map<string, number>();
    for (const t of tenants) warm.set(t.tenantId, await warmUp(bases, t.tenantId, t.key));
    const before = await Promise.all(bases.map(fallbacks));

    const calls = tenants.flatMap((t) =>
      Array.from({ length: 300 }, (_, i) =>
        postJson(bases[i % 2] as string, "/api/v1/recommend", { customerId: "c1", channelId: "ch" }, authHeaders(t.key, t.tenantId)).then(
          (r) => ({ tenantId: t.tenantId, status: r.status }),
        ),
      ),
    );
    const results = await Promise.all(calls);
    for (const t of tenants) {
      const passed = results.filter((r) => r.tenantId === t.tenantId && r.status === 200).length;
      const refused = results.filter((r) => r.tenantId === t.tenantId && r.status === 429).length;
      expect({ tenant: t.tenantId, passed, refused }).toEqual({
        tenant: t.tenantId,
        passed: 100 - (warm.get(t.tenantId) as number),
        refused: 200 + (warm.get(t.tenantId) as number),
      });
      // The tenant's window lives on the master its hash tag names.
      const node = new Redis(t.port, "127.0.0.1");
      const keys = await node.keys(`${prefix}:{${t.tenantId}}:*`);
      node.disconnect();
      expect(keys).toContain(`${prefix}:{${t.tenantId}}:rl`);
    }
    expect(await Promise.all(bases.map(fallbacks))).toEqual(before);
  }, 120_000);
});
