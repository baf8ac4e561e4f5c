// Outcome types a tenant registers for Respond, beyond the built-in six.

import type { OutcomeTypeDef } from "../decisioning/catalog.ts";
import type { Db, Queryable } from "./db.ts";
import { notifyCatalogChanged } from "./flows.ts";

/** Registers (or reclassifies) an outcome type and tells every instance. */
export async function registerOutcomeType(db: Db, tenantId: string, type: OutcomeTypeDef): Promise<void> {
  await db.transaction(async (tx) => {
    await tx.query(
      `insert into outcome_types (tenant_id, id, classification) values ($1, $2, $3)
       on conflict (tenant_id, id) do update set classification = excluded.classification`,
      [tenantId, type.id, type.classification],
    );
    await notifyCatalogChanged(tx, tenantId);
  });
}

export async function listOutcomeTypes(db: Queryable, tenantId: string): Promise<OutcomeTypeDef[]> {
  return db.query<OutcomeTypeDef>("select id, classification from outcome_types where tenant_id = $1 order by id", [tenantId]);
}
