// The shared state that makes caps exact across instances: volume counters (units spent per cap and
// calendar window, across all customers) and per-customer holds (a short lock while one decision for a
// customer reads and decides, and the slots its answers hold until their impressions are reported).
// In Redis, each step one atomic script on keys that share the tenant's `{hash tag}`, so it works on a
// Redis Cluster; in process memory when no Redis is configured (exact for one instance).

import { randomBytes } from "node:crypto";
import type { Cluster, Redis } from "ioredis";
import type { VolumeClaim } from "../decisioning/policies.ts";
import { LuaScript } from "./rate-window.ts";

/** A slot an answer holds for a customer: an offer it showed, until its impression comes or the hold lapses. */
export interface HeldSlot {
  recommendationId: string;
  offerId: string;
  channelId: string;
  /** Epoch milliseconds (the service's clock) when the answer took it. */
  at: number;
}

export interface ReserveResult {
  /** Per item, whether all its claims were granted (an item's claims are all or nothing). */
  granted: boolean[];
  /** Each counter's units spent after the reservation. */
  used: Map<string, number>;
}

export interface CapCounters {
  /** Reserves the items in order: an item whose claims do not all fit is refused and spends nothing. */
  reserve(tenantId: string, items: VolumeClaim[][]): Promise<ReserveResult>;
  /** Gives back what granted claims spent (an answer that was not sent). */
  release(tenantId: string, claims: VolumeClaim[]): Promise<void>;
  /**
   * Takes the customer's decision lock for `lockMs` and returns the slots held since `since`, or null when
   * another decision holds the lock.
   */
  tryHold(tenantId: string, customerId: string, token: string, lockMs: number, since: number): Promise<HeldSlot[] | null>;
  /** Adds the answer's slots (kept `ttlMs`) and lets the lock go, if it is still this token's. */
  commitHold(tenantId: string, customerId: string, token: string, slots: HeldSlot[], ttlMs: number): Promise<void>;
  /** Drops slots whose answer was not sent. */
  dropSlots(tenantId: string, customerId: string, recommendationIds: string[]): Promise<void>;
}

export const newHoldToken = () => randomBytes(9).toString("base64url");

const encodeSlot = (s: HeldSlot) => `${s.at}|${s.offerId}|${s.channelId}`;

function decodeSlot(recommendationId: string, value: string): HeldSlot | null {
  const [at, offerId, channelId] = value.split("|");
  if (!offerId || !channelId || !Number.isFinite(Number(at))) return null;
  return { recommendationId, offerId, channelId, at: Number(at) };
}

/**
 * KEYS: the counters. ARGV[1] the number of items, then per item its number of claims and per claim the
 * counter's index in KEYS, the limit, the amount and the counter's TTL in ms. Returns {granted per item,
 * units spent per counter}.
 */
const RESERVE = new LuaScript(`
local used = {}
for i = 1, #KEYS do used[i] = tonumber(redis.call('GET', KEYS[i]) or '0') end
local granted = {}
local pos = 2
for it = 1, tonumber(ARGV[1]) do
  local m = tonumber(ARGV[pos])
  pos = pos + 1
  local ok = 1
  for c = 0, m - 1 do
    local k = tonumber(ARGV[pos + c * 4])
    if used[k] + tonumber(ARGV[pos + c * 4 + 2]) > tonumber(ARGV[pos + c * 4 + 1]) then ok = 0 end
  end
  if ok == 1 then
    for c = 0, m - 1 do
      local k = tonumber(ARGV[pos + c * 4])
      local amount = tonumber(ARGV[pos + c * 4 + 2])
      used[k] = used[k] + amount
      redis.call('INCRBY', KEYS[k], amount)
      redis.call('PEXPIRE', KEYS[k], ARGV[pos + c * 4 + 3])
    end
  end
  granted[it] = ok
  pos = pos + m * 4
end
return {granted, used}
`);

/** KEYS: counters; ARGV: the amount to give back to each. A counter never goes below zero. */
const RELEASE = new LuaScript(`
for i = 1, #KEYS do
  if redis.call('DECRBY', KEYS[i], ARGV[i]) < 0 then redis.call('SET', KEYS[i], 0, 'KEEPTTL') end
end
return #KEYS
`);

/**
 * KEYS[1] the customer's lock, KEYS[2] its held slots (a hash: recommendation id → "at|offer|channel").
 * ARGV: token, lock ms, the oldest slot time still held. Returns nil when the lock is taken, else the
 * live slots as a flat list (lapsed ones are removed on the way).
 */
const HOLD = new LuaScript(`
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return false end
local all = redis.call('HGETALL', KEYS[2])
local out = {}
local since = tonumber(ARGV[3])
for i = 1, #all, 2 do
  local at = tonumber(string.match(all[i + 1], '^(%d+)') or '0')
  if at < since then redis.call('HDEL', KEYS[2], all[i]) else
    out[#out + 1] = all[i]
    out[#out + 1] = all[i + 1]
  end
end
return out
`);

/** KEYS as HOLD's; ARGV: token, slots TTL ms, then field/value pairs. */
const COMMIT = new LuaScript(`
if #ARGV > 2 then
  for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
`);

export class RedisCapCounters implements CapCounters {
  constructor(
    private readonly redis: Redis | Cluster,
    private readonly prefix: string,
  ) {}

  private counterKey(tenantId: string, counter: string): string {
    return `${this.prefix}:{${tenantId}}:vol:${counter}`;
  }
  private lockKey(tenantId: string, customerId: string): string {
    return `${this.prefix}:{${tenantId}}:hold:${customerId}`;
  }
  private slotsKey(tenantId: string, customerId: string): string {
    return `${this.prefix}:{${tenantId}}:slots:${customerId}`;
  }

