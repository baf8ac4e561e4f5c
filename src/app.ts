// Builds a running service from a configuration: database (with migrations and the demo seed), Redis,
// the service dependencies and both listeners. main.ts calls it for the process; tests call it in-process.

import { hostname } from "node:os";
import Redis, { Cluster } from "ioredis";
import type { Config } from "./config.ts";
import { DEMO_TENANT, seedDemo } from "./demo.ts";
import { randomBase62 } from "./ids.ts";
import { createLogger, type Logger } from "./log.ts";
import { gitCommitOf, type Histogram, Metrics } from "./metrics.ts";
import { ApiKeyVerifier } from "./services/auth.ts";
import { createServiceDeps, type ServiceDeps } from "./services/context.ts";
import { type CallKind, type Db, openEmbedded, openPostgres } from "./store/db.ts";
import { CATALOG_CHANNEL } from "./store/flows.ts";
import { CATALOG_CHANGE_RETENTION_MS, pruneCatalogChanges } from "./store/catalog.ts";
import { deleteExpiredIdempotencyKeys } from "./store/idempotency-keys.ts";
import { migrate, pendingMigrations } from "./store/migrate.ts";
import { EventRelay } from "./events/relay.ts";
import { natsStream, redisStream } from "./events/streams.ts";
import { maintainPartitions } from "./store/partitions.ts";
import { ACCESS_CHANNEL, countTenants } from "./store/tenants.ts";
import { type ControlSocket, startControlSocket } from "./transport/control-socket.ts";
import { type Listeners, startListeners } from "./transport/server.ts";

export interface App {
  config: Config;
  deps: ServiceDeps;
  listeners: Listeners;
  /** The demo tenant's key when this start created it. */
  demoApiKey: string | null;
  /** Resolves when the partition maintenance round under way (the first starts with the service) is done. */
  maintenanceIdle(): Promise<void>;
  /** The event relay of this instance (null with EVENT_RELAY=false); it delivers while it holds the lease. */
  relay: EventRelay | null;
  stop(): Promise<void>;
}

export async function openDatabase(config: Config, log?: Logger, metrics?: Metrics): Promise<Db> {
  if (!config.databaseUrl) return openEmbedded(config.dataDir);
  let busyLoggedAt = Number.NEGATIVE_INFINITY;
  const calls = metrics?.dbQueryDuration;
  return openPostgres({
    url: config.databaseUrl,
    poolSize: config.databasePoolSize,
    // Through a transaction-mode pooler: no prepared statements, and LISTEN on the direct connection.
    prepare: !config.databaseDirectUrl,
    listenUrl: config.databaseDirectUrl,
    maxQueued: config.databaseQueueLimit,
    onCall: calls && callTimer(calls),
    onAvailability: (available, cause) => {
      if (available) log?.info("database reachable again");
      else log?.error("database unreachable: calls that need it answer 503 UNAVAILABLE until it answers again", { err: cause });
    },
    onBusy: (err) => {
      // Once per ten seconds at most: under a flood each refused call would say the same.
      if (performance.now() - busyLoggedAt < 10_000) return;
      busyLoggedAt = performance.now();
      log?.warn("database refused calls for want of resources; they answer 503 UNAVAILABLE", { err });
    },
    onListenerError: (err) => log?.error("database notification handler failed", { err }),
  });
}

