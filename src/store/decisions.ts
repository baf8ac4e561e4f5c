// What each decision showed (migration 010, `recommendations`) and its decision.made.v1 event, written
// together in one transaction per batch by a buffered writer with the same durability as traces: Recommend
// answers first; a recommendation id is readable from memory on this instance at once and from the
// database within one flush interval everywhere. When the buffer is full the decision is not recorded, and
// Recommend says so (no recommendation ids, a counter, a log line).

import { BatchWriter, type BatchWriterOptions } from "./batch-writer.ts";
import type { Db, Queryable } from "./db.ts";
import { insertEvents, type OutboxEvent } from "./outbox.ts";

export interface ShownRecommendation {
  recommendationId: string;
  customerId: string;
  channelId: string;
  placement: string | null;
  offerId: string;
  creativeId: string;
  rank: number;
  score: number;
  propensity: number | null;
  experimentId: string | null;
  variant: string | null;
  decisionFlowId: string;
  flowVersion: number;
  traceId: string | null;
}

export interface DecisionRecord {
  tenantId: string;
  decisionId: string;
  createdAt: Date;
  recommendations: ShownRecommendation[];
  event: OutboxEvent;
}

/**
 * The data of a decision.made.v1 event: the JSON mapping of kaireon.v1.DecisionMadeV1 (defaults left out,
 * as that mapping writes them), built directly since every decision makes one (a test checks it against
 * the message's own JSON).
 */
export function decisionMadeData(d: {
  decisionId: string;
  customerId: string;
  channelId: string;
  placement: string;
  decisionFlowId: string;
  decisionFlowVersion: number;
  traceId: string;
  recommendations: ShownRecommendation[];
}): Record<string, unknown> {
  const out: Record<string, unknown> = { decisionId: d.decisionId, customerId: d.customerId, channelId: d.channelId };
  if (d.placement) out.placement = d.placement;
  out.decisionFlowId = d.decisionFlowId;
  if (d.decisionFlowVersion !== 0) out.decisionFlowVersion = d.decisionFlowVersion;
  if (d.traceId) out.traceId = d.traceId;
  if (d.recommendations.length > 0) {
    out.recommendations = d.recommendations.map((r) => {
      const shown: Record<string, unknown> = { recommendationId: r.recommendationId, offerId: r.offerId, creativeId: r.creativeId };
      if (r.rank !== 0) shown.rank = r.rank;
      if (r.score !== 0) shown.score = r.score;
      if (r.propensity !== null) shown.propensity = r.propensity;
      if (r.experimentId) shown.experimentId = r.experimentId;
      if (r.variant) shown.variant = r.variant;
      return shown;
    });
  }
  return out;
}

const keyOf = (tenantId: string, id: string) => `${tenantId}\u0000${id}`;

export class DecisionWriter extends BatchWriter<DecisionRecord> {
  /** Buffered recommendations by id, and by trace id and offer, until their decision is written. */
  private readonly shown = new Map<string, ShownRecommendation>();

  constructor(db: Db, opts: BatchWriterOptions) {
    super(db, opts, (d) => keyOf(d.tenantId, d.decisionId), insertDecisions);
  }

  override add(d: DecisionRecord): boolean {
    if (!super.add(d)) return false;
    for (const r of d.recommendations) {
      this.shown.set(keyOf(d.tenantId, r.recommendationId), r);
      if (r.traceId) this.shown.set(keyOf(d.tenantId, `${r.traceId}\u0000${r.offerId}`), r);
    }
    return true;
  }

  protected override settled(done: DecisionRecord[]): void {
    for (const d of done) {
      for (const r of d.recommendations) {
        this.shown.delete(keyOf(d.tenantId, r.recommendationId));
        if (r.traceId) this.shown.delete(keyOf(d.tenantId, `${r.traceId}\u0000${r.offerId}`));
      }
    }
  }

