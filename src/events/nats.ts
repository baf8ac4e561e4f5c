// Publishes the service's events to a NATS JetStream stream. A publish resolves only on the stream's
// acknowledgement (the PubAck), so a resolved publish is stored; each carries a Nats-Msg-Id, so a caller that
// retries after a timeout does not store the event twice within the stream's duplicate window.

import {
  DiscardPolicy,
  type JetStreamClient,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
  StorageType,
} from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";

export interface NatsSinkOptions {
  /** Comma-separated host:port or nats:// URLs. */
  servers: string;
  stream: string;
  /** The stream takes `${subjectPrefix}.>`, e.g. "kaireon.events". */
  subjectPrefix: string;
  /** The stream keeps at most this many messages, dropping the oldest. */
  maxMessages: number;
  /** For connecting, for each JetStream API call and for each PubAck. */
  timeoutMs: number;
}

export interface NatsSink {
  /** Resolves once JetStream acknowledged the message; rejects on timeout or error. */
  publish(subject: string, payload: Uint8Array, msgId: string): Promise<void>;
  close(): Promise<void>;
}

export function parseNatsServers(servers: string): string[] {
  return servers
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

function isApiError(err: unknown, code: number): boolean {
  return err instanceof JetStreamApiError && err.code === code;
}

/** No stream takes the subject, or JetStream is not (yet) up on the server we are connected to. */
function isNoResponders(err: unknown): boolean {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if (e.name === "JetStreamNotEnabled" || e.name === "NoResponders") return true;
  }
  return false;
}

/**
 * Creates the stream if it does not exist. One that exists keeps its storage (which cannot change) and its
 * other subjects; it gains our subjects and the retention cap if it lacks them.
 */
async function ensureStream(jsm: JetStreamManager, opts: NatsSinkOptions): Promise<void> {
  const subject = `${opts.subjectPrefix}.>`;
  for (let attempt = 0; ; attempt++) {
    let info: Awaited<ReturnType<JetStreamManager["streams"]["info"]>>;
    try {
      info = await jsm.streams.info(opts.stream);
    } catch (err) {
      if (!isApiError(err, JetStreamApiCodes.StreamNotFound)) throw err;
      try {
        await jsm.streams.add({
          name: opts.stream,
          subjects: [subject],
          max_msgs: opts.maxMessages,
          storage: StorageType.File,
          discard: DiscardPolicy.Old,
        });
        return;
      } catch (addErr) {
        // Another instance may have created it at the same moment: look again, once.
        if (attempt > 0) throw addErr;
        continue;
      }
    }
    const subjects = info.config.subjects ?? [];
    const missing = !subjects.includes(subject);
    if (missing || info.config.max_msgs !== opts.maxMessages || info.config.discard !== DiscardPolicy.Old) {
      await jsm.streams.update(opts.stream, {
        subjects: missing ? [...subjects, subject] : subjects,
        max_msgs: opts.maxMessages,
        discard: DiscardPolicy.Old,
      });
    }
    return;
  }
}

export async function openNatsSink(opts: NatsSinkOptions): Promise<NatsSink> {
  const servers = parseNatsServers(opts.servers);
  if (servers.length === 0) throw new Error("no NATS servers given");
  if (!opts.subjectPrefix || opts.subjectPrefix.endsWith(".")) throw new Error(`bad NATS subject prefix "${opts.subjectPrefix}"`);
  const nc: NatsConnection = await connect({
    servers,
    name: "kaireon",
    timeout: opts.timeoutMs,
    // Never give up: events wait in the caller's outbox while the server is away.
    maxReconnectAttempts: -1,
    reconnectTimeWait: 1_000,
    // A peer that vanished without closing the socket is noticed within about 30 s.
    pingInterval: 10_000,
    maxPingOut: 3,
  });
  let js: JetStreamClient;
  let jsm: JetStreamManager;
  try {
    jsm = await jetstreamManager(nc, { timeout: opts.timeoutMs });
    await ensureStream(jsm, opts);
    js = jetstream(nc, { timeout: opts.timeoutMs });
  } catch (err) {
    await nc.close();
    throw err;
  }
  const prefix = `${opts.subjectPrefix}.`;
  let closed = false;
  // The client drops what it buffered while disconnected when it reconnects, so a publish in an outage
  // could only time out: it fails at once instead, and the caller retries later with the same msgId.
  let connected = true;
  void (async () => {
    for await (const status of nc.status()) {
      if (status.type === "disconnect") connected = false;
      else if (status.type === "reconnect") connected = true;
    }
  })();

  const send = async (subject: string, payload: Uint8Array, msgId: string) => {
    if (!connected) throw new Error("NATS connection lost; reconnecting");
    await js.publish(subject, payload, { msgID: msgId, timeout: opts.timeoutMs });
  };

  return {
    async publish(subject, payload, msgId) {
      if (closed) throw new Error("NATS sink is closed");
      // Outside the prefix the stream would not take it; JetStream would answer "no responders".
      if (!subject.startsWith(prefix)) throw new Error(`subject ${subject} is outside ${opts.subjectPrefix}.>`);
      if (!msgId) throw new Error("publish needs a message id");
      try {
        await send(subject, payload, msgId);
      } catch (err) {
        if (!isNoResponders(err) || nc.isClosed()) throw err;
        // The stream may be gone (a server that came back with an empty store): create it and try once more.
        await ensureStream(jsm, opts);
        await send(subject, payload, msgId);
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      if (nc.isClosed()) return;
      // Drain lets acks in flight arrive; a server that is away would hold it, so it is bounded.
      let timer: ReturnType<typeof setTimeout> | undefined;
      const bounded = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, opts.timeoutMs);
      });
      await Promise.race([nc.drain().catch(() => {}), bounded]);
      clearTimeout(timer);
      if (!nc.isClosed()) await nc.close();
    },
  };
}
