// Tenants and their API keys. Keys are stored only as HMAC-SHA256(key, pepper) in hex, with a short
// display prefix; a key is found by its hash, never by scanning.

import type { Db, Queryable } from "./db.ts";
import { lockCatalogRevision } from "./catalog.ts";
import { notifyCatalogChanged } from "./flows.ts";

/** Announces, with a tenant id, a change to who may call for that tenant (migration 009's triggers). */
export const ACCESS_CHANNEL = "kaireon_access";

export type Scope = "decide" | "admin";

export interface Tenant {
  id: string;
  name: string;
  status: "active" | "suspended";
  plan: string;
  settings: Record<string, unknown>;
}

export interface ApiKeyRecord {
  id: string;
  tenantId: string;
  prefix: string;
  name: string;
  scopes: Scope[];
  createdAt: Date;
  expiresAt: Date | null;
  revokedAt: Date | null;
  lastUsedAt: Date | null;
}

export async function createTenant(db: Queryable, t: { id: string; name: string; plan?: string }): Promise<Tenant> {
  const rows = await db.query<Tenant>(
    "insert into tenants (id, name, plan) values ($1, $2, $3) returning id, name, status, plan, settings",
    [t.id, t.name, t.plan ?? "community"],
  );
  return rows[0] as Tenant;
}

export async function getTenant(db: Queryable, id: string): Promise<Tenant | null> {
  const rows = await db.query<Tenant>("select id, name, status, plan, settings from tenants where id = $1", [id]);
  return rows[0] ?? null;
}

export async function listTenants(db: Queryable): Promise<Tenant[]> {
  return db.query<Tenant>("select id, name, status, plan, settings from tenants order by id");
}

export async function setTenantStatus(db: Queryable, id: string, status: Tenant["status"]): Promise<boolean> {
  const rows = await db.query("update tenants set status = $2 where id = $1 returning id", [id, status]);
  return rows.length > 0;
}

export async function countTenants(db: Queryable): Promise<number> {
  const rows = await db.query<{ n: number }>("select count(*)::int as n from tenants");
  return rows[0]?.n ?? 0;
}

export async function insertApiKey(
  db: Queryable,
  k: { id: string; tenantId: string; hash: string; prefix: string; name: string; scopes: Scope[]; expiresAt: Date | null },
): Promise<void> {
  await db.query("insert into api_keys (id, tenant_id, key_hash, prefix, name, scopes, expires_at) values ($1, $2, $3, $4, $5, $6, $7)", [
    k.id,
    k.tenantId,
    k.hash,
    k.prefix,
    k.name,
    k.scopes,
    k.expiresAt,
  ]);
}

export interface KeyLookup {
  keyId: string;
  tenantId: string;
  tenantStatus: Tenant["status"];
  scopes: Scope[];
  expiresAt: Date | null;
  revoked: boolean;
}

export async function findKeyByHash(db: Queryable, hash: string): Promise<KeyLookup | null> {
  const rows = await db.query<Record<string, unknown>>(
    `select k.id, k.tenant_id, t.status, k.scopes, k.expires_at, k.revoked_at
       from api_keys k join tenants t on t.id = k.tenant_id
      where k.key_hash = $1`,
    [hash],
  );
  const r = rows[0];
  if (!r) return null;
  return {
    keyId: r.id as string,
    tenantId: r.tenant_id as string,
    tenantStatus: r.status as Tenant["status"],
    scopes: r.scopes as Scope[],
    expiresAt: (r.expires_at as Date | null) ?? null,
    revoked: r.revoked_at !== null && r.revoked_at !== undefined,
  };
}

const KEY_COLUMNS = "id, tenant_id, prefix, name, scopes, created_at, expires_at, revoked_at, last_used_at";

function toKeyRecord(r: Record<string, unknown>): ApiKeyRecord {
  return {
    id: r.id as string,
    tenantId: r.tenant_id as string,
    prefix: r.prefix as string,
    name: r.name as string,
    scopes: r.scopes as Scope[],
    createdAt: r.created_at as Date,
    expiresAt: (r.expires_at as Date | null) ?? null,
    revokedAt: (r.revoked_at as Date | null) ?? null,
    lastUsedAt: (r.last_used_at as Date | null) ?? null,
  };
}

export async function listApiKeys(db: Queryable, tenantId: string): Promise<ApiKeyRecord[]> {
  const rows = await db.query<Record<string, unknown>>(`select ${KEY_COLUMNS} from api_keys where tenant_id = $1 order by created_at, id`, [
    tenantId,
  ]);
  return rows.map(toKeyRecord);
}

/** One page of a tenant's keys in id order, revoked ones included; `more` tells whether another follows. */
export async function listApiKeysPage(
  db: Queryable,
  tenantId: string,
  after: string | null,
  limit: number,
): Promise<{ keys: ApiKeyRecord[]; more: boolean }> {
  const rows = await db.query<Record<string, unknown>>(
    `select ${KEY_COLUMNS} from api_keys where tenant_id = $1 and ($2::text is null or id > $2) order by id limit $3`,
    [tenantId, after, limit + 1],
  );
  return { keys: rows.slice(0, limit).map(toKeyRecord), more: rows.length > limit };
}

export async function getApiKey(db: Queryable, tenantId: string, id: string): Promise<ApiKeyRecord | null> {
  const rows = await db.query<Record<string, unknown>>(`select ${KEY_COLUMNS} from api_keys where tenant_id = $1 and id = $2`, [
    tenantId,
    id,
  ]);
  return rows[0] ? toKeyRecord(rows[0]) : null;
}

/** Revokes one key by id (already revoked: left as it was). Returns the key and its hash, or null when the tenant has no such key. */
export async function revokeApiKeyById(db: Queryable, tenantId: string, id: string): Promise<{ key: ApiKeyRecord; hash: string } | null> {
  const rows = await db.query<Record<string, unknown>>(
    `update api_keys set revoked_at = coalesce(revoked_at, now()) where tenant_id = $1 and id = $2 returning ${KEY_COLUMNS}, key_hash`,
    [tenantId, id],
  );
  return rows[0] ? { key: toKeyRecord(rows[0]), hash: rows[0].key_hash as string } : null;
}

/** Revokes a key by its id or its display prefix, within one tenant. */
export async function revokeApiKey(db: Queryable, tenantId: string, idOrPrefix: string): Promise<number> {
  const rows = await db.query(
    "update api_keys set revoked_at = now() where tenant_id = $1 and (id = $2 or prefix = $2) and revoked_at is null returning id",
    [tenantId, idOrPrefix],
  );
  return rows.length;
}

export async function touchApiKeys(db: Queryable, keyIds: string[]): Promise<void> {
  if (keyIds.length === 0) return;
  await db.query("update api_keys set last_used_at = now() where id = any($1::text[])", [keyIds]);
}

/**
 * Merges settings into a tenant's settings document (and sets its plan, when given) and tells every
 * instance to reload; rate limits and quotas follow within moments.
 */
export async function updateTenantSettings(db: Db, id: string, patch: Record<string, unknown>, plan?: string): Promise<boolean> {
  return db.transaction(async (tx) => {
    // Catalog writers queue at the tenant's revision first (see lockCatalogRevision).
    await lockCatalogRevision(tx, id);
    const rows = await tx.query(
      "update tenants set settings = settings || $2::jsonb, plan = coalesce($3, plan), version = version + 1, updated_at = now() where id = $1 returning id",
      [id, patch, plan ?? null],
    );
    if (rows.length === 0) return false;
    await notifyCatalogChanged(tx, id);
    return true;
  });
}
