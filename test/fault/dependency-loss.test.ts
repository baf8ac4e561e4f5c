// The service outlives its dependencies: a PostgreSQL and a Redis of the test's own are killed under load
// while a service process (a separate process, so that a crash shows as an exit) keeps answering. Nothing
// acknowledged is lost, nothing answers 500, nothing waits long, and the service is ready again by itself.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import postgres from "postgres";
import {
  authHeaders,
  postJson,
  processEnv,
  type SpawnedService,
  spawnService,
  TEST_KEY_PREFIX,
  TUTORIAL_RECOMMEND,
  waitFor,
} from "../harness.ts";
import { type PrivatePostgres, type PrivateRedis, startPrivatePostgres, startPrivateRedis } from "./servers.ts";

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function startService(env: Record<string, string>): Promise<SpawnedService> {
  const svc = await spawnService(processEnv({ REDIS_KEY_PREFIX: `${TEST_KEY_PREFIX}_fault`, ...env }), 60_000);
  cleanups.push(() => {
    svc.proc.kill("SIGKILL");
  });
  return svc;
}

/** Error-level lines the service logged, for a failure message. */
function errorLines(svc: SpawnedService): string {
  return svc
    .output()
    .split("\n")
    .filter((l) => l.includes('"level":"error"') || l.startsWith("error:") || l.includes("TypeError"))
    .slice(0, 20)
    .join("\n");
}

interface Tally {
  statuses: Map<string, number>;
  slowest: number;
  answered: number;
}

function tally(): Tally {
  return { statuses: new Map(), slowest: 0, answered: 0 };
}

function count(t: Tally, status: string, ms: number) {
  t.statuses.set(status, (t.statuses.get(status) ?? 0) + 1);
  t.slowest = Math.max(t.slowest, ms);
  t.answered++;
}

const RESPOND_BODY = (customer: string) =>
  JSON.stringify({ customerId: customer, offerId: "act_cashback", channelId: "ch_email", outcomeType: "impression" });

describe("PostgreSQL killed under Respond load", () => {
  let pg: PrivatePostgres;
  let svc: SpawnedService;

  beforeAll(async () => {
    pg = await startPrivatePostgres();
    cleanups.push(() => pg.destroy());
    svc = await startService({ DATABASE_URL: pg.url, REDIS_URL: "" });
  }, 120_000);

  test("killed twice: the process stays up, no 500, every answer within 2 s, every acknowledged Respond kept, ready again by itself", async () => {
    const acknowledged = new Map<string, string>();
    const unconfirmed = new Map<string, string>();
    const t = tally();
    let stop = false;
    const clients = Array.from({ length: 24 }, async (_, c) => {
      for (let i = 0; !stop; i++) {
        const key = `fault-${c}-${i}`;
        const customer = `cust_fault_${c}`;
        const started = performance.now();
        let status: string;
        try {
          const res = await fetch(`${svc.http}/api/v1/respond`, {
            method: "POST",
            headers: { ...authHeaders(), "idempotency-key": key },
            body: RESPOND_BODY(customer),
            signal: AbortSignal.timeout(15_000),
          });
          status = String(res.status);
          const json = (await res.json()) as { id?: string; code?: string };
          if (res.status === 200 && json.id) acknowledged.set(key, json.id);
          else unconfirmed.set(key, customer);
        } catch (err) {
          status = `no answer: ${(err as Error).name}`;
          unconfirmed.set(key, customer);
        }
        count(t, status, performance.now() - started);
        // A client that was refused waits a little, as a client with backoff would.
        if (status !== "200") await Bun.sleep(50);
      }
    });

    for (let round = 0; round < 2; round++) {
      await waitFor(async () => acknowledged.size >= (round + 1) * 300, 60_000);
      await pg.kill();
      await Bun.sleep(1_500);
      await pg.start();
    }
    // Ready again without anything restarting it.
    await waitFor(async () => (await fetch(`${svc.http}/readyz`)).status === 200, 20_000, 100);
    const afterRecovery = acknowledged.size;
    await waitFor(async () => acknowledged.size >= afterRecovery + 200, 30_000);
    stop = true;
    await Promise.all(clients);

    expect(svc.proc.exitCode, errorLines(svc)).toBeNull();
    const statuses = Object.fromEntries(t.statuses);
    console.log(`respond under two PostgreSQL kills: ${JSON.stringify(statuses)}, slowest answer ${Math.round(t.slowest)} ms`);
    for (const status of t.statuses.keys()) expect(["200", "503"], JSON.stringify(statuses)).toContain(status);
    expect(t.statuses.get("503") ?? 0).toBeGreaterThan(0);
    expect(t.slowest).toBeLessThan(2_000);

    // Every acknowledged interaction is stored under the id its caller was given.
    const sql = postgres(pg.url, { onnotice: () => {}, max: 2 });
    cleanups.push(() => sql.end({ timeout: 1 }));
    const rows = await sql<{ key: string; interaction_id: string }[]>`
      select key, interaction_id from idempotency_keys where tenant_id = 'demo' and key like 'fault-%'`;
    const stored = new Map(rows.map((r) => [r.key, r.interaction_id]));
    const lost = [...acknowledged].filter(([key, id]) => stored.get(key) !== id);
    expect(lost).toEqual([]);
    const interactions = await sql<{ n: number }[]>`
      select count(*)::int as n from interactions where tenant_id = 'demo' and id = any(${[...acknowledged.values()]})`;
    expect(interactions[0]?.n).toBe(acknowledged.size);

    // A replay of an acknowledged call answers the first id; a call that was refused can be sent again.
    for (const [key, id] of [...acknowledged].slice(0, 50)) {
      const customer = `cust_fault_${key.split("-")[1]}`;
      const res = await postJson(svc.http, "/api/v1/respond", RESPOND_BODY(customer), { ...authHeaders(), "idempotency-key": key });
      expect(res.status).toBe(200);
      expect(res.json.id).toBe(id);
    }
    for (const [key, customer] of [...unconfirmed].slice(0, 50)) {
      const res = await postJson(svc.http, "/api/v1/respond", RESPOND_BODY(customer), { ...authHeaders(), "idempotency-key": key });
      expect(res.status).toBe(200);
    }
  }, 240_000);
});

