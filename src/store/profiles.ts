// Customer profiles: the attributes and segments the enrich stage adds to a decision.

import type { CustomerProfile } from "../decisioning/engine.ts";
import { PartialLoadError } from "./batched-load.ts";
import type { Queryable } from "./db.ts";

/**
 * The profiles of many customers in one query per tenant, by `${tenantId}\u0000${customerId}`; a customer
 * without one is left out.
 */
export async function loadProfiles(db: Queryable, keys: string[]): Promise<Map<string, CustomerProfile>> {
  const byTenant = new Map<string, string[]>();
  for (const key of keys) {
    const sep = key.indexOf("\u0000");
    const tenantId = key.slice(0, sep);
    const ids = byTenant.get(tenantId);
    if (ids) ids.push(key.slice(sep + 1));
    else byTenant.set(tenantId, [key.slice(sep + 1)]);
  }
  const found = new Map<string, CustomerProfile>();
  const failed = new Map<string, unknown>();
  // One tenant's failed read fails that tenant's keys only.
  await Promise.all(
    [...byTenant].map(async ([tenantId, customerIds]) => {
      try {
        const rows = await db.query<{ customer_id: string; attributes: Record<string, unknown>; segments: string[] }>(
          "select customer_id, attributes, segments from customer_profiles where tenant_id = $1 and customer_id = any($2::text[])",
          [tenantId, customerIds],
        );
        for (const r of rows) found.set(`${tenantId}\u0000${r.customer_id}`, { attributes: r.attributes, segments: r.segments });
      } catch (err) {
        for (const id of customerIds) failed.set(`${tenantId}\u0000${id}`, err);
      }
    }),
  );
  if (failed.size > 0) throw new PartialLoadError(found, failed);
  return found;
}

export async function upsertProfile(db: Queryable, tenantId: string, customerId: string, profile: CustomerProfile): Promise<void> {
  await db.query(
    `insert into customer_profiles (tenant_id, customer_id, attributes, segments) values ($1, $2, $3, $4)
     on conflict (tenant_id, customer_id) do update set attributes = excluded.attributes, segments = excluded.segments, updated_at = now()`,
    [tenantId, customerId, profile.attributes, profile.segments],
  );
}
