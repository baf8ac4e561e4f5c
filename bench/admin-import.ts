// Admin import benchmark: a catalog document of OFFERS offers (each with a creative) imported over REST,
// then imported again unchanged; and a streamed NDJSON import of PROFILES customer profiles, with the
// service's resident memory sampled from /proc while it runs. Prints one line per measurement.
//
//   bun bench/admin-import.ts
//   OFFERS=10000 PROFILES=1000000 bun bench/admin-import.ts
//
// Environment (defaults): DATABASE_URL (postgres://postgres@127.0.0.1:5432/postgres; the run works in
// its own database kaireon_bench_admin, dropped after), REDIS_URL (redis://127.0.0.1:6379), OFFERS
// (10000), PROFILES (500000), MEMORY_MIB (unset: JSC's own sizing; e.g. 192 to run as in a small
// container).

import { readFileSync } from "node:fs";
import postgres from "postgres";

const ROOT = new URL("..", import.meta.url).pathname;
const SERVER_URL = process.env.DATABASE_URL || "postgres://postgres@127.0.0.1:5432/postgres";
const REDIS_URL = process.env.REDIS_URL || "redis://127.0.0.1:6379";
const OFFERS = Number(process.env.OFFERS ?? 10_000);
const PROFILES = Number(process.env.PROFILES ?? 500_000);
const DB_NAME = "kaireon_bench_admin";
const KEY = `krn_Bench${"0".repeat(27)}Admin1`;

const withDatabase = (name: string) => {
  const u = new URL(SERVER_URL);
  u.pathname = `/${name}`;
  return u.toString();
};
const admin = postgres(withDatabase("postgres"), { onnotice: () => {}, max: 1 });
await admin.unsafe(`drop database if exists ${DB_NAME} with (force)`);
await admin.unsafe(`create database ${DB_NAME}`);

const env: Record<string, string> = {
  PATH: process.env.PATH ?? "",
  HOME: process.env.HOME ?? "/tmp",
  NODE_ENV: "production",
  API_KEY_PEPPER: "bench-pepper-0123456789abcdef",
  DEMO_API_KEY: KEY,
  DATABASE_URL: withDatabase(DB_NAME),
  REDIS_URL,
  REDIS_KEY_PREFIX: `bench_admin_${Date.now()}`,
  RATE_LIMIT_ENABLED: "false",
  PORT: "0",
  GRPC_PORT: "0",
  HOST: "127.0.0.1",
  LOG_LEVEL: "info",
};
if (process.env.MEMORY_MIB) env.BUN_JSC_forceRAMSize = String(Number(process.env.MEMORY_MIB) * 1024 * 1024);
const proc = Bun.spawn([process.execPath, "src/main.ts"], { cwd: ROOT, env, stdout: "pipe", stderr: "inherit" });
// The service's log is read until it says where it listens, then drained, so its writes never block or fail.
const decoder = new TextDecoder();
const reader = (proc.stdout as ReadableStream<Uint8Array>).getReader();
let out = "";
let port = 0;
while (!port) {
  const { done, value } = await reader.read();
  if (done) throw new Error(`service exited before listening:\n${out}`);
  out += decoder.decode(value);
  const line = out.split("\n").find((l) => l.includes('"msg":"listening"'));
  if (line) port = JSON.parse(line).port;
}
void (async () => {
  while (!(await reader.read()).done) {}
})();
const base = `http://127.0.0.1:${port}`;
const headers = { "x-tenant-id": "demo", "x-api-key": KEY, "content-type": "application/json" };
const rssMiB = () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${proc.pid}/status`, "utf8"))?.[1] ?? 0) / 1024;

try {
  const doc = {
    categories: [
      {
        categoryId: "bulk",
        name: "Bulk",
        fields: { base_rate: 10 },
        computed: { rate: "round(base_rate - coalesce(customer.loyalty_score, 0) / 50, 2)" },
      },
    ],
    offers: Array.from({ length: OFFERS }, (_, i) => ({
      offerId: `bulk_${i}`,
      categoryId: "bulk",
      name: `Bulk offer ${i}`,
      priority: i % 100,
      businessValue: 100 + (i % 500),
      fields: { base_rate: 5 + (i % 20) },
    })),
    creatives: Array.from({ length: OFFERS }, (_, i) => ({
      creativeId: `bulk_${i}_web`,
      offerId: `bulk_${i}`,
      channelId: "ch_web",
      name: `web ${i}`,
      content: { headline: "{{offer.name}}", body: "{{rate}}% for you" },
    })),
  };
  const body = JSON.stringify(doc);
  for (const label of ["new", "unchanged"]) {
    const t = performance.now();
    const res = await fetch(`${base}/api/v1/catalog/import`, { method: "POST", headers, body });
    const ms = performance.now() - t;
    if (res.status !== 200) throw new Error(`catalog import: ${res.status} ${await res.text()}`);
    console.log(
      `catalog import (${label}): ${OFFERS} offers + ${OFFERS} creatives, ${(body.length / 1e6).toFixed(1)} MB, ${(ms / 1000).toFixed(2)} s, ` +
        `${Math.round((2 * OFFERS) / (ms / 1000))} resources/s`,
    );
  }
  const check = await fetch(`${base}/api/v1/recommend`, {
    method: "POST",
    headers,
    body: JSON.stringify({ customerId: "c1", channelId: "ch_web" }),
  });
  const answer = (await check.json()) as { recommendations: { offerId: string }[] };
  console.log(
    `recommend after import: ${check.status}, ${answer.recommendations.length} offers, first ${answer.recommendations[0]?.offerId}`,
  );

  const samples: number[] = [];
  const encoder = new TextEncoder();
  let n = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (n >= PROFILES) return controller.close();
      let text = "";
      for (let k = 0; k < 1000 && n < PROFILES; k++) {
        n++;
        text += `${JSON.stringify({ customerId: `p_${n}`, attributes: { loyalty_score: n % 100, tier: n % 7 === 0 ? "gold" : "standard" }, segments: ["card_member"] })}\n`;
      }
      if (n % 20_000 === 0) samples.push(rssMiB());
      controller.enqueue(encoder.encode(text));
    },
  });
  const before = rssMiB();
  const t = performance.now();
  const res = await fetch(`${base}/api/v1/customers/import`, {
    method: "POST",
    headers: { ...headers, "content-type": "application/x-ndjson" },
    body: stream,
  });
  const report = (await res.json()) as { succeeded: number; failed: number };
  const s = (performance.now() - t) / 1000;
  console.log(
    `customer import: ${PROFILES} lines in ${s.toFixed(1)} s (${Math.round(PROFILES / s)} lines/s), ${report.succeeded} ok, ${report.failed} failed; ` +
      `service RSS ${before.toFixed(0)} MiB before, ${Math.min(...samples).toFixed(0)}-${Math.max(...samples).toFixed(0)} MiB during`,
  );
} finally {
  proc.kill("SIGTERM");
  await proc.exited;
  await admin.unsafe(`drop database if exists ${DB_NAME} with (force)`);
  await admin.end({ timeout: 5 });
}
