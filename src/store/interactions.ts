// Interactions recorded by Respond (and impressions recorded by Recommend), with everything they change:
// the per offer × channel counters, contact opt-outs and idempotency keys. The InteractionWriter groups
// concurrent writes into one transaction (group commit) and answers each caller only after that commit,
// so an acknowledged interaction is always durable, always counted, and never written twice for one key.
// Each written interaction's interaction.recorded.v1 event goes into the outbox in that same transaction.

import type { StatsRow } from "../decisioning/propensity.ts";
import { newEventId } from "../ids.ts";
import type { Db, Queryable } from "./db.ts";
import { classifyDbFailure } from "./db-errors.ts";
import { insertEvents, type OutboxEvent } from "./outbox.ts";
import {
  claimIdempotencyKeys,
  type IdempotencyClaim,
  idempotencyKeyOf,
  type KeyClaim,
  readIdempotencyKeys,
  type StoredIdempotentResult,
} from "./idempotency-keys.ts";

export interface Interaction {
  id: string;
  tenantId: string;
  customerId: string;
  offerId: string;
  channelId: string;
  creativeId: string | null;
  outcomeType: string;
  traceId: string | null;
  /** The recommendation the response names (a decision's, in the decisions table); null when none. */
  recommendationId: string | null;
  metadata: Record<string, unknown>;
  recordedAt: Date;
}

/** How an outcome moves the learned counters. */
export type OutcomeClass = "impression" | "positive" | "negative" | "neutral";

/** One interaction to write, with what else its transaction must change. */
export interface NewInteraction extends Interaction {
  outcomeClass: OutcomeClass;
  /** The propensity and score the offer was shown with (impressions); null or absent when unknown. */
  propensity?: number | null;
  score?: number | null;
  /**
   * Fill a missing propensity/score from the recorded recommendation of this offer in the decision traced
   * as `traceId`, inside the insert itself, so that looking it up costs no extra round trip.
   */
  scoresFromTrace?: boolean;

  /** Record that the customer opted out of this channel (contact_opt_outs). */
  optOut?: boolean;
  /** Store the result under this key; a key already taken makes this write a duplicate instead. */
  idempotency?: IdempotencyClaim;
}

export type WriteResult =
  /** The interaction and its effects are committed. */
  | { status: "written"; id: string }
  /** Nothing was written: the idempotency key was taken first, by the request that stored `existing`. */
  | { status: "duplicate"; existing: StoredIdempotentResult };

export interface InteractionWriterOptions {
  /** How long the first write of a batch waits for others to join it. */
  maxWaitMs: number;
  /** Interactions per transaction at most; a full batch is committed at once. */
  maxBatch: number;
  /** Transactions in progress at once at most. */
  concurrency: number;
  /**
   * How long a caller waits for its transaction. Past it the caller is rejected (its interaction may still
   * commit later: a retry with the same idempotency key then finds it) and the slot is freed, so a hung
   * connection cannot stall every Respond.
   */
  commitTimeoutMs: number;
  /** Told about every transaction: how many interactions it held and whether it committed. */
  onCommit?: (interactions: number, ok: boolean, err?: unknown) => void;
}

export interface InteractionWriterStats {
  /** Transactions committed. */
  commits: number;
  /** Transactions that failed (their callers were rejected or retried one by one). */
  failures: number;
  /** Interactions written by committed transactions. */
  written: number;
}

/** The transaction did not settle within commitTimeoutMs; whether it commits later is unknown. */
export class InteractionCommitTimeoutError extends Error {
  constructor(ms: number) {
    super(`interaction commit did not finish within ${ms} ms`);
    this.name = "InteractionCommitTimeoutError";
  }
}

export class InteractionWriterClosedError extends Error {
  constructor() {
    super("interaction writer is closed");
    this.name = "InteractionWriterClosedError";
  }
}

