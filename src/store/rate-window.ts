// Sliding-window request counting: one atomic Lua script per check in Redis (shared by every instance),
// and an in-process window of the same shape for when Redis is unset or unreachable.

import { createHash } from "node:crypto";
import type { Cluster, Redis } from "ioredis";

/** What one check decided, in milliseconds; the same shape from Redis and from the in-process window. */
export interface WindowResult {
  allowed: boolean;
  limit: number;
  /** Requests still allowed in the window after this one. */
  remaining: number;
  /** Until the oldest request in the window ages out, i.e. until a slot frees. */
  resetMs: number;
  /** Decisions counted this month, as the window's store last saw them. */
  decisionsUsed: number;
}

/**
 * KEYS[1] the window (sorted set of request times, member unique per request), KEYS[2] this month's decision
 * counter. ARGV: limit, window ms, member, decisions not yet counted (from a failed increment), counter TTL ms.
 * The clock is Redis's own TIME so that instances with skewed clocks still share one window. A refused
 * request is not recorded, so a caller hammering past the limit does not push its own reset further out.
 */
const CHECK_SCRIPT = `
if redis.replicate_commands then pcall(redis.replicate_commands) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local pending = tonumber(ARGV[4])
if pending > 0 then
  redis.call('INCRBY', KEYS[2], pending)
  redis.call('PEXPIRE', KEYS[2], ARGV[5])
end
local used = tonumber(redis.call('GET', KEYS[2]) or '0')
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local n = redis.call('ZCARD', KEYS[1])
local allowed = 0
if n < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  n = n + 1
  allowed = 1
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local reset = window
if oldest[2] then reset = tonumber(oldest[2]) + window - now end
return {allowed, limit - n, reset, used}
`;

/** Counts decisions of this month; the TTL outlives the month so the key cleans itself up. */
const COUNT_SCRIPT = `
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
if n == tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return n
`;

const sha1 = (s: string) => createHash("sha1").update(s).digest("hex");

/** Runs a script by its digest and sends the source only when the server has lost it (NOSCRIPT). */
export class LuaScript {
  private readonly sha: string;
  constructor(private readonly source: string) {
    this.sha = sha1(source);
  }
  async run(redis: Redis | Cluster, keys: string[], args: (string | number)[]): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.includes("NOSCRIPT")) throw err;
      // EVAL runs the script and caches it again for the next EVALSHA (a restarted or flushed Redis).
      return redis.eval(this.source, keys.length, ...keys, ...args);
    }
  }
}

const check = new LuaScript(CHECK_SCRIPT);
const count = new LuaScript(COUNT_SCRIPT);

/** A month's decision counter lives a little over a month, then Redis drops it. */
const COUNTER_TTL_MS = 35 * 86_400_000;

export class RedisWindows {
  private seq = 0;
  private readonly instance = Math.random().toString(36).slice(2, 10);
  constructor(
    private readonly redis: Redis | Cluster,
    private readonly prefix: string,
  ) {}

  /** Keys share the `{tenant}` hash tag so that one script may touch both on a Redis Cluster. */
  windowKey(tenantId: string, bucket: string): string {
    return `${this.prefix}:{${tenantId}}:rl${bucket ? `:${bucket}` : ""}`;
  }
  counterKey(tenantId: string, month: string): string {
    return `${this.prefix}:{${tenantId}}:decisions:${month}`;
  }

  async check(
    tenantId: string,
    bucket: string,
    limit: number,
    windowMs: number,
    month: string,
    pendingDecisions: number,
  ): Promise<WindowResult> {
    const member = `${this.instance}:${++this.seq}`;
    const out = (await check.run(
      this.redis,
      [this.windowKey(tenantId, bucket), this.counterKey(tenantId, month)],
      [limit, windowMs, member, pendingDecisions, COUNTER_TTL_MS],
    )) as number[];
    return {
      allowed: out[0] === 1,
      limit,
      remaining: Math.max(0, Number(out[1])),
      resetMs: Math.max(0, Number(out[2])),
      decisionsUsed: Number(out[3]),
    };
  }

  async countDecisions(tenantId: string, month: string, n: number): Promise<number> {
    return Number(await count.run(this.redis, [this.counterKey(tenantId, month)], [n, COUNTER_TTL_MS]));
  }
}

/** One tenant's window in process memory: request times in arrival order, oldest first. */
class Window {
  times: number[] = [];
  head = 0;
  prune(before: number): void {
    while (this.head < this.times.length && (this.times[this.head] as number) <= before) this.head++;
    // Compact now and then rather than shifting on every expiry.
    if (this.head > 1024 && this.head * 2 > this.times.length) {
      this.times = this.times.slice(this.head);
      this.head = 0;
    }
  }
  get size(): number {
    return this.times.length - this.head;
  }
}

/** The same sliding window per instance: used when Redis is unset, and while Redis is unreachable. */
export class MemoryWindows {
  private readonly windows = new Map<string, Window>();
  constructor(private readonly now: () => number = () => performance.timeOrigin + performance.now()) {}

  check(key: string, limit: number, windowMs: number): Omit<WindowResult, "decisionsUsed"> {
    const now = this.now();
    let w = this.windows.get(key);
    if (!w) {
      w = new Window();
      this.windows.set(key, w);
    }
    w.prune(now - windowMs);
    const allowed = w.size < limit;
    if (allowed) w.times.push(now);
    const oldest = w.size > 0 ? (w.times[w.head] as number) : now;
    return { allowed, limit, remaining: Math.max(0, limit - w.size), resetMs: Math.max(0, oldest + windowMs - now) };
  }

  /** Drops windows that have emptied, so tenants seen once do not stay in memory. */
  sweep(windowMs: number): void {
    const before = this.now() - windowMs;
    for (const [key, w] of this.windows) {
      w.prune(before);
      if (w.size === 0) this.windows.delete(key);
    }
  }
}
