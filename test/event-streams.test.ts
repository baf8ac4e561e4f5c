// Events on a stream: Redis Streams and NATS JetStream, each read through a consumer group, and an
// instance killed with SIGKILL in the middle of a Respond load: every acknowledged interaction's
// interaction.recorded.v1 reaches the stream once an instance relays again.

import { afterAll, describe, expect, test } from "bun:test";
import Redis from "ioredis";
import { randomBase62 } from "../src/ids.ts";
import { startNatsServer, readDurable } from "./fault/nats.ts";
import {
  authHeaders,
  createTestDatabase,
  postJson,
  processEnv,
  REDIS_URL,
  type SpawnedService,
  spawnService,
  startTestService,
  TEST_KEY_PREFIX,
  waitFor,
} from "./harness.ts";

const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

async function recommendAndRespond(base: string, customerId: string) {
  const rec = await postJson(base, "/api/v1/recommend", { customerId, channelId: "ch_email" });
  const first = rec.json.recommendations[0];
  const res = await postJson(base, "/api/v1/respond", {
    customerId,
    offerId: first.offerId,
    channelId: "ch_email",
    outcomeType: "click",
    recommendationId: first.recommendationId,
  });
  expect(res.status).toBe(200);
  return { recommendationId: first.recommendationId as string, interactionId: res.json.id as string };
}

/** Reads a Redis stream through a consumer group until `done` says enough, acknowledging what it read. */
async function readGroup(redis: Redis, key: string, group: string, done: (events: Record<string, string>[]) => boolean, timeoutMs: number) {
  const got: Record<string, string>[] = [];
  const deadline = Date.now() + timeoutMs;
  while (!done(got)) {
    if (Date.now() > deadline) throw new Error(`read ${got.length} events from ${key} before the deadline`);
    const reply = (await redis.xreadgroup("GROUP", group, "reader-1", "COUNT", 500, "BLOCK", 500, "STREAMS", key, ">")) as
      | [string, [string, string[]][]][]
      | null;
    for (const [, entries] of reply ?? []) {
      for (const [id, fields] of entries) {
        const entry: Record<string, string> = {};
        for (let i = 0; i < fields.length; i += 2) entry[fields[i] as string] = fields[i + 1] as string;
        got.push(entry);
        await redis.xack(key, group, id);
      }
    }
  }
  return got;
}

describe("Redis Streams", () => {
  test("both event types, read by a consumer group; SIGKILL under Respond load loses no acknowledged interaction", async () => {
    const name = `events_${randomBase62(8)}`;
    const key = `${TEST_KEY_PREFIX}${name}`;
    const redis = new Redis(REDIS_URL);
    cleanups.push(async () => {
      await redis.del(key);
      redis.disconnect();
    });
    await redis.xgroup("CREATE", key, "warehouse", "0", "MKSTREAM");
    const db = await createTestDatabase();
    cleanups.push(() => db.drop());
    const env = processEnv({ DATABASE_URL: db.url, EVENT_STREAM: "redis", EVENT_STREAM_NAME: name, EVENT_RELAY_POLL_MS: "50" });
    let svc: SpawnedService = await spawnService(env, 60_000);
    cleanups.push(async () => svc.proc.kill("SIGKILL"));
    // The stream's cursor exists once the relay ran its first round: what is committed from then on goes out.
    await waitFor(async () => (await db.sql`select 1 from event_cursors where sink = 'stream:redis'`).length > 0, 30_000);

    const first = await recommendAndRespond(svc.http, "cust_stream_1");
    const pair = await readGroup(
      redis,
      key,
      "warehouse",
      (got) => got.some((e) => e.type === "interaction.recorded.v1") && got.some((e) => e.type === "decision.made.v1"),
      30_000,
    );
    const interaction = JSON.parse(pair.find((e) => e.type === "interaction.recorded.v1")?.event as string);
    expect(interaction).toMatchObject({ type: "interaction.recorded.v1", tenantId: "demo" });
    expect(interaction.data).toMatchObject({ interactionId: first.interactionId, recommendationId: first.recommendationId });
    const decision = JSON.parse(pair.find((e) => e.type === "decision.made.v1")?.event as string);
    expect(decision.data.recommendations.map((r: { recommendationId: string }) => r.recommendationId)).toContain(first.recommendationId);

    // Respond load from 8 clients; the process is killed while calls are in flight.
    const acknowledged: string[] = [];
    let stop = false;
    const worker = async (w: number) => {
      for (let n = 0; !stop; n++) {
        try {
          const res = await fetch(`${svc.http}/api/v1/respond`, {
            method: "POST",
            headers: authHeaders(),
            body: JSON.stringify({ customerId: `cust_kill_${w}`, offerId: "act_platinum_cc", channelId: "ch_email", outcomeType: "click" }),
          });
          if (res.status === 200) acknowledged.push(((await res.json()) as { id: string }).id);
        } catch {
          return; // the process is gone
        }
      }
    };
    const load = Promise.all(Array.from({ length: 8 }, (_, w) => worker(w)));
    await waitFor(async () => acknowledged.length >= 200, 30_000, 10);
    svc.proc.kill("SIGKILL");
    await svc.exited;
    stop = true;
    await load;
    expect(acknowledged.length).toBeGreaterThanOrEqual(200);

    // A new instance takes the relay over once the dead one's lease runs out, and sends what is left.
    svc = await spawnService(env, 60_000);
    const wanted = new Set(acknowledged);
    const seen = new Set<string>();
    await readGroup(
      redis,
      key,
      "warehouse",
      (got) => {
        for (const e of got) {
          if (e.type === "interaction.recorded.v1") seen.add(JSON.parse(e.event as string).data.interactionId);
        }
        return [...wanted].every((id) => seen.has(id));
      },
      90_000,
    );
    expect([...wanted].filter((id) => !seen.has(id))).toEqual([]);
    svc.proc.kill("SIGTERM");
    await svc.exited;
  }, 240_000);
});

describe("NATS JetStream", () => {
  test("both event types, read by a durable consumer", async () => {
    const nats = await startNatsServer();
    cleanups.push(() => nats.stop());
    const stream = `KAIREON_${randomBase62(6)}`;
    const svc = await startTestService({
      EVENT_STREAM: "nats",
      NATS_URL: nats.url,
      EVENT_STREAM_NAME: stream,
      EVENT_RELAY_POLL_MS: "50",
    });
    cleanups.push(() => svc.stop());
    await waitFor(async () => (await svc.db.sql`select 1 from event_cursors where sink = 'stream:nats'`).length > 0, 30_000);
    const first = await recommendAndRespond(svc.http, "cust_nats_1");
    // The service creates the stream with its first publish.
    const events = await waitFor(() => readDurable(nats.url, stream, "warehouse", 2, 10_000).catch(() => null), 45_000, 200);
    const bySubject = Object.fromEntries(events.map((e) => [e.subject, JSON.parse(e.data)]));
    expect(Object.keys(bySubject).sort()).toEqual(["kaireon.events.decision.made.v1", "kaireon.events.interaction.recorded.v1"]);
    expect(bySubject["kaireon.events.interaction.recorded.v1"].data).toMatchObject({
      interactionId: first.interactionId,
      recommendationId: first.recommendationId,
    });
    // The message id is the event id: JetStream drops a resend after a relay restart.
    for (const e of events) expect(e.msgId).toBe(JSON.parse(e.data).id);
  }, 120_000);
});
