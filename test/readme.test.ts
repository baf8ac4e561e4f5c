// The README's examples, run as written: every `sh` block, in the order the README gives them, in one
// bash session against a service started as the Quick start starts it (embedded database, demo tenant),
// so the command line reaches it over its control socket. Only the service's address is put in for
// `localhost:3000` and `127.0.0.1:50051`; `$KEY`, `$OPERATOR_API_KEY` and `$TRACE_ID` are the values the
// README tells the reader to use. Each curl must answer 2xx and each command exit 0, or the test names
// the block and shows what it printed.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, readFile, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { DEMO_KEY, OPERATOR_KEY, postJson, processEnv, ROOT, type SpawnedService, spawnService } from "./harness.ts";

/** Blocks that are not examples to run against a service: installing and starting it, and the checks CI runs. */
const NOT_EXAMPLES = ["npm ci && npm start", "npm ci && npm test", "npm run gen "];

interface Block {
  line: number;
  text: string;
}

/** The README's `sh` blocks, with the line each starts on. */
function shellBlocks(markdown: string): Block[] {
  const blocks: Block[] = [];
  const lines = markdown.split("\n");
  for (let i = 0; i < lines.length; i++) {
    if (!/^```(sh|bash|shell)\s*$/.test(lines[i] as string)) continue;
    const start = i + 1;
    let end = start;
    while (end < lines.length && !(lines[end] as string).startsWith("```")) end++;
    blocks.push({ line: start + 1, text: lines.slice(start, end).join("\n") });
    i = end;
  }
  return blocks;
}

let svc: SpawnedService;
let work: string;
let traceId: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), "kaireon-readme-"));
  // The examples run in a directory of their own (the files they write land there), which looks like the
  // checkout to npm and npx: the same package.json, sources and installed packages.
  for (const entry of ["package.json", "node_modules", "src", "gen", "proto", "tsconfig.json"]) {
    await symlink(path.join(ROOT, entry), path.join(work, entry));
  }
  svc = await spawnService(processEnv({ DATA_DIR: path.join(work, ".data"), REDIS_URL: "" }), 90_000);
  const traced = await postJson(svc.http, "/api/v1/recommend", {
    customerId: "cust_12345",
    channelId: "ch_email",
    decisionFlowId: "df_credit_cards",
    trace: true,
  });
  traceId = traced.json.traceId;
}, 120_000);
afterAll(async () => {
  svc?.proc.kill("SIGTERM");
  await svc?.exited;
  await rm(work, { recursive: true, force: true });
}, 30_000);

/** Runs every example block in order in one bash, stopping at the first that fails. */
async function runExamples(blocks: Block[]): Promise<{ failed?: Block; output: string; code: number }> {
  // curl fails on an HTTP error and ends its answer with a newline; everything else fails on its exit code.
  const preamble = [
    "set -euo pipefail",
    'curl() { command curl --fail-with-body --show-error "$@"; local rc=$?; echo; return $rc; }',
    'block() { echo "=== README block at line $1"; }',
  ];
  const script = [...preamble];
  for (const b of blocks) {
    const text = b.text.replaceAll("localhost:3000", `localhost:${svc.port}`).replaceAll("127.0.0.1:50051", `127.0.0.1:${svc.grpcPort}`);
    script.push(`block ${b.line}`, text);
  }
  const proc = Bun.spawn(["bash", "-c", script.join("\n")], {
    cwd: work,
    env: {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "/tmp",
      DATA_DIR: path.join(work, ".data"),
      KEY: DEMO_KEY,
      OPERATOR_API_KEY: OPERATOR_KEY,
      TRACE_ID: traceId,
    },
    stdout: "pipe",
    stderr: "pipe",
  });
  // Both streams into one, in the order they came, so a failure shows next to its block.
  let output = "";
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) output += decoder.decode(chunk);
  };
  await Promise.all([pump(proc.stdout as ReadableStream<Uint8Array>), pump(proc.stderr as ReadableStream<Uint8Array>)]);
  const code = await proc.exited;
  const last = [...output.matchAll(/=== README block at line (\d+)/g)].pop();
  const failed = code === 0 ? undefined : blocks.find((b) => String(b.line) === last?.[1]);
  return { failed, output, code };
}

describe("the README", () => {
  test("every shell example runs as written against a fresh service, in order", async () => {
    const blocks = shellBlocks(await readFile(path.join(ROOT, "README.md"), "utf8"));
    const skipped = blocks.filter((b) => NOT_EXAMPLES.some((n) => b.text.startsWith(n)));
    // Only the install, start and CI blocks are left out, each of them once.
    expect(skipped.map((b) => NOT_EXAMPLES.findIndex((n) => b.text.startsWith(n))).sort()).toEqual([0, 1, 2]);
    const examples = blocks.filter((b) => !skipped.includes(b));
    expect(examples.length).toBeGreaterThan(8);
    expect(traceId).toMatch(/^trace_/);
    const run = await runExamples(examples);
    if (run.code !== 0) {
      throw new Error(
        `README block at line ${run.failed?.line ?? "?"} failed (exit ${run.code}):\n${run.failed?.text ?? ""}\n--- output:\n${run.output.slice(-4000)}`,
      );
    }
    // Every block ran, and said what the README says it says.
    expect([...run.output.matchAll(/=== README block at line/g)].length).toBe(examples.length);
  }, 300_000);
});
