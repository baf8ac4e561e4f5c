// The JetStream event sink against a private nats-server: acked publishes read back in order through a
// durable pull consumer, a consumer group sharing one durable, de-duplication by msgId, and reconnecting
// after the server restarts.

import { afterAll, beforeAll, expect, test } from "bun:test";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { type NatsSink, openNatsSink, parseNatsServers } from "../src/events/nats.ts";
import { type PrivateNats, readDurable, startNatsServer } from "./fault/nats.ts";

const STREAM = "KAIREON_EVENTS_TEST";
const PREFIX = "kaireon.events";
const TIMEOUT = 30_000;

let server: PrivateNats;
let sink: NatsSink;

const encoder = new TextEncoder();
const subjectOf = (i: number) => (i % 2 === 0 ? `${PREFIX}.decision.made.v1` : `${PREFIX}.interaction.recorded.v1`);
const payloadOf = (i: number) => JSON.stringify({ n: i, kind: i % 2 === 0 ? "decision" : "interaction" });

async function streamInfo() {
  const nc = await connect({ servers: server.url });
  try {
    return await (await jetstreamManager(nc)).streams.info(STREAM);
  } finally {
    await nc.close();
  }
}

const streamMessages = async () => (await streamInfo()).state.messages;

beforeAll(async () => {
  server = await startNatsServer();
  sink = await openNatsSink({ servers: server.url, stream: STREAM, subjectPrefix: PREFIX, maxMessages: 10_000, timeoutMs: 5_000 });
  for (let i = 0; i < 50; i++) await sink.publish(subjectOf(i), encoder.encode(payloadOf(i)), `evt-${i}`);
}, 60_000);

afterAll(async () => {
  await sink?.close();
  await server?.stop();
}, 60_000);

test("servers are comma-separated host:port or URLs", () => {
  expect(parseNatsServers(" 127.0.0.1:4222, nats://10.0.0.1:4222 ,,")).toEqual(["127.0.0.1:4222", "nats://10.0.0.1:4222"]);
});

test(
  "a durable pull consumer reads all 50 acked events in order, with their payloads",
  async () => {
    const events = await readDurable(server.url, STREAM, "reader-all", 50, 20_000);
    expect(events.map((e) => e.subject)).toEqual(Array.from({ length: 50 }, (_, i) => subjectOf(i)));
    expect(events.map((e) => e.data)).toEqual(Array.from({ length: 50 }, (_, i) => payloadOf(i)));
    expect(events.map((e) => e.msgId)).toEqual(Array.from({ length: 50 }, (_, i) => `evt-${i}`));
  },
  TIMEOUT,
);

test(
  "two readers of one durable share its events, each event going to one of them",
  async () => {
    const [a, b] = await Promise.all([
      readDurable(server.url, STREAM, "group", 25, 20_000),
      readDurable(server.url, STREAM, "group", 25, 20_000),
    ]);
    for (const part of [a, b]) {
      const seqs = part.map((e) => e.seq);
      expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    }
    const all = [...a, ...b].sort((x, y) => x.seq - y.seq);
    expect(all.map((e) => e.data)).toEqual(Array.from({ length: 50 }, (_, i) => payloadOf(i)));
    // The group has nothing left for a third reader.
    await expect(readDurable(server.url, STREAM, "group", 1, 2_000)).rejects.toThrow(/read 0 of 1/);
  },
  TIMEOUT,
);

test(
  "the same msgId published twice is stored once",
  async () => {
    const before = await streamMessages();
    await sink.publish(`${PREFIX}.decision.made.v1`, encoder.encode("once"), "dup-1");
    await sink.publish(`${PREFIX}.decision.made.v1`, encoder.encode("once"), "dup-1");
    expect(await streamMessages()).toBe(before + 1);
  },
  TIMEOUT,
);

test(
  "the stream is file-backed with the cap, discarding old; opening the sink again leaves it and its messages",
  async () => {
    const before = await streamInfo();
    expect(before.config).toMatchObject({ subjects: [`${PREFIX}.>`], max_msgs: 10_000, storage: "file", discard: "old" });
    const again = await openNatsSink({ servers: server.url, stream: STREAM, subjectPrefix: PREFIX, maxMessages: 10_000, timeoutMs: 5_000 });
    await again.close();
    const after = await streamInfo();
    expect(after.state.messages).toBe(before.state.messages);
    expect(after.config).toMatchObject({ subjects: [`${PREFIX}.>`], max_msgs: 10_000, storage: "file", discard: "old" });
  },
  TIMEOUT,
);

test("a subject outside the prefix is refused", async () => {
  await expect(sink.publish("other.thing", encoder.encode("x"), "x-1")).rejects.toThrow(/outside/);
});

test("after the server restarts, a publish that failed during the outage succeeds on retry, stored once", async () => {
  await server.kill();
  await expect(sink.publish(`${PREFIX}.decision.made.v1`, encoder.encode("late"), "after-restart")).rejects.toThrow();
  await server.start();
  const deadline = Date.now() + 25_000;
  let lastError: unknown;
  for (;;) {
    try {
      await sink.publish(`${PREFIX}.decision.made.v1`, encoder.encode("late"), "after-restart");
      break;
    } catch (err) {
      lastError = err;
      if (Date.now() > deadline) throw new Error(`publish did not succeed after the restart: ${String(lastError)}`);
      await Bun.sleep(250);
    }
  }
  const total = await streamMessages();
  const events = await readDurable(server.url, STREAM, "after-restart-reader", total, 20_000);
  expect(events.filter((e) => e.msgId === "after-restart").map((e) => e.data)).toEqual(["late"]);
  // The events from before the restart are still in the stream (file storage).
  expect(events.slice(0, 50).map((e) => e.data)).toEqual(Array.from({ length: 50 }, (_, i) => payloadOf(i)));
}, 90_000);
