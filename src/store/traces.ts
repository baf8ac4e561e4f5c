// Decision traces. Recommend hands a trace to the writer and answers at once; the writer inserts buffered
// traces in batches, a few inserts at a time, and reads look in its buffers first, so a returned trace id is
// readable immediately on this instance and within one flush interval on every other. The buffer is
// bounded: when it is full the trace is refused, and Recommend then returns no trace id.

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
  /** Rows per insert statement; a full batch is written without waiting for the timer. */
  maxBatch: number;
  /** Traces held in memory at most (waiting or being written). */
  maxBuffered: number;
  /** Inserts run at once at most. */
  concurrency: number;
  /** Attempts per batch before its traces are given up. */
  maxAttempts: number;
  onError: (err: unknown, traces: number, givenUp: boolean) => void;
}

interface Entry {
  trace: StoredTrace;
  attempts: number;
}

const keyOf = (tenantId: string, traceId: string) => `${tenantId}\u0000${traceId}`;

export class TraceWriter {
  private pending = new Map<string, Entry>();
  private writing = new Map<string, Entry>();
  private timer: ReturnType<typeof setTimeout> | null = null;
  private running: Promise<void> | null = null;

  constructor(
    private readonly db: Db,
    private readonly opts: TraceWriterOptions,
  ) {}

  /** Buffers a trace for writing; false when the buffer is full and the trace was not taken. */
  add(trace: StoredTrace): boolean {
    if (this.pending.size + this.writing.size >= this.opts.maxBuffered) return false;
    this.pending.set(keyOf(trace.tenantId, trace.traceId), { trace, attempts: 0 });
    this.schedule();
    return true;
  }

  peek(tenantId: string, traceId: string): StoredTrace | undefined {
    const key = keyOf(tenantId, traceId);
    return (this.pending.get(key) ?? this.writing.get(key))?.trace;
  }

  get buffered(): number {
    return this.pending.size + this.writing.size;
  }

  /** Writes everything buffered so far; resolves when it is committed (or given up). */
  async flush(): Promise<void> {
    while (this.pending.size > 0 || this.running) {
      await this.drain();
    }
  }

  private schedule(): void {
    if (this.running) return; // the running drain picks new traces up when its insert is done
    if (this.pending.size >= this.opts.maxBatch) void this.drain();
    else this.timer ??= setTimeout(() => void this.drain(), this.opts.flushMs);
  }

  private drain(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.running) return this.running;
    this.running = this.writeAll().finally(() => {
      this.running = null;
      if (this.pending.size > 0) this.schedule();
    });
    return this.running;
  }

  private async writeAll(): Promise<void> {
    while (this.pending.size > 0) {
      this.writing = this.pending;
      this.pending = new Map();
      const entries = [...this.writing.values()];
      const chunks: Entry[][] = [];
      for (let i = 0; i < entries.length; i += this.opts.maxBatch) chunks.push(entries.slice(i, i + this.opts.maxBatch));
      let failed = false;
      // A few inserts at once keep up with bursts: the database parses one batch while we encode the next.
      const worker = async () => {
        for (let chunk = chunks.shift(); chunk; chunk = chunks.shift()) {
          try {
            await insertTraces(
              this.db,
              chunk.map((e) => e.trace),
            );
          } catch (err) {
            failed = true;
            const retry = chunk.filter((e) => ++e.attempts < this.opts.maxAttempts);
            this.opts.onError(err, chunk.length, retry.length === 0);
            for (const e of retry) this.pending.set(keyOf(e.trace.tenantId, e.trace.traceId), e);
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(this.opts.concurrency, chunks.length) }, worker));
      this.writing = new Map();
      // After a failure, wait for the timer instead of hammering a database that just refused.
      if (failed) return;
    }
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
