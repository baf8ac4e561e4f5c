// The event stream of EVENT_STREAM: every event, whatever its tenant, as one message. Redis: an entry of
// the stream `<REDIS_KEY_PREFIX><EVENT_STREAM_NAME>` (XADD with MAXLEN ~ EVENT_STREAM_MAX_LENGTH) with the
// fields id, type, tenantId, customerId and event (the JSON). NATS: a JetStream message on
// `<NATS_SUBJECT_PREFIX>.<type>` in the stream EVENT_STREAM_NAME, with Nats-Msg-Id set to the event id.
// Delivery is at least once: a consumer de-duplicates by event id (JetStream does it itself within its
// duplicate window).

import type { Cluster, Redis } from "ioredis";
import type { Config } from "../config.ts";
import type { StoredEvent } from "../store/outbox.ts";
import { type NatsSink, openNatsSink } from "./nats.ts";
import type { StreamPublisher } from "./relay.ts";

export function redisStream(redis: Redis | Cluster, config: Config): StreamPublisher {
  const key = `${config.redisKeyPrefix}${config.eventStreamName}`;
  return {
    kind: "redis",
    async publish(events: StoredEvent[]) {
      // One round trip for the batch; entries keep their order (one key, one connection).
      const pipeline = redis.pipeline();
      const max = String(config.eventStreamMaxLength);
      for (const e of events) {
        pipeline.xadd(
          key,
          "MAXLEN",
          "~",
          max,
          "*",
          "id",
          e.id,
          "type",
          e.type,
          "tenantId",
          e.tenantId,
          "customerId",
          e.customerId,
          "event",
          e.body,
        );
      }
      const results = (await pipeline.exec()) ?? [];
      const failed = results.find(([err]) => err);
      if (failed || results.length !== events.length) throw failed?.[0] ?? new Error("the Redis pipeline did not answer every XADD");
    },
    async close() {},
  };
}

/** JetStream, connected on first use: a NATS server that is down at start delays events, not the service. */
export function natsStream(config: Config): StreamPublisher {
  let sink: Promise<NatsSink> | null = null;
  const open = () => {
    sink ??= openNatsSink({
      servers: config.natsUrl,
      stream: config.eventStreamName,
      subjectPrefix: config.natsSubjectPrefix,
      maxMessages: config.eventStreamMaxLength,
      timeoutMs: 5_000,
    }).catch((err: unknown) => {
      sink = null;
      throw err;
    });
    return sink;
  };
  const encoder = new TextEncoder();
  return {
    kind: "nats",
    async publish(events: StoredEvent[]) {
      const s = await open();
      // Published back to back on one connection (so stored in this order), acknowledged together.
      await Promise.all(events.map((e) => s.publish(`${config.natsSubjectPrefix}.${e.type}`, encoder.encode(e.body), e.id)));
    },
    async close() {
      const s = sink;
      sink = null;
      if (s) await (await s.catch(() => null))?.close();
    },
  };
}