/** One caller's interactions: committed together, in one transaction, and answered together. */
interface Pending {
  interactions: NewInteraction[];
  resolve: (r: WriteResult[]) => void;
  reject: (err: unknown) => void;
}

/**
 * Group commit for interactions. `write` queues interactions; the queue is committed in one transaction
 * when it holds `maxBatch` interactions or `maxWaitMs` after its first entry, and each caller's promise
 * settles after that commit (rejected if it failed). At shutdown, after the listeners stopped, `close()`
 * commits what is queued and refuses further writes.
 */
export class InteractionWriter {
  private pending: Pending[] = [];
  private pendingCount = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private readonly inFlight = new Set<Promise<void>>();
  private closed = false;
  private readonly counters: InteractionWriterStats = { commits: 0, failures: 0, written: 0 };

  constructor(
    private readonly db: Db,
    private readonly opts: InteractionWriterOptions,
  ) {}

  /**
   * Writes interactions and resolves with one result each, in order, once they are committed; rejects when
   * their transaction failed (nothing of it was written) or did not finish within commitTimeoutMs. The
   * interactions of one call always share one transaction, usually with other callers'.
   */
  write(interactions: NewInteraction[]): Promise<WriteResult[]> {
    if (this.closed) return Promise.reject(new InteractionWriterClosedError());
    if (interactions.length === 0) return Promise.resolve([]);
    const done = new Promise<WriteResult[]>((resolve, reject) => {
      this.pending.push({ interactions, resolve, reject });
    });
    this.pendingCount += interactions.length;
    if (this.pendingCount >= this.opts.maxBatch) this.start();
    else this.timer ??= setTimeout(() => this.start(), this.opts.maxWaitMs);
    return done;
  }

  get stats(): Readonly<InteractionWriterStats> {
    return { ...this.counters };
  }

  /** Interactions waiting for a transaction. */
  get queued(): number {
    return this.pendingCount;
  }

  /** Commits everything queued so far without waiting for the batch window; resolves when all settled. */
  async flush(): Promise<void> {
    while (this.pending.length > 0 || this.inFlight.size > 0) {
      this.start();
      await Promise.race(this.inFlight);
    }
  }

  /** Refuses new writes, then commits the queued ones (shutdown, after the listeners stopped). */
  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
  }

  /** Starts transactions for the queue while slots are free; the rest waits for a slot. */
  private start(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    while (this.pending.length > 0 && this.inFlight.size < this.opts.concurrency) {
      const batch = this.take();
      const run: Promise<void> = this.commit(batch).finally(() => {
        this.inFlight.delete(run);
        // What is still queued has either a timer running or has waited for this slot: then go on at once.
        if (this.pendingCount >= this.opts.maxBatch || (this.pending.length > 0 && this.timer === null)) this.start();
      });
      this.inFlight.add(run);
    }
  }

  /** Whole calls from the head of the queue, up to maxBatch interactions (a larger call goes alone). */
  private take(): Pending[] {
    let n = 0;
    let calls = 0;
    for (const p of this.pending) {
      if (calls > 0 && n + p.interactions.length > this.opts.maxBatch) break;
      n += p.interactions.length;
      calls++;
    }
    this.pendingCount -= n;
    return this.pending.splice(0, calls);
  }

  private async commit(batch: Pending[]): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new InteractionCommitTimeoutError(this.opts.commitTimeoutMs)), this.opts.commitTimeoutMs);
    });
    try {
      const results = await Promise.race([this.transact(batch.flatMap((p) => p.interactions)), deadline]);
      let at = 0;
      for (const p of batch) {
        this.settle(p, results.slice(at, at + p.interactions.length));
        at += p.interactions.length;
      }
    } catch (err) {
      const failure = classifyDbFailure(err);
      if (batch.length > 1 && (failure === "refused-data" || failure === "retryable")) {
        // Nothing was committed, and the cause may be one caller's data (a character the database cannot
        // store): write each call on its own so that one bad interaction does not fail the others.
        await Promise.all(
          batch.map((p) =>
            this.transact(p.interactions).then(
              (results) => this.settle(p, results),
              (e: unknown) => p.reject(e),
            ),
          ),
        );
        return;
      }
      for (const p of batch) p.reject(err);
    } finally {
      clearTimeout(timer);
    }
  }

  private async transact(interactions: NewInteraction[]): Promise<(WriteResult | null)[]> {
    try {
      const results = await writeInteractionBatch(this.db, interactions);
      this.counters.commits++;
      this.counters.written += results.filter((r) => r?.status === "written").length;
      this.opts.onCommit?.(interactions.length, true);
      return results;
    } catch (err) {
      this.counters.failures++;
      this.opts.onCommit?.(interactions.length, false, err);
      throw err;
    }
  }

  private settle(p: Pending, results: (WriteResult | null)[]): void {
    if (results.every((r): r is WriteResult => r !== null)) p.resolve(results);
    // A key was taken, yet its stored result was gone when read (it expired at that very moment). Nothing
    // was written for it; the caller may simply try again.
    else p.reject(new IdempotencyResultMissingError());
  }
}

