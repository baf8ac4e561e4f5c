// Test harness: every test file gets its own PostgreSQL database (on the server of DATABASE_URL) and its
// own Redis key prefix, and starts the service in-process on free ports.

import postgres from "postgres";
import { type App, startApp } from "../src/app.ts";
import { loadConfig } from "../src/config.ts";
import { TUTORIAL_RECOMMEND_REQUEST, TUTORIAL_RESPOND_REQUEST } from "../src/demo.ts";
import { createLogger } from "../src/log.ts";
import { randomBase62 } from "../src/ids.ts";

export const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
export const BUN = process.execPath;
export const SERVER_URL = process.env.DATABASE_URL || "postgres://postgres@127.0.0.1:5432/postgres";
export const REDIS_URL = process.env.REDIS_URL || "redis://127.0.0.1:6379";
export const DEMO_KEY = "krn_TestDemoKey0000000000000000000000000001";
/** The operator key of every test service (OPERATOR_API_KEY). */
export const OPERATOR_KEY = "krn_TestOperatorKey00000000000000000000001";
/** The tutorial's request bodies, as sent: the same objects the API docs show as examples. */
export const TUTORIAL_RECOMMEND = JSON.stringify(TUTORIAL_RECOMMEND_REQUEST, null, 2);
export const TUTORIAL_RESPOND = JSON.stringify(TUTORIAL_RESPOND_REQUEST, null, 2);

function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

export interface TestDatabase {
  url: string;
  sql: postgres.Sql;
  drop(): Promise<void>;
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `kaireon_test_${randomBase62(10).toLowerCase()}`;
  const admin = postgres(withDatabase(SERVER_URL, "postgres"), { onnotice: () => {}, max: 1 });
  await admin.unsafe(`create database ${name}`);
  const url = withDatabase(SERVER_URL, name);
  const sql = postgres(url, { onnotice: () => {}, max: 4 });
  return {
    url,
    sql,
    async drop() {
      await sql.end({ timeout: 1 });
      await admin.unsafe(`drop database if exists ${name} with (force)`);
      await admin.end({ timeout: 1 });
    },
  };
}

export interface TestService {
  app: App;
  db: TestDatabase;
  http: string;
  grpc: string;
  key: string;
  stop(): Promise<void>;
}

/** This test process's Redis keys; instances started by one test file share them, runs never do. */
export const TEST_KEY_PREFIX = `kaireon_test_${randomBase62(10)}`;

export function testEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    NODE_ENV: "test",
    HOST: "127.0.0.1",
    PORT: "0",
    GRPC_PORT: "0",
    API_KEY_PEPPER: "test-pepper-0123456789abcdef",
    DEMO_API_KEY: DEMO_KEY,
    OPERATOR_API_KEY: OPERATOR_KEY,
    LOG_LEVEL: "error",
    REDIS_KEY_PREFIX: TEST_KEY_PREFIX,
    // Tests send bursts far beyond the plans' per-minute limits and quotas; test/rate-limits.test.ts
    // clears these to exercise the plans themselves.
    RATE_LIMIT_OVERRIDE_PER_MINUTE: "10000000",
    MONTHLY_DECISION_QUOTA_OVERRIDE: "1000000000",
    ...extra,
  };
}

export async function startTestService(extra: Record<string, string> = {}): Promise<TestService> {
  const db = await createTestDatabase();
  const config = loadConfig(testEnv({ DATABASE_URL: db.url, REDIS_URL, ...extra }));
  const app = await startApp(config, createLogger("error"));
  return {
    app,
    db,
    http: `http://127.0.0.1:${app.listeners.port}`,
    grpc: `http://127.0.0.1:${app.listeners.grpcPort}`,
    key: DEMO_KEY,
    async stop() {
      await app.stop();
      await db.drop();
    },
  };
}

export function authHeaders(key: string = DEMO_KEY, tenant = "demo"): Record<string, string> {
  return { "x-tenant-id": tenant, "x-api-key": key, "content-type": "application/json" };
}

/** Headers of an operator call: the operator key and no tenant. */
export function operatorHeaders(): Record<string, string> {
  return { "x-api-key": OPERATOR_KEY, "content-type": "application/json" };
}

export async function postJson(base: string, path: string, body: string | object, headers: Record<string, string> = authHeaders()) {
  const res = await fetch(`${base}${path}`, {
    method: "POST",
    headers,
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: unknown = null;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: res.status, headers: res.headers, json: json as Record<string, unknown> & { [k: string]: any }, text };
}

/** Creates a second tenant with one key, straight in the database. */
export async function createTenantWithKey(svc: TestService, tenantId: string, scopes = ["decide", "admin"]): Promise<string> {
  const { hashApiKey } = await import("../src/services/auth.ts");
  const key = `krn_${randomBase62(40)}`;
  await svc.db.sql`insert into tenants (id, name) values (${tenantId}, ${tenantId})`;
  await svc.db.sql`insert into api_keys (id, tenant_id, key_hash, prefix, scopes)
    values (${`key_${randomBase62(12)}`}, ${tenantId}, ${hashApiKey(key, svc.app.config.apiKeyPepper)}, ${key.slice(0, 12)}, ${scopes})`;
  return key;
}

export async function waitFor<T>(fn: () => Promise<T | undefined | null | false>, timeoutMs: number, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await Bun.sleep(intervalMs);
  }
}

