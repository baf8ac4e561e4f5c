// examples/, run as their READMEs say against a live service: curl, Python over native gRPC, the
// TypeScript client over gRPC and Connect, and the browser page over Connect in headless Chromium. Then
// the client package as another project gets it: packed, installed into an empty project, called from
// Node.js and type-checked there.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { BUN, ROOT, startTestService, type TestService, waitFor } from "./harness.ts";

const EXAMPLES = path.join(ROOT, "examples");
// Debian's python3-grpcio and python3-grpc-tools live under the system interpreter only.
const PYTHON = "/usr/bin/python3";
// Child processes pay their runtime's start-up, slow on a loaded two-core machine; the Python setup
// also fetches googleapis-common-protos, and the package install runs npm.
const SLOW = 60_000;

let svc: TestService;
let tmp: string;
let env: Record<string, string>;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(cmd: string[], cwd: string, extra: Record<string, string> = {}): Promise<Run> {
  const proc = Bun.spawn(cmd, { cwd, env: { ...process.env, ...env, ...extra }, stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

/** Runs and insists on exit 0, showing what it printed otherwise. */
async function ok(cmd: string[], cwd: string, extra: Record<string, string> = {}): Promise<string> {
  const res = await run(cmd, cwd, extra);
  if (res.code !== 0) throw new Error(`${cmd.join(" ")} exited ${res.code}:\n${res.stdout}\n${res.stderr}`);
  return res.stdout;
}

/** The interactions recorded for the demo customer since `since`, by outcome. */
async function outcomesSince(since: Date): Promise<Record<string, number>> {
  const rows = await svc.db.sql`select outcome_type, count(*)::int as n from interactions
    where tenant_id = 'demo' and customer_id = 'cust_12345' and recorded_at >= ${since} group by outcome_type`;
  return Object.fromEntries(rows.map((r) => [r.outcome_type, r.n]));
}

beforeAll(async () => {
  svc = await startTestService();
  tmp = await mkdtemp(path.join(tmpdir(), "kaireon-examples-"));
  env = {
    KAIREON_URL: svc.http,
    KAIREON_GRPC: svc.grpc.replace("http://", ""),
    KAIREON_GRPC_URL: svc.grpc,
    KAIREON_TENANT: "demo",
    KAIREON_API_KEY: svc.key,
  };
  // The examples import the client package as other projects do, through its built output.
  await ok(["npm", "run", "--silent", "build"], path.join(ROOT, "packages/client"));
}, SLOW);
afterAll(async () => {
  await svc?.stop();
  await rm(tmp, { recursive: true, force: true });
}, 30_000);

describe("examples/curl", () => {
  test("decides, records a response once under retry, reads the trace and shows a refusal", async () => {
    const since = new Date();
    const out = await ok(["bash", "decide.sh"], path.join(EXAMPLES, "curl"));
    expect(out).toMatch(/^\d+ offers from df_credit_cards:\n {2}1\. act_\w+ score /m);
    const [, first, again] = out.match(/recorded click as (int_\w+); retried: (int_\w+)/) ?? [];
    expect(first).toBeDefined();
    expect(again).toBe(first as string);
    expect(out).toMatch(/trace trace_\w+: enrich → compute → filter → score → rank in [\d.]+ ms/);
    expect(out).toContain('"field":"customerId"');
    expect(out).toContain("HTTP 400");
    expect(await outcomesSince(since)).toEqual({ click: 1 });
  }, SLOW);
});

describe("examples/python", () => {
  test("generate.sh writes the modules; decide.py decides, responds and decodes the error detail", async () => {
    const generated = path.join(tmp, "python");
    await ok(["bash", "generate.sh", generated], path.join(EXAMPLES, "python"), { PYTHON });
    expect(await readdir(path.join(generated, "kaireon/v1"))).toContain("recommend_pb2_grpc.py");
    const since = new Date();
    const out = await ok([PYTHON, "decide.py"], path.join(EXAMPLES, "python"), { PYTHONPATH: generated });
    expect(out).toMatch(/^\d+ offers for cust_12345 from df_credit_cards\n {2}1\. act_\w+ \(.+\) score [\d.]+ creative \w+/);
    expect(out).toMatch(/recorded click on act_\w+ as int_\w+/);
    expect(out).toContain("refused: INVALID_ARGUMENT customerId is required");
    expect(out).toMatch(/code VALIDATION_ERROR, request req_\w{16}\n {2}customerId: customerId is required/);
    expect(await outcomesSince(since)).toEqual({ click: 1 });
  }, SLOW);
});

describe("examples/typescript", () => {
  for (const protocol of ["grpc", "connect"]) {
    test(`decide.ts over ${protocol}`, async () => {
      const since = new Date();
      const out = await ok([BUN, "decide.ts", protocol], path.join(EXAMPLES, "typescript"));
      expect(out).toContain(`offers for cust_12345 from df_credit_cards over ${protocol}`);
      expect(out).toMatch(/recorded click on act_\w+ as int_\w+/);
      expect(out).toMatch(/refused: InvalidArgument customerId is required\n {2}code VALIDATION_ERROR, request req_\w{16}/);
      expect(await outcomesSince(since)).toEqual({ click: 1 });
    }, SLOW);
  }

  test("the browser page decides over Connect through its server and records what it showed", async () => {
    const server = Bun.spawn([BUN, "serve.ts"], {
      cwd: path.join(EXAMPLES, "typescript/browser"),
      env: { ...process.env, ...env, PORT: "0" },
      stdout: "pipe",
      stderr: "pipe",
    });
    let printed = "";
    void (async () => {
      for await (const chunk of server.stdout as ReadableStream<Uint8Array>) printed += new TextDecoder().decode(chunk);
    })();
    try {
      const page = await waitFor(async () => {
        if (server.exitCode !== null) throw new Error(`serve.ts exited ${server.exitCode}: ${await new Response(server.stderr).text()}`);
        return printed.match(/page on (http:\/\/[\d.]+:\d+)/)?.[1];
      }, SLOW);
      const since = new Date();
      const chrome = await run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", `--user-data-dir=${path.join(tmp, "chromium")}`, "--virtual-time-budget=20000", "--dump-dom", page],
        tmp,
      );
      if (chrome.code !== 0 || !chrome.stdout.includes("<html")) throw new Error(`chromium exited ${chrome.code}:\n${chrome.stderr.slice(-3000)}`);
      const dom = chrome.stdout;
      expect(dom).toMatch(/<p id="status" data-state="done">\d+ offers from df_credit_cards, impressions recorded<\/p>/);
      const items = [...dom.matchAll(/<li data-offer-id="(\w+)" data-impression="(int_\w+)">/g)];
      expect(items.length).toBeGreaterThan(0);
      expect(await outcomesSince(since)).toEqual({ impression: items.length });
      // The page's server passes on only the two calls the page makes.
      const other = await fetch(`${page}/kaireon.v1.OfferService/ListOffers`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: "{}",
      });
      expect(other.status).toBe(404);
    } finally {
      server.kill();
      await server.exited;
    }
  }, SLOW);
});

describe("the client package", () => {
  test("packed and installed into another project, it decides from Node.js and type-checks", async () => {
    const project = path.join(tmp, "consumer");
    const packed = await ok(["npm", "pack", "--silent", "--pack-destination", tmp], path.join(ROOT, "packages/client"));
    const tarball = path.join(tmp, packed.trim().split("\n").pop() as string);
    await ok(["mkdir", "-p", project], tmp);
    await writeFile(path.join(project, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }));
    const connectNode = (await Bun.file(path.join(ROOT, "node_modules/@connectrpc/connect-node/package.json")).json()).version;
    await ok(
      ["npm", "install", "--no-audit", "--no-fund", "--prefer-offline", tarball, `@connectrpc/connect-node@${connectNode}`],
      project,
    );
    await writeFile(
      path.join(project, "decide.mjs"),
      `import { createGrpcTransport } from "@connectrpc/connect-node";
import { createKaireonClient } from "@kaireon/client";
const kaireon = createKaireonClient({ transport: createGrpcTransport({ baseUrl: process.env.KAIREON_GRPC_URL }), tenantId: "demo", apiKey: process.env.KAIREON_API_KEY });
const answer = await kaireon.recommend.recommend({ customerId: "cust_12345", channelId: "ch_email" });
console.log(JSON.stringify(answer.recommendations.map((r) => r.offerId)));
`,
    );
    const out = await ok(["/usr/bin/node", "decide.mjs"], project);
    const offers = JSON.parse(out) as string[];
    expect(offers.length).toBeGreaterThan(0);
    expect(offers.every((id) => id.startsWith("act_"))).toBe(true);

    // Its types reach the other project: a wrong field is a type error there, a right one is not.
    await writeFile(
      path.join(project, "typed.ts"),
      `import { createKaireonClient, type ErrorDetail } from "@kaireon/client";
import type { Transport } from "@connectrpc/connect";
declare const transport: Transport;
const kaireon = createKaireonClient({ transport, tenantId: "demo", apiKey: "k" });
export const answer = kaireon.recommend.recommend({ customerId: "c", channelId: "ch", maxOffers: 3 });
export const offers: Promise<string[]> = answer.then((a) => a.recommendations.map((r) => r.offerId));
export const code = (d: ErrorDetail): string => d.code;
// @ts-expect-error maxOffers is a number
export const wrong = kaireon.recommend.recommend({ maxOffers: "three" });
`,
    );
    const tsc = path.join(ROOT, "node_modules/.bin/tsc");
    await ok([tsc, "--noEmit", "--strict", "--module", "nodenext", "--moduleResolution", "nodenext", "--skipLibCheck", "typed.ts"], project);
  }, 180_000);
});
