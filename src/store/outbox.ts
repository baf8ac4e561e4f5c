// The transactional outbox (migration 010): events are inserted in the transaction of what they report and
// read back by the relay (events/relay.ts) in the order of the transactions that wrote them.

import type { Queryable } from "./db.ts";

/** An event as it leaves the service: `{id, type, tenantId, occurredAt, data}` (proto kaireon.v1.Event). */
export interface OutboxEvent {
  id: string;
  type: EventType;
  tenantId: string;
  /** The customer it concerns: delivery keeps each customer's events in order. */
  customerId: string;
  occurredAt: Date;
  /** The type's message in its JSON form. */
  data: Record<string, unknown>;
}

export const EVENT_TYPES = ["decision.made.v1", "interaction.recorded.v1"] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/**
 * Writes events in the transaction of what they report. Each row keeps only the event's data as `body`
 * (the rest of the event is in the row's columns; `storedEventJson` puts it back together).
 */
export async function insertEvents(tx: Queryable, events: OutboxEvent[]): Promise<void> {
  if (events.length === 0) return;
  await tx.query(
    // The rows are read as jsonb (cheaper to take apart than json), each body as its own JSON text: jsonb
    // would reorder the data's keys, and the body is sent as it is stored.
    `insert into outbox_events (id, tenant_id, type, customer_id, occurred_at, body, data_only)
     select e.id, e.tenant_id, e.type, e.customer_id, e.occurred_at, e.body::json, true
       from jsonb_to_recordset($1::jsonb) as e(id text, tenant_id text, type text, customer_id text, occurred_at timestamptz, body text)`,
    [
      events.map((e) => ({
        id: e.id,
        tenant_id: e.tenantId,
        type: e.type,
        customer_id: e.customerId,
        occurred_at: e.occurredAt.toISOString(),
        body: JSON.stringify(e.data),
      })),
    ],
  );
}

/**
 * The JSON text of a stored event, `{id, type, tenantId, occurredAt, data}`: from the row's columns and its
 * data, or the whole event as a row written before migration 013 kept it.
 */
export function storedEventJson(r: {
  id: string;
  type: string;
  tenantId: string;
  occurredAt: string;
  body: string;
  dataOnly: boolean;
}): string {
  if (!r.dataOnly) return r.body;
  const q = JSON.stringify;
  return `{"id":${q(r.id)},"type":${q(r.type)},"tenantId":${q(r.tenantId)},"occurredAt":${q(r.occurredAt)},"data":${r.body}}`;
}

/** A position in the outbox: the writing transaction's id and the row's sequence number within it. */
export interface OutboxPosition {
  xid: string;
  seq: string;
}

export interface StoredEvent extends OutboxPosition {
  id: string;
  tenantId: string;
  type: EventType;
  customerId: string;
  body: string;
}

/** The position before every event a new destination should receive: nothing committed later is behind it. */
export async function currentPosition(db: Queryable): Promise<OutboxPosition> {
  const rows = await db.query<{ xid: string }>("select pg_snapshot_xmin(pg_current_snapshot())::text as xid");
  return { xid: rows[0]?.xid ?? "0", seq: "0" };
}

/**
 * Events after `from`, in delivery order, of transactions that can no longer commit behind it; filtered by
 * tenant and types when given.
 */
export async function readEvents(
  db: Queryable,
  from: OutboxPosition,
  limit: number,
  filter?: { tenantId: string; types: string[] },
): Promise<StoredEvent[]> {
  const columns = `xid::text as xid, seq::text as seq, id, tenant_id, type, customer_id, body::text as body, data_only,
    to_char(occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as occurred_at`;
  const ready = "(xid, seq) > ($1::xid8, $2::bigint) and xid < pg_snapshot_xmin(pg_current_snapshot())";
  // A tenant's events are read by their own index: a quiet tenant's webhook does not scan the others'.
  const rows = filter
    ? await db.query<Record<string, unknown>>(
        `select ${columns} from outbox_events where tenant_id = $4 and ${ready} and type = any($5::text[])
          order by tenant_id, xid, seq limit $3`,
        [from.xid, from.seq, limit, filter.tenantId, filter.types],
      )
    : await db.query<Record<string, unknown>>(`select ${columns} from outbox_events where ${ready} order by xid, seq limit $3`, [
        from.xid,
        from.seq,
        limit,
      ]);
  return rows.map((r) => {
    const event = { id: r.id as string, tenantId: r.tenant_id as string, type: r.type as EventType, customerId: r.customer_id as string };
    const body = storedEventJson({
      ...event,
      occurredAt: r.occurred_at as string,
      body: r.body as string,
      dataOnly: r.data_only as boolean,
    });
    return { xid: r.xid as string, seq: r.seq as string, ...event, body };
  });
}