export async function startApp(config: Config, log: Logger = createLogger(config.logLevel)): Promise<App> {
  if (config.pepperIsDevelopment) {
    log.warn(
      "API_KEY_PEPPER is not set: using the development pepper. Set it before storing real keys; keys made under one pepper stop working under another.",
    );
  }
  const metrics = new Metrics({ commit: config.buildCommit ?? gitCommitOf(new URL("..", import.meta.url).pathname) });
  const db = await openDatabase(config, log, metrics);
  const applied = await prepareSchema(db, config, log);
  log.info("database ready", { kind: db.kind, migrationsApplied: applied });

  let demoApiKey: string | null = null;
  if (config.seedDemo && (await countTenants(db)) === 0) {
    try {
      demoApiKey = (await seedDemo(db, { pepper: config.apiKeyPepper, apiKey: config.demoApiKey })).apiKey;
      log.info("demo tenant created", { tenant: DEMO_TENANT });
    } catch (err) {
      // Another instance seeding the same empty database at the same moment wins; that is fine.
      if ((await countTenants(db)) === 0) throw err;
    }
  }

  const redis = connectRedis(config, log);
  if (redis) {
    timeRedisCommands(redis, metrics);
    await redis.connect().catch((err) => log.warn("redis not reachable at start", { err: err.message }));
  }

  if (!config.operatorKeyHash)
    log.info("OPERATOR_API_KEY is not set: the operator API (/api/v1/tenants, OperatorService) refuses every call");
  // Reads that tolerate lag may go to a replica; it is never migrated, and a small pool is enough.
  const readDb = config.databaseReadUrl
    ? openPostgres({ url: config.databaseReadUrl, poolSize: Math.max(2, Math.ceil(config.databasePoolSize / 2)) })
    : db;
  const deps = createServiceDeps({ config, db, readDb, log, metrics, redis });
  deps.loopStalls.start();
  if (db.pool) metrics.watchPool(db.pool);
  if (redis) {
    metrics.collect(() => {
      metrics.redisUp.set({}, redis.status === "ready" ? 1 : 0);
      metrics.rateLimitRedisFallback.set({}, deps.limits.usingFallback ? 1 : 0);
    });
  }
  const verifier = new ApiKeyVerifier(db, metrics, {
    pepper: config.apiKeyPepper,
    operatorKeyHash: config.operatorKeyHash,
    ttlMs: config.apiKeyCacheTtlMs,
    maxEntries: config.apiKeyCacheSize,
    maxMisses: config.apiKeyMissCacheSize,
  });
  deps.forgetApiKey = (hash) => verifier.forget(hash);
  const probe = {
    async ready() {
      const checks: Record<string, string> = {};
      checks.database = await db.query("select 1").then(
        () => "ok",
        (err: Error) => err.message,
      );
      if (redis) {
        checks.redis = await redis.ping().then(
          () => "ok",
          (err: Error) => err.message,
        );
      }
      return checks;
    },
    details: () => ({
      // Shared through Redis, or counted here alone while Redis fails (each instance then allows its share).
      rateLimits: !redis ? "per-instance (no Redis configured)" : deps.limits.usingFallback ? "per-instance (Redis unavailable)" : "shared",
    }),
  };
  // Catalog and flow changes reach every instance within moments, not at the cache's expiry.
  await db
    .listen(CATALOG_CHANNEL, (tenantId) => {
      // The previous catalog keeps serving while the new one is compiled.
      deps.catalogs.reload(tenantId).catch((err) => log.warn("catalog reload failed", { tenantId, err }));
    })
    .catch((err) => log.warn("catalog change notifications unavailable; relying on CATALOG_CACHE_TTL_MS", { err }));
  // So do revoked keys and suspended tenants: the database announces them (migration 009's triggers).
  await db
    .listen(ACCESS_CHANNEL, (tenantId) => verifier.forgetTenant(tenantId))
    .catch((err) => log.warn("access change notifications unavailable; relying on API_KEY_CACHE_TTL_MS", { err }));
  const listeners = await startListeners(deps, verifier, probe);
  // The embedded database is this process's alone: the command line runs its commands through it.
  const control: ControlSocket | null = db.kind === "embedded" ? startControlSocket(deps, config.dataDir) : null;

  const maintenance = partitionMaintenance(db, config, metrics, log);
  maintenance.run();
  const stream =
    config.eventStream === "redis" && redis ? redisStream(redis, config) : config.eventStream === "nats" ? natsStream(config) : null;
  const relay = config.eventRelay
    ? new EventRelay({ db, config, log, metrics, holder: `${hostname()}:${process.pid}:${randomBase62(6)}`, stream })
    : null;
  relay?.start();
  const housekeeping = [
    setInterval(() => verifier.flushUsage().catch((err) => log.warn("api key usage update failed", { err })), 10_000),
    setInterval(() => {
      maintenance.run();
      deleteExpiredIdempotencyKeys(db, new Date(), config.idempotencyKeyRetentionHours * 3_600_000).catch((err) =>
        log.warn("idempotency key expiry failed", { err }),
      );
      pruneCatalogChanges(db, new Date(), CATALOG_CHANGE_RETENTION_MS).catch((err) =>
        log.warn("catalog change log cleanup failed", { err }),
      );
    }, 3_600_000),
  ];
  for (const t of housekeeping) t.unref?.();

  return {
    config,
    deps,
    listeners,
    demoApiKey,
    maintenanceIdle: () => maintenance.idle(),
    relay,
    async stop() {
      for (const t of housekeeping) clearInterval(t);
      deps.loopStalls.stop();
      // Stop accepting first: a maintenance round under way (the start-up one can take seconds on a loaded
      // machine) must not keep the listeners open after the signal.
      await listeners.shutdown();
      await maintenance.idle();
      await control?.stop();
      // Commit what Respond has queued; it refuses new writes from here on.
      await deps.interactions.close();
      const flushed = await Promise.race([
        Promise.all([deps.traces.flush(), deps.decisions.flush()]).then(() => true),
        Bun.sleep(config.shutdownTimeoutMs).then(() => false),
      ]);
      if (!flushed) {
        log.error("decision traces and decisions not written before shutdown", {
          traces: deps.traces.buffered,
          decisions: deps.decisions.buffered,
        });
      }
      await relay?.stop();
      await verifier.flushUsage().catch(() => {});
      await deps.limits.close();
      redis?.disconnect();
      if (readDb !== db) await readDb.close();
      await db.close();
    },
  };
}

