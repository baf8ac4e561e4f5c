// The audit log: one appended row per admin write, naming the tenant, the key that made it, the action,
// the resource and what changed. The table refuses updates and deletes (migration 005).

import type { Queryable } from "./db.ts";

export interface Actor {
  tenantId: string;
  /** The API key that made the change, or "cli" for the operator command line. */
  keyId: string;
  /** Recorded with each audit row, e.g. the request id of an import. */
  requestId: string;
}

export async function appendAudit(
  db: Queryable,
  actor: Actor,
  entry: { action: string; resourceType: string; resourceId: string; details: Record<string, unknown> },
): Promise<void> {
  await db.query(
    `insert into audit_log (tenant_id, actor_key_id, action, resource_type, resource_id, details)
     values ($1, $2, $3, $4, $5, $6)`,
    [actor.tenantId, actor.keyId, entry.action, entry.resourceType, entry.resourceId, { ...entry.details, requestId: actor.requestId }],
  );
}
