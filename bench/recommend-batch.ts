// Batch decisions against single REST Recommends, side by side in one run: the service runs as its own
// process pinned to one core (SERVICE_CPU), this script drives it from the other (LOAD_CPU), and each
// phase reports decisions per second and decisions per second of the service's own CPU time (utime +
// stime from /proc, counted until the phase's decisions are recorded), which is the per-core rate the
// comparison is about.
//
//   bun bench/recommend-batch.ts                        # SECONDS=15, 5,000 lines per batch call
//   SECONDS=30 LINES=10000 bun bench/recommend-batch.ts
//   ROUNDS=3 SECONDS=8 bun bench/recommend-batch.ts     # more alternations, shorter phases
//   ONLY=batch CPU_PROF=/tmp/prof bun bench/recommend-batch.ts   # one kind of call; the service profiled

import { readFileSync } from "node:fs";
import postgres from "postgres";
import { randomBase62 } from "../src/ids.ts";
import { REDIS_URL, SERVER } from "./in-process.ts";

const SECONDS = Number(process.env.SECONDS ?? 15);
const LINES = Number(process.env.LINES ?? 5_000);
const SINGLE_IN_FLIGHT = Number(process.env.SINGLE_IN_FLIGHT ?? 50);
const BATCH_IN_FLIGHT = Number(process.env.BATCH_IN_FLIGHT ?? 2);
const SERVICE_CPU = process.env.SERVICE_CPU ?? "0";
const LOAD_CPU = process.env.LOAD_CPU ?? "1";
const ROUNDS = Number(process.env.ROUNDS ?? 2);
const ONLY = process.env.ONLY ?? "";
const CPU_PROF = process.env.CPU_PROF ?? "";
const KEY = "krn_BenchBatchRecommendKey000000000000000001";
const PORT = 39_000 + Math.floor(Math.random() * 500);

// This process on the load core, the service on its own.
Bun.spawnSync(["taskset", "-pc", LOAD_CPU, String(process.pid)]);
const name = `kaireon_batch_${randomBase62(6).toLowerCase()}`;
const at = (db: string) => Object.assign(new URL(SERVER), { pathname: `/${db}` }).toString();
const admin = postgres(at("postgres"), { max: 1, onnotice: () => {} });
await admin.unsafe(`create database ${name}`);
const sql = postgres(at(name), { max: 1, onnotice: () => {} });
const service = Bun.spawn(
  ["taskset", "-c", SERVICE_CPU, process.execPath, ...(CPU_PROF ? ["--cpu-prof", `--cpu-prof-dir=${CPU_PROF}`] : []), "src/main.ts"],
  {
    env: {
      PATH: process.env.PATH ?? "",
      NODE_ENV: "production",
      HOST: "127.0.0.1",
      PORT: String(PORT),
      GRPC_PORT: String(PORT + 1),
      DATABASE_URL: at(name),
      REDIS_URL,
      REDIS_KEY_PREFIX: `kaireon_batch_${randomBase62(6)}`,
      API_KEY_PEPPER: "bench-pepper-0123456789abcdef",
      DEMO_API_KEY: KEY,
      RATE_LIMIT_OVERRIDE_PER_MINUTE: "100000000",
      MONTHLY_DECISION_QUOTA_OVERRIDE: "1000000000",
      LOG_LEVEL: "warn",
      ...(process.env.CAP_HOLD_SECONDS ? { CAP_HOLD_SECONDS: process.env.CAP_HOLD_SECONDS } : {}),
    },
    stdout: "inherit",
    stderr: "inherit",
  },
);
const base = `http://127.0.0.1:${PORT}`;
const headers = { "x-tenant-id": "demo", "x-api-key": KEY, "content-type": "application/json" };

