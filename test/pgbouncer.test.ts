// Behind PgBouncer in transaction mode (Debian's pgbouncer, started by the test in front of the local
// PostgreSQL): two instances with DATABASE_URL on the pooler and DATABASE_DIRECT_URL around it. Mixed
// concurrent calls answer without a 5xx; a catalog change made through one instance reaches the other's
// decisions within 1.5 s, and a revoked key is refused by the other within a second (LISTEN on the direct
// connection).

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type App, startApp } from "../src/app.ts";
import { loadConfig } from "../src/config.ts";
import { createLogger } from "../src/log.ts";
import { openPostgres } from "../src/store/db.ts";
import { migrate, pendingMigrations } from "../src/store/migrate.ts";
import { type PrivatePgBouncer, startPgBouncer } from "./fault/servers.ts";
import { authHeaders, createTestDatabase, DEMO_KEY, operatorHeaders, postJson, REDIS_URL, type TestDatabase, testEnv, waitFor } from "./harness.ts";

let db: TestDatabase;
let bouncer: PrivatePgBouncer;
const apps: App[] = [];
const base = (app: App) => `http://127.0.0.1:${app.listeners.port}`;

beforeAll(async () => {
  db = await createTestDatabase();
  const upstream = Number(new URL(db.url).port || 5432);
  bouncer = await startPgBouncer(upstream, 8);
  const database = new URL(db.url).pathname.slice(1);
  const env = testEnv({ DATABASE_URL: bouncer.url(database), DATABASE_DIRECT_URL: db.url, REDIS_URL, DATABASE_POOL_SIZE: "6" });
  for (let i = 0; i < 2; i++) apps.push(await startApp(loadConfig(env), createLogger("error")));
}, 120_000);
afterAll(async () => {
  for (const app of apps) await app.stop();
  await bouncer?.stop();
  await db?.drop();
}, 60_000);

const RECOMMEND = { customerId: "cust_12345", channelId: "ch_email", trace: true };

describe("behind PgBouncer in transaction mode", () => {
  test("400 mixed concurrent calls over two instances: none is a 5xx", async () => {
    const [a, b] = apps.map(base) as [string, string];
    const calls = Array.from({ length: 400 }, async (_, i) => {
      const at = i % 2 ? a : b;
      switch (i % 5) {
        case 0:
          return (await postJson(at, "/api/v1/recommend", RECOMMEND)).status;
        case 1:
          return (
            await postJson(at, "/api/v1/respond", { customerId: `cust_${10001 + (i % 50)}`, offerId: "act_cashback", channelId: "ch_email", outcomeType: "click" }, {
              ...authHeaders(),
              "idempotency-key": `bouncer-${i}`,
            })
          ).status;
        case 2:
          return (await fetch(`${at}/api/v1/offers?limit=20`, { headers: authHeaders() })).status;
        case 3:
          return (await fetch(`${at}/api/v1/customers/cust_${10001 + (i % 50)}`, { headers: authHeaders() })).status;
        default:
          return (await fetch(`${at}/api/v1/audit-log?limit=5`, { headers: authHeaders() })).status;
      }
    });
    const statuses = await Promise.all(calls);
    expect(statuses.filter((s) => s >= 500)).toEqual([]);
    expect(statuses.filter((s) => s === 200).length).toBe(400);
  }, 120_000);

  test("a new offer made through one instance is decided by the other within 1.5 s", async () => {
    const [a, b] = apps.map(base) as [string, string];
    const offer = await postJson(a, "/api/v1/offers", { offerId: "act_bouncer", categoryId: "cat_credit_cards", name: "Pooled Card", priority: 100 });
    expect(offer.status).toBe(200);
    const creative = await postJson(a, "/api/v1/creatives", {
      creativeId: "treat_bouncer_email",
      offerId: "act_bouncer",
      channelId: "ch_email",
      name: "pooled",
      status: "active",
      content: { subject: "{{offer.name}}" },
    });
    expect(creative.status).toBe(200);
    const started = performance.now();
    await waitFor(async () => {
      const res = await postJson(b, "/api/v1/recommend", { customerId: "cust_12345", channelId: "ch_email", maxOffers: 10 });
      return (res.json.recommendations as { offerId: string }[]).some((r) => r.offerId === "act_bouncer");
    }, 5_000, 20);
    expect(performance.now() - started).toBeLessThan(1_500);
  }, 30_000);

  test("a key revoked through one instance is refused by the other within a second", async () => {
    const [a, b] = apps.map(base) as [string, string];
    const created = await postJson(a, "/api/v1/tenants/demo/api-keys", { name: "pooled", scopes: ["decide"] }, operatorHeaders());
    const key = created.json.key as string;
    expect((await postJson(b, "/api/v1/recommend", RECOMMEND, authHeaders(key))).status).toBe(200);
    const revoke = await fetch(`${a}/api/v1/api-keys/${created.json.apiKey.apiKeyId}`, { method: "DELETE", headers: authHeaders(DEMO_KEY) });
    expect(revoke.status).toBe(200);
    const started = performance.now();
    await waitFor(async () => (await postJson(b, "/api/v1/recommend", RECOMMEND, authHeaders(key))).status === 401, 5_000, 20);
    expect(performance.now() - started).toBeLessThan(1_000);
  }, 30_000);

  test("an instance with MIGRATE=false starts on the migrated schema; on an empty database every migration is pending", async () => {
    const database = new URL(db.url).pathname.slice(1);
    const env = testEnv({ DATABASE_URL: bouncer.url(database), DATABASE_DIRECT_URL: db.url, REDIS_URL, MIGRATE: "false" });
    const third = await startApp(loadConfig(env), createLogger("error"));
    try {
      expect((await postJson(base(third), "/api/v1/recommend", RECOMMEND)).status).toBe(200);
    } finally {
      await third.stop();
    }
    const empty = await createTestDatabase();
    const store = openPostgres({ url: empty.url, poolSize: 1 });
    try {
      const pending = await pendingMigrations(store);
      expect(pending[0]).toBe("001_init.sql");
      expect(pending.length).toBeGreaterThanOrEqual(9);
      await migrate(store);
      expect(await pendingMigrations(store)).toEqual([]);
    } finally {
      await store.close();
      await empty.drop();
    }
  }, 60_000);
});
