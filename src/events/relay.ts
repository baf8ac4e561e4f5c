// The event relay: reads the outbox (store/outbox.ts) and delivers each event at least once to every
// destination that wants it: each active webhook of its tenant, and the configured event stream (Redis or
// NATS JetStream). One instance at a time relays, the one holding the "event-relay" lease; another takes
// over within the lease's length when it stops. Each destination has its own cursor in event_cursors,
// saved after what it covers was delivered, so a restart resends at most one batch. Events reach a
// destination in outbox order, so each customer's in the order they were committed; a webhook that fails
// holds its own queue (not the others') while it is retried with exponential backoff and jitter, and
// after its last attempt (or at once on a refusal that no retry can change, a 4xx) the event goes to the
// webhook's dead-letter list and the queue moves on.

import type { Config } from "../config.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import type { Db } from "../store/db.ts";
import {
  type OutboxPosition,
  pruneEvents,
  readCursor,
  readEvents,
  type StoredEvent,
  saveCursor,
  currentPosition,
} from "../store/outbox.ts";
import { pruneRecommendations } from "../store/decisions.ts";
import { releaseLease, takeLease } from "../store/partitions.ts";
import { activeWebhooks, insertDeadLetter, type WebhookRecord, webhookSink } from "../store/webhooks.ts";
import { backoffMs, deliver } from "./delivery.ts";

/** Whether position `a` is past position `b`. */
function after(a: OutboxPosition, b: OutboxPosition): boolean {
  const ax = BigInt(a.xid);
  const bx = BigInt(b.xid);
  return ax > bx || (ax === bx && BigInt(a.seq) > BigInt(b.seq));
}

/** Where the configured stream publishes: one call per event, resolved once the stream has it. */
export interface StreamPublisher {
  kind: "redis" | "nats";
  publish(event: StoredEvent): Promise<void>;
  close(): Promise<void>;
}

const LEASE = "event-relay";
const LEASE_SECONDS = 15;
const BATCH = 200;
/** How often the relay re-reads which webhooks exist. */
const WEBHOOK_REFRESH_MS = 2_000;

/** Retry state of one destination's head event, kept in memory (a new relay starts its count again). */
interface Backoff {
  eventId: string;
  attempts: number;
  nextAt: number;
}

export interface RelayOptions {
  db: Db;
  config: Config;
  log: Logger;
  metrics: Metrics;
  holder: string;
  stream: StreamPublisher | null;
  random?: () => number;
}

export class EventRelay {
  private stopped = false;
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  private leased = false;
  private webhooks: WebhookRecord[] = [];
  private webhooksReadAt = 0;
  private readonly backoff = new Map<string, Backoff>();
  private readonly busy = new Set<string>();
  private prunedAt = 0;
  private recommendationsPrunedAt = 0;

  constructor(private readonly opts: RelayOptions) {}

  start(): void {
    this.loop ??= this.run();
  }

  /** Whether this instance holds the relay lease now. */
  get active(): boolean {
    return this.leased;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.loop;
    while (this.busy.size > 0) await Bun.sleep(10);
    if (this.leased) await releaseLease(this.opts.db, LEASE, this.opts.holder).catch(() => {});
    await this.opts.stream?.close().catch(() => {});
  }

