// Per-tenant rate limits and monthly decision quotas (SPEC §6) against real Redis: one window shared by
// instances and keys, sliding, the same on every transport, an in-process fallback while Redis is down
// (or a 503 when failing closed), and the quota counting only answers with offers.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createServer } from "node:net";
import { create, toBinary } from "@bufbuild/protobuf";
import Redis from "ioredis";
import { RecommendRequestSchema } from "../gen/kaireon/v1/recommend_pb.ts";
import { type App, startApp } from "../src/app.ts";
import { loadConfig } from "../src/config.ts";
import { randomBase62 } from "../src/ids.ts";
import { createLogger } from "../src/log.ts";
import { hashApiKey } from "../src/services/auth.ts";
import { updateTenantSettings } from "../src/store/tenants.ts";
import {
  authHeaders,
  createTenantWithKey,
  DEMO_KEY,
  postJson,
  REDIS_URL,
  runCli,
  startTestService,
  type TestService,
  testEnv,
  waitFor,
} from "./harness.ts";
import { sendConnectJson, sendGrpc, sendRest } from "./wire.ts";

const RECOMMEND = "/api/v1/recommend";
const RPC = "/kaireon.v1.RecommendService/Recommend";
const offers = { customerId: "cust_12345", channelId: "ch_email", placement: "hero_offer" };
/** A channel without creatives: answers are empty, so they never count towards the quota. */
const empty = { customerId: "cust_12345", channelId: "ch_push" };

/** The plans' own limits: the harness raises them for every other test file. */
const planLimits = (extra: Record<string, string> = {}) => ({
  RATE_LIMIT_OVERRIDE_PER_MINUTE: "",
  MONTHLY_DECISION_QUOTA_OVERRIDE: "",
  REDIS_KEY_PREFIX: `kaireon_rl_${randomBase62(10)}`,
  ...extra,
});

function startSecond(svc: TestService, env: Record<string, string>): Promise<App> {
  return startApp(loadConfig(testEnv({ DATABASE_URL: svc.db.url, ...env })), createLogger("error"));
}

const urlOf = (app: App) => `http://127.0.0.1:${app.listeners.port}`;

async function addKey(svc: TestService, tenantId: string): Promise<string> {
  const key = `krn_${randomBase62(40)}`;
  await svc.db.sql`insert into api_keys (id, tenant_id, key_hash, prefix, scopes)
    values (${`key_${randomBase62(12)}`}, ${tenantId}, ${hashApiKey(key, svc.app.config.apiKeyPepper)}, ${key.slice(0, 12)}, ${["decide", "admin"]})`;
  return key;
}

/** Waits until every instance has reloaded the tenant's settings (NOTIFY), without spending a request. */
async function settled(apps: App[], tenantId: string, ok: (s: Awaited<ReturnType<App["deps"]["catalogs"]["get"]>>["settings"]) => boolean) {
  await waitFor(async () => {
    for (const app of apps) if (!ok((await app.deps.catalogs.get(tenantId)).settings)) return false;
    return true;
  }, 5_000);
}

describe("one window per tenant, shared by instances and keys", () => {
  let svc: TestService;
  let second: App;
  beforeAll(async () => {
    const env = planLimits();
    svc = await startTestService(env);
    second = await startSecond(svc, { REDIS_URL, ...env });
  });
  afterAll(async () => {
    await second.stop();
    await svc.stop();
  });

  test("300 concurrent calls over two instances and two keys of a community tenant: exactly 100 pass", async () => {
    const set = await runCli(svc, "tenants", "set", "demo", "--plan", "community");
    expect(set.code).toBe(0);
    await settled([svc.app, second], "demo", (s) => s.plan === "community");
    const keys = [DEMO_KEY, await addKey(svc, "demo")];
    const bases = [svc.http, urlOf(second)];
    const results = await Promise.all(
      Array.from({ length: 300 }, (_, i) => postJson(bases[i % 2] as string, RECOMMEND, offers, authHeaders(keys[(i >> 1) % 2], "demo"))),
    );
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(100);
    expect(statuses.filter((s) => s === 429)).toHaveLength(200);
    const ok = results.find((r) => r.status === 200);
    expect(ok?.headers.get("ratelimit-policy")).toBe("100;w=60");
    const refused = results.find((r) => r.status === 429);
    expect(refused?.json.code).toBe("RATE_LIMITED");
    expect(Number(refused?.headers.get("retry-after"))).toBeGreaterThanOrEqual(59);
    expect(refused?.headers.get("ratelimit")).toMatch(/^limit=100, remaining=0, reset=\d+$/);

    // Another tenant keeps its own window.
    const otherKey = await createTenantWithKey(svc, "other");
    for (const base of bases) {
      const res = await postJson(base, RECOMMEND, offers, authHeaders(otherKey, "other"));
      expect(res.status).not.toBe(429);
      expect(res.headers.get("ratelimit")).toMatch(/^limit=100, remaining=9[89], reset=\d+$/);
    }
  });
});

