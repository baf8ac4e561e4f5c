// Idempotency keys of Respond: the first result stored under (tenant, key), claimed in the same transaction
// as the interaction it names, so a key exists exactly when its interaction was committed.

import type { Queryable } from "./db.ts";

/** What a write stores under its key when it is the first one to use it. */
export interface IdempotencyClaim {
  key: string;
  /** A stable hash of the request, to tell a retry (same body) from a reuse of the key (another body). */
  requestHash: string;
}

/**
 * What the first request that used a key decided. A retry is the same request (same hash), so its answer
 * is rebuilt from the retry's and these; keys stored before migration 012 hold their whole answer instead.
 */
export interface StoredIdempotentResult {
  requestHash: string;
  interactionId: string;
  /** When the interaction was recorded; null for a key stored with its whole answer. */
  recordedAt: Date | null;
  /** The whole answer, kept only by keys stored before migration 012. */
  response: Record<string, unknown> | null;
}

export interface KeyClaim extends IdempotencyClaim {
  tenantId: string;
  interactionId: string;
  /** ISO 8601, as Date.prototype.toISOString writes it. */
  recordedAt: string;
}

export const idempotencyKeyOf = (tenantId: string, key: string) => `${tenantId}\u0000${key}`;

/**
 * Inserts the keys not yet taken and returns the ones this transaction won. A key held by a concurrent,
 * uncommitted transaction makes this insert wait for it, so two instances never both win a key. Claims
 * must be distinct per (tenant, key) and sorted by it, so concurrent batches take row locks in one order.
 */
export async function claimIdempotencyKeys(tx: Queryable, claims: KeyClaim[]): Promise<Set<string>> {
  if (claims.length === 0) return new Set();
  const rows = await tx.query<{ tenant_id: string; key: string }>(
    `insert into idempotency_keys (tenant_id, key, request_hash, interaction_id, recorded_at)
     select * from jsonb_to_recordset($1::jsonb) as k(tenant_id text, key text, request_hash text, interaction_id text, recorded_at timestamptz)
     on conflict (tenant_id, key) do nothing
     returning tenant_id, key`,
    [
      claims.map((c) => ({
        tenant_id: c.tenantId,
        key: c.key,
        request_hash: c.requestHash,
        interaction_id: c.interactionId,
        recorded_at: c.recordedAt,
      })),
    ],
  );
  return new Set(rows.map((r) => idempotencyKeyOf(r.tenant_id, r.key)));
}

/** The stored results of keys, by idempotencyKeyOf(tenant, key). */
export async function readIdempotencyKeys(
  tx: Queryable,
  keys: { tenantId: string; key: string }[],
): Promise<Map<string, StoredIdempotentResult>> {
  if (keys.length === 0) return new Map();
  const rows = await tx.query<{
    tenant_id: string;
    key: string;
    request_hash: string;
    interaction_id: string;
    recorded_at: Date | string | null;
    response: unknown;
  }>(
    `select i.tenant_id, i.key, i.request_hash, i.interaction_id, i.recorded_at, i.response
       from jsonb_to_recordset($1::jsonb) as k(tenant_id text, key text)
       join idempotency_keys i on i.tenant_id = k.tenant_id and i.key = k.key`,
    [keys.map((k) => ({ tenant_id: k.tenantId, key: k.key }))],
  );
  return new Map(
    rows.map((r) => [
      idempotencyKeyOf(r.tenant_id, r.key),
      {
        requestHash: r.request_hash,
        interactionId: r.interaction_id,
        recordedAt: r.recorded_at === null ? null : new Date(r.recorded_at),
        // Bun.SQL parses jsonb; PGlite does too, but a string is tolerated in case a driver does not.
        response: (typeof r.response === "string" ? JSON.parse(r.response) : r.response) as Record<string, unknown> | null,
      },
    ]),
  );
}

/**
 * Forgets keys stored before `now - retentionMs`, a bounded number of rows per statement so that a large
 * backlog never holds locks or bloats one transaction. Returns how many were deleted. Schedule it
 * periodically (hourly is plenty: a key lives at most retention + interval).
 */
export async function deleteExpiredIdempotencyKeys(db: Queryable, now: Date, retentionMs: number, chunk = 10_000): Promise<number> {
  const before = new Date(now.getTime() - retentionMs);
  let total = 0;
  for (;;) {
    const rows = await db.query<{ n: number }>(
      `with gone as (
         delete from idempotency_keys where (tenant_id, key) in (
           select tenant_id, key from idempotency_keys where created_at < $1 limit $2)
         returning 1)
       select count(*)::int as n from gone`,
      [before, chunk],
    );
    const n = rows[0]?.n ?? 0;
    total += n;
    if (n < chunk) return total;
  }
}
