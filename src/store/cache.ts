// A small read-through cache: entries live for a TTL, concurrent misses share one load, and an expired
// entry is served while its refresh runs in the background (so the hot path rarely waits on I/O).
// Size is bounded; the oldest entries go first.

import type { Metrics } from "../metrics.ts";

export interface LoadingCacheOptions {
  name: string;
  ttlMs: number;
  maxEntries: number;
  /** Serve an expired value while refreshing it. */
  staleWhileRevalidate: boolean;
  metrics: Metrics;
  now?: () => number;
  onRefreshError?: (err: unknown) => void;
}

interface Entry<V> {
  value: V;
  until: number;
  loadedAt: number;
}

export class LoadingCache<V> {
  private readonly entries = new Map<string, Entry<V>>();
  private readonly inflight = new Map<string, Promise<V>>();
  /** Loads queued behind one under way, which may have read the data before a change (see `reload`). */
  private readonly queued = new Map<string, Promise<V>>();
  private readonly now: () => number;
  private generation = 0;
  private readonly hit: () => void;
  private readonly miss: () => void;

  constructor(
    private readonly opts: LoadingCacheOptions,
    private readonly load: (key: string) => Promise<V>,
  ) {
    this.now = opts.now ?? Date.now;
    this.hit = opts.metrics.cache.labelled({ cache: opts.name, result: "hit" });
    this.miss = opts.metrics.cache.labelled({ cache: opts.name, result: "miss" });
  }

  async get(key: string): Promise<V> {
    const e = this.entries.get(key);
    const now = this.now();
    if (e && e.until > now) {
      this.hit();
      return e.value;
    }
    this.miss();
    if (e && this.opts.staleWhileRevalidate) {
      this.refresh(key).catch((err) => this.opts.onRefreshError?.(err));
      return e.value;
    }
    return this.refresh(key);
  }

  /**
   * The value as of at most `maxAgeMs` ago: reloads only an older entry. For callers that suspect the cache
   * is behind (a missing id) without letting every such request — a client's typo, say — cost a reload.
   */
  async getFresh(key: string, maxAgeMs: number): Promise<V> {
    const e = this.entries.get(key);
    if (e && this.now() - e.loadedAt <= maxAgeMs) return e.value;
    return this.refresh(key);
  }

  /** Loads the key now (sharing a load already under way) and stores the result. */
  refresh(key: string): Promise<V> {
    const pending = this.inflight.get(key);
    if (pending) return pending;
    const generation = this.generation;
    const p = this.load(key)
      .then((value) => {
        // A load that started before an invalidation must not put old data back.
        if (generation === this.generation) this.set(key, value);
        return value;
      })
      .finally(() => {
        if (this.inflight.get(key) === p) this.inflight.delete(key);
      });
    this.inflight.set(key, p);
    return p;
  }

  /**
   * Loads the key afresh after a change: a load already under way may have read the data before it, so
   * one more load follows it (however many reloads are asked for meanwhile). The current value keeps
   * serving until the new one is in.
   */
  reload(key: string): Promise<V> {
    const queued = this.queued.get(key);
    if (queued) return queued;
    const pending = this.inflight.get(key);
    if (!pending) return this.refresh(key);
    const next = pending
      .catch(() => undefined)
      .then(() => {
        this.queued.delete(key);
        return this.refresh(key);
      });
    this.queued.set(key, next);
    return next;
  }

  set(key: string, value: V): void {
    this.entries.delete(key);
    if (this.entries.size >= this.opts.maxEntries) this.evictOldest();
    const now = this.now();
    if (this.opts.maxEntries > 0) this.entries.set(key, { value, until: now + this.opts.ttlMs, loadedAt: now });
  }

  /**
   * Drops the oldest 1/64 of the entries (at least one) in one pass. One at a time would cost a scan per
   * insert: a Map's iterator steps over the slots of entries deleted from its front until it is rehashed,
   * which made every insert into a full cache of 100,000 cost about 20 µs.
   */
  private evictOldest(): void {
    let n = Math.max(1, Math.floor(this.opts.maxEntries / 64));
    for (const key of this.entries.keys()) {
      this.entries.delete(key);
      if (--n === 0) break;
    }
  }

  /** The cached value, fresh or stale, without loading. */
  peek(key: string): V | undefined {
    return this.entries.get(key)?.value;
  }

  /** Marks the entry expired: it goes on serving (when stale values may) while the next get reloads it. */
  expire(key: string): void {
    const e = this.entries.get(key);
    if (e) e.until = 0;
  }

  invalidate(key: string): void {
    this.generation++;
    this.entries.delete(key);
    this.inflight.delete(key);
  }
}
