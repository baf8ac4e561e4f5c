// A customer's contact history as the contact policies read it: recent interactions of the outcome types
// the policies look at, and the channels the customer opted out of. Also clears an opt-out.

import type { ContactEvent, ContactHistory } from "../decisioning/policies.ts";
import type { Queryable } from "./db.ts";

/**
 * The most interactions read for one decision. Rows are read newest first, so past it only the oldest
 * interactions of the look-back are missing: cooldowns, outcome suppressions and caps of up to this many
 * impressions at global scope stay exact, while an offer, category or channel cap whose impressions lie
 * behind thousands of newer ones may be undercounted. No person sees this many offers in 30 days; a
 * customer id that does (a bot, a shared test id) has its cost per decision bounded instead.
 */
export const MAX_HISTORY_ROWS = 5000;

export interface HistoryQuery {
  tenantId: string;
  customerId: string;
  /** Interactions recorded after this instant. */
  since: Date;
  /** Only these outcome types; none means no interaction is read. */
  outcomeTypes: string[];
  /** Whether to read the customer's opt-outs too. */
  optOuts: boolean;
}

export async function loadContactHistory(db: Queryable, q: HistoryQuery): Promise<ContactHistory> {
  const [events, optOuts] = await Promise.all([
    q.outcomeTypes.length === 0
      ? []
      : // Served by interactions_customer (tenant_id, customer_id, recorded_at desc) on each partition in
        // the range; the limit stops the scan after the newest rows.
        db.query<{ offer_id: string; channel_id: string; outcome_type: string; recorded_at: Date; recommendation_id: string | null }>(
          `select offer_id, channel_id, outcome_type, recorded_at, recommendation_id
             from interactions
            where tenant_id = $1 and customer_id = $2 and recorded_at > $3 and outcome_type = any($4::text[])
            order by recorded_at desc
            limit ${MAX_HISTORY_ROWS}`,
          [q.tenantId, q.customerId, q.since, q.outcomeTypes],
        ),
    q.optOuts
      ? db.query<{ channel_id: string }>("select channel_id from contact_opt_outs where tenant_id = $1 and customer_id = $2", [
          q.tenantId,
          q.customerId,
        ])
      : [],
  ]);
  return {
    events: events.map(
      (r): ContactEvent => ({
        offerId: r.offer_id,
        channelId: r.channel_id,
        outcomeType: r.outcome_type,
        at: new Date(r.recorded_at).getTime(),
        recommendationId: r.recommendation_id,
      }),
    ),
    optedOutChannels: new Set(optOuts.map((r) => r.channel_id)),
  };
}

/** Clears a customer's opt-out of a channel; false when there was none. */
export async function clearOptOut(db: Queryable, tenantId: string, customerId: string, channelId: string): Promise<boolean> {
  const rows = await db.query(
    "delete from contact_opt_outs where tenant_id = $1 and customer_id = $2 and channel_id = $3 returning channel_id",
    [tenantId, customerId, channelId],
  );
  return rows.length > 0;
}