describe("separate windows for decisions, responds and administration", () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService(planLimits());
  });
  afterAll(async () => {
    await svc.stop();
  });

  test("a community tenant's 100 decisions are not spent by its responds or its administration, each in a window of its own", async () => {
    const set = await runCli(svc, "tenants", "set", "demo", "--plan", "community");
    expect(set.code).toBe(0);
    await settled([svc.app], "demo", (s) => s.plan === "community");
    const respond = { customerId: "cust_12345", offerId: "act_platinum_cc", channelId: "ch_email", outcomeType: "impression" };
    const admin = () => fetch(`${svc.http}/api/v1/offers?limit=1`, { headers: authHeaders() });
    // Administration and responds use up their own windows...
    const adminStatuses = await Promise.all(Array.from({ length: 110 }, () => admin().then((r) => r.status)));
    expect(adminStatuses.filter((s) => s === 200)).toHaveLength(100);
    expect(adminStatuses.filter((s) => s === 429)).toHaveLength(10);
    const responds = await Promise.all(Array.from({ length: 110 }, () => postJson(svc.http, "/api/v1/respond", respond)));
    expect(responds.filter((r) => r.status === 200)).toHaveLength(100);
    expect(responds.filter((r) => r.status === 429)).toHaveLength(10);
    // ...and every decision of the window is still there.
    const decisions = await Promise.all(Array.from({ length: 110 }, () => postJson(svc.http, RECOMMEND, offers)));
    expect(decisions.filter((r) => r.status === 200)).toHaveLength(100);
    const first = decisions.find((r) => r.status === 200);
    expect(first?.headers.get("ratelimit")).toMatch(/^limit=100, remaining=\d+, reset=\d+$/);
    // A trace read is a decision call: the decision window is spent.
    const trace = await fetch(`${svc.http}/api/v1/decision-traces/trace_none`, { headers: authHeaders() });
    expect(trace.status).toBe(429);
  });

  test("each window takes the tenant's own limit for it", async () => {
    const key = await createTenantWithKey(svc, "limits_w");
    expect((await runCli(svc, "tenants", "set", "limits_w", "--admin-rate-limit", "3", "--respond-rate-limit", "2")).code).toBe(0);
    await settled([svc.app], "limits_w", (s) => s.adminRateLimitPerMinute === 3 && s.respondRateLimitPerMinute === 2);
    const admin = await Promise.all(
      Array.from({ length: 5 }, () =>
        fetch(`${svc.http}/api/v1/offers?limit=1`, { headers: authHeaders(key, "limits_w") }).then((r) => r.status),
      ),
    );
    expect(admin.filter((s) => s === 200)).toHaveLength(3);
    const settings = await fetch(`${svc.http}/api/v1/settings`, { headers: authHeaders(key, "limits_w") });
    expect(settings.status).toBe(429);
  });
});

