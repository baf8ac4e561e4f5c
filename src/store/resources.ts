// Generic row access for the catalog resources the admin API manages. Every such table is keyed by
// tenant and one or two id columns, and carries `version` (optimistic concurrency), `created_at`,
// `updated_at` and `deleted_at` (soft delete: interactions, traces and results keep naming the row).
// Table and column names come from the resource definitions in code, never from a caller.

import type { Queryable } from "./db.ts";

export interface TableSpec {
  table: string;
  /** Key columns after tenant_id, in order: ["id"], or ["channel_id", "id"] for placements. */
  keys: string[];
  /** Columns every write sets, besides the keys. */
  columns: string[];
}

export type Row = Record<string, unknown>;

const META = "version, created_at, updated_at, deleted_at";

function selectList(spec: TableSpec): string {
  return [...spec.keys, ...spec.columns].join(", ");
}

/** `k1 = $2 and k2 = $3`, for the key columns after the tenant ($1). */
function keyMatch(spec: TableSpec, from: number): string {
  return spec.keys.map((k, i) => `${k} = $${from + i}`).join(" and ");
}

export async function getRow(
  db: Queryable,
  spec: TableSpec,
  tenantId: string,
  key: string[],
  opts: { lock?: boolean } = {},
): Promise<Row | null> {
  const rows = await db.query<Row>(
    `select ${selectList(spec)}, ${META} from ${spec.table}
      where tenant_id = $1 and ${keyMatch(spec, 2)} and deleted_at is null${opts.lock ? " for update" : ""}`,
    [tenantId, ...key],
  );
  return rows[0] ?? null;
}

export interface ListQuery {
  /** The key of the last row of the previous page; null for the first page. */
  after: string[] | null;
  limit: number;
  /** Column equalities narrowing the list (e.g. offer_id of creatives). */
  where?: Record<string, string>;
}

/** One page of live rows in key order, fetching one more than `limit` to tell whether another page follows. */
export async function listRows(db: Queryable, spec: TableSpec, tenantId: string, q: ListQuery): Promise<{ rows: Row[]; more: boolean }> {
  const params: unknown[] = [tenantId];
  const conditions = ["tenant_id = $1", "deleted_at is null"];
  for (const [column, value] of Object.entries(q.where ?? {})) {
    params.push(value);
    conditions.push(`${column} = $${params.length}`);
  }
  if (q.after) {
    const placeholders = q.after.map((v) => {
      params.push(v);
      return `$${params.length}`;
    });
    conditions.push(`(${spec.keys.join(", ")}) > (${placeholders.join(", ")})`);
  }
  params.push(q.limit + 1);
  const rows = await db.query<Row>(
    `select ${selectList(spec)}, ${META} from ${spec.table} where ${conditions.join(" and ")}
      order by ${spec.keys.join(", ")} limit $${params.length}`,
    params,
  );
  return { rows: rows.slice(0, q.limit), more: rows.length > q.limit };
}

/**
 * Inserts a row, or brings back a deleted row of the same key with the new values (its version keeps
 * growing, so a handle on the old one stays stale). Returns null when a live row has the key.
 */
export async function insertRow(db: Queryable, spec: TableSpec, tenantId: string, values: Row): Promise<Row | null> {
  const columns = [...spec.keys, ...spec.columns];
  const params = [tenantId, ...columns.map((c) => values[c] ?? null)];
  const rows = await db.query<Row>(
    `insert into ${spec.table} as t (tenant_id, ${columns.join(", ")})
     values (${params.map((_, i) => `$${i + 1}`).join(", ")})
     on conflict (tenant_id, ${spec.keys.join(", ")}) do update
       set ${spec.columns.map((c) => `${c} = excluded.${c}`).join(", ")},
           version = t.version + 1, created_at = now(), updated_at = now(), deleted_at = null
       where t.deleted_at is not null
     returning ${selectList(spec)}, ${META}`,
    params,
  );
  return rows[0] ?? null;
}

/** Writes new values over a live row the caller has locked; the version grows by one. */
export async function updateRow(db: Queryable, spec: TableSpec, tenantId: string, key: string[], values: Row): Promise<Row> {
  const params: unknown[] = [tenantId, ...key];
  const sets = spec.columns.map((c) => {
    params.push(values[c] ?? null);
    return `${c} = $${params.length}`;
  });
  const rows = await db.query<Row>(
    `update ${spec.table} set ${sets.join(", ")}, version = version + 1, updated_at = now()
      where tenant_id = $1 and ${keyMatch(spec, 2)} and deleted_at is null
      returning ${selectList(spec)}, ${META}`,
    params,
  );
  const row = rows[0];
  // The caller locked the live row first, so it is still there.
  if (!row) throw new Error(`${spec.table}: locked row vanished`);
  return row;
}

/** Marks a live row deleted; the version grows by one. */
export async function softDeleteRow(db: Queryable, spec: TableSpec, tenantId: string, key: string[]): Promise<Row | null> {
  const rows = await db.query<Row>(
    `update ${spec.table} set deleted_at = now(), version = version + 1, updated_at = now()
      where tenant_id = $1 and ${keyMatch(spec, 2)} and deleted_at is null
      returning ${selectList(spec)}, ${META}`,
    [tenantId, ...key],
  );
  return rows[0] ?? null;
}

/** Ids of live rows whose `column` equals `value` (up to `limit`), e.g. the offers of a category. */
export async function liveReferences(
  db: Queryable,
  table: string,
  tenantId: string,
  where: Record<string, string>,
  limit = 5,
): Promise<string[]> {
  const entries = Object.entries(where);
  const rows = await db.query<{ id: string }>(
    `select id from ${table} where tenant_id = $1 and deleted_at is null and ${entries.map(([c], i) => `${c} = $${i + 2}`).join(" and ")}
      order by id limit ${Math.floor(limit)}`,
    [tenantId, ...entries.map(([, v]) => v)],
  );
  return rows.map((r) => r.id);
}

/** Soft-deletes every live row matching, returning their ids (an offer's creatives go with it). */
export async function softDeleteWhere(db: Queryable, table: string, tenantId: string, where: Record<string, string>): Promise<string[]> {
  const entries = Object.entries(where);
  const rows = await db.query<{ id: string }>(
    `update ${table} set deleted_at = now(), version = version + 1, updated_at = now()
      where tenant_id = $1 and deleted_at is null and ${entries.map(([c], i) => `${c} = $${i + 2}`).join(" and ")}
      returning id`,
    [tenantId, ...entries.map(([, v]) => v)],
  );
  return rows.map((r) => r.id);
}
