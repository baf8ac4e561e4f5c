// Buffered batch writes for what a decision leaves behind (traces, recommendations, decision events): the
// caller hands an item over and answers at once; the writer inserts buffered items in batches, a few
// inserts at a time, and keeps each item readable from memory until it is committed. The buffer is bounded:
// when it is full the item is refused and the caller says so.

import type { Db } from "./db.ts";

export interface BatchWriterOptions {
  flushMs: number;
  /** Items per insert; a full batch is written without waiting for the timer. */
  maxBatch: number;
  /** Items held in memory at most (waiting or being written). */
  maxBuffered: number;
  /** Inserts run at once at most. */
  concurrency: number;
  /** Attempts per batch before its items are given up. */
  maxAttempts: number;
  onError: (err: unknown, items: number, givenUp: boolean) => void;
}

interface Entry<T> {
  item: T;
  attempts: number;
}

export class BatchWriter<T> {
  private pending = new Map<string, Entry<T>>();
  private writing = new Map<string, Entry<T>>();
  private timer: ReturnType<typeof setTimeout> | null = null;
  private running: Promise<void> | null = null;

  constructor(
    protected readonly db: Db,
    protected readonly opts: BatchWriterOptions,
    private readonly keyOf: (item: T) => string,
    private readonly insert: (db: Db, batch: T[]) => Promise<void>,
  ) {}

  /** Buffers an item for writing; false when the buffer is full and the item was not taken. */
  add(item: T): boolean {
    if (this.pending.size + this.writing.size >= this.opts.maxBuffered) return false;
    this.pending.set(this.keyOf(item), { item, attempts: 0 });
    this.schedule();
    return true;
  }

  /** The item under `key` while it is still buffered. */
  protected find(key: string): T | undefined {
    return (this.pending.get(key) ?? this.writing.get(key))?.item;
  }

  /** Told of items that leave the buffer, written or given up. */
  protected settled(_items: T[]): void {}

  get buffered(): number {
    return this.pending.size + this.writing.size;
  }

  /** More than half the buffer is taken: a producer that can wait (a batch) should, before it adds more. */
  get crowded(): boolean {
    return this.buffered * 2 >= this.opts.maxBuffered;
  }

  /** Writes everything buffered so far; resolves when it is committed (or given up). */
  async flush(): Promise<void> {
    while (this.pending.size > 0 || this.running) {
      await this.drain();
    }
  }

  private schedule(): void {
    if (this.running) return; // the running drain picks new items up when its insert is done
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
      const chunks: Entry<T>[][] = [];
      for (let i = 0; i < entries.length; i += this.opts.maxBatch) chunks.push(entries.slice(i, i + this.opts.maxBatch));
      let failed = false;
      const done: T[] = [];
      // A few inserts at once keep up with bursts: the database parses one batch while we encode the next.
      const worker = async () => {
        for (let chunk = chunks.shift(); chunk; chunk = chunks.shift()) {
          try {
            await this.insert(
              this.db,
              chunk.map((e) => e.item),
            );
            for (const e of chunk) done.push(e.item);
          } catch (err) {
            failed = true;
            const retry = chunk.filter((e) => ++e.attempts < this.opts.maxAttempts);
            this.opts.onError(err, chunk.length, retry.length === 0);
            for (const e of retry) this.pending.set(this.keyOf(e.item), e);
            for (const e of chunk) if (e.attempts >= this.opts.maxAttempts) done.push(e.item);
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(this.opts.concurrency, chunks.length) }, worker));
      this.writing = new Map();
      this.settled(done);
      // After a failure, wait for the timer instead of hammering a database that just refused.
      if (failed) return;
    }
  }
}
