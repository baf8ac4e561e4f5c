// Latency percentiles from an h2load --log-file (tab-separated: start time in µs since the epoch,
// HTTP status, µs until the end of the response; one line per finished request).
//
//   bun bench/percentiles.ts <log-file>
// prints: "<requests> <non-2xx> <p50 ms> <p90 ms> <p99 ms> <max ms>"

import { readFileSync } from "node:fs";

const file = process.argv[2];
if (!file) {
  process.stderr.write("usage: bun bench/percentiles.ts <h2load-log-file>\n");
  process.exit(2);
}

const durations: number[] = [];
let bad = 0;
for (const line of readFileSync(file, "utf8").split("\n")) {
  if (!line) continue;
  const [, status, micros] = line.split("\t");
  const s = Number(status);
  if (!(s >= 200 && s < 300)) bad++;
  const d = Number(micros);
  if (Number.isFinite(d)) durations.push(d);
}
const sorted = Float64Array.from(durations).sort();
// Nearest-rank percentile over every request (wrk's --latency reports HdrHistogram percentiles, which
// agree to within the histogram's precision).
const pct = (p: number) =>
  sorted.length === 0 ? Number.NaN : (sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number);
const ms = (us: number) => (us / 1000).toFixed(2);
process.stdout.write(`${sorted.length} ${bad} ${ms(pct(50))} ${ms(pct(90))} ${ms(pct(99))} ${ms(pct(100))}\n`);
