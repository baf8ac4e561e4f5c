// Outcome types a tenant registers for Respond, beyond the built-in six.

import type { OutcomeTypeDef } from "../decisioning/definitions.ts";
import type { Queryable } from "./db.ts";

export async function listOutcomeTypes(db: Queryable, tenantId: string): Promise<OutcomeTypeDef[]> {
  return db.query<OutcomeTypeDef>("select id, classification from outcome_types where tenant_id = $1 and deleted_at is null order by id", [
    tenantId,
  ]);
}
