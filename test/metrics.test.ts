// What GET /metrics tells an operator: calls by transport, RPC method and status; the process and its
// runtime; the database pool and Redis; the build. And where it is served: METRICS_PORT takes it off the
// public port, METRICS_TOKEN puts it behind a bearer token.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { RecommendService } from "../gen/kaireon/v1/recommend_pb.ts";
import packageJson from "../package.json" with { type: "json" };
import { ConfigError, loadConfig } from "../src/config.ts";
import { gitCommitOf, Metrics } from "../src/metrics.ts";
import { authHeaders, DEMO_KEY, postJson, ROOT, startTestService, type TestService, TUTORIAL_RECOMMEND } from "./harness.ts";

const SLOW = 30_000;

/** Every sample of an exposition, by its series (`name{labels}`, labels as the service renders them). */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const at = line.lastIndexOf(" ");
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

async function scrape(base: string, headers: Record<string, string> = {}): Promise<Map<string, number>> {
  const res = await fetch(`${base}/metrics`, { headers });
  expect(res.status).toBe(200);
  return samples(await res.text());
}

/** The value of one series, 0 when it is not there yet. */
const at = (m: Map<string, number>, series: string) => m.get(series) ?? 0;

const rpc = (transport: string, method: string, status: string) => `{method="${method}",status="${status}",transport="${transport}"}`;
const RECOMMEND = "kaireon.v1.RecommendService/Recommend";

/** A free port of 3500-3599 (the range this suite may listen on). */
function freePort(): number {
  const start = Math.floor(Math.random() * 100);
  for (let i = 0; i < 100; i++) {
    const port = 3500 + ((start + i) % 100);
    try {
      const probe = Bun.listen({ hostname: "127.0.0.1", port, socket: { data() {} } });
      probe.stop(true);
      return port;
    } catch {}
  }
  throw new Error("no free port in 3500-3599");
}

