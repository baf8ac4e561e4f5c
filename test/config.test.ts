// Configuration: defaults, refusals of bad values, and the demo seed switch.

import { describe, expect, test } from "bun:test";
import { startApp } from "../src/app.ts";
import { ConfigError, loadConfig } from "../src/config.ts";
import { createLogger } from "../src/log.ts";
import { createTestDatabase, testEnv } from "./harness.ts";

describe("loadConfig", () => {
  test("has the documented defaults", () => {
    const c = loadConfig({});
    expect(c.port).toBe(3000);
    expect(c.grpcPort).toBe(50051);
    expect(c.maxBodyBytes).toBe(256 * 1024);
    expect(c.dataDir).toBe("./.data");
    expect(c.databaseUrl).toBeUndefined();
    expect(c.seedDemo).toBe(true);
    expect(c.pepperIsDevelopment).toBe(true);
    expect(c.apiKeyCacheTtlMs).toBeLessThanOrEqual(15_000);
    expect(c.redisKeyPrefix).toBe("kaireon");
    expect([c.rateLimitEnabled, c.rateLimitWindowMs, c.rateLimitRedisTimeoutMs, c.rateLimitFailClosed]).toEqual([true, 60_000, 50, false]);
    // Production keeps the plans' limits and quotas unless an operator overrides them.
    expect([c.rateLimitOverridePerMinute, c.monthlyDecisionQuotaOverride]).toEqual([null, null]);
  });

  test("refuses to start in production without a pepper, and refuses malformed values", () => {
    expect(() => loadConfig({ NODE_ENV: "production" })).toThrow(ConfigError);
    expect(() => loadConfig({ NODE_ENV: "production", API_KEY_PEPPER: "a-long-enough-pepper" })).not.toThrow();
    expect(() => loadConfig({ PORT: "http" })).toThrow("PORT must be an integer");
    expect(() => loadConfig({ SEED_DEMO: "maybe" })).toThrow("SEED_DEMO must be true or false");
    expect(() => loadConfig({ DEMO_API_KEY: "short" })).toThrow("DEMO_API_KEY");
    expect(() => loadConfig({ API_KEY_CACHE_TTL_MS: "60000" })).toThrow("API_KEY_CACHE_TTL_MS");
    expect(() => loadConfig({ REDIS_KEY_PREFIX: "a{b}" })).toThrow("REDIS_KEY_PREFIX");
    expect(() => loadConfig({ RATE_LIMIT_OVERRIDE_PER_MINUTE: "0" })).toThrow("RATE_LIMIT_OVERRIDE_PER_MINUTE");
    expect(loadConfig({ REDIS_CLUSTER_NODES: "10.0.0.1:7000, redis-b:7001,[::1]:7002" }).redisClusterNodes).toEqual([
      { host: "10.0.0.1", port: 7000 },
      { host: "redis-b", port: 7001 },
      { host: "::1", port: 7002 },
    ]);
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: "redis-a" })).toThrow('REDIS_CLUSTER_NODES must be comma-separated host:port, got "redis-a"');
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: "a:1", REDIS_URL: "redis://a" })).toThrow("not both");
    expect(() => loadConfig({ DATABASE_READ_URL: "postgres://replica/db" })).toThrow("DATABASE_READ_URL needs DATABASE_URL");
    expect(() => loadConfig({ DATABASE_DIRECT_URL: "postgres://db/db" })).toThrow("DATABASE_DIRECT_URL needs DATABASE_URL");
    expect(() => loadConfig({ MIGRATE: "sometimes" })).toThrow("MIGRATE");
    expect(() => loadConfig({ RATE_LIMIT_FALLBACK_INSTANCES: "0" })).toThrow("RATE_LIMIT_FALLBACK_INSTANCES");
    expect(() => loadConfig({ INTERACTION_RETENTION_MONTHS: "0" })).toThrow("INTERACTION_RETENTION_MONTHS");
  });
});

describe("SEED_DEMO", () => {
  test("false leaves a new database without tenants", async () => {
    const db = await createTestDatabase();
    try {
      const app = await startApp(loadConfig(testEnv({ DATABASE_URL: db.url, SEED_DEMO: "false" })), createLogger("error"));
      expect(app.demoApiKey).toBeNull();
      await app.stop();
      const tenants = await db.sql`select id from tenants`;
      expect(tenants.length).toBe(0);
    } finally {
      await db.drop();
    }
  });
});