export class IdempotencyResultMissingError extends Error {
  constructor() {
    super("idempotency key was taken but its stored result is gone");
    this.name = "IdempotencyResultMissingError";
  }
}

/** The offer_channel_stats column an outcome adds to, if any. */
function counterOf(i: NewInteraction): "impressions" | "clicks" | "conversions" | "negatives" | null {
  if (i.outcomeType === "conversion") return "conversions";
  switch (i.outcomeClass) {
    case "impression":
      return "impressions";
    case "positive":
      return "clicks";
    case "negative":
      return "negatives";
    default:
      return null;
  }
}

const byKey =
  <T>(key: (x: T) => string) =>
  (a: T, b: T) =>
    key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0;

/**
 * Writes interactions in one transaction: their idempotency keys first, then (pipelined) the stored results
 * of keys already taken, the rows, the opt-outs, the events and, last, the summed counters. Rows of every table are
 * written in key order, so concurrent batches (here or on another instance) lock rows in the same order
 * and cannot deadlock. Returns one result per interaction; null for a key whose stored result is gone.
 */
export async function writeInteractionBatch(db: Db, batch: NewInteraction[]): Promise<(WriteResult | null)[]> {
  // Each interaction's time as text, made once for the rows, the key and the event that carry it.
  const isoTimes = new Map(batch.map((i) => [i, i.recordedAt.toISOString()]));
  const recordedAt = (i: NewInteraction): string => isoTimes.get(i) ?? i.recordedAt.toISOString();
  return db.transaction(async (tx) => {
    // The first claim of a key in the batch competes for it; later ones in the batch are duplicates of it.
    const firstClaim = new Map<string, number>();
    batch.forEach((i, n) => {
      if (!i.idempotency) return;
      const k = idempotencyKeyOf(i.tenantId, i.idempotency.key);
      if (!firstClaim.has(k)) firstClaim.set(k, n);
    });
    const claims: KeyClaim[] = [...firstClaim.values()]
      .map((n) => {
        const i = batch[n] as NewInteraction;
        const claim = i.idempotency as IdempotencyClaim;
        return { ...claim, tenantId: i.tenantId, interactionId: i.id, recordedAt: recordedAt(i) };
      })
      .sort(byKey((c) => idempotencyKeyOf(c.tenantId, c.key)));
    const won = await claimIdempotencyKeys(tx, claims);
    const writes = batch.filter((i, n) => {
      if (!i.idempotency) return true;
      const k = idempotencyKeyOf(i.tenantId, i.idempotency.key);
      return firstClaim.get(k) === n && won.has(k);
    });
    const written = new Set(writes);
    const lost = batch.filter((i) => !written.has(i));

    const [stored] = await Promise.all([
      readIdempotencyKeys(
        tx,
        lost.map((i) => ({ tenantId: i.tenantId, key: (i.idempotency as IdempotencyClaim).key })),
      ),
      insertInteractions(tx, writes, recordedAt),
      insertOptOuts(tx, writes),
      insertEvents(
        tx,
        writes.map((i) => recordedEvent(i, recordedAt(i))),
      ),
      // Last: every batch updates the same few counter rows, and their locks are held to the commit.
      addCounters(tx, writes),
    ]);
    return batch.map((i): WriteResult | null => {
      if (written.has(i)) return { status: "written", id: i.id };
      const existing = stored.get(idempotencyKeyOf(i.tenantId, (i.idempotency as IdempotencyClaim).key));
      return existing ? { status: "duplicate", existing } : null;
    });
  });
}