  /** A recommendation still buffered here, by its id. */
  peek(tenantId: string, recommendationId: string): ShownRecommendation | undefined {
    return this.shown.get(keyOf(tenantId, recommendationId));
  }

  /** A buffered recommendation of `offerId` in the decision traced as `traceId`. */
  peekByTrace(tenantId: string, traceId: string, offerId: string): ShownRecommendation | undefined {
    return this.shown.get(keyOf(tenantId, `${traceId}\u0000${offerId}`));
  }
}

async function insertDecisions(db: Db, batch: DecisionRecord[]): Promise<void> {
  const rows = batch.flatMap((d) =>
    d.recommendations.map((r) => ({
      tenant_id: d.tenantId,
      recommendation_id: r.recommendationId,
      decision_id: d.decisionId,
      customer_id: r.customerId,
      channel_id: r.channelId,
      placement: r.placement,
      offer_id: r.offerId,
      creative_id: r.creativeId,
      rank: r.rank,
      score: r.score,
      propensity: r.propensity,
      experiment_id: r.experimentId,
      variant: r.variant,
      decision_flow_id: r.decisionFlowId,
      flow_version: r.flowVersion,
      trace_id: r.traceId,
      created_at: d.createdAt.toISOString(),
    })),
  );
  await db.transaction(async (tx) => {
    await Promise.all([
      rows.length === 0
        ? null
        : tx.query(
            `insert into recommendations (tenant_id, recommendation_id, decision_id, customer_id, channel_id, placement, offer_id,
                                          creative_id, rank, score, propensity, experiment_id, variant, decision_flow_id,
                                          flow_version, trace_id, created_at)
             select * from json_to_recordset($1::json) as r(
               tenant_id text, recommendation_id text, decision_id text, customer_id text, channel_id text, placement text,
               offer_id text, creative_id text, rank int, score float8, propensity float8, experiment_id text, variant text,
               decision_flow_id text, flow_version int, trace_id text, created_at timestamptz)
             on conflict do nothing`,
            [rows],
          ),
      insertEvents(
        tx,
        batch.map((d) => d.event),
      ),
    ]);
  });
}

/** A recorded recommendation by its id. */
export async function readRecommendation(db: Queryable, tenantId: string, recommendationId: string): Promise<ShownRecommendation | null> {
  return (await readRecommendations(db, tenantId, [recommendationId]))[0] ?? null;
}

/** Recorded recommendations by id (those that exist). */
export async function readRecommendations(db: Queryable, tenantId: string, ids: string[]): Promise<ShownRecommendation[]> {
  if (ids.length === 0) return [];
  const rows = await db.query<Record<string, unknown>>(
    "select * from recommendations where tenant_id = $1 and recommendation_id = any($2::text[])",
    [tenantId, ids],
  );
  return rows.map((r) => ({
    recommendationId: r.recommendation_id as string,
    customerId: r.customer_id as string,
    channelId: r.channel_id as string,
    placement: (r.placement as string | null) ?? null,
    offerId: r.offer_id as string,
    creativeId: r.creative_id as string,
    rank: Number(r.rank),
    score: Number(r.score),
    propensity: r.propensity == null ? null : Number(r.propensity),
    experimentId: (r.experiment_id as string | null) ?? null,
    variant: (r.variant as string | null) ?? null,
    decisionFlowId: r.decision_flow_id as string,
    flowVersion: Number(r.flow_version),
    traceId: (r.trace_id as string | null) ?? null,
  }));
}

/** Deletes recommendations recorded before `before`, a chunk per statement. */
export async function pruneRecommendations(db: Queryable, before: Date): Promise<number> {
  let total = 0;
  for (;;) {
    const rows = await db.query<{ n: number }>(
      `with gone as (delete from recommendations where ctid = any(array(
         select ctid from recommendations where created_at < $1 limit 5000)) returning 1)
       select count(*)::int as n from gone`,
      [before],
    );
    const n = rows[0]?.n ?? 0;
    total += n;
    if (n < 5000) return total;
  }
}