export async function readCursor(db: Queryable, sink: string): Promise<OutboxPosition | null> {
  const rows = await db.query<{ xid: string; seq: string }>(
    "select xid::text as xid, seq::text as seq from event_cursors where sink = $1",
    [sink],
  );
  return rows[0] ?? null;
}

export async function saveCursor(db: Queryable, sink: string, at: OutboxPosition): Promise<void> {
  await db.query(
    `insert into event_cursors (sink, xid, seq) values ($1, $2::xid8, $3::bigint)
     on conflict (sink) do update set xid = excluded.xid, seq = excluded.seq, updated_at = now()`,
    [sink, at.xid, at.seq],
  );
}

/**
 * Moves a destination's cursor forward to `at`, only while `holder` holds the relay lease `lease` (an
 * instance that lost it while delivering must not move a cursor the new holder owns), only forward, and
 * for a webhook only while it exists. False when it was not saved.
 */
export async function advanceCursor(
  db: Queryable,
  sink: string,
  at: OutboxPosition,
  fence: { lease: string; holder: string; webhook?: { tenantId: string; id: string } },
): Promise<boolean> {
  const rows = await db.query(
    `insert into event_cursors (sink, xid, seq)
     select $1, $2::xid8, $3::bigint
      where exists (select 1 from maintenance_leases where name = $4 and holder = $5 and expires_at > now())
        and ($6::text is null or exists (select 1 from webhooks where tenant_id = $6 and id = $7))
     on conflict (sink) do update set xid = excluded.xid, seq = excluded.seq, updated_at = now()
      where (event_cursors.xid, event_cursors.seq) < (excluded.xid, excluded.seq)
     returning 1`,
    [sink, at.xid, at.seq, fence.lease, fence.holder, fence.webhook?.tenantId ?? null, fence.webhook?.id ?? null],
  );
  return rows.length > 0;
}

const PRUNE_CHUNK = 5_000;

/**
 * Deletes what no destination will read, a chunk per statement: every event behind the position of the
 * destination furthest behind (with no destination at all, every event of a finished transaction: a
 * destination created later starts from its creation), and every event that occurred before `before`
 * whatever is behind. Returns how many went, by cause.
 */
export async function pruneEvents(db: Queryable, before: Date): Promise<{ delivered: number; expired: number }> {
  const chunks = async (sql: string, params: unknown[]) => {
    let total = 0;
    for (;;) {
      const rows = await db.query<{ n: number }>(`with gone as (${sql} returning 1) select count(*)::int as n from gone`, params);
      const n = rows[0]?.n ?? 0;
      total += n;
      if (n < PRUNE_CHUNK) return total;
    }
  };
  const [last] = await db.query<{ xid: string; seq: string }>(
    "select xid::text as xid, seq::text as seq from event_cursors order by xid, seq limit 1",
  );
  const delivered = last
    ? await chunks(
        `delete from outbox_events where (xid, seq) in (
           select xid, seq from outbox_events where (xid, seq) <= ($1::xid8, $2::bigint) order by xid, seq limit ${PRUNE_CHUNK})`,
        [last.xid, last.seq],
      )
    : await chunks(
        `delete from outbox_events where (xid, seq) in (
           select xid, seq from outbox_events where xid < pg_snapshot_xmin(pg_current_snapshot()) order by xid, seq limit ${PRUNE_CHUNK})`,
        [],
      );
  const expired = await chunks(
    `delete from outbox_events where ctid = any(array(select ctid from outbox_events where occurred_at < $1 limit ${PRUNE_CHUNK}))`,
    [before],
  );
  return { delivered, expired };
}