describe("on the public port (defaults)", () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService({ DATABASE_POOL_SIZE: "3" });
  }, SLOW);
  afterAll(async () => {
    await svc.stop();
  }, SLOW);

  test("calls are counted by transport, RPC method and status, exactly once each", async () => {
    const before = await scrape(svc.http);
    const ok = await postJson(svc.http, "/api/v1/recommend", TUTORIAL_RECOMMEND);
    expect(ok.status).toBe(200);
    const invalid = await postJson(svc.http, "/api/v1/recommend", { channelId: "ch_email" });
    expect(invalid.status).toBe(400);
    const wrongKey = await postJson(
      svc.http,
      "/api/v1/recommend",
      TUTORIAL_RECOMMEND,
      authHeaders("krn_NotAKey000000000000000000000000000000"),
    );
    expect(wrongKey.status).toBe(401);
    // Connect without a key, then native gRPC with one.
    const connect = await fetch(`${svc.http}/kaireon.v1.RecommendService/Recommend`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    expect(connect.status).toBe(401);
    const grpc = createClient(RecommendService, createGrpcTransport({ baseUrl: svc.grpc }));
    await grpc.recommend(
      { customerId: "cust_12345", channelId: "ch_email" },
      { headers: { "x-tenant-id": "demo", "x-api-key": DEMO_KEY } },
    );
    // A trace id in the path is not a label: the route's pattern is.
    const traceId = "trace_NotThere0000000000";
    const missing = await fetch(`${svc.http}/api/v1/decision-traces/${traceId}`, { headers: authHeaders() });
    expect(missing.status).toBe(404);

    const afterText = await (await fetch(`${svc.http}/metrics`)).text();
    const after = samples(afterText);
    const moved = (series: string) => at(after, series) - at(before, series);
    expect(moved(`kaireon_rpc_requests_total${rpc("rest", RECOMMEND, "2xx")}`)).toBe(1);
    expect(moved(`kaireon_rpc_requests_total${rpc("rest", RECOMMEND, "4xx")}`)).toBe(2);
    expect(moved(`kaireon_rpc_requests_total${rpc("connect", RECOMMEND, "UNAUTHENTICATED")}`)).toBe(1);
    expect(moved(`kaireon_rpc_requests_total${rpc("grpc", RECOMMEND, "OK")}`)).toBe(1);
    expect(moved(`kaireon_rpc_requests_total${rpc("rest", "kaireon.v1.DecisionTraceService/GetDecisionTrace", "4xx")}`)).toBe(1);
    // The histogram counts the same calls, and every one within +Inf.
    const okSeries = rpc("rest", RECOMMEND, "2xx");
    expect(moved(`kaireon_rpc_duration_seconds_count${okSeries}`)).toBe(1);
    expect(at(after, `kaireon_rpc_duration_seconds_bucket{${okSeries.slice(1, -1)},le="+Inf"}`)).toBe(
      at(after, `kaireon_rpc_duration_seconds_count${okSeries}`),
    );
    expect(at(after, `kaireon_rpc_duration_seconds_sum${okSeries}`)).toBeGreaterThan(0);
    expect(afterText).not.toContain(traceId);
    expect(afterText).not.toContain('tenant="demo"');
    // Scrapes and health checks are not calls of the API.
    expect(afterText).not.toMatch(/kaireon_rpc_requests_total\{method="[^"]*metrics/);
    // The figures the service had before are still there under their names.
    expect(moved(`kaireon_errors_total{code="VALIDATION_ERROR",transport="rest"}`)).toBe(1);
    expect(moved(`kaireon_request_duration_seconds_count{route="/api/v1/recommend",transport="rest"}`)).toBe(3);
  });

  test("the exposition is well formed: each family declared once, every sample a number", async () => {
    const text = await (await fetch(`${svc.http}/metrics`)).text();
    const declared = new Map<string, string>();
    for (const line of text.split("\n")) {
      if (line === "") continue;
      const type = /^# TYPE (\S+) (counter|gauge|histogram)$/.exec(line);
      if (type) {
        expect(declared.has(type[1] as string)).toBe(false);
        declared.set(type[1] as string, type[2] as string);
        continue;
      }
      if (line.startsWith("# HELP ")) continue;
      const sample = /^([a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line);
      if (!sample) throw new Error(`not a sample: ${line}`);
      const family = sample[1] as string;
      expect(declared.has(family) || declared.has(family.replace(/_(bucket|sum|count)$/, ""))).toBe(true);
      expect(Number.isFinite(Number(sample[3]))).toBe(true);
    }
    expect(declared.get("kaireon_rpc_requests_total")).toBe("counter");
    expect(declared.get("kaireon_event_loop_delay_seconds")).toBe("histogram");
  });

  test("process and runtime figures are there and plausible", async () => {
    const m = await scrape(svc.http);
    const rss = at(m, "kaireon_process_resident_memory_bytes");
    expect(rss).toBeGreaterThan(10 * 1024 * 1024);
    expect(at(m, "kaireon_process_heap_used_bytes")).toBeGreaterThan(0);
    // JavaScriptCore's figures: the heap in use may count memory outside its capacity, so neither bounds the other.
    expect(at(m, "kaireon_process_heap_total_bytes")).toBeGreaterThan(0);
    expect(at(m, 'kaireon_process_cpu_seconds_total{mode="user"}')).toBeGreaterThan(0);
    expect(m.has('kaireon_process_cpu_seconds_total{mode="system"}')).toBe(true);
    const started = at(m, "kaireon_process_start_time_seconds");
    expect(started).toBeLessThanOrEqual(Date.now() / 1000);
    expect(started).toBeGreaterThan(Date.now() / 1000 - 3600);
    expect(at(m, "kaireon_process_open_fds")).toBeGreaterThan(3);
    expect(at(m, "kaireon_process_max_fds")).toBeGreaterThanOrEqual(at(m, "kaireon_process_open_fds"));
  });

  test("a blocked event loop shows in the event-loop delay histogram", async () => {
    const before = await scrape(svc.http);
    const slow = (m: Map<string, number>) =>
      at(m, "kaireon_event_loop_delay_seconds_count") - at(m, 'kaireon_event_loop_delay_seconds_bucket{le="0.1"}');
    // The service runs in this process: holding the loop here holds it there.
    const until = performance.now() + 250;
    while (performance.now() < until) {}
    await Bun.sleep(50);
    const after = await scrape(svc.http);
    expect(at(after, "kaireon_event_loop_delay_seconds_count")).toBeGreaterThan(at(before, "kaireon_event_loop_delay_seconds_count"));
    expect(slow(after) - slow(before)).toBeGreaterThanOrEqual(1);
    expect(at(after, "kaireon_event_loop_delay_seconds_sum") - at(before, "kaireon_event_loop_delay_seconds_sum")).toBeGreaterThan(0.1);
  });

  test("build_info names package.json's version, the Bun it runs on and the checkout's commit", async () => {
    const m = await scrape(svc.http);
    const commit = gitCommitOf(ROOT) ?? "unknown";
    expect(at(m, `kaireon_build_info{bun="${Bun.version}",commit="${commit}",version="${packageJson.version}"}`)).toBe(1);
  });

  test("the database pool: its size, connections in use while a call runs, waiting calls, call latency", async () => {
    const idle = await scrape(svc.http);
    expect(at(idle, "kaireon_db_pool_max_connections")).toBe(3);
    expect(at(idle, 'kaireon_db_pool_connections{state="idle"}')).toBeGreaterThanOrEqual(1);
    const queriesBefore = at(idle, 'kaireon_db_query_duration_seconds_count{kind="query",result="ok"}');
    // Five slow calls on a pool of three: three run, two wait.
    const sleeping = Array.from({ length: 5 }, () => svc.app.deps.db.query("select pg_sleep(0.3)"));
    const busy = await scrape(svc.http);
    expect(at(busy, 'kaireon_db_pool_connections{state="in_use"}')).toBe(3);
    expect(at(busy, "kaireon_db_pool_waiting_calls")).toBeGreaterThanOrEqual(2);
    await Promise.all(sleeping);
    const after = await scrape(svc.http);
    expect(at(after, 'kaireon_db_query_duration_seconds_count{kind="query",result="ok"}') - queriesBefore).toBeGreaterThanOrEqual(5);
    // Each of the five took at least its 0.3 s.
    expect(at(after, 'kaireon_db_query_duration_seconds_bucket{kind="query",result="ok",le="0.25"}')).toBeLessThanOrEqual(
      at(after, 'kaireon_db_query_duration_seconds_count{kind="query",result="ok"}') - 5,
    );
    expect(at(after, "kaireon_db_pool_waiting_calls")).toBe(0);
    const failed = at(after, 'kaireon_db_query_duration_seconds_count{kind="query",result="error"}');
    await expect(svc.app.deps.db.query("select no_such_column from tenants")).rejects.toThrow();
    const afterError = await scrape(svc.http);
    expect(at(afterError, 'kaireon_db_query_duration_seconds_count{kind="query",result="error"}')).toBe(failed + 1);
  });

  test("Redis: up, not falling back, and its commands timed", async () => {
    const before = await scrape(svc.http);
    expect(at(before, "kaireon_redis_up")).toBe(1);
    expect(before.has("kaireon_rate_limit_redis_fallback")).toBe(true);
    expect(at(before, "kaireon_rate_limit_redis_fallback")).toBe(0);
    // Readiness asks Redis once.
    expect((await fetch(`${svc.http}/readyz`)).status).toBe(200);
    const after = await scrape(svc.http);
    const pings = 'kaireon_redis_command_duration_seconds_count{command="ping",result="ok"}';
    expect(at(after, pings) - at(before, pings)).toBe(1);
    // The rate-limit checks of the calls above ran their script.
    const scripts = [...after].filter(([k]) =>
      /^kaireon_redis_command_duration_seconds_count\{command="(evalsha|eval)",result="ok"\}$/.test(k),
    );
    expect(scripts.reduce((sum, [, v]) => sum + v, 0)).toBeGreaterThan(0);
  });
});