/**
 * The interaction.recorded.v1 event of an interaction, committed with it. Its data is the JSON mapping of
 * kaireon.v1.InteractionRecordedV1 (empty strings left out, as that mapping writes them), built directly:
 * a bulk respond makes a thousand at once (a test checks it against the message's own JSON).
 */
export function recordedEvent(i: NewInteraction, recordedAtIso = i.recordedAt.toISOString()): OutboxEvent {
  const data: Record<string, unknown> = {
    interactionId: i.id,
    customerId: i.customerId,
    offerId: i.offerId,
    channelId: i.channelId,
    outcomeType: i.outcomeType,
  };
  if (i.creativeId) data.creativeId = i.creativeId;
  if (i.recommendationId) data.recommendationId = i.recommendationId;
  if (i.traceId) data.traceId = i.traceId;
  data.metadata = i.metadata;
  // As the JSON mapping of google.protobuf.Timestamp writes a time: no fraction when it is whole seconds.
  data.recordedAt = recordedAtIso.endsWith(".000Z") ? `${recordedAtIso.slice(0, -5)}Z` : recordedAtIso;
  return {
    id: newEventId(),
    type: "interaction.recorded.v1",
    tenantId: i.tenantId,
    customerId: i.customerId,
    occurredAt: i.recordedAt,
    data,
  };
}

async function insertInteractions(tx: Queryable, rows: NewInteraction[], recordedAt: (i: NewInteraction) => string): Promise<void> {
  if (rows.length === 0) return;
  // The propensity and score an impression was shown with come from the recommendation recorded for this
  // offer in the traced decision when the caller did not have them.
  await tx.query(
    `insert into interactions (tenant_id, id, customer_id, offer_id, channel_id, creative_id, outcome_type, trace_id,
                               recommendation_id, metadata, recorded_at, propensity, score)
     select i.tenant_id, i.id, i.customer_id, i.offer_id, i.channel_id, i.creative_id, i.outcome_type, i.trace_id,
            i.recommendation_id, i.metadata, i.recorded_at, coalesce(i.propensity, shown.propensity), coalesce(i.score, shown.score)
       from jsonb_to_recordset($1::jsonb) as i(
              tenant_id text, id text, customer_id text, offer_id text, channel_id text, creative_id text, outcome_type text,
              trace_id text, recommendation_id text, metadata jsonb, recorded_at timestamptz, propensity float8, score float8,
              from_trace boolean)
       left join lateral (
         select (e ->> 'propensity')::float8 as propensity, (e ->> 'score')::float8 as score
           from decisions d, jsonb_array_elements(d.shown) as e
          where i.from_trace is true and d.tenant_id = i.tenant_id and d.trace_id = i.trace_id and e ->> 'offerId' = i.offer_id
          limit 1
       ) shown on true`,
    [
      rows.map((i) => {
        // A key left out reads as null: the rows carry only what they have.
        const row: Record<string, unknown> = {
          tenant_id: i.tenantId,
          id: i.id,
          customer_id: i.customerId,
          offer_id: i.offerId,
          channel_id: i.channelId,
          outcome_type: i.outcomeType,
          metadata: i.metadata,
          recorded_at: recordedAt(i),
        };
        if (i.creativeId != null) row.creative_id = i.creativeId;
        if (i.traceId != null) row.trace_id = i.traceId;
        if (i.recommendationId != null) row.recommendation_id = i.recommendationId;
        if (i.propensity != null) row.propensity = i.propensity;
        if (i.score != null) row.score = i.score;
        if (i.scoresFromTrace && i.traceId && (i.propensity == null || i.score == null)) row.from_trace = true;
        return row;
      }),
    ],
  );
}