  async reserve(tenantId: string, items: VolumeClaim[][]): Promise<ReserveResult> {
    const index = new Map<string, number>();
    const args: (string | number)[] = [items.length];
    for (const claims of items) {
      args.push(claims.length);
      for (const c of claims) {
        let k = index.get(c.counter);
        if (k === undefined) {
          k = index.size + 1;
          index.set(c.counter, k);
        }
        args.push(k, c.limit, c.amount, c.ttlMs);
      }
    }
    const keys = [...index.keys()].map((c) => this.counterKey(tenantId, c));
    const [granted, used] = (await RESERVE.run(this.redis, keys, args)) as [number[], number[]];
    const counters = [...index.keys()];
    return {
      granted: granted.map((g) => g === 1),
      used: new Map(counters.map((c, i) => [c, Number(used[i] ?? 0)])),
    };
  }

  async release(tenantId: string, claims: VolumeClaim[]): Promise<void> {
    if (claims.length === 0) return;
    await RELEASE.run(
      this.redis,
      claims.map((c) => this.counterKey(tenantId, c.counter)),
      claims.map((c) => c.amount),
    );
  }

  async tryHold(tenantId: string, customerId: string, token: string, lockMs: number, since: number): Promise<HeldSlot[] | null> {
    const out = (await HOLD.run(
      this.redis,
      [this.lockKey(tenantId, customerId), this.slotsKey(tenantId, customerId)],
      [token, lockMs, since],
    )) as string[] | null;
    if (out === null) return null;
    const slots: HeldSlot[] = [];
    for (let i = 0; i + 1 < out.length; i += 2) {
      const s = decodeSlot(out[i] as string, out[i + 1] as string);
      if (s) slots.push(s);
    }
    return slots;
  }

  async commitHold(tenantId: string, customerId: string, token: string, slots: HeldSlot[], ttlMs: number): Promise<void> {
    const args: (string | number)[] = [token, ttlMs];
    for (const s of slots) args.push(s.recommendationId, encodeSlot(s));
    await COMMIT.run(this.redis, [this.lockKey(tenantId, customerId), this.slotsKey(tenantId, customerId)], args);
  }

  async dropSlots(tenantId: string, customerId: string, recommendationIds: string[]): Promise<void> {
    if (recommendationIds.length > 0) await this.redis.hdel(this.slotsKey(tenantId, customerId), ...recommendationIds);
  }
}

/** The same in process memory: what one instance without Redis needs. Time is the caller's clock. */
export class MemoryCapCounters implements CapCounters {
  private readonly counters = new Map<string, { used: number; expiresAt: number }>();
  private readonly locks = new Map<string, { token: string; until: number }>();
  private readonly slots = new Map<string, Map<string, HeldSlot>>();

  constructor(private readonly now: () => number) {}

  async reserve(tenantId: string, items: VolumeClaim[][]): Promise<ReserveResult> {
    const now = this.now();
    const get = (counter: string) => {
      const c = this.counters.get(`${tenantId}\u0000${counter}`);
      return c && c.expiresAt > now ? c.used : 0;
    };
    const granted = items.map((claims) => {
      if (!claims.every((c) => get(c.counter) + c.amount <= c.limit)) return false;
      for (const c of claims)
        this.counters.set(`${tenantId}\u0000${c.counter}`, { used: get(c.counter) + c.amount, expiresAt: now + c.ttlMs });
      return true;
    });
    this.sweep(now);
    return { granted, used: new Map(items.flat().map((c) => [c.counter, get(c.counter)])) };
  }

  async release(tenantId: string, claims: VolumeClaim[]): Promise<void> {
    for (const c of claims) {
      const entry = this.counters.get(`${tenantId}\u0000${c.counter}`);
      if (entry) entry.used = Math.max(0, entry.used - c.amount);
    }
  }

  async tryHold(tenantId: string, customerId: string, token: string, lockMs: number, since: number): Promise<HeldSlot[] | null> {
    const key = `${tenantId}\u0000${customerId}`;
    const now = Date.now();
    const lock = this.locks.get(key);
    if (lock && lock.until > now) return null;
    this.locks.set(key, { token, until: now + lockMs });
    const held = this.slots.get(key);
    if (!held) return [];
    for (const [id, s] of held) if (s.at < since) held.delete(id);
    if (held.size === 0) this.slots.delete(key);
    return [...held.values()];
  }

  async commitHold(tenantId: string, customerId: string, token: string, slots: HeldSlot[]): Promise<void> {
    const key = `${tenantId}\u0000${customerId}`;
    if (slots.length > 0) {
      const held = this.slots.get(key) ?? new Map<string, HeldSlot>();
      for (const s of slots) held.set(s.recommendationId, s);
      this.slots.set(key, held);
    }
    if (this.locks.get(key)?.token === token) this.locks.delete(key);
    this.sweep(this.now());
  }

  async dropSlots(tenantId: string, customerId: string, recommendationIds: string[]): Promise<void> {
    const held = this.slots.get(`${tenantId}\u0000${customerId}`);
    for (const id of recommendationIds) held?.delete(id);
  }

  private sweepAt = 0;
  /** Drops lapsed counters, and slots nobody asked about for a day, now and then. */
  private sweep(now: number): void {
    if (now - this.sweepAt < 60_000) return;
    this.sweepAt = now;
    for (const [k, c] of this.counters) if (c.expiresAt <= now) this.counters.delete(k);
    for (const [k, l] of this.locks) if (l.until <= Date.now()) this.locks.delete(k);
    for (const [k, held] of this.slots) {
      for (const [id, s] of held) if (s.at < now - 86_400_000) held.delete(id);
      if (held.size === 0) this.slots.delete(k);
    }
  }
}
