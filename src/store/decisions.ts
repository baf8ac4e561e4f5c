// What each decision showed (migration 010, `decisions`: a row per decision) and its decision.made.v1 event, written
// together in one transaction per batch by a buffered writer with the same durability as traces: Recommend
// answers first; a recommendation id is readable from memory on this instance at once and from the
// database within one flush interval everywhere. When the buffer is full the decision is not recorded, and
// Recommend says so (no recommendation ids, a counter, a log line).

import { BatchWriter, type BatchWriterOptions } from "./batch-writer.ts";
import type { Db, Queryable } from "./db.ts";
import { parseRecommendationId } from "../ids.ts";
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
  /** The probability it was chosen first with (a placement's first recommendation only; offline evaluation). */
  choiceProbability?: number | null;
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
  /** The decision as a whole, for a row written even when it showed nothing (flows with a holdout). */
  about: {
    customerId: string;
    channelId: string;
    placement: string | null;
    decisionFlowId: string;
    flowVersion: number;
    traceId: string | null;
    heldOut: boolean;
    /** Record the decision even when it showed nothing. */
    keepEmpty: boolean;
  };
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
  heldOut?: boolean;
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
      if (r.choiceProbability != null) shown.choiceProbability = r.choiceProbability;
      if (r.experimentId) shown.experimentId = r.experimentId;
      if (r.variant) shown.variant = r.variant;
      if (r.placement && r.placement !== d.placement) shown.placement = r.placement;
      return shown;
    });
  }
  if (d.heldOut) out.heldOut = true;
  return out;
}

const keyOf = (tenantId: string, id: string) => `${tenantId}\u0000${id}`;

export class DecisionWriter extends BatchWriter<DecisionRecord> {
  /** Buffered recommendations by id, and by trace id and offer, until their decision is written. */
  private readonly shown = new Map<string, { tenantId: string; r: ShownRecommendation }>();

  constructor(db: Db, opts: BatchWriterOptions) {
    super(db, opts, (d) => keyOf(d.tenantId, d.decisionId), insertDecisions);
  }

  override add(d: DecisionRecord): boolean {
    if (!super.add(d)) return false;
    // Recommendation ids are random and unique across tenants: they key the map alone (the tenant is
    // checked on the way out), which keeps this off the decision's cost.
    for (const r of d.recommendations) {
      this.shown.set(r.recommendationId, { tenantId: d.tenantId, r });
      if (r.traceId) this.shown.set(`${r.traceId}\u0000${r.offerId}`, { tenantId: d.tenantId, r });
    }
    return true;
  }

  protected override settled(done: DecisionRecord[]): void {
    for (const d of done) {
      for (const r of d.recommendations) {
        this.shown.delete(r.recommendationId);
        if (r.traceId) this.shown.delete(`${r.traceId}\u0000${r.offerId}`);
      }
    }
  }

  /** A recommendation still buffered here, by its id. */
  peek(tenantId: string, recommendationId: string): ShownRecommendation | undefined {
    const e = this.shown.get(recommendationId);
    return e && e.tenantId === tenantId ? e.r : undefined;
  }

  /** A buffered recommendation of `offerId` in the decision traced as `traceId`. */
  peekByTrace(tenantId: string, traceId: string, offerId: string): ShownRecommendation | undefined {
    const e = this.shown.get(`${traceId}\u0000${offerId}`);
    return e && e.tenantId === tenantId ? e.r : undefined;
  }
}

async function insertDecisions(db: Db, batch: DecisionRecord[]): Promise<void> {
  // A decision that showed nothing has nothing a response could name: only its event is written, unless
  // its flow has a holdout (the uplift report counts every decision).
  const rows = batch
    .filter((d) => d.recommendations.length > 0 || d.about.keepEmpty)
    .map((d) => {
      const a = d.about;
      return {
        tenant_id: d.tenantId,
        decision_id: d.decisionId,
        customer_id: a.customerId,
        channel_id: a.channelId,
        placement: a.placement,
        decision_flow_id: a.decisionFlowId,
        flow_version: a.flowVersion,
        trace_id: a.traceId,
        held_out: a.heldOut,
        shown: d.recommendations.map((r) => ({
          offerId: r.offerId,
          creativeId: r.creativeId,
          rank: r.rank,
          score: r.score,
          propensity: r.propensity,
          ...(r.choiceProbability != null ? { choiceProbability: r.choiceProbability } : {}),
          experimentId: r.experimentId,
          variant: r.variant,
          ...(r.placement !== a.placement ? { placement: r.placement } : {}),
        })),
        created_at: d.createdAt.toISOString(),
      };
    });
  await db.transaction(async (tx) => {
    await Promise.all([
      rows.length === 0
        ? null
        : tx.query(
            `insert into decisions (tenant_id, decision_id, customer_id, channel_id, placement, decision_flow_id, flow_version,
                                    trace_id, held_out, shown, created_at)
             select * from json_to_recordset($1::json) as d(
               tenant_id text, decision_id text, customer_id text, channel_id text, placement text, decision_flow_id text,
               flow_version int, trace_id text, held_out boolean, shown jsonb, created_at timestamptz)
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

/** Recorded recommendations by id (those that exist): each read from its decision's row. */
export async function readRecommendations(db: Queryable, tenantId: string, ids: string[]): Promise<ShownRecommendation[]> {
  // decision id → the recommendations of it asked for
  const wanted = new Map<string, { recommendationId: string; rank: number }[]>();
  for (const id of ids) {
    const parsed = parseRecommendationId(id);
    if (parsed) wanted.set(parsed.decisionId, [...(wanted.get(parsed.decisionId) ?? []), { recommendationId: id, rank: parsed.rank }]);
  }
  if (wanted.size === 0) return [];
  const rows = await db.query<Record<string, unknown>>("select * from decisions where tenant_id = $1 and decision_id = any($2::text[])", [
    tenantId,
    [...wanted.keys()],
  ]);
  const out: ShownRecommendation[] = [];
  for (const r of rows) {
    const shown = r.shown as {
      offerId: string;
      creativeId: string;
      rank: number;
      score: number;
      propensity: number | null;
      experimentId: string | null;
      variant: string | null;
      placement?: string | null;
    }[];
    for (const w of wanted.get(r.decision_id as string) ?? []) {
      const s = shown.find((x) => x.rank === w.rank);
      if (!s) continue;
      out.push({
        recommendationId: w.recommendationId,
        customerId: r.customer_id as string,
        channelId: r.channel_id as string,
        placement: s.placement ?? (r.placement as string | null) ?? null,
        offerId: s.offerId,
        creativeId: s.creativeId,
        rank: s.rank,
        score: s.score,
        propensity: s.propensity ?? null,
        experimentId: s.experimentId ?? null,
        variant: s.variant ?? null,
        decisionFlowId: r.decision_flow_id as string,
        flowVersion: Number(r.flow_version),
        traceId: (r.trace_id as string | null) ?? null,
      });
    }
  }
  return out;
}

/** Deletes decisions recorded before `before`, a chunk per statement. */
export async function pruneDecisions(db: Queryable, before: Date): Promise<number> {
  let total = 0;
  for (;;) {
    const rows = await db.query<{ n: number }>(
      `with gone as (delete from decisions where ctid = any(array(
         select ctid from decisions where created_at < $1 limit 5000)) returning 1)
       select count(*)::int as n from gone`,
      [before],
    );
    const n = rows[0]?.n ?? 0;
    total += n;
    if (n < 5000) return total;
  }
}
