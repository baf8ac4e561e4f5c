// Reads for a decision flow's reports: its decisions' groups and outcomes for the uplift report, and its
// logged first choices with their responses for the offline evaluation of a draft.

import type { Queryable } from "./db.ts";

export interface GroupCounts {
  heldOut: boolean;
  customers: number;
  converted: number;
}

/**
 * Distinct customers the flow decided for in [from, to), by the group of their first decision there, and
 * how many of them had a `goal` outcome at or after that decision and before `to`.
 */
export async function upliftCounts(
  db: Queryable,
  tenantId: string,
  q: { decisionFlowId: string; from: Date; to: Date; goal: string },
): Promise<GroupCounts[]> {
  const rows = await db.query<{ held_out: boolean; customers: number; converted: number }>(
    `with first as (
       select customer_id, (array_agg(held_out order by created_at))[1] as held_out, min(created_at) as first_at
         from decisions
        where tenant_id = $1 and decision_flow_id = $2 and created_at >= $3 and created_at < $4
        group by customer_id)
     select f.held_out, count(*)::int as customers,
            count(*) filter (where exists (
              select 1 from interactions i
               where i.tenant_id = $1 and i.customer_id = f.customer_id and i.outcome_type = $5
                 and i.recorded_at >= f.first_at and i.recorded_at < $4))::int as converted
       from first f
      group by f.held_out`,
    [tenantId, q.decisionFlowId, q.from, q.to, q.goal],
  );
  return rows.map((r) => ({ heldOut: r.held_out, customers: Number(r.customers), converted: Number(r.converted) }));
}

export interface LoggedChoice {
  decisionId: string;
  customerId: string;
  channelId: string;
  placement: string | null;
  createdAt: Date;
  offerId: string;
  /** The probability the first recommendation was chosen with. */
  probability: number;
  clicked: boolean;
  converted: boolean;
}

/**
 * The newest `limit` decisions of a flow in [from, to) whose first recommendation logged its choice
 * probability, each with whether a response naming that recommendation was positive (`positive` outcome
 * types) or a conversion.
 */
export async function loggedChoices(
  db: Queryable,
  tenantId: string,
  q: { decisionFlowId: string; from: Date; to: Date; limit: number; positive: string[] },
): Promise<LoggedChoice[]> {
  const rows = await db.query<Record<string, unknown>>(
    `select d.decision_id, d.customer_id, d.channel_id, coalesce(d.shown->0->>'placement', d.placement) as placement,
            d.created_at, d.shown->0->>'offerId' as offer_id, (d.shown->0->>'choiceProbability')::float8 as probability,
            exists (select 1 from interactions i
                     where i.tenant_id = $1 and i.customer_id = d.customer_id and i.recorded_at >= d.created_at
                       and i.recommendation_id = 'rec_' || substr(d.decision_id, 5) || '01'
                       and i.outcome_type = any($6::text[])) as clicked,
            exists (select 1 from interactions i
                     where i.tenant_id = $1 and i.customer_id = d.customer_id and i.recorded_at >= d.created_at
                       and i.recommendation_id = 'rec_' || substr(d.decision_id, 5) || '01'
                       and i.outcome_type = 'conversion') as converted
       from decisions d
      where d.tenant_id = $1 and d.decision_flow_id = $2 and d.created_at >= $3 and d.created_at < $4
        and jsonb_array_length(d.shown) > 0 and (d.shown->0->>'choiceProbability')::float8 > 0
      order by d.created_at desc
      limit $5`,
    [tenantId, q.decisionFlowId, q.from, q.to, q.limit, q.positive],
  );
  return rows.map((r) => ({
    decisionId: r.decision_id as string,
    customerId: r.customer_id as string,
    channelId: r.channel_id as string,
    placement: (r.placement as string | null) ?? null,
    createdAt: r.created_at as Date,
    offerId: r.offer_id as string,
    probability: Number(r.probability),
    clicked: r.clicked === true,
    converted: r.converted === true,
  }));
}

/** Profiles of many customers at once: customer id → attributes and segments. */
export async function profilesOf(
  db: Queryable,
  tenantId: string,
  customerIds: string[],
): Promise<Map<string, { attributes: Record<string, unknown>; segments: string[] }>> {
  const rows = await db.query<{ customer_id: string; attributes: Record<string, unknown>; segments: string[] }>(
    "select customer_id, attributes, segments from customer_profiles where tenant_id = $1 and customer_id = any($2::text[])",
    [tenantId, customerIds],
  );
  return new Map(rows.map((r) => [r.customer_id, { attributes: r.attributes, segments: r.segments }]));
}
