// What the service stores per decision and per response, measured: runs CALLS traced Recommends and as
// many Responds (one per customer, over CUSTOMERS customers) against a fresh database and a Redis key
// prefix of its own, then reads PostgreSQL's sizes of the tables that grow (interactions, decision
// traces, idempotency keys, the learned counters) and Redis's memory per key of what the calls left.
//
//   bun bench/storage.ts                  # CALLS=4000 CUSTOMERS=1000
//   DATABASE_URL=… REDIS_URL=… CALLS=20000 bun bench/storage.ts

import Redis from "ioredis";
import { REDIS_URL, startBenchService } from "./in-process.ts";

const CALLS = Number(process.env.CALLS ?? 4000);
const CUSTOMERS = Number(process.env.CUSTOMERS ?? 1000);
const CONCURRENCY = 16;
const KEY = "krn_BenchStorageKey000000000000000000000001";

const svc = await startBenchService("storage", KEY, {
  // The outbox is measured as it fills: no relay prunes what no destination wants.
  EVENT_RELAY: "false",
});
const { app, base, headers, sql, redisPrefix: prefix } = svc;
const redis = new Redis(REDIS_URL);

try {
  let next = 0;
  const worker = async () => {
    while (next < CALLS) {
      const i = next++;
      const customerId = `cust_${String(10001 + (i % CUSTOMERS)).padStart(5, "0")}`;
      const rec = await fetch(`${base}/api/v1/recommend`, {
        method: "POST",
        headers,
        body: JSON.stringify({ customerId, channelId: "ch_email", maxOffers: 3, trace: true }),
      });
      const answer = (await rec.json()) as { traceId: string; recommendations: { offerId: string; creativeId: string }[] };
      const top = answer.recommendations[0];
      if (!rec.ok || !top) throw new Error(`recommend failed: ${rec.status}`);
      const res = await fetch(`${base}/api/v1/respond`, {
        method: "POST",
        headers: { ...headers, "idempotency-key": `storage-${i}` },
        body: JSON.stringify({
          customerId,
          offerId: top.offerId,
          channelId: "ch_email",
          creativeId: top.creativeId,
          outcomeType: "click",
          traceId: answer.traceId,
        }),
      });
      if (!res.ok) throw new Error(`respond failed: ${res.status} ${await res.text()}`);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  await Promise.all([app.deps.traces.flush(), app.deps.decisions.flush()]);

  const size = async (table: string) => {
    const [row] = await sql.unsafe(
      `select count(*)::bigint as n,
              coalesce((select sum(pg_total_relation_size(inhrelid)) from pg_inherits where inhparent = '${table}'::regclass), 0)
                + pg_total_relation_size('${table}') as bytes
         from ${table}`,
    );
    return { n: Number(row?.n), bytes: Number(row?.bytes) };
  };
  await sql`vacuum analyze`;
  const baseline = { interactions: 2000 * 2 }; // the demo's experiment history: 2,000 impressions and their conversions, roughly
  const rows: string[] = [];
  for (const table of ["interactions", "decision_traces", "decisions", "outbox_events", "idempotency_keys", "offer_channel_stats"]) {
    const { n, bytes } = await size(table);
    rows.push(`| ${table} | ${n.toLocaleString("en")} | ${(bytes / 1024 / 1024).toFixed(1)} MiB | ${n ? Math.round(bytes / n) : "-"} |`);
  }
  const keys = await redis.keys(`${prefix}:*`);
  let redisBytes = 0;
  for (const k of keys) redisBytes += Number(await redis.memory("USAGE", k));
  console.log(
    `${CALLS} traced Recommends and ${CALLS} Responds over ${CUSTOMERS} customers (demo tenant; ~${baseline.interactions} seeded interactions)\n`,
  );
  console.log("| table | rows | size with indexes | bytes per row |\n|---|---:|---:|---:|");
  console.log(rows.join("\n"));
  console.log(`\nRedis: ${keys.length} keys under the tenant, ${redisBytes.toLocaleString("en")} bytes (MEMORY USAGE)`);
  for (const k of keys) console.log(`  ${k.slice(prefix.length + 1)}: ${await redis.memory("USAGE", k)} bytes`);
} finally {
  await svc.stop();
  await redis.del(...((await redis.keys(`${prefix}:*`)) as [string]).concat(`${prefix}:none`));
  redis.disconnect();
}
