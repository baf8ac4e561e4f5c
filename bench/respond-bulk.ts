// Bulk respond throughput: interactions acknowledged durable per second through POST /api/v1/respond/bulk
// (1,000 per call, CONCURRENCY calls in flight), beside single Responds measured the same way in the same
// run. Every acknowledged interaction is counted in the database at the end, so a number here is of
// committed rows, each with its interaction.recorded.v1 event in the outbox.
//
//   bun bench/respond-bulk.ts                 # SECONDS=10 CONCURRENCY=4
//   DATABASE_URL=… REDIS_URL=… SECONDS=20 bun bench/respond-bulk.ts
//   ONLY=bulk bun --cpu-prof bench/respond-bulk.ts   # the bulk phase alone (for a profile)

import { cpus } from "node:os";
import { startBenchService } from "./in-process.ts";

const SECONDS = Number(process.env.SECONDS ?? 10);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 4);
const ONLY = process.env.ONLY ?? "";
const ITEMS = 1_000;
const KEY = "krn_BenchBulkRespondKey00000000000000000001";

const svc = await startBenchService("bulk", KEY);
const { base, headers, sql } = svc;

const item = (n: number) => ({
  customerId: `cust_${String(10001 + (n % 5000)).padStart(5, "0")}`,
  offerId: "act_platinum_cc",
  channelId: "ch_email",
  outcomeType: n % 10 === 0 ? "click" : "impression",
  creativeId: "treat_platinum_email",
  idempotencyKey: `bench-${n}`,
});

/** Busy and total jiffies of the whole machine, from /proc/stat (Linux). */
async function machineTicks(): Promise<{ busy: number; total: number }> {
  try {
    const cpuLine = (await Bun.file("/proc/stat").text()).split("\n", 1)[0] ?? "";
    const [, ...fields] = cpuLine.trim().split(/\s+/);
    const ticks = fields.map(Number);
    const total = ticks.reduce((a, b) => a + b, 0);
    return { busy: total - (ticks[3] ?? 0) - (ticks[4] ?? 0), total };
  } catch {
    return { busy: Number.NaN, total: Number.NaN };
  }
}

async function run(label: string, concurrency: number, call: (n: number) => Promise<number>): Promise<number> {
  let n = 0;
  let acknowledged = 0;
  const until = performance.now() + SECONDS * 1000;
  const started = performance.now();
  const cpu0 = process.cpuUsage();
  const ticks0 = await machineTicks();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < until) {
        const got = await call(n++);
        acknowledged += got;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const ticks1 = await machineTicks();
  const perSecond = acknowledged / seconds;
  // This process holds the service and the load; the machine's busy share includes PostgreSQL and Redis.
  const processCores = (cpu.user + cpu.system) / 1e6 / seconds;
  const machineBusy = (ticks1.busy - ticks0.busy) / (ticks1.total - ticks0.total);
  const usPerItem = ((cpu.user + cpu.system) / Math.max(1, acknowledged)).toFixed(1);
  const machineUsPerItem = ((machineBusy * cpus().length * seconds * 1e6) / Math.max(1, acknowledged)).toFixed(1);
  console.log(
    `${label.padEnd(34)} ${acknowledged.toString().padStart(8)} interactions  ${perSecond.toFixed(0).padStart(7)}/s` +
      `  process ${processCores.toFixed(2)} cores (${usPerItem} µs/interaction), machine ${(machineBusy * 100).toFixed(0)}% busy (${machineUsPerItem} µs/interaction)`,
  );
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
  const single =
    ONLY === "bulk"
      ? Number.NaN
      : await run("single Respond (32 in flight)", 32, async () => {
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
  const ratio = Number.isNaN(single) ? "" : `; bulk/single ${(bulk / single).toFixed(1)}×`;
  console.log(`rows ${rows[0]?.n}, interaction events ${events[0]?.n}${ratio}`);
} finally {
  await svc.stop();
}