/** Adds the batch's outcomes to offer_channel_stats: one row per offer × channel, every column summed. */
async function addCounters(tx: Queryable, rows: NewInteraction[]): Promise<void> {
  const sums = new Map<string, { tenant_id: string; offer_id: string; channel_id: string } & Record<string, number | string>>();
  for (const i of rows) {
    const column = counterOf(i);
    if (!column) continue;
    const k = `${i.tenantId}\u0000${i.offerId}\u0000${i.channelId}`;
    let sum = sums.get(k);
    if (!sum) {
      sum = {
        tenant_id: i.tenantId,
        offer_id: i.offerId,
        channel_id: i.channelId,
        impressions: 0,
        clicks: 0,
        conversions: 0,
        negatives: 0,
      };
      sums.set(k, sum);
    }
    sum[column] = (sum[column] as number) + 1;
  }
  if (sums.size === 0) return;
  await tx.query(
    `insert into offer_channel_stats (tenant_id, offer_id, channel_id, impressions, clicks, conversions, negatives)
     select * from jsonb_to_recordset($1::jsonb) as s(
       tenant_id text, offer_id text, channel_id text, impressions bigint, clicks bigint, conversions bigint, negatives bigint)
     on conflict (tenant_id, offer_id, channel_id) do update set
       impressions = offer_channel_stats.impressions + excluded.impressions,
       clicks = offer_channel_stats.clicks + excluded.clicks,
       conversions = offer_channel_stats.conversions + excluded.conversions,
       negatives = offer_channel_stats.negatives + excluded.negatives,
       updated_at = now()`,
    [[...sums.entries()].sort(byKey(([k]) => k)).map(([, sum]) => sum)],
  );
}

/** Opt-outs recorded by the batch, once per customer × channel. */
async function insertOptOuts(tx: Queryable, rows: NewInteraction[]): Promise<void> {
  const optOuts = new Map<string, { tenant_id: string; customer_id: string; channel_id: string }>();
  for (const i of rows) {
    if (!i.optOut) continue;
    optOuts.set(`${i.tenantId}\u0000${i.customerId}\u0000${i.channelId}`, {
      tenant_id: i.tenantId,
      customer_id: i.customerId,
      channel_id: i.channelId,
    });
  }
  if (optOuts.size === 0) return;
  await tx.query(
    `insert into contact_opt_outs (tenant_id, customer_id, channel_id)
     select * from jsonb_to_recordset($1::jsonb) as o(tenant_id text, customer_id text, channel_id text)
     on conflict (tenant_id, customer_id, channel_id) do nothing`,
    [[...optOuts.entries()].sort(byKey(([k]) => k)).map(([, o]) => o)],
  );
}

/** Counters of every offer of a tenant, with the offer's category, for the propensity model. */
export async function loadStats(db: Queryable, tenantId: string): Promise<StatsRow[]> {
  const rows = await db.query<Record<string, unknown>>(
    `select s.offer_id, o.category_id, s.channel_id, s.impressions::float8 as impressions,
            (s.clicks + s.conversions)::float8 as positives
       from offer_channel_stats s join offers o on o.tenant_id = s.tenant_id and o.id = s.offer_id
      where s.tenant_id = $1`,
    [tenantId],
  );
  return rows.map((r) => ({
    offerId: r.offer_id as string,
    categoryId: r.category_id as string,
    channelId: r.channel_id as string,
    impressions: Number(r.impressions),
    positives: Number(r.positives),
  }));
}
