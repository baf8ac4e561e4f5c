// Decision traces. Recommend hands a trace to the writer and answers at once; the writer inserts the
// buffered traces in one statement every few milliseconds, and reads look in its buffer first, so a
// returned trace id is readable immediately on this instance and within one flush on every other.

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

export interface TraceWriterOptions {
  flushMs: number;
  /** Buffered traces beyond this are flushed at once rather than waiting for the timer. */
  maxBatch: number;
  onError: (err: unknown, lost: number) => void;
}

export class TraceWriter {
  private pending = new Map<string, StoredTrace>();
  private timer: ReturnType<typeof setTimeout> | null = null;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly db: Db,
    private readonly opts: TraceWriterOptions,
  ) {}

  add(trace: StoredTrace): void {
    this.pending.set(`${trace.tenantId}\u0000${trace.traceId}`, trace);
    if (this.pending.size >= this.opts.maxBatch) void this.flush();
    else this.timer ??= setTimeout(() => void this.flush(), this.opts.flushMs);
  }

  peek(tenantId: string, traceId: string): StoredTrace | undefined {
    return this.pending.get(`${tenantId}\u0000${traceId}`);
  }

  /** Writes everything buffered; resolves when it is committed. */
  flush(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    const batch = [...this.pending.values()];
    if (batch.length === 0) return this.flushing;
    this.flushing = this.flushing.then(async () => {
      try {
        await insertTraces(this.db, batch);
      } catch (err) {
        this.opts.onError(err, batch.length);
      } finally {
        for (const t of batch) {
          const key = `${t.tenantId}\u0000${t.traceId}`;
          if (this.pending.get(key) === t) this.pending.delete(key);
        }
      }
    });
    return this.flushing;
  }
}

async function insertTraces(db: Queryable, batch: StoredTrace[]): Promise<void> {
  await db.query(
    `insert into decision_traces (tenant_id, trace_id, customer_id, decision_flow_id, body, created_at, expires_at)
     select * from jsonb_to_recordset($1::jsonb) as t(
       tenant_id text, trace_id text, customer_id text, decision_flow_id text, body json, created_at timestamptz, expires_at timestamptz)
     on conflict (tenant_id, trace_id) do nothing`,
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

export async function deleteExpiredTraces(db: Queryable, now: Date): Promise<number> {
  const rows = await db.query<{ n: number }>(
    "with gone as (delete from decision_traces where expires_at <= $1 returning 1) select count(*)::int as n from gone",
    [now],
  );
  return rows[0]?.n ?? 0;
}
