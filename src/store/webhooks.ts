// Webhooks and their dead-letter lists (migration 010).

import type { Queryable } from "./db.ts";

export interface WebhookRecord {
  tenantId: string;
  id: string;
  url: string;
  events: string[];
  secret: string;
  status: "active" | "paused";
  description: string;
  createdAt: Date;
  updatedAt: Date;
}

const COLUMNS = "tenant_id, id, url, events, secret, status, description, created_at, updated_at";

function toRecord(r: Record<string, unknown>): WebhookRecord {
  return {
    tenantId: r.tenant_id as string,
    id: r.id as string,
    url: r.url as string,
    events: r.events as string[],
    secret: r.secret as string,
    status: r.status as WebhookRecord["status"],
    description: r.description as string,
    createdAt: new Date(r.created_at as string),
    updatedAt: new Date(r.updated_at as string),
  };
}

/** Webhooks a tenant may have at most: each is a delivery queue of its own. */
export const MAX_WEBHOOKS_PER_TENANT = 20;

export async function insertWebhook(tx: Queryable, w: Omit<WebhookRecord, "createdAt" | "updatedAt">): Promise<WebhookRecord> {
  const rows = await tx.query<Record<string, unknown>>(
    `insert into webhooks (tenant_id, id, url, events, secret, status, description)
     values ($1, $2, $3, $4::text[], $5, $6, $7) returning ${COLUMNS}`,
    [w.tenantId, w.id, w.url, w.events, w.secret, w.status, w.description],
  );
  return toRecord(rows[0] as Record<string, unknown>);
}

/** Counts a tenant's webhooks, first taking a lock for the rest of the transaction: two creates cannot both pass the cap. */
export async function countWebhooks(tx: Queryable, tenantId: string): Promise<number> {
  await tx.query("select pg_advisory_xact_lock(hashtext('kaireon.webhooks:' || $1))", [tenantId]);
  const rows = await tx.query<{ n: number }>("select count(*)::int as n from webhooks where tenant_id = $1", [tenantId]);
  return rows[0]?.n ?? 0;
}

export async function getWebhook(db: Queryable, tenantId: string, id: string, forUpdate = false): Promise<WebhookRecord | null> {
  const rows = await db.query<Record<string, unknown>>(
    `select ${COLUMNS} from webhooks where tenant_id = $1 and id = $2${forUpdate ? " for update" : ""}`,
    [tenantId, id],
  );
  return rows[0] ? toRecord(rows[0]) : null;
}

export async function listWebhooks(db: Queryable, tenantId: string): Promise<WebhookRecord[]> {
  const rows = await db.query<Record<string, unknown>>(`select ${COLUMNS} from webhooks where tenant_id = $1 order by created_at, id`, [
    tenantId,
  ]);
  return rows.map(toRecord);
}

/** Every active webhook of every tenant: what the relay delivers to. */
export async function activeWebhooks(db: Queryable): Promise<WebhookRecord[]> {
  const rows = await db.query<Record<string, unknown>>(`select ${COLUMNS} from webhooks where status = 'active' order by tenant_id, id`);
  return rows.map(toRecord);
}

export async function updateWebhookRow(tx: Queryable, w: WebhookRecord): Promise<WebhookRecord> {
  const rows = await tx.query<Record<string, unknown>>(
    `update webhooks set url = $3, events = $4::text[], secret = $5, status = $6, description = $7, updated_at = now()
      where tenant_id = $1 and id = $2 returning ${COLUMNS}`,
    [w.tenantId, w.id, w.url, w.events, w.secret, w.status, w.description],
  );
  return toRecord(rows[0] as Record<string, unknown>);
}

export async function deleteWebhookRow(tx: Queryable, tenantId: string, id: string): Promise<void> {
  await tx.query("delete from webhooks where tenant_id = $1 and id = $2", [tenantId, id]);
  await tx.query("delete from event_cursors where sink = $1", [webhookSink(tenantId, id)]);
}

/** The relay's cursor name for a webhook. */
export const webhookSink = (tenantId: string, id: string) => `webhook:${tenantId}:${id}`;

export interface DeadLetterRecord {
  eventId: string;
  eventType: string;
  body: string;
  attempts: number;
  lastError: string;
  failedAt: Date;
}

export const MAX_DEAD_LETTERS_LISTED = 1_000;

export async function insertDeadLetter(
  db: Queryable,
  tenantId: string,
  webhookId: string,
  d: Omit<DeadLetterRecord, "failedAt">,
): Promise<void> {
  await db.query(
    `insert into webhook_dead_letters (tenant_id, webhook_id, event_id, event_type, body, attempts, last_error)
     values ($1, $2, $3, $4, $5::text::json, $6, $7)
     on conflict (tenant_id, webhook_id, event_id) do update set attempts = excluded.attempts, last_error = excluded.last_error, failed_at = now()`,
    [tenantId, webhookId, d.eventId, d.eventType, d.body, d.attempts, d.lastError],
  );
}

export async function listDeadLetters(db: Queryable, tenantId: string, webhookId: string, eventId?: string): Promise<DeadLetterRecord[]> {
  const rows = await db.query<Record<string, unknown>>(
    `select event_id, event_type, body::text as body, attempts, last_error, failed_at from webhook_dead_letters
      where tenant_id = $1 and webhook_id = $2 and ($3::text is null or event_id = $3)
      order by failed_at, event_id limit ${MAX_DEAD_LETTERS_LISTED}`,
    [tenantId, webhookId, eventId ?? null],
  );
  return rows.map((r) => ({
    eventId: r.event_id as string,
    eventType: r.event_type as string,
    body: r.body as string,
    attempts: Number(r.attempts),
    lastError: r.last_error as string,
    failedAt: new Date(r.failed_at as string),
  }));
}

export async function deleteDeadLetter(db: Queryable, tenantId: string, webhookId: string, eventId: string): Promise<void> {
  await db.query("delete from webhook_dead_letters where tenant_id = $1 and webhook_id = $2 and event_id = $3", [
    tenantId,
    webhookId,
    eventId,
  ]);
}

/** Deletes dead letters that failed before `before`. */
export async function pruneDeadLetters(db: Queryable, before: Date): Promise<number> {
  const rows = await db.query<{ n: number }>(
    "with gone as (delete from webhook_dead_letters where failed_at < $1 returning 1) select count(*)::int as n from gone",
    [before],
  );
  return rows[0]?.n ?? 0;
}
