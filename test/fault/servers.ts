// Servers of a test's own, to kill under load: a PostgreSQL (initdb into a fresh directory as the
// `postgres` user, on a free port; killed with `-m immediate`, as a crash would, and started again on the
// same port) and a Redis.

import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

function pgBin(name: string): string {
  const versions = Array.from(new Bun.Glob(`*/bin/${name}`).scanSync({ cwd: "/usr/lib/postgresql" })).sort();
  if (versions.length === 0) throw new Error(`no ${name} under /usr/lib/postgresql`);
  return join("/usr/lib/postgresql", versions[versions.length - 1] as string);
}

export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Runs a command as the `postgres` user when this process is root (initdb refuses root). */
async function runAsPostgres(argv: string[]): Promise<{ code: number; output: string }> {
  const cmd = process.getuid?.() === 0 ? ["runuser", "-u", "postgres", "--", ...argv] : argv;
  const proc = Bun.spawn(cmd, { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, output: out + err };
}

export interface PrivatePostgres {
  port: number;
  url: string;
  start(): Promise<void>;
  /** Stops the server the way a crash does: no shutdown checkpoint, every backend killed. */
  kill(): Promise<void>;
  /** Stops the server and removes its directory. */
  destroy(): Promise<void>;
}

export async function startPrivatePostgres(settings: Record<string, string> = {}): Promise<PrivatePostgres> {
  const dir = mkdtempSync(join(tmpdir(), "kaireon-pg-"));
  chmodSync(dir, 0o777);
  const dataDir = join(dir, "data");
  if (process.getuid?.() === 0) await Bun.spawn(["chown", "postgres", dir]).exited;
  const init = await runAsPostgres([pgBin("initdb"), "-D", dataDir, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"]);
  if (init.code !== 0) throw new Error(`initdb failed:\n${init.output}`);
  const port = await freePort();
  const options = [
    `-p ${port}`,
    "-c listen_addresses=127.0.0.1",
    `-c unix_socket_directories=${dir}`,
    "-c fsync=off",
    "-c synchronous_commit=on",
    "-c full_page_writes=off",
    ...Object.entries(settings).map(([k, v]) => `-c ${k}=${v}`),
  ].join(" ");
  const log = join(dir, "server.log");
  const ctl = (...args: string[]) => runAsPostgres([pgBin("pg_ctl"), "-D", dataDir, ...args]);
  const pg: PrivatePostgres = {
    port,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    async start() {
      const r = await ctl("-l", log, "-o", options, "-w", "-t", "60", "start");
      if (r.code !== 0)
        throw new Error(
          `pg_ctl start failed:\n${r.output}\n${await Bun.file(log)
            .text()
            .catch(() => "")}`,
        );
    },
    async kill() {
      const r = await ctl("-m", "immediate", "-w", "-t", "60", "stop");
      if (r.code !== 0) throw new Error(`pg_ctl stop failed:\n${r.output}`);
    },
    async destroy() {
      await ctl("-m", "immediate", "-w", "-t", "60", "stop");
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await pg.start();
  return pg;
}

export interface PrivateRedis {
  port: number;
  url: string;
  start(): Promise<void>;
  /** SIGKILL: no goodbye to the clients. */
  kill(): Promise<void>;
}

export async function startPrivateRedis(): Promise<PrivateRedis> {
  const port = await freePort();
  let proc: ReturnType<typeof Bun.spawn> | null = null;
  const redis: PrivateRedis = {
    port,
    url: `redis://127.0.0.1:${port}`,
    async start() {
      proc = Bun.spawn(["redis-server", "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
        stdout: "ignore",
        stderr: "ignore",
      });
      const deadline = Date.now() + 10_000;
      for (;;) {
        const ping = Bun.spawn(["redis-cli", "-p", String(port), "ping"], { stdout: "pipe", stderr: "ignore" });
        if ((await new Response(ping.stdout).text()).trim() === "PONG") return;
        if (Date.now() > deadline) throw new Error(`redis-server on ${port} did not start`);
        await Bun.sleep(50);
      }
    },
    async kill() {
      proc?.kill("SIGKILL");
      await proc?.exited;
      proc = null;
    },
  };
  await redis.start();
  return redis;
}
