// Decision flow versions. A flow has at most one draft and any number of immutable published versions;
// Recommend runs the latest published one. Publishing notifies every instance (PostgreSQL NOTIFY on
// CATALOG_CHANNEL) so that each reloads the tenant's catalog at once instead of at its cache's expiry.

import type { FlowDefinition } from "../decisioning/definitions.ts";
import type { Db, Queryable } from "./db.ts";

export const CATALOG_CHANNEL = "kaireon_catalog";

export interface FlowVersion {
  version: number;
  status: "draft" | "published";
  definition: FlowDefinition;
  createdAt: Date;
  publishedAt: Date | null;
}

/** Tells every instance that a tenant's catalog changed; delivered when the transaction commits. */
export async function notifyCatalogChanged(tx: Queryable, tenantId: string): Promise<void> {
  await tx.query("select pg_notify($1, $2)", [CATALOG_CHANNEL, tenantId]);
}

/** Creates or replaces the flow's draft; returns its version number. */
export async function saveDraft(tx: Queryable, tenantId: string, flowId: string, definition: FlowDefinition): Promise<number> {
  // Serialise writers of one flow so two drafts cannot take the same version number.
  await tx.query("select 1 from decision_flows where tenant_id = $1 and id = $2 for update", [tenantId, flowId]);
  const updated = await tx.query<{ version: number }>(
    "update decision_flow_versions set definition = $3, created_at = now() where tenant_id = $1 and flow_id = $2 and status = 'draft' returning version",
    [tenantId, flowId, definition],
  );
  if (updated[0]) return updated[0].version;
  const inserted = await tx.query<{ version: number }>(
    `insert into decision_flow_versions (tenant_id, flow_id, version, status, definition)
     select $1, $2, coalesce(max(version), 0) + 1, 'draft', $3 from decision_flow_versions where tenant_id = $1 and flow_id = $2
     returning version`,
    [tenantId, flowId, definition],
  );
  return (inserted[0] as { version: number }).version;
}

/** Publishes the flow's draft inside the caller's transaction; returns its version, or null without a draft. */
export async function publishDraftIn(tx: Queryable, tenantId: string, flowId: string): Promise<number | null> {
  const rows = await tx.query<{ version: number }>(
    "update decision_flow_versions set status = 'published', published_at = now() where tenant_id = $1 and flow_id = $2 and status = 'draft' returning version",
    [tenantId, flowId],
  );
  return rows[0]?.version ?? null;
}

/** Publishes the flow's draft and tells every instance; returns the published version, or null when there is no draft. */
export async function publishDraft(db: Db, tenantId: string, flowId: string): Promise<number | null> {
  return db.transaction(async (tx) => {
    const version = await publishDraftIn(tx, tenantId, flowId);
    if (version !== null) await notifyCatalogChanged(tx, tenantId);
    return version;
  });
}

/**
 * Publishes a copy of an earlier version as the newest one (versions are never edited), inside the
 * caller's transaction; a draft in progress is discarded. Returns the new version, or null when
 * `toVersion` was never published.
 */
export async function rollBackIn(tx: Queryable, tenantId: string, flowId: string, toVersion: number): Promise<number | null> {
  const old = await tx.query<{ definition: FlowDefinition }>(
    "select definition from decision_flow_versions where tenant_id = $1 and flow_id = $2 and version = $3 and status = 'published'",
    [tenantId, flowId, toVersion],
  );
  if (!old[0]) return null;
  await tx.query("delete from decision_flow_versions where tenant_id = $1 and flow_id = $2 and status = 'draft'", [tenantId, flowId]);
  const version = await saveDraft(tx, tenantId, flowId, old[0].definition);
  await tx.query(
    "update decision_flow_versions set status = 'published', published_at = now() where tenant_id = $1 and flow_id = $2 and version = $3",
    [tenantId, flowId, version],
  );
  return version;
}

/** rollBackIn in a transaction of its own, telling every instance. */
export async function rollBack(db: Db, tenantId: string, flowId: string, toVersion: number): Promise<number | null> {
  return db.transaction(async (tx) => {
    const version = await rollBackIn(tx, tenantId, flowId, toVersion);
    if (version !== null) await notifyCatalogChanged(tx, tenantId);
    return version;
  });
}

export interface FlowHeads {
  draft: FlowVersion | null;
  /** The latest published version. */
  published: FlowVersion | null;
}

/** The draft and the latest published version of each of the flows. */
export async function flowHeads(db: Queryable, tenantId: string, flowIds: string[]): Promise<Map<string, FlowHeads>> {
  const rows = await db.query<Record<string, unknown>>(
    `select flow_id, version, status, definition, created_at, published_at from decision_flow_versions v
      where tenant_id = $1 and flow_id = any($2::text[])
        and (status = 'draft' or version = (select max(version) from decision_flow_versions w
                                             where w.tenant_id = v.tenant_id and w.flow_id = v.flow_id and w.status = 'published'))`,
    [tenantId, flowIds],
  );
  const heads = new Map<string, FlowHeads>();
  for (const r of rows) {
    const id = r.flow_id as string;
    const head = heads.get(id) ?? { draft: null, published: null };
    const version = toVersion(r);
    if (version.status === "draft") head.draft = version;
    else head.published = version;
    heads.set(id, head);
  }
  return heads;
}

function toVersion(r: Record<string, unknown>): FlowVersion {
  return {
    version: Number(r.version),
    status: r.status as FlowVersion["status"],
    definition: r.definition as FlowDefinition,
    createdAt: r.created_at as Date,
    publishedAt: (r.published_at as Date | null) ?? null,
  };
}

export async function listVersions(db: Queryable, tenantId: string, flowId: string): Promise<FlowVersion[]> {
  const rows = await db.query<Record<string, unknown>>(
    "select version, status, definition, created_at, published_at from decision_flow_versions where tenant_id = $1 and flow_id = $2 order by version",
    [tenantId, flowId],
  );
  return rows.map(toVersion);
}
