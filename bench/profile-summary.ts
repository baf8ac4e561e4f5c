// Summarises a .cpuprofile written by `bun --cpu-prof` (run.sh with CPU_PROF=1) by sample counts, which
// unlike the time-weighted totals of --cpu-prof-md are not inflated by idle gaps between samples.
//
//   bun bench/profile-summary.ts <file.cpuprofile> [top=25]
//
// Prints: the share of samples per area (a file of src/, a package of node_modules/, the runtime), with
// native frames charged to the nearest JavaScript caller; then the top functions by inclusive share
// (samples with the function anywhere on the stack) and by self share.

import { readFileSync } from "node:fs";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
}

const file = process.argv[2];
const top = Number(process.argv[3] ?? 25);
if (!file) {
  process.stderr.write("usage: bun bench/profile-summary.ts <file.cpuprofile> [top]\n");
  process.exit(2);
}
const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
const byId = new Map<number, ProfileNode>();
const parent = new Map<number, number>();
for (const n of profile.nodes) {
  byId.set(n.id, n);
  for (const c of n.children ?? []) parent.set(c, n.id);
}

const root = process.cwd();
function area(url: string): string | null {
  if (!url) return null;
  const path = url.replace(/^file:\/\//, "");
  const nm = path.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/);
  if (nm) return `pkg ${nm[1]}`;
  if (path.startsWith("node:") || path.startsWith("internal:") || path.startsWith("bun:")) return "runtime (node:/internal: modules)";
  return path.startsWith(`${root}/`) ? path.slice(root.length + 1) : path;
}
function fnKey(f: CallFrame): string {
  const where = f.url ? `${area(f.url)}:${f.lineNumber + 1}` : "[native]";
  return `${f.functionName || "(anonymous)"} ${where}`;
}

const total = profile.samples.length;
const areaCount = new Map<string, number>();
const selfCount = new Map<string, number>();
const inclCount = new Map<string, number>();
const bump = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);

for (const id of profile.samples) {
  const leaf = byId.get(id);
  if (!leaf) continue;
  bump(selfCount, fnKey(leaf.callFrame));
  let owner: string | null = null;
  const seen = new Set<string>();
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const n = byId.get(cur);
    if (!n || n.callFrame.functionName === "(root)") break;
    owner ??= area(n.callFrame.url);
    const k = fnKey(n.callFrame);
    if (!seen.has(k)) {
      seen.add(k);
      bump(inclCount, k);
    }
  }
  bump(areaCount, owner ?? "native, no JS caller");
}

const pct = (n: number) => `${((100 * n) / total).toFixed(1).padStart(5)}%`;
const print = (title: string, m: Map<string, number>, limit: number) => {
  process.stdout.write(`\n${title}\n`);
  for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, limit)) process.stdout.write(`  ${pct(v)}  ${k}\n`);
};
process.stdout.write(`${file}: ${total} samples\n`);
print("By area (self samples; native frames charged to their nearest JS caller):", areaCount, top);
print("Top functions, inclusive:", inclCount, top);
print("Top functions, self:", selfCount, top);
