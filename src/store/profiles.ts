// Customer profiles: the attributes and segments the enrich stage adds to a decision.

import type { CustomerProfile } from "../decisioning/engine.ts";
import type { Queryable } from "./db.ts";

export async function loadProfile(db: Queryable, tenantId: string, customerId: string): Promise<CustomerProfile | null> {
  const rows = await db.query<{ attributes: Record<string, unknown>; segments: string[] }>(
    "select attributes, segments from customer_profiles where tenant_id = $1 and customer_id = $2",
    [tenantId, customerId],
  );
  const row = rows[0];
  return row ? { attributes: row.attributes, segments: row.segments } : null;
}

export async function upsertProfile(db: Queryable, tenantId: string, customerId: string, profile: CustomerProfile): Promise<void> {
  await db.query(
    `insert into customer_profiles (tenant_id, customer_id, attributes, segments) values ($1, $2, $3, $4)
     on conflict (tenant_id, customer_id) do update set attributes = excluded.attributes, segments = excluded.segments, updated_at = now()`,
    [tenantId, customerId, profile.attributes, profile.segments],
  );
}
