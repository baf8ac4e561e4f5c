// The event relay: reads the outbox (store/outbox.ts) and delivers each event at least once to every
// destination that wants it: each active webhook of its tenant, and the configured event stream (Redis or
// NATS JetStream). One instance at a time relays, the one holding the "event-relay" lease, renewed on a
// timer of its own; another takes over within the lease's length when it stops, and a cursor only moves
// while its mover holds the lease, so an instance that lost it cannot move one back. Each destination has
// its own cursor in event_cursors, saved after what it covers was delivered, so a restart resends at most
// one batch. Events reach a destination in outbox order, so each customer's in the order they were
// committed; a webhook that fails holds its own queue (not the others') while it is retried with
// exponential backoff and jitter, and after its last attempt (or at once on a refusal that no retry can
// change) the event goes to the webhook's dead-letter list and the queue moves on.

import type { Config } from "../config.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import type { Db } from "../store/db.ts";
import { pruneDecisions } from "../store/decisions.ts";
import {
  advanceCursor,
  currentPosition,
  type OutboxPosition,
  pruneEvents,
  readCursor,
  readEvents,
  type StoredEvent,
  saveCursor,
} from "../store/outbox.ts";
import { releaseLease, takeLease } from "../store/partitions.ts";
import { activeWebhooks, getWebhook, insertDeadLetter, pruneDeadLetters, type WebhookRecord, webhookSink } from "../store/webhooks.ts";
import { backoffMs, deliver } from "./delivery.ts";

/** Where the configured stream publishes: a batch at a time, resolved once the stream has all of it. */
export interface StreamPublisher {
  kind: "redis" | "nats";
  publish(events: StoredEvent[]): Promise<void>;
  close(): Promise<void>;
}

const LEASE = "event-relay";
const LEASE_SECONDS = 15;
const BATCH = 200;
/** How often the relay re-reads which webhooks exist. */
const WEBHOOK_REFRESH_MS = 2_000;
/** Destinations delivered to at once: each pass holds a database connection now and then. */
const PARALLEL_PASSES = 4;
/** How long a stream may take to acknowledge a batch before the batch is tried again. */
const STREAM_TIMEOUT_MS = 10_000;
const DEAD_LETTER_RETENTION_DAYS = 30;

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