/** The service's CPU seconds so far (its main process: Bun runs it in one). */
function serviceCpu(): number {
  // The taskset wrapper execs bun, so the spawned pid is the service's.
  const fields = readFileSync(`/proc/${service.pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

// A customer per call, as a nightly send has: the demo's few hundred customers decided over and over
// would each pile up the slots their answers hold for CAP_HOLD_SECONDS, which is not the load measured here.
const request = (n: number) => ({
  customerId: `bench_${n}`,
  channelId: "ch_email",
  placement: "hero_offer",
  maxOffers: 3,
});

async function phase(label: string, inFlight: number, call: () => Promise<number>): Promise<{ rate: number; perCpu: number }> {
  const cpu0 = serviceCpu();
  const started = performance.now();
  const until = started + SECONDS * 1000;
  let decisions = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (performance.now() < until) {
        // Not `decisions += await call()`: that reads the sum before the await and loses the others' counts.
        const got = await call();
        decisions += got;
      }
    }),
  );
  const wall = (performance.now() - started) / 1000;
  // A phase's cost includes recording its decisions, which goes on after the answers: wait until the
  // decisions table stops growing, so no phase pays for the one before.
  let last = -1;
  for (;;) {
    const [row] = await sql`select count(*)::int as n from decisions`;
    if (row?.n === last) break;
    last = row?.n ?? 0;
    await Bun.sleep(500);
  }
  const cpu = serviceCpu() - cpu0;
  const out = { rate: decisions / wall, perCpu: decisions / cpu };
  console.log(
    `${label.padEnd(40)} ${String(decisions).padStart(8)} decisions  ${out.rate.toFixed(0).padStart(6)}/s  service CPU ${((cpu / wall) * 100).toFixed(0).padStart(3)}%  ${out.perCpu.toFixed(0).padStart(6)} per CPU-second`,
  );
  return out;
}

try {
  for (let i = 0; ; i++) {
    // curl, not fetch: this process's connections are for the measured calls only.
    const ok = Bun.spawnSync(["curl", "-sf", "-o", "/dev/null", `${base}/readyz`]).exitCode === 0;
    if (ok) {
      console.log(`service at ${base}`);
      break;
    }
    if (i > 600) throw new Error("the service did not become ready");
    await Bun.sleep(100);
  }
  let n = 0;
  let failures = 0;
  const single = async () => {
    const res = await fetch(`${base}/api/v1/recommend`, { method: "POST", headers, body: JSON.stringify(request(n++)) });
    const text = await res.text();
    if (res.status !== 200 && failures++ < 3) console.error(`single answered ${res.status}: ${text.slice(0, 200)}`);
    return res.status === 200 ? 1 : 0;
  };
  const batch = async () => {
    const from = n;
    n += LINES;
    const body = Array.from({ length: LINES }, (_, i) => JSON.stringify(request(from + i))).join("\n");
    const res = await fetch(`${base}/api/v1/recommend/batch`, {
      method: "POST",
      headers: { ...headers, "content-type": "application/x-ndjson" },
      body,
    });
    const text = await res.text();
    if (res.status !== 200) throw new Error(`batch answered ${res.status}: ${text.slice(0, 200)}`);
    let answered = 0;
    for (const line of text.split("\n")) if (line.startsWith('{"customerId"')) answered++;
    return answered;
  };
  // Warm both paths, then measure them one after the other, twice, alternating.
  await phase("warm-up", 8, single);
  await phase("warm-up", 1, batch);
  const results: { single: number[]; batch: number[] } = { single: [], batch: [] };
  for (let round = 0; round < ROUNDS; round++) {
    if (ONLY !== "batch")
      results.single.push((await phase(`single REST (${SINGLE_IN_FLIGHT} in flight)`, SINGLE_IN_FLIGHT, single)).perCpu);
    if (ONLY !== "single")
      results.batch.push((await phase(`batch NDJSON (${LINES} lines, ${BATCH_IN_FLIGHT} in flight)`, BATCH_IN_FLIGHT, batch)).perCpu);
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  if (!ONLY) console.log(`batch / single, decisions per service CPU-second: ${(mean(results.batch) / mean(results.single)).toFixed(2)}×`);
} finally {
  service.kill("SIGTERM");
  await service.exited;
  await sql.end();
  await admin.unsafe(`drop database ${name} with (force)`);
  await admin.end();
}