describe("PostgreSQL down", () => {
  let pg: PrivatePostgres;
  let svc: SpawnedService;

  beforeAll(async () => {
    pg = await startPrivatePostgres();
    cleanups.push(() => pg.destroy());
    svc = await startService({ DATABASE_URL: pg.url, REDIS_URL: "" });
  }, 120_000);

  test("calls that need it answer 503 UNAVAILABLE within a second, Recommend decides from the cache, and all is back once it is", async () => {
    // Warm the caches: key, catalog, statistics.
    expect((await postJson(svc.http, "/api/v1/recommend", TUTORIAL_RECOMMEND)).status).toBe(200);
    const decide = JSON.stringify({ customerId: "cust_cached", channelId: "ch_email", decisionFlowId: "df_credit_cards", maxOffers: 3 });
    expect((await postJson(svc.http, "/api/v1/recommend", decide)).status).toBe(200);
    await pg.kill();

    const timed = async (fn: () => Promise<Response>) => {
      const started = performance.now();
      const res = await fn();
      return { res, ms: performance.now() - started, json: (await res.json().catch(() => null)) as Record<string, unknown> | null };
    };
    const headers = authHeaders();
    for (let i = 0; i < 5; i++) {
      const list = await timed(() => fetch(`${svc.http}/api/v1/offers`, { headers }));
      expect(list.res.status).toBe(503);
      expect(list.json?.code).toBe("UNAVAILABLE");
      expect(list.ms).toBeLessThan(1_000);
      const respond = await timed(() => fetch(`${svc.http}/api/v1/respond`, { method: "POST", headers, body: RESPOND_BODY("cust_down") }));
      expect(respond.res.status).toBe(503);
      expect(respond.ms).toBeLessThan(1_000);
      const ready = await timed(() => fetch(`${svc.http}/readyz`));
      expect(ready.res.status).toBe(503);
      expect(ready.ms).toBeLessThan(1_000);
      // The cached catalog and key keep deciding; recording what was shown is best effort.
      const rec = await timed(() => fetch(`${svc.http}/api/v1/recommend`, { method: "POST", headers, body: decide }));
      expect(rec.res.status).toBe(200);
      expect(((rec.json?.recommendations ?? []) as unknown[]).length).toBeGreaterThan(0);
    }
    expect(svc.output()).toContain("database unreachable");

    await pg.start();
    await waitFor(async () => (await fetch(`${svc.http}/api/v1/offers`, { headers })).status === 200, 20_000, 100);
    expect((await postJson(svc.http, "/api/v1/respond", RESPOND_BODY("cust_back"))).status).toBe(200);
    expect((await fetch(`${svc.http}/readyz`)).status).toBe(200);
    expect(svc.output()).toContain("database reachable again");
    expect(svc.proc.exitCode).toBeNull();
  }, 120_000);
});