/** Whether position `a` is past position `b`. */
function after(a: OutboxPosition, b: OutboxPosition): boolean {
  const ax = BigInt(a.xid);
  const bx = BigInt(b.xid);
  return ax > bx || (ax === bx && BigInt(a.seq) > BigInt(b.seq));
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

export class EventRelay {
  private stopped = false;
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  private leased = false;
  private leaseTimer: ReturnType<typeof setInterval> | null = null;
  private webhooks: WebhookRecord[] = [];
  private webhooksReadAt = 0;
  private readonly backoff = new Map<string, Backoff>();
  private readonly busy = new Set<string>();
  private prunedAt = 0;
  private recordsPrunedAt = 0;

  constructor(private readonly opts: RelayOptions) {}

  start(): void {
    if (this.loop) return;
    void this.renewLease();
    this.leaseTimer = setInterval(() => void this.renewLease(), (LEASE_SECONDS * 1000) / 3);
    this.leaseTimer.unref?.();
    this.loop = this.run();
  }

  /** Whether this instance holds the relay lease now. */
  get active(): boolean {
    return this.leased;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.leaseTimer) clearInterval(this.leaseTimer);
    this.wake?.();
    await this.loop;
    while (this.busy.size > 0) await Bun.sleep(10);
    if (this.leased) await releaseLease(this.opts.db, LEASE, this.opts.holder).catch(() => {});
    if (this.opts.stream) await withTimeout(this.opts.stream.close(), 5_000, "closing the event stream").catch(() => {});
  }

  private async renewLease(): Promise<void> {
    if (this.stopped) return;
    const had = this.leased;
    try {
      this.leased = await takeLease(this.opts.db, LEASE, this.opts.holder, LEASE_SECONDS);
    } catch (err) {
      // Unsure whether it is still ours: stop delivering until a renewal says so.
      this.leased = false;
      this.opts.log.warn("event relay lease could not be renewed", { err });
    }
    if (this.leased !== had) {
      this.opts.log.info(this.leased ? "event relay started on this instance" : "event relay moved to another instance");
      this.wake?.();
    }
  }

  private async run(): Promise<void> {
    const { config, log } = this.opts;
    let failures = 0;
    while (!this.stopped) {
      let moreWaiting = false;
      try {
        if (this.leased) moreWaiting = await this.round();
        if (failures > 0) log.info("event relay working again", { failedRounds: failures });
        failures = 0;
      } catch (err) {
        failures++;
        // Said once, then every hundredth time: a database that is down would otherwise fill the log.
        if (failures === 1 || failures % 100 === 0) log.warn("event relay round failed; retrying", { err, failedRounds: failures });
      }
      // After failures, wait longer (up to 5 s) rather than hammer what just failed.
      if (!moreWaiting) await this.sleep(Math.min(5_000, config.eventRelayPollMs * 2 ** Math.min(failures, 10)));
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
    const jobs: (() => Promise<boolean>)[] = [];
    const stream = this.opts.stream;
    if (stream) jobs.push(() => this.pump(horizon, `stream:${stream.kind}`, null, (events) => this.toStream(stream, events)));
    for (const w of this.webhooks) {
      const sink = webhookSink(w.tenantId, w.id);
      jobs.push(() => this.pump(horizon, sink, w, (events) => this.toWebhook(w, events)));
    }
    // A few destinations at a time; one that is slow to answer must not hold up the others: the round waits
    // at most one poll interval, and a pass still running is left to finish (skipped until it has).
    let more = false;
    const queue = [...jobs];
    const worker = async () => {
      for (let job = queue.shift(); job && !this.stopped && this.leased; job = queue.shift()) {
        try {
          more = (await job()) || more;
        } catch (err) {
          this.opts.log.warn("event relay pass failed; retrying", { err });
        }
      }
    };
    const all = Promise.all(Array.from({ length: Math.min(PARALLEL_PASSES, jobs.length) }, worker));
    await Promise.race([all, Bun.sleep(this.opts.config.eventRelayPollMs)]);
    return more;
  }

  /**
   * Delivers a destination's next batch in order and moves its cursor past what went out. `send` returns
   * how many of the events, from the first, were delivered (fewer when the destination must wait). True
   * when a full batch went through.
   */
  private async pump(
    horizon: OutboxPosition,
    sink: string,
    webhook: WebhookRecord | null,
    send: (events: StoredEvent[]) => Promise<number>,
  ): Promise<boolean> {
    if (this.busy.has(sink)) return false;
    this.busy.add(sink);
    try {
      const { db, holder } = this.opts;
      let target = webhook;
      if (webhook) {
        // The list is a few seconds old: a webhook deleted, paused or changed since is read again.
        target = await getWebhook(db, webhook.tenantId, webhook.id);
        if (!target || target.status !== "active") return false;
      }
      let at: OutboxPosition | null = await readCursor(db, sink);
      if (!at) {
        if (webhook) return false; // created with its cursor; none means it is being deleted
        // A stream configured now starts from now.
        at = await currentPosition(db);
        await saveCursor(db, sink, at);
      }
      const events = await readEvents(db, at, BATCH, target ? { tenantId: target.tenantId, types: target.events } : undefined);
      const sent = events.length > 0 ? await send(events) : 0;
      const last = events[sent - 1];
      let to: OutboxPosition | null = last ? { xid: last.xid, seq: last.seq } : null;
      if (sent === events.length && events.length < BATCH && after(horizon, to ?? at)) to = horizon;
      if (to) {
        await advanceCursor(db, sink, to, {
          lease: LEASE,
          holder,
          webhook: target ? { tenantId: target.tenantId, id: target.id } : undefined,
        });
      }
      return sent === BATCH;
    } finally {
      this.busy.delete(sink);
    }
  }

  private async toStream(stream: StreamPublisher, events: StoredEvent[]): Promise<number> {
    const sink = `stream:${stream.kind}`;
    const head = events[0] as StoredEvent;
    if (!this.due(sink, head)) return 0;
    try {
      await withTimeout(stream.publish(events), STREAM_TIMEOUT_MS, `publishing ${events.length} events`);
      this.backoff.delete(sink);
      this.opts.metrics.eventsDelivered.inc({ destination: stream.kind }, events.length);
      return events.length;
    } catch (err) {
      // A stream is never given up on: the batch waits (in the outbox, up to its retention) and is sent again.
      const b = this.failed(sink, head);
      this.opts.metrics.eventDeliveryFailures.inc({ destination: stream.kind });
      if (b.attempts === 1 || b.attempts % 10 === 0) {
        this.opts.log.warn("event stream publish failed; retrying", { err, destination: stream.kind, attempts: b.attempts });
      }
      return 0;
    }
  }

  /** Delivers events one by one while the webhook accepts them; stops at one that must wait for a retry. */
  private async toWebhook(w: WebhookRecord, events: StoredEvent[]): Promise<number> {
    let sent = 0;
    for (const e of events) {
      if (this.stopped || !this.leased || !(await this.deliverOne(w, e))) break;
      sent++;
    }
    return sent;
  }

  private async deliverOne(w: WebhookRecord, e: StoredEvent): Promise<boolean> {
    const { config, metrics, log, db } = this.opts;
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
    try {
      await insertDeadLetter(db, w.tenantId, w.id, {
        eventId: e.id,
        eventType: e.type,
        body: e.body,
        attempts: b.attempts,
        lastError: result.error,
      });
    } catch (err) {
      // Deleted meanwhile (its dead letters go with it): nothing to keep; else try again next round.
      if (await getWebhook(db, w.tenantId, w.id)) throw err;
    }
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
   * Drops events every destination has passed (or that no destination will read) and events past their
   * retention however far behind a destination is; once an hour, recommendations and dead letters past theirs.
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
    if (Date.now() - this.recordsPrunedAt < 3_600_000) return;
    this.recordsPrunedAt = Date.now();
    const recommendations = await pruneDecisions(db, new Date(Date.now() - config.recommendationRetentionDays * 86_400_000));
    const deadLetters = await pruneDeadLetters(db, new Date(Date.now() - DEAD_LETTER_RETENTION_DAYS * 86_400_000));
    if (recommendations + deadLetters > 0) log.info("retention", { recommendations, deadLetters });
  }
}
