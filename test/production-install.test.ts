// A production install: the package as it would be deployed (package.json, the lock file, src/ and gen/)
// installed with `npm ci --omit=dev` in a directory of its own, started with `npm start` on its embedded
// database, and asked for a decision. No development dependency may be needed to run the service, and
// none may be installed.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cp, mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { DEMO_KEY, ROOT, spawnService, TUTORIAL_RECOMMEND, waitFor } from "./harness.ts";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "kaireon-prod-"));
  // What the Dockerfile copies: the manifests (the client package's too, a workspace npm must find), the
  // sources and the generated code.
  for (const entry of ["package.json", "package-lock.json", "packages/client/package.json", "tsconfig.json", "src", "gen"]) {
    await mkdir(path.dirname(path.join(dir, entry)), { recursive: true });
    await cp(path.join(ROOT, entry), path.join(dir, entry), { recursive: true });
  }
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function run(cmd: string[], env: Record<string, string> = {}) {
  const proc = Bun.spawn(cmd, { cwd: dir, env: { ...process.env, ...env }, stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { stdout, stderr, code };
}

describe("the deployment files", () => {
  test("the Dockerfile runs the Bun that package.json pins; compose runs two replicas of the service", async () => {
    const pkg = (await Bun.file(path.join(ROOT, "package.json")).json()) as { dependencies: Record<string, string> };
    const bun = pkg.dependencies.bun as string;
    expect(bun).toMatch(/^\d+\.\d+\.\d+$/);
    const images = [...(await Bun.file(path.join(ROOT, "Dockerfile")).text()).matchAll(/^FROM (\S+)/gm)].map((m) => m[1]);
    expect(images).toEqual([`oven/bun:${bun}`, `oven/bun:${bun}-slim`]);
    const compose = Bun.YAML.parse(await Bun.file(path.join(ROOT, "compose.yaml")).text()) as {
      services: Record<string, { build?: string; deploy?: { replicas?: number }; depends_on?: Record<string, unknown> }>;
    };
    expect(compose.services.kaireon).toMatchObject({ build: ".", deploy: { replicas: 2 } });
    expect(Object.keys(compose.services.kaireon?.depends_on ?? {}).sort()).toEqual(["postgres", "redis"]);
  });
});

describe("a production install", () => {
  test("npm ci --omit=dev installs no development dependency, and npm start serves decisions", async () => {
    const install = await run(["npm", "ci", "--omit=dev", "--no-audit", "--no-fund"]);
    if (install.code !== 0) throw new Error(`npm ci --omit=dev failed:\n${install.stderr}`);
    const installed = new Set(await readdir(path.join(dir, "node_modules")));
    // (typescript may be there: elysia names it as an optional peer, which npm installs.)
    for (const dev of ["fast-check", "postgres", "@biomejs", "@grpc", "@seriousme", "kubernetes-models"])
      expect(installed.has(dev)).toBe(false);
    expect(installed.has("bun")).toBe(true);

    const svc = await spawnService(
      { PORT: "0", GRPC_PORT: "0", HOST: "127.0.0.1", DATA_DIR: path.join(dir, ".data"), DEMO_API_KEY: DEMO_KEY, LOG_LEVEL: "info" },
      90_000,
      { cmd: ["npm", "start"], cwd: dir },
    );
    const proc = svc.proc;
    try {
      const res = await fetch(`${svc.http}/api/v1/recommend`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-tenant-id": "demo", "x-api-key": DEMO_KEY },
        body: TUTORIAL_RECOMMEND,
      });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { recommendations: unknown[] };
      expect(body.recommendations.length).toBeGreaterThan(0);
    } finally {
      // npm start runs the service as its descendant, which SIGTERM to npm alone would leave running.
      const service = descendantsOf(proc.pid);
      for (const pid of service) process.kill(pid, "SIGTERM");
      proc.kill("SIGTERM");
      await proc.exited;
      await waitFor(async () => service.every((pid) => !alive(pid)), 30_000);
    }
  }, 300_000);
});

/** Every process descended from `root`, read from ps. */
function descendantsOf(root: number): number[] {
  const table = Bun.spawnSync(["ps", "-e", "-o", "pid=,ppid="]).stdout.toString();
  const children = new Map<number, number[]>();
  for (const line of table.trim().split("\n")) {
    const [pid, ppid] = line.trim().split(/\s+/).map(Number) as [number, number];
    children.set(ppid, [...(children.get(ppid) ?? []), pid]);
  }
  const out: number[] = [];
  const walk = (pid: number) => {
    for (const c of children.get(pid) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(root);
  return out;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