export interface SpawnedService {
  proc: ReturnType<typeof Bun.spawn>;
  port: number;
  grpcPort: number;
  http: string;
  /** Everything the process printed so far. */
  output(): string;
  exited: Promise<number>;
}

/**
 * The environment of a service run as a process of its own (spawnService): the test settings, logs at
 * info level for the test to read, and the local Redis unless `extra` names another (or none, with "").
 */
export function processEnv(extra: Record<string, string> = {}): Record<string, string> {
  return testEnv({ LOG_LEVEL: "info", REDIS_URL, ...extra });
}

/** Starts `bun src/main.ts` (or `opts.cmd` in `opts.cwd`) as a separate process and waits until it listens. */
export async function spawnService(
  env: Record<string, string>,
  timeoutMs = 30_000,
  opts: { cmd?: string[]; cwd?: string } = {},
): Promise<SpawnedService> {
  const proc = Bun.spawn(opts.cmd ?? [BUN, "src/main.ts"], {
    cwd: opts.cwd ?? ROOT,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  let out = "";
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) out += decoder.decode(chunk);
  };
  void pump(proc.stdout as ReadableStream<Uint8Array>);
  void pump(proc.stderr as ReadableStream<Uint8Array>);
  const listening = await waitFor(async () => {
    if (proc.exitCode !== null) throw new Error(`service exited with ${proc.exitCode}:\n${out}`);
    const line = out.split("\n").find((l) => l.includes('"msg":"listening"'));
    return line ? (JSON.parse(line) as { port: number; grpcPort: number }) : null;
  }, timeoutMs);
  return {
    proc,
    port: listening.port,
    grpcPort: listening.grpcPort,
    http: `http://127.0.0.1:${listening.port}`,
    output: () => out,
    exited: proc.exited,
  };
}

/** Runs the operator CLI against a test service's database. */
export async function runCli(svc: TestService, ...args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  const proc = Bun.spawn([BUN, "src/cli.ts", ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "", DATABASE_URL: svc.db.url, API_KEY_PEPPER: svc.app.config.apiKeyPepper },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { stdout, stderr, code };
}

/**
 * A community tenant (100 calls a minute) with an admin key and one offer with a creative on one channel
 * `ch`, in a published default flow: made over the operator API of the service at `base`.
 */
export async function createCommunityTenant(base: string, tenantId = `shared_${randomBase62(6).toLowerCase()}`): Promise<{ tenantId: string; key: string }> {
  const call = async (path: string, body: object, headers = operatorHeaders()) => {
    const res = await postJson(base, path, body, headers);
    if (res.status !== 200) throw new Error(`${path}: ${res.status} ${res.text}`);
    return res.json;
  };
  await call("/api/v1/tenants", { tenantId, name: tenantId, plan: "community" });
  const { key } = await call(`/api/v1/tenants/${tenantId}/api-keys`, { name: "burst", scopes: ["admin"] });
  const admin = { ...operatorHeaders(), "x-tenant-id": tenantId };
  await call("/api/v1/categories", { categoryId: "cat", name: "Cards" }, admin);
  await call("/api/v1/channels", { channelId: "ch", name: "Web", type: "web" }, admin);
  await call("/api/v1/offers", { offerId: "off", categoryId: "cat", name: "Card" }, admin);
  await call("/api/v1/creatives", { creativeId: "cr", offerId: "off", channelId: "ch", name: "cr", status: "active", content: { h: "x" } }, admin);
  const flow = await call("/api/v1/decision-flows", { decisionFlowId: "df", name: "Main", isDefault: true, definition: {} }, admin);
  await call("/api/v1/decision-flows/df/publish", { version: flow.version }, admin);
  return { tenantId, key };
}

/**
 * Calls Recommend for the tenant once on each instance until every one answers 200, so that a burst
 * after it meets warm caches; answers how many of these calls passed (they count against the limit).
 */
export async function warmUp(bases: string[], tenantId: string, key: string): Promise<number> {
  let warm = 0;
  let last = "";
  await waitFor(async () => {
    for (const base of bases) {
      const res = await postJson(base, "/api/v1/recommend", { customerId: "c1", channelId: "ch" }, authHeaders(key, tenantId));
      if (res.status !== 200) {
        last = `${res.status} ${res.text}`;
        return false;
      }
      warm++;
    }
    return true;
  }, 30_000).catch((err: Error) => {
    throw new Error(`${err.message}: ${last}`);
  });
  return warm;
}

/** How many rate-limit checks the service at `base` answered without Redis so far. */
export async function fallbacks(base: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  return [...text.matchAll(/^kaireon_rate_limit_fallback_total\{[^}]*\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
}

