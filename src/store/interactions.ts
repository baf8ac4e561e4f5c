// Interactions recorded by Respond, and the per offer × channel counters they feed. Both are written in
// one transaction, so a committed interaction is always counted.

import type { StatsRow } from "../decisioning/propensity.ts";
import type { Queryable, Db } from "./db.ts";

export interface Interaction {
  id: string;
  tenantId: string;
  customerId: string;
  offerId: string;
  channelId: string;
  creativeId: string | null;
  outcomeType: string;
  traceId: string | null;
  metadata: Record<string, unknown>;
  recordedAt: Date;
}

/** How an outcome moves the learned counters. */
export type OutcomeClass = "impression" | "positive" | "negative" | "neutral";

const COUNTER_SQL: Record<OutcomeClass, string> = {
  impression: "impressions",
  positive: "clicks",
  negative: "negatives",
  neutral: "",
};

export async function recordInteraction(db: Db, i: Interaction, outcomeClass: OutcomeClass): Promise<void> {
  await db.transaction(async (tx) => {
    await tx.query(
      `insert into interactions (tenant_id, id, customer_id, offer_id, channel_id, creative_id, outcome_type, trace_id, metadata, recorded_at)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
      [i.tenantId, i.id, i.customerId, i.offerId, i.channelId, i.creativeId, i.outcomeType, i.traceId, i.metadata, i.recordedAt],
    );
    const column = i.outcomeType === "conversion" ? "conversions" : COUNTER_SQL[outcomeClass];
    if (column) await bumpCounter(tx, i.tenantId, i.offerId, i.channelId, column);
  });
}

async function bumpCounter(tx: Queryable, tenantId: string, offerId: string, channelId: string, column: string): Promise<void> {
  await tx.query(
    `insert into offer_channel_stats (tenant_id, offer_id, channel_id, ${column}) values ($1, $2, $3, 1)
     on conflict (tenant_id, offer_id, channel_id) do update set ${column} = offer_channel_stats.${column} + 1, updated_at = now()`,
    [tenantId, offerId, channelId],
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