describe("a short window", () => {
  let svc: TestService;
  const setDemo = async (patch: Record<string, unknown>) => {
    await updateTenantSettings(svc.app.deps.db, "demo", patch);
    svc.app.deps.catalogs.invalidate("demo");
  };
  beforeAll(async () => {
    svc = await startTestService(planLimits({ RATE_LIMIT_WINDOW_MS: "2000" }));
    await svc.db.sql`insert into channels (tenant_id, id, name) values ('demo', 'ch_push', 'Push')`;
  });
  afterAll(async () => {
    await svc.stop();
  });

  test("the window slides: capacity returns as old calls age out, and Retry-After is the true wait", async () => {
    await setDemo({ rateLimitPerMinute: 1000 });
    expect((await postJson(svc.http, RECOMMEND, empty)).status).toBe(200); // warm: catalog and caches loaded
    await setDemo({ rateLimitPerMinute: 10 });
    await Bun.sleep(2100);
    const first = Date.now();
    expect((await postJson(svc.http, RECOMMEND, empty)).status).toBe(200);
    // The oldest call was stamped between sending it and its answer.
    const firstAnswered = Date.now();
    for (let i = 0; i < 4; i++) expect((await postJson(svc.http, RECOMMEND, empty)).status).toBe(200);
    const firstBatchDone = Date.now();
    await Bun.sleep(1000);
    for (let i = 0; i < 5; i++) expect((await postJson(svc.http, RECOMMEND, empty)).status).toBe(200);
    const refused = await postJson(svc.http, RECOMMEND, empty);
    expect(refused.status).toBe(429);
    const now = Date.now();
    const retryAfter = Number(refused.headers.get("retry-after"));
    expect(retryAfter * 1000).toBeGreaterThanOrEqual(first + 2000 - now);
    expect(retryAfter * 1000).toBeLessThan(firstAnswered + 2000 - now + 1000);
    expect(refused.headers.get("ratelimit-policy")).toBe("10;w=2");

    // Once the first five have aged out, exactly five slots are free again; the later five still hold theirs.
    await Bun.sleep(Math.max(0, firstBatchDone + 2050 - Date.now()));
    for (let i = 0; i < 5; i++) expect((await postJson(svc.http, RECOMMEND, empty)).status).toBe(200);
    expect((await postJson(svc.http, RECOMMEND, empty)).status).toBe(429);
  });

  test("the same limit over REST, Connect and gRPC, with the numbers in headers and metadata", async () => {
    await setDemo({ rateLimitPerMinute: 6 });
    await Bun.sleep(2100);
    const headers = { "x-tenant-id": "demo", "x-api-key": DEMO_KEY };
    const json = JSON.stringify(empty);
    const binary = toBinary(RecommendRequestSchema, create(RecommendRequestSchema, empty));
    const calls = [
      () => sendRest(svc.http, RECOMMEND, json, headers),
      () => sendConnectJson(svc.http, RPC, json, headers),
      () => sendGrpc(svc.grpc, RPC, binary, headers),
    ];
    const passed = [];
    for (const call of calls) passed.push(await call(), await call());
    for (const res of passed) {
      expect(res.code).toBe("OK");
      expect(res.headers["ratelimit-policy"]).toBe("6;w=2");
      expect(res.headers.ratelimit).toMatch(/^limit=6, remaining=[0-5], reset=[12]$/);
    }
    const [rest, connect, grpc] = [await calls[0]?.(), await calls[1]?.(), await calls[2]?.()];
    expect([rest?.status, rest?.code]).toEqual([429, "RATE_LIMITED"]);
    expect([connect?.status, connect?.code]).toEqual([429, "resource_exhausted"]);
    expect(grpc?.code).toBe("RESOURCE_EXHAUSTED");
    for (const res of [rest, connect, grpc]) {
      expect(Number(res?.headers["retry-after"])).toBeGreaterThanOrEqual(1);
      expect(Number(res?.headers["retry-after"])).toBeLessThanOrEqual(2);
      expect(res?.headers.ratelimit).toMatch(/^limit=6, remaining=0, reset=[12]$/);
    }
    expect(grpc?.headers["x-error-code"]).toBe("RATE_LIMITED");
  });

  test("a monthly quota of 5: the sixth answer with offers is refused; empty answers do not count", async () => {
    const set = await runCli(svc, "tenants", "set", "demo", "--rate-limit", "1000", "--monthly-quota", "5");
    expect(set.code).toBe(0);
    await settled([svc.app], "demo", (s) => s.monthlyDecisionQuota === 5 && s.rateLimitPerMinute === 1000);
    for (let i = 0; i < 5; i++) {
      const none = await postJson(svc.http, RECOMMEND, empty);
      expect([none.status, none.json.recommendations]).toEqual([200, []]);
      const res = await postJson(svc.http, RECOMMEND, offers);
      expect(res.status).toBe(200);
      expect(res.json.recommendations.length).toBeGreaterThan(0);
    }
    // At the quota every Recommend is refused, before it is decided.
    const sixth = await postJson(svc.http, RECOMMEND, offers);
    expect(sixth.status).toBe(429);
    expect(sixth.json.code).toBe("QUOTA_EXCEEDED");
    expect(Number(sixth.headers.get("retry-after"))).toBeGreaterThan(0);
    const grpc = await sendGrpc(svc.grpc, RPC, toBinary(RecommendRequestSchema, create(RecommendRequestSchema, offers)), {
      "x-tenant-id": "demo",
      "x-api-key": DEMO_KEY,
    });
    expect([grpc.code, grpc.headers["x-error-code"]]).toEqual(["RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED"]);

    // Raising the quota lets decisions through again.
    await runCli(svc, "tenants", "set", "demo", "--monthly-quota", "plan");
    await settled([svc.app], "demo", (s) => s.monthlyDecisionQuota === null);
    expect((await postJson(svc.http, RECOMMEND, offers)).status).toBe(200);
  });
});

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