/**
 * Brings the schema up to date: migrations run on the direct connection when DATABASE_URL is a pooler
 * (their advisory lock and DDL want a session of their own). With MIGRATE=false this instance applies
 * nothing and waits, up to a minute, for an instance that migrates; a schema still behind then ends the
 * start-up with the migrations it lacks.
 */
async function prepareSchema(db: Db, config: Config, log: Logger): Promise<string[]> {
  if (!config.migrate) {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const pending = await pendingMigrations(db);
      if (pending.length === 0) return [];
      if (Date.now() > deadline)
        throw new Error(`MIGRATE=false and the schema lacks migrations ${pending.join(", ")}: start an instance that migrates`);
      log.info("waiting for the schema to be migrated", { pending });
      await Bun.sleep(1_000);
    }
  }
  if (!config.databaseDirectUrl) return (await migrate(db)).applied;
  const direct = openPostgres({ url: config.databaseDirectUrl, poolSize: 1 });
  try {
    return (await migrate(direct)).applied;
  } finally {
    await direct.close();
  }
}

/**
 * The Redis client of the configuration: one Redis at REDIS_URL, or a Redis Cluster from the nodes of
 * REDIS_CLUSTER_NODES (the client follows MOVED and ASK redirections and keeps the slot map current), or
 * none. No offline queue: while Redis is down a command fails at once, so the rate limiter falls back to
 * its in-process window instead of waiting for a reconnect. Every error is logged with what it was and,
 * on a cluster, the node it came from.
 */
function connectRedis(config: Config, log: Logger): Redis | Cluster | null {
  const connection = { connectTimeout: 2000, maxRetriesPerRequest: 1 };
  if (config.redisClusterNodes) {
    const cluster = new Cluster(config.redisClusterNodes, {
      lazyConnect: true,
      enableOfflineQueue: false,
      enableAutoPipelining: true,
      scaleReads: "master",
      redisOptions: connection,
    });
    cluster.on("error", (err: Error) => log.warn("redis cluster error", { err: err.message }));
    cluster.on("node error", (err: Error, node: string) => log.warn("redis cluster node error", { node, err: err.message }));
    return cluster;
  }
  if (!config.redisUrl) return null;
  const redis = new Redis(config.redisUrl, { lazyConnect: true, enableOfflineQueue: false, enableAutoPipelining: true, ...connection });
  redis.on("error", (err) => log.warn("redis error", { err: err.message }));
  return redis;
}

