// What operators and orchestrators probe: health, readiness (HTTP and the gRPC health protocol) and metrics.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "../gen/grpc/health/v1/health_pb.ts";
import { postJson, startTestService, type TestService, TUTORIAL_RECOMMEND } from "./harness.ts";

let svc: TestService;
beforeAll(async () => {
  svc = await startTestService();
});
afterAll(async () => {
  await svc.stop();
});

describe("health", () => {
  test("/healthz and /readyz answer, and readiness names the database and Redis", async () => {
    const health = await fetch(`${svc.http}/healthz`);
    expect(health.status).toBe(200);
    const ready = await fetch(`${svc.http}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: "ok", checks: { database: "ok", redis: "ok" }, details: { rateLimits: "shared" } });
  });

  test("the gRPC health protocol answers without an API key", async () => {
    const client = createClient(Health, createGrpcTransport({ baseUrl: svc.grpc }));
    expect((await client.check({ service: "" })).status).toBe(ServingStatus.SERVING);
    expect((await client.check({ service: "kaireon.v1.RecommendService" })).status).toBe(ServingStatus.SERVING);
    expect((await client.check({ service: "no.such.Service" })).status).toBe(ServingStatus.SERVICE_UNKNOWN);
  });
});

describe("metrics", () => {
  test("latency histograms per route and transport, errors by code, decisions and cache lookups", async () => {
    await postJson(svc.http, "/api/v1/recommend", TUTORIAL_RECOMMEND);
    await postJson(svc.http, "/api/v1/recommend", { channelId: "ch_email" });
    await fetch(`${svc.http}/kaireon.v1.RecommendService/Recommend`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    const text = await (await fetch(`${svc.http}/metrics`)).text();
    expect(text).toMatch(/kaireon_request_duration_seconds_bucket\{route="\/api\/v1\/recommend",transport="rest",le="0.005"\} \d+/);
    expect(text).toMatch(
      /kaireon_request_duration_seconds_count\{route="\/kaireon.v1.RecommendService\/Recommend",transport="connect"\} 1/,
    );
    expect(text).toContain('kaireon_errors_total{code="VALIDATION_ERROR",transport="rest"} 1');
    expect(text).toContain('kaireon_errors_total{code="UNAUTHORIZED",transport="connect"} 1');
    expect(text).toContain('kaireon_decisions_total{outcome="offers"} 1');
    expect(text).toMatch(/kaireon_cache_lookups_total\{cache="catalog",result="miss"\} \d+/);
  });
});