describe("PostgreSQL out of connections", () => {
  test("with every connection slot taken by others, calls answer 503, never 500, and pass again when slots free up", async () => {
    const slots = 12;
    const pg = await startPrivatePostgres({ max_connections: String(slots), superuser_reserved_connections: "0" });
    cleanups.push(() => pg.destroy());
    // No event relay: polling every 200 ms, it would take freed slots back at once and race the other
    // client for them; what is tested is how calls answer when no slot is to be had.
    const svc = await startService({ DATABASE_URL: pg.url, REDIS_URL: "", DATABASE_POOL_SIZE: "10", EVENT_RELAY: "false" });
    const headers = authHeaders();
    expect((await fetch(`${svc.http}/api/v1/offers`, { headers })).status).toBe(200);

    // Another client takes every free slot and holds it in an open transaction.
    const hog = postgres(pg.url, { onnotice: () => {}, max: slots, idle_timeout: 0, connection: { application_name: "hog" } });
    cleanups.push(() => hog.end({ timeout: 1 }));
    const release = Promise.withResolvers<void>();
    const held: Promise<unknown>[] = [];
    const clientBackends = async () =>
      (await hog`select count(*)::int as n from pg_stat_activity where backend_type = 'client backend'`)[0]?.n as number;
    const takeEverySlot = () =>
      waitFor(
        async () => {
          if ((await clientBackends().catch(() => 0)) >= slots) return true;
          held.push(
            hog
              .begin(async (tx) => {
                await tx`select 1`;
                await release.promise;
              })
              .catch(() => {}),
          );
          return false;
        },
        20_000,
        20,
      );
    await takeEverySlot();
    // The service keeps working on the connections it has.
    expect((await fetch(`${svc.http}/api/v1/offers`, { headers })).status).toBe(200);

    // Its connections are ended by the server, and the others take their slots before it can reconnect.
    await hog`select pg_terminate_backend(pid) from pg_stat_activity
              where backend_type = 'client backend' and application_name <> 'hog' and pid <> pg_backend_pid()`;
    await takeEverySlot();

    const statuses = new Map<number, number>();
    let slowest = 0;
    await Promise.all(
      Array.from({ length: 30 }, async (_, i) => {
        const started = performance.now();
        const res = await fetch(`${svc.http}/api/v1/offers?pageSize=${1 + (i % 5)}`, { headers });
        slowest = Math.max(slowest, performance.now() - started);
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        if (res.status !== 200) expect(((await res.json()) as { code: string }).code).toBe("UNAVAILABLE");
      }),
    );
    console.log(`admin calls with every slot taken: ${JSON.stringify(Object.fromEntries(statuses))}, slowest ${Math.round(slowest)} ms`);
    expect([...statuses.keys()]).toEqual([503]);

    release.resolve();
    await Promise.all(held);
    await hog.end({ timeout: 1 });
    await waitFor(async () => (await fetch(`${svc.http}/api/v1/offers`, { headers })).status === 200, 20_000, 100);
    expect(svc.proc.exitCode).toBeNull();
    expect(svc.output()).not.toContain('"status":500');
  }, 120_000);
});

describe("Redis killed under Recommend load", () => {
  let redis: PrivateRedis;
  let svc: SpawnedService;

  beforeAll(async () => {
    redis = await startPrivateRedis();
    cleanups.push(() => redis.kill());
    const { createTestDatabase } = await import("../harness.ts");
    const db = await createTestDatabase();
    cleanups.push(() => db.drop());
    svc = await startService({ DATABASE_URL: db.url, REDIS_URL: redis.url, RATE_LIMIT_REDIS_TIMEOUT_MS: "200" });
  }, 120_000);

  test("decisions keep flowing while Redis is gone and after it is back", async () => {
    let phase: "before" | "down" | "back" = "before";
    const byPhase = { before: tally(), down: tally(), back: tally() };
    let stop = false;
    const clients = Array.from({ length: 16 }, async () => {
      while (!stop) {
        const started = performance.now();
        const current = phase;
        let status: string;
        try {
          const res = await fetch(`${svc.http}/api/v1/recommend`, {
            method: "POST",
            headers: authHeaders(),
            body: TUTORIAL_RECOMMEND,
            signal: AbortSignal.timeout(10_000),
          });
          status = String(res.status);
          await res.arrayBuffer();
        } catch (err) {
          status = `no answer: ${(err as Error).name}`;
        }
        count(byPhase[current], status, performance.now() - started);
      }
    });
    await waitFor(async () => byPhase.before.answered >= 200, 30_000);
    await redis.kill();
    phase = "down";
    await waitFor(async () => byPhase.down.answered >= 300, 30_000);
    await redis.start();
    phase = "back";
    await waitFor(async () => byPhase.back.answered >= 200, 30_000);
    stop = true;
    await Promise.all(clients);

    const summary = Object.fromEntries(Object.entries(byPhase).map(([k, v]) => [k, Object.fromEntries(v.statuses)]));
    console.log(`recommend around a Redis kill: ${JSON.stringify(summary)}`);
    for (const t of Object.values(byPhase)) expect([...t.statuses.keys()], JSON.stringify(summary)).toEqual(["200"]);
    expect(svc.proc.exitCode).toBeNull();
    await waitFor(
      async () => ((await (await fetch(`${svc.http}/readyz`)).json()) as { checks: { redis: string } }).checks.redis === "ok",
      20_000,
      100,
    );
  }, 120_000);
});