/** Observes each database call by kind and result, the four label sets rendered once. */
function callTimer(calls: Histogram): (kind: CallKind, seconds: number, ok: boolean) => void {
  const timer = (kind: CallKind) => [calls.labelled({ kind, result: "ok" }), calls.labelled({ kind, result: "error" })] as const;
  const by: Record<CallKind, readonly [(s: number) => void, (s: number) => void]> = {
    query: timer("query"),
    exec: timer("exec"),
    transaction: timer("transaction"),
  };
  return (kind, seconds, ok) => by[kind][ok ? 0 : 1](seconds);
}

/**
 * Times every Redis command from the moment ioredis writes it (alone or in an automatic pipeline, which
 * also goes through sendCommand) to its reply. Command names come from the service's own code: a closed set.
 */
function timeRedisCommands(redis: Redis | Cluster, metrics: Metrics): void {
  type Send = (command: { name: string; promise: Promise<unknown> }, ...rest: unknown[]) => unknown;
  const client = redis as unknown as { sendCommand: Send };
  const send = client.sendCommand.bind(redis) as Send;
  const histogram = metrics.redisCommandDuration;
  client.sendCommand = (command, ...rest) => {
    const started = performance.now();
    const sent = send(command, ...rest);
    command.promise.then(
      () => histogram.observe({ command: command.name, result: "ok" }, (performance.now() - started) / 1000),
      () => histogram.observe({ command: command.name, result: "error" }, (performance.now() - started) / 1000),
    );
    return sent;
  };
}

/**
 * One round of partition maintenance (store/partitions.ts), on whichever instance takes its lease: trace
 * partitions as far ahead as the longest retention any tenant keeps. Timed in
 * kaireon_maintenance_duration_seconds; a failure is logged and the next round tries again.
 */
function partitionMaintenance(db: Db, config: Config, metrics: Metrics, log: Logger): { run(): void; idle(): Promise<void> } {
  const holder = `${hostname()}:${process.pid}:${randomBase62(6)}`;
  let current: Promise<void> | null = null;
  const round = async () => {
    const started = performance.now();
    try {
      const [longest] = await db.query<{ days: number | null }>(
        "select max((settings ->> 'traceRetentionDays')::int) as days from tenants where settings ? 'traceRetentionDays'",
      );
      const report = await maintainPartitions(db, {
        now: new Date(),
        interactionRetentionMonths: config.interactionRetentionMonths,
        traceRetentionDays: Math.max(config.traceRetentionDays, longest?.days ?? 0),
        holder,
      });
      if (!report.ran) return;
      metrics.maintenanceDuration.observe({ task: "partitions", result: "ok" }, (performance.now() - started) / 1000);
      metrics.maintenancePartitions.inc({ action: "created" }, report.partitionsCreated);
      metrics.maintenancePartitions.inc({ action: "dropped" }, report.partitionsDropped);
      metrics.maintenanceRows.inc({ action: "moved" }, report.rowsMoved);
      metrics.maintenanceRows.inc({ action: "deleted" }, report.rowsDeleted);
      if (report.partitionsDropped > 0 || report.rowsDeleted > 0 || report.rowsMoved > 0) log.info("partition maintenance", { ...report });
    } catch (err) {
      metrics.maintenanceDuration.observe({ task: "partitions", result: "error" }, (performance.now() - started) / 1000);
      log.warn("partition maintenance failed", { err });
    }
  };
  return {
    run() {
      current ??= round().finally(() => {
        current = null;
      });
    },
    /** Resolves when no round is running (shutdown waits for one under way). */
    idle: async () => {
      await current;
    },
  };
}
