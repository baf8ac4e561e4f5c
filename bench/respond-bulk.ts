// Bulk respond throughput: interactions acknowledged durable per second through POST /api/v1/respond/bulk
// (1,000 per call, CONCURRENCY calls in flight), beside single Responds measured the same way in the same
// run. Every acknowledged interaction is counted in the database at the end, so a number here is of
// committed rows, each with its interaction.recorded.v1 event in the outbox.
//
//   bun bench/respond-bulk.ts                 # SECONDS=10 CONCURRENCY=4
//   DATABASE_URL=… REDIS_URL=… SECONDS=20 bun bench/respond-bulk.ts

import postgres from "postgres";
import { startApp } from "../src/app.ts";
import { loadConfig } from "../src/config.ts";
import { randomBase62 } from "../src/ids.ts";
import { createLogger } from "../src/log.ts";

const SERVER = process.env.DATABASE_URL || "postgres://postgres@127.0.0.1:5432/postgres";
const REDIS_URL = process.env.REDIS_URL || "redis://127.0.0.1:6379";
const SECONDS = Number(process.env.SECONDS ?? 10);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 4);
const ITEMS = 1_000;
const KEY = "krn_BenchBulkRespondKey00000000000000000001";

const name = `kaireon_bulk_${randomBase62(6).toLowerCase()}`;
const at = (db: string) => Object.assign(new URL(SERVER), { pathname: `/${db}` }).toString();
const admin = postgres(at("postgres"), { max: 1, onnotice: () => {} });
await admin.unsafe(`create database ${name}`);
const app = await startApp(
  loadConfig({
    NODE_ENV: "production",
    HOST: "127.0.0.1",
    PORT: "0",
    GRPC_PORT: "0",
    DATABASE_URL: at(name),
    REDIS_URL,
    REDIS_KEY_PREFIX: `kaireon_bulk_${randomBase62(6)}`,
    API_KEY_PEPPER: "bench-pepper-0123456789abcdef",
    DEMO_API_KEY: KEY,
    RATE_LIMIT_OVERRIDE_PER_MINUTE: "100000000",
    MONTHLY_DECISION_QUOTA_OVERRIDE: "1000000000",
  }),
  createLogger("warn"),
);
const base = `http://127.0.0.1:${app.listeners.port}`;
const headers = { "x-tenant-id": "demo", "x-api-key": KEY, "content-type": "application/json" };
const sql = postgres(at(name), { max: 2, onnotice: () => {} });

const item = (n: number) => ({
  customerId: `cust_${String(10001 + (n % 5000)).padStart(5, "0")}`,
  offerId: "act_platinum_cc",
  channelId: "ch_email",
  outcomeType: n % 10 === 0 ? "click" : "impression",
  creativeId: "treat_platinum_email",
  idempotencyKey: `bench-${n}`,
});

async function run(label: string, concurrency: number, call: (n: number) => Promise<number>): Promise<number> {
  let n = 0;
  let acknowledged = 0;
  const until = performance.now() + SECONDS * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < until) {
        const got = await call(n++);
        acknowledged += got;
      }
    }),
  );
  const perSecond = acknowledged / ((performance.now() - started) / 1000);
  console.log(`${label.padEnd(34)} ${acknowledged.toString().padStart(8)} interactions  ${perSecond.toFixed(0).padStart(7)}/s`);
  return perSecond;
}

try {
  let offset = 0;
  const bulk = await run(`bulk (${ITEMS} per call, ${CONCURRENCY} in flight)`, CONCURRENCY, async () => {
    const from = offset;
    offset += ITEMS;
    const res = await fetch(`${base}/api/v1/respond/bulk`, {
      method: "POST",
      headers,
      body: JSON.stringify({ items: Array.from({ length: ITEMS }, (_, i) => item(from + i)) }),
    });
    const body = (await res.json()) as { succeeded?: number };
    if (res.status !== 200) console.error(`bulk answered ${res.status}: ${JSON.stringify(body).slice(0, 200)}`);
    return res.status === 200 ? (body.succeeded ?? 0) : 0;
  });
  const single = await run("single Respond (32 in flight)", 32, async () => {
    const n = offset++;
    const { idempotencyKey, ...body } = item(n);
    const res = await fetch(`${base}/api/v1/respond`, {
      method: "POST",
      headers: { ...headers, "idempotency-key": idempotencyKey },
      body: JSON.stringify(body),
    });
    await res.arrayBuffer();
    return res.status === 200 ? 1 : 0;
  });
  const rows = await sql`select count(*)::int as n from interactions`;
  const events = await sql`select count(*)::int as n from outbox_events where type = 'interaction.recorded.v1'`;
  console.log(`rows ${rows[0]?.n}, interaction events ${events[0]?.n}; bulk/single ${(bulk / single).toFixed(1)}×`);
} finally {
  await app.stop();
  await sql.end();
  await admin.unsafe(`drop database ${name} with (force)`);
  await admin.end();
}