  private async run(): Promise<void> {
    const { config, log } = this.opts;
    let leaseCheckedAt = 0;
    while (!this.stopped) {
      let moreWaiting = false;
      try {
        if (Date.now() - leaseCheckedAt > (LEASE_SECONDS * 1000) / 3) {
          const had = this.leased;
          this.leased = await takeLease(this.opts.db, LEASE, this.opts.holder, LEASE_SECONDS);
          leaseCheckedAt = Date.now();
          if (this.leased !== had) log.info(this.leased ? "event relay started on this instance" : "event relay moved to another instance");
        }
        if (this.leased) moreWaiting = await this.round();
      } catch (err) {
        log.warn("event relay round failed; retrying", { err });
      }
      if (!moreWaiting) await this.sleep(config.eventRelayPollMs);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  /** One pass over every destination; true when one of them has more waiting right now. */
  private async round(): Promise<boolean> {
    const { db } = this.opts;
    if (Date.now() - this.webhooksReadAt > WEBHOOK_REFRESH_MS) {
      this.webhooks = await activeWebhooks(db);
      this.webhooksReadAt = Date.now();
    }
    await this.prune();
    // Every transaction older than this had finished before the reads below: a destination whose read comes
    // back short, and all of it delivered, moves its cursor up to here, past other tenants' and types' events
    // (so that it does not hold back the pruning of the outbox).
    const horizon = await currentPosition(db);
    const passes: Promise<boolean>[] = [];
    if (this.opts.stream) passes.push(this.pump(horizon, `stream:${this.opts.stream.kind}`, undefined, (e) => this.toStream(e)));
    for (const w of this.webhooks) {
      passes.push(
        this.pump(horizon, webhookSink(w.tenantId, w.id), { tenantId: w.tenantId, types: w.events }, (e) => this.toWebhook(w, e)),
      );
    }
    // A destination that is slow to answer must not hold up the others: the round waits for the passes
    // at most one poll interval; a pass still running is left to finish (and is skipped until it has).
    let more = false;
    const all = Promise.all(
      passes.map((p) =>
        p.then(
          (m) => (more ||= m),
          (err: unknown) => this.opts.log.warn("event relay pass failed; retrying", { err }),
        ),
      ),
    );
    await Promise.race([all, Bun.sleep(this.opts.config.eventRelayPollMs)]);
    return more;
  }

  /**
   * Delivers a destination's next batch in order, saving its cursor as it goes. `send` returns false when
   * the destination must wait (backing off): the pass stops there. True when a full batch went through.
   */
  private async pump(
    horizon: OutboxPosition,
    sink: string,
    filter: { tenantId: string; types: string[] } | undefined,
    send: (e: StoredEvent) => Promise<boolean>,
  ): Promise<boolean> {
    // A slow destination keeps its own pass; the next round does not start a second one beside it.
    if (this.busy.has(sink)) return false;
    this.busy.add(sink);
    try {
      const { db } = this.opts;
      let at: OutboxPosition | null = await readCursor(db, sink);
      if (!at) {
        // A stream configured now starts from now.
        at = await currentPosition(db);
        await saveCursor(db, sink, at);
      }
      const events = await readEvents(db, at, BATCH, filter);
      let sent = 0;
      for (const e of events) {
        if (this.stopped || !(await send(e))) break;
        sent++;
      }
      const last = events[sent - 1];
      let to: OutboxPosition | null = last ? { xid: last.xid, seq: last.seq } : null;
      if (sent === events.length && events.length < BATCH && after(horizon, to ?? at)) to = horizon;
      if (to) await saveCursor(db, sink, to);
      return sent === BATCH;
    } finally {
      this.busy.delete(sink);
    }
  }

  private async toStream(e: StoredEvent): Promise<boolean> {
    const stream = this.opts.stream as StreamPublisher;
    const sink = `stream:${stream.kind}`;
    if (!this.due(sink, e)) return false;
    try {
      await stream.publish(e);
      this.backoff.delete(sink);
      this.opts.metrics.eventsDelivered.inc({ destination: stream.kind });
      return true;
    } catch (err) {
      // A stream is never given up on: it keeps the queue until it takes the event.
      const b = this.failed(sink, e);
      this.opts.metrics.eventDeliveryFailures.inc({ destination: stream.kind });
      if (b.attempts === 1 || b.attempts % 10 === 0) {
        this.opts.log.warn("event stream publish failed; retrying", { err, destination: stream.kind, attempts: b.attempts });
      }
      return false;
    }
  }

  private async toWebhook(w: WebhookRecord, e: StoredEvent): Promise<boolean> {
    const { config, metrics, log } = this.opts;
    const sink = webhookSink(w.tenantId, w.id);
    if (!this.due(sink, e)) return false;
    const result = await deliver(w, e, { timeoutMs: config.webhookTimeoutMs, allowPrivate: config.webhookAllowPrivateTargets });
    if (result.ok) {
      this.backoff.delete(sink);
      metrics.eventsDelivered.inc({ destination: "webhook" });
      return true;
    }
    metrics.eventDeliveryFailures.inc({ destination: "webhook" });
    const b = this.failed(sink, e);
    if (result.retry && b.attempts < config.webhookMaxAttempts) return false;
    await insertDeadLetter(this.opts.db, w.tenantId, w.id, {
      eventId: e.id,
      eventType: e.type,
      body: e.body,
      attempts: b.attempts,
      lastError: result.error,
    });
    this.backoff.delete(sink);
    metrics.eventsDeadLettered.inc();
    log.warn("webhook did not accept an event; it is on the dead-letter list", {
      tenantId: w.tenantId,
      webhookId: w.id,
      eventId: e.id,
      attempts: b.attempts,
      error: result.error,
    });
    return true;
  }

  /** Whether a destination may try `e` now (it is not waiting out a backoff for it). */
  private due(sink: string, e: StoredEvent): boolean {
    const b = this.backoff.get(sink);
    return !b || b.eventId !== e.id || Date.now() >= b.nextAt;
  }

  private failed(sink: string, e: StoredEvent): Backoff {
    const { config } = this.opts;
    const prior = this.backoff.get(sink);
    const attempts = prior?.eventId === e.id ? prior.attempts + 1 : 1;
    const b = {
      eventId: e.id,
      attempts,
      nextAt: Date.now() + backoffMs(attempts, config.webhookRetryBaseMs, config.webhookRetryMaxMs, this.opts.random),
    };
    this.backoff.set(sink, b);
    return b;
  }

  /**
   * Drops events every destination has passed (or that no destination will read), events past their
   * retention however far behind a destination is, and recommendations past theirs.
   */
  private async prune(): Promise<void> {
    const { db, config, log } = this.opts;
    if (Date.now() - this.prunedAt < config.eventPruneIntervalMs) return;
    this.prunedAt = Date.now();
    const events = await pruneEvents(db, new Date(Date.now() - config.eventRetentionHours * 3_600_000));
    if (events.expired > 0) {
      log.warn("events expired from the outbox before every destination had them", {
        events: events.expired,
        hours: config.eventRetentionHours,
      });
    }
    if (Date.now() - this.recommendationsPrunedAt < 3_600_000) return;
    this.recommendationsPrunedAt = Date.now();
    const recommendations = await pruneRecommendations(db, new Date(Date.now() - config.recommendationRetentionDays * 86_400_000));
    if (recommendations > 0) log.info("recommendation retention", { recommendations });
  }
}
