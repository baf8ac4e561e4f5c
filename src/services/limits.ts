// Per-tenant rate limits and monthly decision quotas (SPEC §6), transport-free: the REST layer and the
// Connect interceptor call `check` once per authenticated call; Recommend enforces the quota and counts.
//
// Quota accounting: the check script returns this month's counter with the rate decision (no extra round
// trip), Recommend refuses when it has reached the quota, and a non-empty answer sends a fire-and-forget
// increment before the answer leaves. Overshoot is therefore bounded by the Recommends already past their
// check, across all instances, when the counter reaches the quota (those in flight at that moment): each
// was admitted on a count below the quota and still counts. Sequential calls on one instance are exact,
// because the increment is queued on the same connection ahead of the next check.

import type { Cluster, Redis } from "ioredis";
import type { LoopStalls } from "./loop-stalls.ts";
import type { Config } from "../config.ts";
import type { CompiledCatalog } from "../decisioning/catalog.ts";
import type { TenantSettings } from "../decisioning/definitions.ts";
import { AppError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import type { LoadingCache } from "../store/cache.ts";
import { MemoryWindows, RedisWindows, type WindowResult } from "../store/rate-window.ts";

/** Requests per window by plan; enterprise (and any tenant) can be given its own in its settings. */
export const PLAN_RATE_LIMITS: Record<string, number> = { community: 100, professional: 1_000 };
export const PLAN_MONTHLY_QUOTAS: Record<string, number> = { community: 10_000, professional: 500_000 };

/**
 * The windows of a tenant (SPEC §6): decisions (Recommend and decision traces), responds, and
 * administration (everything else), each with its plan's limit or the tenant's own, so that neither
 * Respond traffic nor administration ever spends the decision budget.
 */
export type LimitBucket = "decide" | "respond" | "admin";

/** The bucket's part of the Redis window key; decisions keep the key they always had. */
const BUCKET_KEYS: Record<LimitBucket, string> = { decide: "", respond: "respond", admin: "admin" };

export interface LimitCheck {
  /** Headers for the answer, success or not: RateLimit-Policy and RateLimit. */
  headers: Record<string, string>;
  /** Decisions counted for the tenant this month (UTC), for Recommend's quota check. */
  decisionsUsed: number;
}

const UNLIMITED: LimitCheck = { headers: {}, decisionsUsed: 0 };

class RedisTimeout extends Error {}

/** How much longer than RATE_LIMIT_REDIS_TIMEOUT_MS of wall-clock time a busy process waits for Redis. */
const REDIS_WALL_CLOCK_FACTOR = 20;

/** A deadline in wall-clock time, that still gives pending I/O one turn of the loop when it is due. */
function plainDeadline(ms: number): { reached: Promise<void>; cancel(): void } {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const reached = new Promise<void>((resolve) => {
    timer = setTimeout(() => setImmediate(resolve), ms);
  });
  return { reached, cancel: () => clearTimeout(timer) };
}

/** The calendar month (UTC) a decision counts in. */
export function monthOf(date: Date): string {
  return date.toISOString().slice(0, 7);
}

/**
 * Decision counts go to Redis at most this often per counter (a busy instance makes a few calls a second,
 * not one per decision); a rate-limit check carries the counts waiting meanwhile, so none is overlooked.
 */
const COUNT_INTERVAL_MS = 20;

export class TenantLimits {
  private readonly memory = new MemoryWindows();
  private readonly redisWindows: RedisWindows | null;
  /** Decisions this instance counted that Redis has not (Redis unset, or the increment failed). */
  private readonly uncounted = new Map<string, number>();
  /**
   * Counters with an increment in flight, and the decisions counted since (sent when it returns, or
   * carried by a check sent before that).
   */
  private readonly counting = new Map<string, number>();
  /** Increments in flight and the timers of the counts waiting for their interval, for close(). */
  private readonly increments = new Set<Promise<unknown>>();
  private readonly countTimers = new Map<string, ReturnType<typeof setTimeout>>();
  private closing = false;
  /** This month's counter as Redis last reported it, for quota checks while Redis is unreachable. */
  private readonly lastUsed = new Map<string, number>();
  private redisSkippedUntil = 0;
  private fallingBack = false;
  private lastFallbackLog = 0;
  private readonly sweeper: ReturnType<typeof setInterval>;

  constructor(
    private readonly deps: {
      config: Config;
      redis: Redis | Cluster | null;
      catalogs: LoadingCache<CompiledCatalog>;
      metrics: Metrics;
      log: Logger;
      now?: () => Date;
      /** Measures the Redis timeout in time this process was free to read the answer (see checkRedis). */
      loopStalls?: LoopStalls;
    },
  ) {
    this.redisWindows = deps.redis ? new RedisWindows(deps.redis, deps.config.redisKeyPrefix) : null;
    this.sweeper = setInterval(() => this.memory.sweep(deps.config.rateLimitWindowMs), 60_000);
    this.sweeper.unref?.();
  }

  /** Stops the sweeper and sends the decision counts still waiting (shutdown, before Redis is closed). */
  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.closing = true;
    for (const timer of this.countTimers.values()) clearTimeout(timer);
    this.countTimers.clear();
    for (const [counterKey, n] of this.counting) {
      const sep = counterKey.indexOf("\u0000");
      if (n > 0) this.sendCount(counterKey.slice(0, sep), counterKey.slice(sep + 1), counterKey, n);
    }
    // Bounded: a Redis that does not answer must not hold the shutdown.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const bound = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, 1_000);
    });
    await Promise.race([Promise.allSettled([...this.increments]), bound]);
    clearTimeout(timer);
  }

  /** Whether checks are counted in this process now, because Redis failed or was slow (for the metrics). */
  get usingFallback(): boolean {
    return this.fallingBack;
  }

  private now(): Date {
    return this.deps.now?.() ?? new Date();
  }

  /** The window's limit: the tenant's own for that window, else the operator's override, else the plan's. */
  rateLimit(settings: TenantSettings, bucket: LimitBucket): { bucket: string; limit: number } {
    const own = {
      decide: settings.rateLimitPerMinute,
      respond: settings.respondRateLimitPerMinute,
      admin: settings.adminRateLimitPerMinute,
    }[bucket];
    const { config } = this.deps;
    const limit =
      own ??
      config.rateLimitOverridePerMinute ??
      (settings.plan === "enterprise"
        ? config.enterpriseRateLimitPerMinute
        : (PLAN_RATE_LIMITS[settings.plan] ?? PLAN_RATE_LIMITS.community));
    return { bucket: BUCKET_KEYS[bucket], limit: limit as number };
  }

  monthlyQuota(settings: TenantSettings): number {
    const { config } = this.deps;
    const quota =
      settings.monthlyDecisionQuota ??
      config.monthlyDecisionQuotaOverride ??
      (settings.plan === "enterprise"
        ? config.enterpriseMonthlyDecisionQuota
        : (PLAN_MONTHLY_QUOTAS[settings.plan] ?? PLAN_MONTHLY_QUOTAS.community));
    return quota as number;
  }

  /** Admits one call of a tenant or throws RATE_LIMITED (or UNAVAILABLE when failing closed). */
  async check(tenantId: string, bucketOf: LimitBucket): Promise<LimitCheck> {
    const { config } = this.deps;
    if (!config.rateLimitEnabled) return UNLIMITED;
    const { settings } = await this.deps.catalogs.get(tenantId);
    const { bucket, limit } = this.rateLimit(settings, bucketOf);
    const month = monthOf(this.now());
    const counterKey = `${tenantId}\u0000${month}`;
    let result: WindowResult | null = null;
    if (this.redisWindows && Date.now() >= this.redisSkippedUntil) {
      result = await this.checkRedis(tenantId, bucket, limit, month, counterKey);
    }
    if (!result) {
      if (this.redisWindows && config.rateLimitFailClosed) {
        throw new AppError("UNAVAILABLE", "Rate limits cannot be checked right now; try again shortly", [], { "retry-after": "1" });
      }
      // Alone, an instance allows its share of the limit, so that N instances together stay near it.
      const share = Math.max(1, Math.floor(limit / config.rateLimitFallbackInstances));
      const local = this.memory.check(`${tenantId}\u0000${bucket}`, share, config.rateLimitWindowMs);
      const waiting = this.counting.get(counterKey) ?? 0;
      result = { ...local, decisionsUsed: (this.lastUsed.get(counterKey) ?? 0) + (this.uncounted.get(counterKey) ?? 0) + waiting };
    }
    const headers = this.headersOf(result);
    if (!result.allowed) {
      // Whole seconds rounded up: a caller that waits exactly this long finds a free slot.
      headers["retry-after"] = String(Math.max(1, Math.ceil(result.resetMs / 1000)));
      throw new AppError("RATE_LIMITED", `Rate limit of ${limit} requests per ${this.windowSeconds()} s exceeded`, [], headers);
    }
    return { headers, decisionsUsed: result.decisionsUsed };
  }

  /**
   * Counts one non-empty Recommend answer; never waits for Redis. One increment per counter is in flight
   * at a time, and at most one per COUNT_INTERVAL_MS: decisions counted meanwhile are summed and sent
   * together, so a busy instance (a batch deciding thousands a second) makes a few Redis calls a second.
   */
  countDecision(tenantId: string): void {
    if (!this.deps.config.rateLimitEnabled) return;
    const month = monthOf(this.now());
    const counterKey = `${tenantId}\u0000${month}`;
    if (this.deps.redis?.status !== "ready" && this.redisWindows) {
      // Redis is away (an increment may be stuck until it is back): count here, carried by a later check.
      this.uncounted.set(counterKey, (this.uncounted.get(counterKey) ?? 0) + 1);
      return;
    }
    const waiting = this.counting.get(counterKey);
    if (waiting !== undefined) {
      this.counting.set(counterKey, waiting + 1);
      return;
    }
    this.sendCount(tenantId, month, counterKey, 1);
  }

  private sendCount(tenantId: string, month: string, counterKey: string, n: number): void {
    const keepLocally = (k: number) => this.uncounted.set(counterKey, (this.uncounted.get(counterKey) ?? 0) + k);
    if (!this.redisWindows || this.deps.redis?.status !== "ready") {
      keepLocally(n);
      return;
    }
    this.counting.set(counterKey, 0);
    const sentAt = Date.now();
    // Not sent (connection lost): counted locally and carried to Redis by a later check.
    const increment = this.redisWindows
      .countDecisions(tenantId, month, n)
      .then(
        (total) => this.lastUsed.set(counterKey, total),
        () => keepLocally(n),
      )
      .finally(() => {
        const next = () => {
          const more = this.counting.get(counterKey) ?? 0;
          this.counting.delete(counterKey);
          if (more > 0) this.sendCount(tenantId, month, counterKey, more);
        };
        // At most one increment per COUNT_INTERVAL_MS: what is counted meanwhile waits (a check carries it).
        const wait = sentAt + COUNT_INTERVAL_MS - Date.now();
        if (wait > 0 && !this.closing) {
          this.countTimers.set(
            counterKey,
            setTimeout(() => {
              this.countTimers.delete(counterKey);
              next();
            }, wait),
          );
        } else next();
      });
    this.increments.add(increment);
    increment.finally(() => this.increments.delete(increment));
  }

  /** QUOTA_EXCEEDED, with Retry-After pointing at the start of next month (UTC). */
  quotaExceeded(quota: number): AppError {
    const now = this.now();
    const next = Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1);
    return new AppError("QUOTA_EXCEEDED", `Monthly decision quota of ${quota} reached`, [], {
      "retry-after": String(Math.ceil((next - now.getTime()) / 1000)),
    });
  }

  private windowSeconds(): number {
    return Math.ceil(this.deps.config.rateLimitWindowMs / 1000);
  }

  private headersOf(r: WindowResult): Record<string, string> {
    return {
      "ratelimit-policy": `${r.limit};w=${this.windowSeconds()}`,
      ratelimit: `limit=${r.limit}, remaining=${r.remaining}, reset=${Math.ceil(r.resetMs / 1000)}`,
    };
  }

  /** The shared window's answer, or null when Redis is unreachable or slower than the timeout. */
  private async checkRedis(
    tenantId: string,
    bucket: string,
    limit: number,
    month: string,
    counterKey: string,
  ): Promise<WindowResult | null> {
    const { config, redis } = this.deps;
    if (redis?.status !== "ready") {
      this.fellBack("unreachable", null);
      return null;
    }
    // Decisions not yet in Redis ride with the check, so it never sees fewer than were counted before it:
    // those kept locally, and those waiting for an increment in flight (counting).
    const carried = this.uncounted.get(counterKey) ?? 0;
    const queued = this.counting.get(counterKey) ?? 0;
    const pending = carried + queued;
    // The timeout counts only time this process was free to read the answer: in a burst the loop is busy
    // with the calls themselves and the reply waits in the socket, which is no reason to stop sharing the
    // limit. Wall-clock time is capped at REDIS_WALL_CLOCK_FACTOR times the timeout (and at least 1 s).
    const timeoutMs = config.rateLimitRedisTimeoutMs;
    const deadline =
      this.deps.loopStalls?.deadline(timeoutMs, Math.max(1_000, timeoutMs * REDIS_WALL_CLOCK_FACTOR)) ?? plainDeadline(timeoutMs);
    const timeout = deadline.reached.then(() => {
      throw new RedisTimeout();
    });
    const call = (this.redisWindows as RedisWindows).check(tenantId, bucket, limit, config.rateLimitWindowMs, month, pending);
    try {
      if (carried > 0) this.uncounted.set(counterKey, (this.uncounted.get(counterKey) ?? 0) - carried);
      if (queued > 0) this.counting.set(counterKey, (this.counting.get(counterKey) ?? 0) - queued);
      const result = await Promise.race([call, timeout]);
      this.lastUsed.set(counterKey, result.decisionsUsed);
      if (this.fallingBack) {
        this.fallingBack = false;
        this.deps.log.info("rate limits are shared through Redis again");
      }
      return result;
    } catch (err) {
      // A timed-out script that then fails never ran: what it carried is counted locally again.
      if (err instanceof RedisTimeout) {
        call.catch(() => {
          if (pending > 0) this.uncounted.set(counterKey, (this.uncounted.get(counterKey) ?? 0) + pending);
        });
      } else call.catch(() => {});
      // A timed-out script may still run and count the carried decisions; an error means it never ran.
      if (!(err instanceof RedisTimeout) && pending > 0) this.uncounted.set(counterKey, (this.uncounted.get(counterKey) ?? 0) + pending);
      // While Redis is slow, skip it for a moment rather than make every call wait out the timeout.
      if (err instanceof RedisTimeout) this.redisSkippedUntil = Date.now() + config.rateLimitRedisRetryMs;
      this.fellBack(err instanceof RedisTimeout ? "timeout" : "error", err);
      return null;
    } finally {
      deadline.cancel();
    }
  }

  private fellBack(reason: string, err: unknown): void {
    const { config, metrics, log } = this.deps;
    metrics.rateLimitFallback.inc({ reason, mode: config.rateLimitFailClosed ? "closed" : "open" });
    this.fallingBack = true;
    const now = Date.now();
    if (now - this.lastFallbackLog < config.rateLimitFallbackLogIntervalMs) return;
    this.lastFallbackLog = now;
    log.warn(
      config.rateLimitFailClosed
        ? "Redis unavailable for rate limits; refusing calls (RATE_LIMIT_FAIL_CLOSED)"
        : "Redis unavailable for rate limits; each instance limits on its own until it returns",
      { reason, err: err instanceof Error ? err.message : undefined, timeoutMs: config.rateLimitRedisTimeoutMs },
    );
  }
}
