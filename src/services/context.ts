// What every service function needs, built once by the composition root, and what each call carries.

import { MemoryCapCounters, RedisCapCounters } from "../store/cap-counters.ts";
import { Caps } from "./caps.ts";
import type { Cluster, Redis } from "ioredis";
import type { Config } from "../config.ts";
import type { CompiledCatalog } from "../decisioning/catalog.ts";
import type { CustomerProfile } from "../decisioning/engine.ts";
import { prepareCandidateLists } from "../decisioning/engine.ts";
import { PropensityModel } from "../decisioning/propensity.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../metrics.ts";
import { LoadingCache } from "../store/cache.ts";
import type { Db } from "../store/db.ts";
import { InteractionWriter, loadStats } from "../store/interactions.ts";
import { batchedLoader } from "../store/batched-load.ts";
import { loadProfiles } from "../store/profiles.ts";
import { DecisionWriter } from "../store/decisions.ts";
import { TraceWriter } from "../store/traces.ts";
import type { AuthContext } from "./auth.ts";
import { createCatalogCache, runInSlices } from "./catalogs.ts";
import { RequestLog } from "../request-log.ts";
import { LoopStalls } from "./loop-stalls.ts";
import { TenantLimits } from "./limits.ts";

/**
 * How old a cached catalog may be when a request names something it lacks before it is re-read. Changes
 * made through the service arrive by NOTIFY anyway; this covers the moment before one lands.
 */
export const CATALOG_RECHECK_MS = 1_000;
/** Profile reads under way at once; misses beyond them wait and are read together, up to the keys per read. */
const PROFILE_LOADS_IN_FLIGHT = 4;
const PROFILE_LOAD_MAX_KEYS = 500;

export interface CallContext {
  auth: AuthContext;
  requestId: string;
  log: Logger;
  /** The caller's Idempotency-Key (REST header, gRPC/Connect metadata `idempotency-key`), when sent. */
  idempotencyKey?: string;
  /** Decisions counted for the tenant this month, as the rate-limit check saw them; unset when limits are off. */
  decisionsUsed?: number;
}

export interface Clock {
  now(): Date;
}

export interface ServiceDeps {
  config: Config;
  db: Db;
  /**
   * Where reads that tolerate replication lag go (trace reads, the audit log): the replica of
   * DATABASE_READ_URL, else `db`.
   */
  readDb: Db;
  log: Logger;
  metrics: Metrics;
  clock: Clock;
  random: () => number;
  catalogs: LoadingCache<CompiledCatalog>;
  propensity: LoadingCache<PropensityModel>;
  profiles: LoadingCache<CustomerProfile | null>;
  traces: TraceWriter;
  /** What each decision showed and its decision.made.v1 event, written after the answer. */
  decisions: DecisionWriter;
  /** Group commit of interactions; `close()` it at shutdown after the listeners stopped. */
  interactions: InteractionWriter;
  /** Volume-cap counters and per-customer cap holds, shared through Redis when it is configured. */
  caps: Caps;
  /** Per-tenant rate limits and monthly decision quotas; `close()` it at shutdown. */
  limits: TenantLimits;
  /** How long the event loop has been held up: timeouts of reads subtract it. */
  loopStalls: LoopStalls;
  /** Drops a revoked key (by hash) from this instance's key cache; set by the app once the verifier exists. */
  forgetApiKey: (hash: string) => void;
  /** The one line per request of every transport (refusals bounded together across them). */
  requestLog: RequestLog;
}