describe("Redis unreachable", () => {
  let port: number;
  let redisProc: ReturnType<typeof Bun.spawn> | null = null;
  let svc: TestService;
  let second: App;
  let closed: App;
  const startRedis = async () => {
    redisProc = Bun.spawn(
      ["redis-server", "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--enable-debug-command", "yes"],
      { stdout: "ignore", stderr: "ignore" },
    );
    const probe = new Redis(port, "127.0.0.1", { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on("error", () => {});
    await waitFor(
      () =>
        probe.connect().then(
          () => probe.ping().then(() => true),
          () => false,
        ),
      5_000,
    );
    probe.disconnect();
  };
  const stopRedis = async () => {
    redisProc?.kill("SIGKILL");
    await redisProc?.exited;
    redisProc = null;
  };
  const ready = (base: string) =>
    waitFor(async () => ((await (await fetch(`${base}/readyz`)).json()) as { checks: { redis: string } }).checks.redis === "ok", 10_000);

  beforeAll(async () => {
    port = await freePort();
    await startRedis();
    const env = planLimits({ REDIS_URL: `redis://127.0.0.1:${port}`, RATE_LIMIT_FALLBACK_LOG_INTERVAL_MS: "60000" });
    svc = await startTestService(env);
    second = await startSecond(svc, env);
    closed = await startSecond(svc, { ...env, RATE_LIMIT_FAIL_CLOSED: "true" });
    await updateTenantSettings(svc.app.deps.db, "demo", { rateLimitPerMinute: 10 });
    await settled([svc.app, second, closed], "demo", (s) => s.rateLimitPerMinute === 10);
  });
  afterAll(async () => {
    await Promise.all([second.stop(), closed.stop()]);
    await svc.stop();
    await stopRedis();
  });

  test("calls are served under the in-process limit, then the shared limit applies again; failing closed answers 503", async () => {
    const a = svc.http;
    const b = urlOf(second);
    const status = async (base: string) => (await postJson(base, RECOMMEND, offers)).status;
    // Shared: ten over two instances, then both refuse.
    for (let i = 0; i < 10; i++) expect(await status(i % 2 ? a : b)).toBe(200);
    expect([await status(a), await status(b)]).toEqual([429, 429]);

    await stopRedis();
    // Each instance now limits on its own, from an empty window.
    for (let i = 0; i < 10; i++) expect(await status(a)).toBe(200);
    expect(await status(a)).toBe(429);
    const failClosed = await postJson(urlOf(closed), RECOMMEND, offers);
    expect([failClosed.status, failClosed.json.code]).toEqual([503, "UNAVAILABLE"]);
    const metrics = await (await fetch(`${a}/metrics`)).text();
    expect(metrics).toMatch(/kaireon_rate_limit_fallback_total\{mode="open",reason="[a-z]+"\} \d+/);

    // Redis back (empty): instance a, whose own window is full, admits again; the shared ten hold across both.
    await startRedis();
    await Promise.all([ready(a), ready(b), ready(urlOf(closed))]);
    for (let i = 0; i < 10; i++) expect(await status(i % 2 ? a : b)).toBe(200);
    expect([await status(a), await status(b)]).toEqual([429, 429]);
    expect((await postJson(urlOf(closed), RECOMMEND, offers)).status).toBe(429);
  });

  test("decisions counted while Redis is away are carried to it by the first check once it is back", async () => {
    await stopRedis();
    for (let i = 0; i < 5; i++) svc.app.deps.limits.countDecision("demo");
    // Redis comes back empty: the five exist only in this instance until a check carries them.
    await startRedis();
    await ready(svc.http);
    const checked = await svc.app.deps.limits.check("demo", "decide");
    expect(checked.decisionsUsed).toBe(5);
    const probe = new Redis(port, "127.0.0.1");
    try {
      const month = new Date().toISOString().slice(0, 7);
      expect(Number(await probe.get(`${svc.app.config.redisKeyPrefix}:{demo}:decisions:${month}`))).toBe(5);
    } finally {
      probe.disconnect();
    }
  });

  test("a Redis slower than the timeout never holds a call", async () => {
    await updateTenantSettings(svc.app.deps.db, "demo", { rateLimitPerMinute: 1000 });
    await settled([svc.app], "demo", (s) => s.rateLimitPerMinute === 1000);
    const blocker = new Redis(port, "127.0.0.1");
    blocker.on("error", () => {});
    const sleeping = blocker.call("DEBUG", "SLEEP", "1.5").catch(() => {});
    await Bun.sleep(50);
    const started = performance.now();
    const res = await postJson(svc.http, RECOMMEND, offers);
    const elapsed = performance.now() - started;
    expect(res.status).toBe(200);
    expect(elapsed).toBeLessThan(1000);
    await sleeping;
    blocker.disconnect();
  });
});

describe("counting decisions", () => {
  test("decisions counted while an increment is in flight go to Redis together: the count is exact, the calls few", async () => {
    // A check waits out the moment Redis holds writes below, rather than fall back to local counts.
    const svc = await startTestService(planLimits({ RATE_LIMIT_REDIS_TIMEOUT_MS: "5000" }));
    const redis = new Redis(REDIS_URL);
    try {
      const month = new Date().toISOString().slice(0, 7);
      const counter = `${svc.app.config.redisKeyPrefix}:{demo}:decisions:${month}`;
      const scripts = () =>
        svc.app.deps.metrics.redisCommandDuration
          .render()
          .split("\n")
          .filter((l) => l.includes("_count{") && l.includes('command="evalsha"'))
          .reduce((n, l) => n + Number(l.split(" ").pop()), 0);
      const before = Number((await redis.get(counter)) ?? 0);
      const calls = scripts();
      for (let i = 0; i < 1_000; i++) svc.app.deps.limits.countDecision("demo");
      await waitFor(async () => Number(await redis.get(counter)) >= before + 1_000, 10_000);
      await Bun.sleep(200);
      expect(Number(await redis.get(counter))).toBe(before + 1_000);
      // The first decision is sent at once; the 999 counted while it was in flight, in one more call.
      expect(scripts() - calls).toBe(2);

      // A check sent while decisions wait for an increment in flight carries them: it sees every one. Redis
      // holds writes for a moment, so the first increment is still in flight when the check is sent.
      await redis.client("PAUSE", 300, "WRITE");
      for (let i = 0; i < 10; i++) svc.app.deps.limits.countDecision("demo");
      const checked = await svc.app.deps.limits.check("demo", "decide");
      expect(checked.decisionsUsed).toBe(before + 1_010);
      await Bun.sleep(200);
      expect(Number(await redis.get(counter))).toBe(before + 1_010);
    } finally {
      redis.disconnect();
      await svc.stop();
    }
  });
});
