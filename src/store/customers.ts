// Customer profiles as the admin API writes them: a multi-row upsert that audits each customer it
// touches (which attributes changed, not their values, so the audit log never keeps what an erasure
// removed), and the erasure of everything stored about one customer.

import { type Actor, appendAudit } from "./audit.ts";
import type { Queryable } from "./db.ts";

export interface ProfileInput {
  customerId: string;
  attributes: Record<string, unknown>;
  segments: string[];
}

export interface ProfileRecord extends ProfileInput {
  updatedAt: Date;
}

interface ProfileRow {
  customer_id: string;
  attributes: Record<string, unknown>;
  segments: string[];
  updated_at: Date;
}

const toRecord = (r: ProfileRow): ProfileRecord => ({
  customerId: r.customer_id,
  attributes: r.attributes,
  segments: r.segments,
  updatedAt: new Date(r.updated_at),
});

export async function getCustomerProfile(db: Queryable, tenantId: string, customerId: string): Promise<ProfileRecord | null> {
  const rows = await db.query<ProfileRow>(
    "select customer_id, attributes, segments, updated_at from customer_profiles where tenant_id = $1 and customer_id = $2",
    [tenantId, customerId],
  );
  return rows[0] ? toRecord(rows[0]) : null;
}

/**
 * Upserts profiles (customer ids must be distinct) and appends one audit row per customer, in one
 * statement: the audit details say whether the profile was created, which attribute keys were added,
 * changed or removed, and whether the segments changed.
 */
export async function upsertProfiles(db: Queryable, actor: Actor, action: string, profiles: ProfileInput[]): Promise<ProfileRecord[]> {
  if (profiles.length === 0) return [];
  // Wrapped in an object: both drivers send an object parameter as JSON, where a bare array could be taken for a SQL array.
  const input = { rows: profiles.map((p) => ({ customer_id: p.customerId, attributes: p.attributes, segments: p.segments })) };
  const rows = await db.query<ProfileRow>(
    `with input as (
       select * from json_to_recordset($4::json -> 'rows') as r(customer_id text, attributes jsonb, segments text[])
     ),
     old as (
       select p.customer_id, p.attributes, p.segments from customer_profiles p
        where p.tenant_id = $1 and p.customer_id in (select customer_id from input)
        for update
     ),
     up as (
       insert into customer_profiles (tenant_id, customer_id, attributes, segments)
       -- The filter makes "old" lock and read the rows first: a row this statement had already updated
       -- would be skipped by FOR UPDATE.
       select $1, customer_id, attributes, segments from input where (select count(*) from old) >= 0
       on conflict (tenant_id, customer_id) do update
         set attributes = excluded.attributes, segments = excluded.segments, updated_at = now()
       returning customer_id, attributes, segments, updated_at
     ),
     audit as (
       insert into audit_log (tenant_id, actor_key_id, action, resource_type, resource_id, details)
       select $1, $2, $3, 'customer', i.customer_id, jsonb_build_object(
                'created', o.customer_id is null,
                'changedAttributes', (
                  select coalesce(jsonb_agg(k order by k), '[]'::jsonb)
                    from (select jsonb_object_keys(i.attributes) as k
                          union select jsonb_object_keys(coalesce(o.attributes, '{}'::jsonb))) keys
                   where i.attributes -> k is distinct from o.attributes -> k),
                'segmentsChanged', o.segments is distinct from i.segments,
                'requestId', $5::text)
         from input i left join old o on o.customer_id = i.customer_id
     )
     select customer_id, attributes, segments, updated_at from up`,
    [actor.tenantId, actor.keyId, action, input, actor.requestId],
  );
  return rows.map(toRecord);
}

export interface ErasedCounts {
  profile: number;
  interactions: number;
  traces: number;
  optOuts: number;
}

/** Deletes the profile, interactions, decision traces, decisions (what they showed), undelivered events and opt-outs of one customer and audits it; run it in a transaction. */
export async function eraseCustomer(tx: Queryable, actor: Actor, customerId: string): Promise<ErasedCounts> {
  const count = async (sql: string) => {
    const rows = await tx.query<{ n: number }>(`with d as (${sql} returning 1) select count(*)::int as n from d`, [
      actor.tenantId,
      customerId,
    ]);
    return rows[0]?.n ?? 0;
  };
  const erased: ErasedCounts = {
    profile: await count("delete from customer_profiles where tenant_id = $1 and customer_id = $2"),
    interactions: await count("delete from interactions where tenant_id = $1 and customer_id = $2"),
    traces: await count("delete from decision_traces where tenant_id = $1 and customer_id = $2"),
    optOuts: await count("delete from contact_opt_outs where tenant_id = $1 and customer_id = $2"),
  };
  // What the decisions showed the customer, and events about them not yet delivered, go too.
  await count("delete from decisions where tenant_id = $1 and customer_id = $2");
  await count("delete from outbox_events where tenant_id = $1 and customer_id = $2");
  await appendAudit(tx, actor, {
    action: "customer.erase",
    resourceType: "customer",
    resourceId: customerId,
    details: { deleted: erased },
  });
  return erased;
}
