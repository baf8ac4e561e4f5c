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
import { runShellBlocks, shellBlocks, shellFailure } from "./shell-docs.ts";

/** Blocks that are not examples to run against a service: installing and starting it, and the checks CI runs. */
const NOT_EXAMPLES = ["npm ci && npm start", "npm ci && npm test", "npm run gen "];

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

describe("the README", () => {
  test("every shell example runs as written against a fresh service, in order", async () => {
    const blocks = shellBlocks(await readFile(path.join(ROOT, "README.md"), "utf8"));
    const skipped = blocks.filter((b) => NOT_EXAMPLES.some((n) => b.text.startsWith(n)));
    // Only the install, start and CI blocks are left out, each of them once.
    expect(skipped.map((b) => NOT_EXAMPLES.findIndex((n) => b.text.startsWith(n))).sort()).toEqual([0, 1, 2]);
    const examples = blocks.filter((b) => !skipped.includes(b));
    expect(examples.length).toBeGreaterThan(8);
    expect(traceId).toMatch(/^trace_/);
    const run = await runShellBlocks(examples, {
      cwd: work,
      env: { DATA_DIR: path.join(work, ".data"), KEY: DEMO_KEY, OPERATOR_API_KEY: OPERATOR_KEY, TRACE_ID: traceId },
      rewrite: (text) => text.replaceAll("localhost:3000", `localhost:${svc.port}`).replaceAll("127.0.0.1:50051", `127.0.0.1:${svc.grpcPort}`),
    });
    if (run.code !== 0) throw shellFailure("README", run);
    // Every block ran.
    expect(run.started).toBe(examples.length);
  }, 300_000);
});