export function createServiceDeps(opts: {
  config: Config;
  db: Db;
  readDb?: Db;
  log: Logger;
  metrics: Metrics;
  redis?: Redis | Cluster | null;
  clock?: Clock;
  random?: () => number;
}): ServiceDeps {
  const { config, db, log, metrics } = opts;
  const onRefreshError = (cache: string) => (err: unknown) => log.error("cache refresh failed", { cache, err });
  const clock = opts.clock ?? { now: () => new Date() };
  const propensity: LoadingCache<PropensityModel> = new LoadingCache(
    {
      name: "propensity",
      ttlMs: config.statsCacheTtlMs,
      maxEntries: 10_000,
      staleWhileRevalidate: true,
      metrics,
      onRefreshError: onRefreshError("propensity"),
    },
    async (tenantId) => {
      const model = new PropensityModel(await loadStats(db, tenantId));
      // The catalog's candidate lists are prepared for the new statistics before they serve.
      const catalog = catalogs.peek(tenantId);
      if (catalog) await runInSlices(prepareCandidateLists(catalog, model, clock.now()), config.catalogCompileSliceMs);
      return model;
    },
  );
  const catalogs = createCatalogCache({
    db,
    log,
    metrics,
    ttlMs: config.catalogCacheTtlMs,
    sliceMs: config.catalogCompileSliceMs,
    now: () => clock.now(),
    propensityOf: (tenantId) => propensity.get(tenantId),
  });
  // The same ticks measure stalls for timeouts and feed the event-loop delay metric.
  const loopStalls = new LoopStalls(10, (lateMs) => metrics.eventLoopDelay.observe({}, lateMs / 1000));
  return {
    config,
    db,
    readDb: opts.readDb ?? db,
    log,
    metrics,
    clock,
    random: opts.random ?? Math.random,
    catalogs,
    loopStalls,
    forgetApiKey: () => {},
    requestLog: new RequestLog(config.requestLogSampleRate, Math.random, metrics),
    caps: new Caps(
      opts.redis ? new RedisCapCounters(opts.redis, config.redisKeyPrefix) : new MemoryCapCounters(() => clock.now().getTime()),
      {
        holdMs: config.capHoldMs,
        lockWaitMs: config.capLockWaitMs,
        // A lock outlives the longest decision it guards (its history read), then lapses by itself.
        lockMs: Math.max(2_000, 3 * config.policyHistoryTimeoutMs),
        metrics,
        log,
      },
    ),
    limits: new TenantLimits({ config, redis: opts.redis ?? null, catalogs, metrics, log, now: () => clock.now(), loopStalls }),
    propensity,
    profiles: new LoadingCache(
      { name: "profile", ttlMs: config.profileCacheTtlMs, maxEntries: config.profileCacheSize, staleWhileRevalidate: false, metrics },
      // Profiles missed while PROFILE_LOADS_IN_FLIGHT reads are under way are read together in the next.
      batchedLoader<CustomerProfile | null>((keys) => loadProfiles(db, keys), null, {
        maxInFlight: PROFILE_LOADS_IN_FLIGHT,
        maxKeys: PROFILE_LOAD_MAX_KEYS,
      }),
    ),
    interactions: new InteractionWriter(db, {
      maxWaitMs: config.respondBatchMaxWaitMs,
      maxBatch: config.respondBatchMax,
      concurrency: config.respondBatchConcurrency,
      commitTimeoutMs: config.respondCommitTimeoutMs,
      onCommit: (interactions, ok, err) => {
        metrics.interactionCommits.inc({ result: ok ? "ok" : "error" });
        if (ok) metrics.interactionBatchSize.observe({}, interactions);
        else log.warn("interaction commit failed", { err, interactions });
      },
    }),
    traces: new TraceWriter(db, {
      flushMs: config.traceFlushMs,
      maxBatch: 500,
      concurrency: 2,
      maxBuffered: config.traceBufferSize,
      maxAttempts: 3,
      onError: (err, traces, givenUp) => {
        if (givenUp) metrics.tracesDropped.inc({}, traces);
        log.error(givenUp ? "decision traces given up after repeated write failures" : "decision trace write failed; will retry", {
          err,
          traces,
        });
      },
    }),
    decisions: new DecisionWriter(db, {
      flushMs: config.traceFlushMs,
      maxBatch: 500,
      concurrency: 2,
      maxBuffered: config.decisionBufferSize,
      maxAttempts: 5,
      onError: (err, decisions, givenUp) => {
        if (givenUp) metrics.decisionsUnrecorded.inc({ reason: "write_failed" }, decisions);
        log.error(
          givenUp ? "decisions given up after repeated write failures; their events are lost" : "decision write failed; will retry",
          {
            err,
            decisions,
          },
        );
      },
    }),
  };
}
