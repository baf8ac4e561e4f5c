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

export interface AuditRecord {
  id: string;
  actorKeyId: string;
  action: string;
  resourceType: string;
  resourceId: string;
  details: Record<string, unknown>;
  at: Date;
}

/** One page of a tenant's audit entries, newest first, optionally about one type of resource or one resource. */
export async function listAudit(
  db: Queryable,
  tenantId: string,
  q: { resourceType: string; resourceId: string; before: string | null; limit: number },
): Promise<{ entries: AuditRecord[]; more: boolean }> {
  const rows = await db.query<Record<string, unknown>>(
    `select id::text as id, actor_key_id, action, resource_type, resource_id, details, at from audit_log
      where tenant_id = $1 and ($2 = '' or resource_type = $2) and ($3 = '' or resource_id = $3)
        and ($4::bigint is null or id < $4::bigint)
      order by audit_log.id desc limit $5`,
    [tenantId, q.resourceType, q.resourceId, q.before, q.limit + 1],
  );
  const entries = rows.slice(0, q.limit).map((r) => ({
    id: r.id as string,
    actorKeyId: r.actor_key_id as string,
    action: r.action as string,
    resourceType: r.resource_type as string,
    resourceId: r.resource_id as string,
    details: r.details as Record<string, unknown>,
    at: r.at as Date,
  }));
  return { entries, more: rows.length > q.limit };
}
