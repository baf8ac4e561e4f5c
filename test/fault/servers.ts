// Servers of a test's own, to kill under load: a PostgreSQL (initdb into a fresh directory as the
// `postgres` user, on a free port; killed with `-m immediate`, as a crash would, and started again on the
// same port) and a Redis.

import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { connect, createServer } from "node:net";
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
  /** The directory the server's data and socket live in. */
  dir: string;
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
    dir,
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

export interface PrivateRedisCluster {
  /** host:port of every master, as REDIS_CLUSTER_NODES takes them. */
  nodes: string[];
  ports: number[];
  stop(): Promise<void>;
}

/** Starts `masters` Redis servers in cluster mode, no replicas, and joins them into one cluster. */
export async function startRedisCluster(masters = 3): Promise<PrivateRedisCluster> {
  const dir = mkdtempSync(join(tmpdir(), "kaireon-redis-cluster-"));
  const ports: number[] = [];
  const procs: ReturnType<typeof Bun.spawn>[] = [];
  const stop = async () => {
    for (const p of procs) p.kill("SIGKILL");
    await Promise.all(procs.map((p) => p.exited));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < masters; i++) {
      const port = await freePort();
      ports.push(port);
      procs.push(
        Bun.spawn(
          [
            "redis-server",
            "--port",
            String(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            join(dir, `nodes-${port}.conf`),
            "--dir",
            dir,
          ],
          { stdout: "ignore", stderr: "ignore" },
        ),
      );
    }
    const cli = async (port: number, ...args: string[]) => {
      const p = Bun.spawn(["redis-cli", "-p", String(port), ...args], { stdout: "pipe", stderr: "pipe" });
      const [out, err] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
      return out + err;
    };
    const deadline = Date.now() + 20_000;
    for (const port of ports) {
      while ((await cli(port, "ping")).trim() !== "PONG") {
        if (Date.now() > deadline) throw new Error(`redis-server on ${port} did not start`);
        await Bun.sleep(50);
      }
    }
    const nodes = ports.map((p) => `127.0.0.1:${p}`);
    const created = await cli(ports[0] as number, "--cluster", "create", ...nodes, "--cluster-replicas", "0", "--cluster-yes");
    if (!created.includes("[OK] All 16384 slots covered")) throw new Error(`redis-cli --cluster create failed:\n${created}`);
    for (const port of ports) {
      while (!(await cli(port, "cluster", "info")).includes("cluster_state:ok")) {
        if (Date.now() > deadline) throw new Error(`the cluster did not come up on ${port}`);
        await Bun.sleep(100);
      }
    }
    return { nodes, ports, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

export interface PrivatePgBouncer {
  port: number;
  /** The pooler's URL for `database`, as DATABASE_URL takes it. */
  url(database: string): string;
  stop(): Promise<void>;
}

/**
 * Starts PgBouncer in transaction mode in front of the PostgreSQL at 127.0.0.1:`upstreamPort`, every
 * database passed through, trust authentication, run as the `postgres` user (it refuses root).
 */
export async function startPgBouncer(upstreamPort: number, poolSize = 10): Promise<PrivatePgBouncer> {
  const dir = mkdtempSync(join(tmpdir(), "kaireon-pgbouncer-"));
  chmodSync(dir, 0o777);
  const port = await freePort();
  const ini = join(dir, "pgbouncer.ini");
  await Bun.write(join(dir, "users.txt"), '"postgres" ""\n');
  await Bun.write(
    ini,
    [
      "[databases]",
      `* = host=127.0.0.1 port=${upstreamPort}`,
      "[pgbouncer]",
      "listen_addr = 127.0.0.1",
      `listen_port = ${port}`,
      `unix_socket_dir = ${dir}`,
      "auth_type = trust",
      `auth_file = ${join(dir, "users.txt")}`,
      "pool_mode = transaction",
      `default_pool_size = ${poolSize}`,
      "max_client_conn = 1000",
      "ignore_startup_parameters = extra_float_digits,options,application_name",
      `logfile = ${join(dir, "pgbouncer.log")}`,
      `pidfile = ${join(dir, "pgbouncer.pid")}`,
      "",
    ].join("\n"),
  );
  const argv = ["/usr/sbin/pgbouncer", ini];
  const proc = Bun.spawn(process.getuid?.() === 0 ? ["runuser", "-u", "postgres", "--", ...argv] : argv, {
    stdout: "pipe",
    stderr: "pipe",
  });
  const stop = async () => {
    proc.kill("SIGTERM");
    await proc.exited;
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 15_000;
  for (;;) {
    const ready = await new Promise<boolean>((resolve) => {
      const socket = connect(port, "127.0.0.1");
      socket.once("connect", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
    });
    if (ready) break;
    if (proc.exitCode !== null || Date.now() > deadline) {
      const log = await Bun.file(join(dir, "pgbouncer.log"))
        .text()
        .catch(() => "");
      await stop();
      throw new Error(`pgbouncer did not start (exit ${proc.exitCode}):\n${log}`);
    }
    await Bun.sleep(50);
  }
  return { port, url: (database) => `postgres://postgres@127.0.0.1:${port}/${database}`, stop };
}

/**
 * A streaming replica of `primary`: pg_basebackup -R into a fresh directory (which writes the standby
 * settings), started on a free port as a hot standby.
 */
export async function startReplica(primary: PrivatePostgres): Promise<PrivatePostgres> {
  const dir = mkdtempSync(join(tmpdir(), "kaireon-replica-"));
  chmodSync(dir, 0o777);
  if (process.getuid?.() === 0) await Bun.spawn(["chown", "postgres", dir]).exited;
  const dataDir = join(dir, "data");
  const backup = await runAsPostgres([pgBin("pg_basebackup"), "-h", "127.0.0.1", "-p", String(primary.port), "-U", "postgres", "-D", dataDir, "-R", "-X", "stream"]);
  if (backup.code !== 0) throw new Error(`pg_basebackup failed:\n${backup.output}`);
  const port = await freePort();
  const options = [`-p ${port}`, "-c listen_addresses=127.0.0.1", `-c unix_socket_directories=${dir}`, "-c hot_standby=on", "-c fsync=off"].join(" ");
  const log = join(dir, "server.log");
  const ctl = (...args: string[]) => runAsPostgres([pgBin("pg_ctl"), "-D", dataDir, ...args]);
  const replica: PrivatePostgres = {
    port,
    dir,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    async start() {
      const r = await ctl("-l", log, "-o", options, "-w", "-t", "60", "start");
      if (r.code !== 0) throw new Error(`replica start failed:\n${r.output}`);
    },
    async kill() {
      await ctl("-m", "immediate", "-w", "-t", "60", "stop");
    },
    async destroy() {
      await ctl("-m", "immediate", "-w", "-t", "60", "stop");
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await replica.start();
  return replica;
}