describe("METRICS_PORT and METRICS_TOKEN", () => {
  const TOKEN = "metrics-token-0123456789";
  let svc: TestService;
  let metricsPort: number;
  beforeAll(async () => {
    metricsPort = freePort();
    svc = await startTestService({ METRICS_PORT: String(metricsPort), METRICS_TOKEN: TOKEN, BUILD_COMMIT: "0123abcd" });
  }, SLOW);
  afterAll(async () => {
    await svc.stop();
  }, SLOW);

  test("the public port answers 404 for /metrics; the metrics port answers it", async () => {
    for (const path of ["/metrics", "/metrics/", "/%6Detrics"]) {
      const res = await fetch(`${svc.http}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
      expect(res.status).toBe(404);
      expect(((await res.json()) as { code: string }).code).toBe("NOT_FOUND");
    }
    expect(svc.app.listeners.metricsPort).toBe(metricsPort);
    const base = `http://127.0.0.1:${metricsPort}`;
    await postJson(svc.http, "/api/v1/recommend", TUTORIAL_RECOMMEND);
    const m = await scrape(base, { authorization: `Bearer ${TOKEN}` });
    expect(at(m, `kaireon_rpc_requests_total${rpc("rest", RECOMMEND, "2xx")}`)).toBe(1);
    expect(at(m, `kaireon_build_info{bun="${Bun.version}",commit="0123abcd",version="${packageJson.version}"}`)).toBe(1);
    // The metrics port serves nothing else.
    expect((await fetch(`${base}/api/v1/recommend`, { method: "POST", body: TUTORIAL_RECOMMEND })).status).toBe(404);
    expect((await fetch(`${base}/healthz`)).status).toBe(404);
    expect((await fetch(`${base}/metrics`, { method: "POST", headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(405);
  });

  test("with METRICS_TOKEN the metrics need it as a bearer token", async () => {
    const base = `http://127.0.0.1:${metricsPort}`;
    const none = await fetch(`${base}/metrics`);
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toContain("Bearer");
    expect((await none.text()).includes("kaireon_")).toBe(false);
    expect((await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${TOKEN}x` } })).status).toBe(401);
    expect((await fetch(`${base}/metrics`, { headers: { authorization: TOKEN } })).status).toBe(401);
    expect((await fetch(`${base}/metrics`, { headers: { authorization: `bearer ${TOKEN}` } })).status).toBe(200);
  });
});

describe("METRICS_TOKEN without METRICS_PORT", () => {
  const TOKEN = "another-metrics-token-9876";
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService({ METRICS_TOKEN: TOKEN });
  }, SLOW);
  afterAll(async () => {
    await svc.stop();
  }, SLOW);

  test("the public port serves /metrics behind the token", async () => {
    expect(svc.app.listeners.metricsPort).toBeNull();
    expect((await fetch(`${svc.http}/metrics`)).status).toBe(401);
    const m = await scrape(svc.http, { authorization: `Bearer ${TOKEN}` });
    expect(at(m, "kaireon_process_resident_memory_bytes")).toBeGreaterThan(0);
  });
});

describe("settings", () => {
  test("defaults keep /metrics on the public port, without a token", () => {
    const c = loadConfig({});
    expect(c.metricsPort).toBeNull();
    expect(c.metricsTokenHash).toBeNull();
    expect(c.buildCommit).toBeUndefined();
  });

  test("malformed values are refused with the setting's name", () => {
    expect(() => loadConfig({ METRICS_PORT: "metrics" })).toThrow("METRICS_PORT must be an integer");
    expect(() => loadConfig({ METRICS_PORT: "70000" })).toThrow(ConfigError);
    expect(() => loadConfig({ PORT: "3000", METRICS_PORT: "3000" })).toThrow("METRICS_PORT must differ from PORT and GRPC_PORT");
    expect(() => loadConfig({ METRICS_PORT: "50051" })).toThrow("METRICS_PORT must differ");
    expect(() => loadConfig({ METRICS_TOKEN: "short" })).toThrow("METRICS_TOKEN");
    expect(() => loadConfig({ METRICS_TOKEN: "has a space in it, 16+" })).toThrow("METRICS_TOKEN");
    expect(() => loadConfig({ BUILD_COMMIT: "main" })).toThrow("BUILD_COMMIT");
    expect(loadConfig({ METRICS_PORT: "9464", METRICS_TOKEN: "0123456789abcdef", BUILD_COMMIT: "ABCDEF1" })).toMatchObject({
      metricsPort: 9464,
      buildCommit: "abcdef1",
    });
  });
});

describe("RpcMetrics", () => {
  test("statuses of one class share a series; names of unnamed REST routes are their pattern, never a path", () => {
    const m = new Metrics();
    m.rpcs.nameRestRoutes([{ method: "POST", path: "/api/v1/recommend", name: RECOMMEND }]);
    m.rpcs.record("rest", "/api/v1/recommend", "POST", 200, 0.001);
    m.rpcs.record("rest", "/api/v1/recommend", "POST", 201, 0.002);
    m.rpcs.record("rest", "/api/v1/offers/:offerId", "GET", 404, 0.001);
    m.rpcs.record("grpc", `/${RECOMMEND}`, "", "OK", 0.001);
    expect(m.rpcs.count({ transport: "rest", method: RECOMMEND, status: "2xx" })).toBe(2);
    expect(m.rpcs.count({ transport: "rest", method: "GET /api/v1/offers/:offerId", status: "4xx" })).toBe(1);
    expect(m.rpcs.count({ transport: "grpc", method: RECOMMEND, status: "OK" })).toBe(1);
    expect(m.rpcs.count({ transport: "grpc", method: RECOMMEND, status: "INTERNAL" })).toBe(0);
  });
});
