// Decision traces. Recommend hands a trace to the writer and answers at once; the writer inserts buffered
// traces in batches, a few inserts at a time, and reads look in its buffers first, so a returned trace id is
// readable immediately on this instance and within one flush interval on every other. The buffer is
// bounded: when it is full the trace is refused, and Recommend then returns no trace id.

import { BatchWriter, type BatchWriterOptions } from "./batch-writer.ts";
import type { Db, Queryable } from "./db.ts";

export interface StoredTrace {
  tenantId: string;
  traceId: string;
  customerId: string;
  decisionFlowId: string;
  body: Record<string, unknown>;
  createdAt: Date;
  expiresAt: Date;
}

export type TraceWriterOptions = BatchWriterOptions;

const keyOf = (tenantId: string, traceId: string) => `${tenantId}\u0000${traceId}`;

export class TraceWriter extends BatchWriter<StoredTrace> {
  constructor(db: Db, opts: TraceWriterOptions) {
    super(db, opts, (t) => keyOf(t.tenantId, t.traceId), insertTraces);
  }

  peek(tenantId: string, traceId: string): StoredTrace | undefined {
    return this.find(keyOf(tenantId, traceId));
  }
}

async function insertTraces(db: Queryable, batch: StoredTrace[]): Promise<void> {
  await db.query(
    `insert into decision_traces (tenant_id, trace_id, customer_id, decision_flow_id, body, created_at, expires_at)
     select * from json_to_recordset($1::json) as t(
       tenant_id text, trace_id text, customer_id text, decision_flow_id text, body json, created_at timestamptz, expires_at timestamptz)
     on conflict do nothing`,
    [
      batch.map((t) => ({
        tenant_id: t.tenantId,
        trace_id: t.traceId,
        customer_id: t.customerId,
        decision_flow_id: t.decisionFlowId,
        body: t.body,
        created_at: t.createdAt.toISOString(),
        expires_at: t.expiresAt.toISOString(),
      })),
    ],
  );
}

export async function readTrace(db: Queryable, tenantId: string, traceId: string, now: Date): Promise<Record<string, unknown> | null> {
  const rows = await db.query<{ body: Record<string, unknown> }>(
    "select body from decision_traces where tenant_id = $1 and trace_id = $2 and expires_at > $3",
    [tenantId, traceId, now],
  );
  return rows[0]?.body ?? null;
}

/** A customer's unexpired traces, newest first, after the (created_at, trace_id) of `after`. */
export async function listTraces(
  db: Queryable,
  q: { tenantId: string; customerId: string; now: Date; limit: number; after: { createdAt: string; traceId: string } | null },
): Promise<{ body: Record<string, unknown>; createdAt: Date; traceId: string }[]> {
  const rows = await db.query<{ body: Record<string, unknown>; created_at: string; trace_id: string }>(
    `select body, created_at, trace_id from decision_traces
      where tenant_id = $1 and customer_id = $2 and expires_at > $3
        and ($4::timestamptz is null or (created_at, trace_id) < ($4::timestamptz, $5::text))
      order by created_at desc, trace_id desc
      limit $6`,
    [q.tenantId, q.customerId, q.now, q.after?.createdAt ?? null, q.after?.traceId ?? null, q.limit],
  );
  return rows.map((r) => ({ body: r.body, createdAt: new Date(r.created_at), traceId: r.trace_id }));
}
