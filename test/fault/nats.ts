// A NATS server of a test's own (Debian's nats-server with JetStream, on a free loopback port, its store in
// a fresh directory) that can be stopped and started again on the same port and store, and a consumer-side
// reader that takes events through a durable pull consumer, as a consumer group of the service's events would.

import { mkdtempSync, rmSync } from "node:fs";
import { connect as connectTcp } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type JsMsg,
  jetstream,
  jetstreamManager,
} from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { freePort } from "./servers.ts";

const NATS_SERVER = "/usr/sbin/nats-server";

export interface PrivateNats {
  /** nats://127.0.0.1:<port> */
  url: string;
  port: number;
  /** Holds the JetStream store (store/) and the server log; kept across kill/start. */
  dir: string;
  /** Starts the server again on the same port and store (after kill). */
  start(): Promise<void>;
  /** Stops the server (SIGTERM, or SIGKILL for a crash) and keeps its store. */
  kill(signal?: "SIGTERM" | "SIGKILL"): Promise<void>;
  /** kill then start. */
  restart(): Promise<void>;
  /** Stops the server and removes its store. */
  stop(): Promise<void>;
}

/** True once the port answers with a NATS INFO line that has JetStream on. */
function answersWithJetStream(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connectTcp(port, "127.0.0.1");
    let buffered = "";
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(2_000, () => done(false));
    socket.once("error", () => done(false));
    socket.on("data", (chunk) => {
      buffered += chunk.toString("utf8");
      const end = buffered.indexOf("\r\n");
      if (end >= 0) done(buffered.startsWith("INFO ") && /"jetstream"\s*:\s*true/.test(buffered.slice(0, end)));
    });
  });
}

export async function startNatsServer(): Promise<PrivateNats> {
  const dir = mkdtempSync(join(tmpdir(), "kaireon-nats-"));
  const port = await freePort();
  const log = join(dir, "server.log");
  let proc: ReturnType<typeof Bun.spawn> | null = null;
  const server: PrivateNats = {
    url: `nats://127.0.0.1:${port}`,
    port,
    dir,
    async start() {
      if (proc) return;
      // A log file beside the store, so that a failed start can be explained.
      const spawned = Bun.spawn([NATS_SERVER, "-js", "-sd", join(dir, "store"), "-a", "127.0.0.1", "-p", String(port), "-l", log], {
        stdout: "ignore",
        stderr: "ignore",
      });
      proc = spawned;
      const deadline = Date.now() + 20_000;
      while (!(await answersWithJetStream(port))) {
        if (spawned.exitCode !== null || Date.now() > deadline) {
          const text = await Bun.file(log)
            .text()
            .catch(() => "");
          spawned.kill("SIGKILL");
          await spawned.exited;
          proc = null;
          throw new Error(`nats-server on ${port} did not start (exit ${spawned.exitCode}):\n${text.slice(-4_000)}`);
        }
        await Bun.sleep(50);
      }
    },
    async kill(signal = "SIGTERM") {
      const p = proc;
      if (!p) return;
      proc = null;
      p.kill(signal);
      // A graceful shutdown that hangs must not hold the test: SIGKILL after a while.
      const timer = setTimeout(() => p.kill("SIGKILL"), 10_000);
      await p.exited;
      clearTimeout(timer);
    },
    async restart() {
      await server.kill();
      await server.start();
    },
    async stop() {
      await server.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await server.start();
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return server;
}

export interface ReadEvent {
  subject: string;
  data: string;
  /** The Nats-Msg-Id header the publisher set, if any. */
  msgId?: string;
  /** The stream sequence. */
  seq: number;
}

/**
 * Reads `count` messages through the durable pull consumer `durable` of `stream` (created with explicit
 * acks, from the start of the stream, if it does not exist), acking each. Several readers on the same
 * durable share its messages between them, each message going to one of them. Rejects if `count` have not
 * arrived within `timeoutMs`.
 */
export async function readDurable(url: string, stream: string, durable: string, count: number, timeoutMs: number): Promise<ReadEvent[]> {
  const deadline = Date.now() + timeoutMs;
  const nc = await connect({ servers: url, timeout: Math.max(1_000, timeoutMs), maxReconnectAttempts: -1, reconnectTimeWait: 250 });
  try {
    const jsm = await jetstreamManager(nc, { timeout: timeoutMs });
    try {
      await jsm.consumers.info(stream, durable);
    } catch (err) {
      if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.ConsumerNotFound)) throw err;
      await jsm.consumers.add(stream, { durable_name: durable, ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All });
    }
    const consumer = await jetstream(nc, { timeout: timeoutMs }).consumers.get(stream, durable);
    const out: ReadEvent[] = [];
    while (out.length < count) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`read ${out.length} of ${count} messages from ${stream}/${durable} in ${timeoutMs} ms`);
      // Never ask for more than is still wanted: a message handed to this reader and left unacked would
      // be held from the other readers of the group until its ack wait ran out.
      const batch = await consumer.fetch({ max_messages: count - out.length, expires: Math.max(1_000, Math.min(left, 5_000)) });
      for await (const m of batch) {
        out.push(toEvent(m));
        m.ack();
      }
    }
    await nc.flush();
    return out;
  } finally {
    await nc.close();
  }
}

function toEvent(m: JsMsg): ReadEvent {
  const msgId = m.headers?.get("Nats-Msg-Id");
  return { subject: m.subject, data: m.string(), seq: m.seq, ...(msgId ? { msgId } : {}) };
}
