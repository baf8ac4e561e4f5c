// Every setting of the service: its environment variable, its default and its check, in one place.

import { createHash, createHmac } from "node:crypto";

export interface Config {
  nodeEnv: string;
  host: string;
  port: number;
  grpcPort: number;
  /** A listener of its own for GET /metrics (the public port then answers it 404); null: /metrics on PORT. */
  metricsPort: number | null;
  /** SHA-256 (hex) of METRICS_TOKEN, the bearer token /metrics then asks for; null: no token asked. */
  metricsTokenHash: string | null;
  /** The commit the service was built from (BUILD_COMMIT), shown in kaireon_build_info. */
  buildCommit: string | undefined;
  /**
   * A direct connection to the database when DATABASE_URL is a transaction-mode pooler: migrations and
   * LISTEN use it, and the pool through the pooler prepares no statements.
   */
  databaseDirectUrl: string | undefined;
  /** A streaming replica for reads that tolerate lag (trace reads, the audit log); never migrated. */
  databaseReadUrl: string | undefined;
  /** Whether this instance applies pending migrations at start-up (otherwise it waits for the schema). */
  migrate: boolean;
  databaseUrl: string | undefined;
  dataDir: string;
  databasePoolSize: number;
  /** Database calls waiting for a connection at most; more answer 503 at once. */
  databaseQueueLimit: number;
  redisUrl: string | undefined;
  /** The nodes of a Redis Cluster to start from (REDIS_CLUSTER_NODES), instead of one Redis at redisUrl. */
  redisClusterNodes: { host: string; port: number }[] | null;
  /** Prefix of every Redis key, so that deployments (and test runs) sharing a Redis never collide. */
  redisKeyPrefix: string;
  /** Per-tenant rate limits and monthly decision quotas; off only for load tests. */
  rateLimitEnabled: boolean;
  /** Length of the sliding window the per-minute limits are counted over. */
  rateLimitWindowMs: number;
  /** How long a check waits for Redis before the in-process window answers instead. */
  rateLimitRedisTimeoutMs: number;
  /** After a Redis timeout, how long checks use the in-process window before trying Redis again. */
  rateLimitRedisRetryMs: number;
  /** While Redis fails, each instance allows this share of a limit: 1/N for N instances. */
  rateLimitFallbackInstances: number;
  /** Refuse calls (503) rather than limit per instance when Redis cannot be reached. */
  rateLimitFailClosed: boolean;
  /** At most one "falling back" log line per this interval. */
  rateLimitFallbackLogIntervalMs: number;
  /** Replaces every plan's limit for tenants without their own (test and load environments). */
  rateLimitOverridePerMinute: number | null;
  /** Limit of enterprise tenants without their own `rateLimitPerMinute` setting. */
  enterpriseRateLimitPerMinute: number;
  /** Replaces every plan's monthly decision quota for tenants without their own. */
  monthlyDecisionQuotaOverride: number | null;
  /** Monthly decision quota of enterprise tenants without their own `monthlyDecisionQuota` setting. */
  enterpriseMonthlyDecisionQuota: number;
  apiKeyPepper: string;
  pepperIsDevelopment: boolean;
  /** HMAC of OPERATOR_API_KEY under the pepper (the key itself is not kept); null: the operator API is closed. */
  operatorKeyHash: string | null;
  seedDemo: boolean;
  demoApiKey: string | undefined;
  /** Largest request body or message accepted, in bytes. */
  maxBodyBytes: number;
  /** Longest line of a customer NDJSON import, in bytes (the import body itself is unbounded). */
  importMaxLineBytes: number;
  /** Largest catalog document an import accepts, in bytes (REST body or Connect/gRPC message). */
  catalogMaxBytes: number;
  /** Ceiling on a caller's gRPC/Connect deadline, and the deadline applied when none is sent. */
  maxDeadlineMs: number;
  /** Connections idle longer than this are closed. */
  idleTimeoutSeconds: number;
  /** How long a caller may take to send a request's body (not a streamed import). */
  requestReadTimeoutMs: number;
  /** Native gRPC: connections at most, and concurrent streams per connection. */
  grpcMaxConnections: number;
  grpcMaxConcurrentStreams: number;
  /** How long SIGTERM waits for in-flight requests before closing anyway. */
  shutdownTimeoutMs: number;
  /** How long a verified (or refused) API key stays cached; revocation takes at most this long. */
  apiKeyCacheTtlMs: number;
  /** Verified keys cached at most, and unknown ones (kept apart, so a flood of unknown keys evicts no real one). */
  apiKeyCacheSize: number;
  apiKeyMissCacheSize: number;
  /** How long the catalog of a tenant is kept before it is read again. */
  catalogCacheTtlMs: number;
  /**
   * Longest stretch a catalog compile runs before it lets other work in: a large catalog is compiled over
   * many event-loop turns while the previous one keeps serving.
   */
  catalogCompileSliceMs: number;
  /** How long a catalog write waits for this instance's reload before it answers anyway. */
  catalogReloadWaitMs: number;
  /** Formula work one decision may do (syntax-tree nodes evaluated); past it formulas yield null. */
  decisionEvaluationBudget: number;
  /**
   * How long a decision may go on using propensities the model has learned past since (each Respond
   * updates it in place); 0 means never, every decision sees every outcome recorded so far.
   */
  propensityRefreshMs: number;
  /** How long a customer profile is kept in the enrich cache. */
  profileCacheTtlMs: number;
  profileCacheSize: number;
  /** How long the learned offer statistics are kept before they are read again. */
  statsCacheTtlMs: number;
  /** How long Recommend waits for a customer's contact history; past it, offers under contact policies are dropped. */
  policyHistoryTimeoutMs: number;
  /**
   * How long an answer holds the slots of its offers under a customer's frequency caps and cooldowns until
   * their impressions are reported; 0: caps count reported impressions only.
   */
  capHoldMs: number;
  /** How long a decision waits for another decision of the same customer to finish; past it, capped offers are dropped. */
  capLockWaitMs: number;
  /** How often buffered decision traces are written. */
  traceFlushMs: number;
  /** Decision traces held in memory waiting to be written; beyond it a trace is not recorded. */
  traceBufferSize: number;
  traceRetentionDays: number;
  /** Decisions (recommendations and their decision.made.v1 event) held in memory waiting to be written. */
  decisionBufferSize: number;
  /** How long recorded recommendations can be named by a response. */
  recommendationRetentionDays: number;
  /** How long delivered and undelivered events stay in the outbox. */
  eventRetentionHours: number;
  /** Whether this instance may run the event relay (one instance at a time does, by lease). */
  eventRelay: boolean;
  /** How often the relay looks for new events when it has caught up. */
  eventRelayPollMs: number;
  /** How often the relay deletes the events every destination has. */
  eventPruneIntervalMs: number;
  /** Where every event is also published: none, a Redis stream, or a NATS JetStream stream. */
  eventStream: "none" | "redis" | "nats";
  /** The Redis stream key or the JetStream stream name. */
  eventStreamName: string;
  /** Messages a stream keeps at most (XADD MAXLEN ~, JetStream max_msgs). */
  eventStreamMaxLength: number;
  /** NATS servers for EVENT_STREAM=nats. */
  natsUrl: string;
  /** JetStream subjects are `<prefix>.<event type>`. */
  natsSubjectPrefix: string;
  webhookAllowPrivateTargets: boolean;
  webhookTimeoutMs: number;
  /** Deliveries of one event to one webhook before it goes to the dead-letter list. */
  webhookMaxAttempts: number;
  webhookRetryBaseMs: number;
  webhookRetryMaxMs: number;
  /** Whole months of interactions kept before the current one; older monthly partitions are dropped. */
  interactionRetentionMonths: number;
  /** How long Respond waits for other interactions to share its commit (group commit window). */
  respondBatchMaxWaitMs: number;
  /** Interactions committed in one transaction at most; a full batch is committed without waiting. */
  respondBatchMax: number;
  /** Interaction commits in progress at once at most; later batches wait for a free slot. */
  respondBatchConcurrency: number;
  /** How long Respond waits for its commit before answering 503 (the commit may still complete). */
  respondCommitTimeoutMs: number;
  /** How long an Idempotency-Key of Respond is remembered. */
  idempotencyKeyRetentionHours: number;
  logLevel: "debug" | "info" | "warn" | "error";
  /** The share of answered requests logged at info (refusals and failures are always logged). */
  requestLogSampleRate: number;
}

const DEVELOPMENT_PEPPER = "kaireon-development-pepper-not-for-production";

export class ConfigError extends Error {}

function integer(env: Record<string, string | undefined>, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be an integer between ${min} and ${max}, got "${raw}"`);
  }
  return value;
}

function fraction(env: Record<string, string | undefined>, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0 || value > 1) throw new ConfigError(`${name} must be a number from 0 to 1, got "${raw}"`);
  return value;
}

function optionalInteger(env: Record<string, string | undefined>, name: string, min: number, max: number): number | null {
  const raw = env[name];
  return raw === undefined || raw === "" ? null : integer(env, name, 0, min, max);
}

function boolean(env: Record<string, string | undefined>, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  if (["1", "true", "yes", "on"].includes(raw.toLowerCase())) return true;
  if (["0", "false", "no", "off"].includes(raw.toLowerCase())) return false;
  throw new ConfigError(`${name} must be true or false, got "${raw}"`);
}

function eventStream(env: Record<string, string | undefined>): Config["eventStream"] {
  const v = env.EVENT_STREAM || "none";
  if (v !== "none" && v !== "redis" && v !== "nats") throw new ConfigError(`EVENT_STREAM must be none, redis or nats, got "${v}"`);
  return v;
}

function streamName(env: Record<string, string | undefined>): string {
  const v = env.EVENT_STREAM_NAME || "kaireon-events";
  // Valid as a Redis key and as a JetStream stream name (no dots, spaces, wildcards or separators).
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(v)) throw new ConfigError("EVENT_STREAM_NAME must be 1 to 64 letters, digits, _ or -");
  return v;
}

function subjectPrefix(env: Record<string, string | undefined>): string {
  const v = env.NATS_SUBJECT_PREFIX || "kaireon.events";
  if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(v) || v.length > 128) {
    throw new ConfigError("NATS_SUBJECT_PREFIX must be dot-separated tokens of letters, digits, _ or -");
  }
  return v;
}

function redisKeyPrefix(env: Record<string, string | undefined>): string {
  const prefix = env.REDIS_KEY_PREFIX || "kaireon";
  // Braces would break the {tenant} hash tag that keeps a tenant's keys in one cluster slot.
  if (!/^[A-Za-z0-9_:.-]{1,64}$/.test(prefix)) {
    throw new ConfigError("REDIS_KEY_PREFIX must be 1 to 64 letters, digits, _ : . or -");
  }
  return prefix;
}

function directUrl(env: Record<string, string | undefined>): string | undefined {
  const direct = env.DATABASE_DIRECT_URL || undefined;
  if (direct && !env.DATABASE_URL) throw new ConfigError("DATABASE_DIRECT_URL needs DATABASE_URL (the pooler it goes around)");
  return direct;
}

function readUrl(env: Record<string, string | undefined>): string | undefined {
  const read = env.DATABASE_READ_URL || undefined;
  if (read && !env.DATABASE_URL) throw new ConfigError("DATABASE_READ_URL needs DATABASE_URL (the primary it replicates)");
  return read;
}

/** REDIS_CLUSTER_NODES: comma-separated host:port; refused beside REDIS_URL, which names one Redis. */
function redisClusterNodes(env: Record<string, string | undefined>): { host: string; port: number }[] | null {
  const raw = env.REDIS_CLUSTER_NODES?.trim();
  if (!raw) return null;
  if (env.REDIS_URL) throw new ConfigError("set REDIS_URL (one Redis) or REDIS_CLUSTER_NODES (a Redis Cluster), not both");
  return raw.split(",").map((item) => {
    const m = /^\s*(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})\s*$/.exec(item);
    const port = Number(m?.[2]);
    if (!m || port < 1 || port > 65_535) {
      throw new ConfigError(`REDIS_CLUSTER_NODES must be comma-separated host:port, got "${item.trim()}"`);
    }
    return { host: (m[1] as string).replace(/^\[|\]$/g, ""), port };
  });
}

export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const nodeEnv = env.NODE_ENV ?? "development";
  const pepper = env.API_KEY_PEPPER;
  if (!pepper && nodeEnv === "production") {
    throw new ConfigError("API_KEY_PEPPER is required when NODE_ENV=production");
  }
  if (pepper !== undefined && pepper !== "" && pepper.length < 16) {
    throw new ConfigError("API_KEY_PEPPER must be at least 16 characters");
  }
  const logLevel = env.LOG_LEVEL ?? "info";
  if (!["debug", "info", "warn", "error"].includes(logLevel)) {
    throw new ConfigError(`LOG_LEVEL must be debug, info, warn or error, got "${logLevel}"`);
  }
  const demoApiKey = env.DEMO_API_KEY || undefined;
  if (demoApiKey !== undefined && !/^krn_[0-9A-Za-z]{32,}$/.test(demoApiKey)) {
    throw new ConfigError("DEMO_API_KEY must be krn_ followed by at least 32 letters or digits");
  }
  const port = integer(env, "PORT", 3000, 0, 65535);
  const grpcPort = integer(env, "GRPC_PORT", 50051, 0, 65535);
  const metricsPort = optionalInteger(env, "METRICS_PORT", 0, 65535);
  if (metricsPort !== null && metricsPort !== 0 && (metricsPort === port || metricsPort === grpcPort)) {
    throw new ConfigError(`METRICS_PORT must differ from PORT and GRPC_PORT, got "${metricsPort}"`);
  }
  const metricsToken = env.METRICS_TOKEN || undefined;
  if (metricsToken !== undefined && !/^[\x21-\x7e]{16,256}$/.test(metricsToken)) {
    throw new ConfigError("METRICS_TOKEN must be 16 to 256 printable characters without spaces");
  }
  const buildCommit = env.BUILD_COMMIT || undefined;
  if (buildCommit !== undefined && !/^[0-9a-f]{7,40}$/i.test(buildCommit)) {
    throw new ConfigError(`BUILD_COMMIT must be a git commit id (7 to 40 hex digits), got "${buildCommit}"`);
  }
  if (env.EVENT_STREAM === "redis" && !env.REDIS_URL && !env.REDIS_CLUSTER_NODES) {
    throw new ConfigError("EVENT_STREAM=redis needs REDIS_URL or REDIS_CLUSTER_NODES");
  }
  const operatorKey = env.OPERATOR_API_KEY || undefined;
  if (operatorKey !== undefined && !/^krn_[0-9A-Za-z]{32,128}$/.test(operatorKey)) {
    throw new ConfigError("OPERATOR_API_KEY must be krn_ followed by 32 to 128 letters or digits");
  }
  return {
    nodeEnv,
    host: env.HOST || "0.0.0.0",
    port,
    grpcPort,
    metricsPort,
    metricsTokenHash: metricsToken ? createHash("sha256").update(metricsToken).digest("hex") : null,
    buildCommit: buildCommit?.toLowerCase(),
    databaseUrl: env.DATABASE_URL || undefined,
    databaseDirectUrl: directUrl(env),
    databaseReadUrl: readUrl(env),
    migrate: boolean(env, "MIGRATE", true),
    dataDir: env.DATA_DIR || "./.data",
    databasePoolSize: integer(env, "DATABASE_POOL_SIZE", 10, 1, 200),
    databaseQueueLimit: integer(env, "DATABASE_QUEUE_LIMIT", 500, 1, 100_000),
    redisUrl: env.REDIS_URL || undefined,
    redisClusterNodes: redisClusterNodes(env),
    redisKeyPrefix: redisKeyPrefix(env),
    rateLimitEnabled: boolean(env, "RATE_LIMIT_ENABLED", true),
    rateLimitWindowMs: integer(env, "RATE_LIMIT_WINDOW_MS", 60_000, 100, 3_600_000),
    rateLimitRedisTimeoutMs: integer(env, "RATE_LIMIT_REDIS_TIMEOUT_MS", 50, 1, 10_000),
    rateLimitRedisRetryMs: integer(env, "RATE_LIMIT_REDIS_RETRY_MS", 1_000, 0, 600_000),
    rateLimitFailClosed: boolean(env, "RATE_LIMIT_FAIL_CLOSED", false),
    rateLimitFallbackInstances: integer(env, "RATE_LIMIT_FALLBACK_INSTANCES", 1, 1, 10_000),
    rateLimitFallbackLogIntervalMs: integer(env, "RATE_LIMIT_FALLBACK_LOG_INTERVAL_MS", 60_000, 0, 3_600_000),
    rateLimitOverridePerMinute: optionalInteger(env, "RATE_LIMIT_OVERRIDE_PER_MINUTE", 1, 100_000_000),
    enterpriseRateLimitPerMinute: integer(env, "ENTERPRISE_RATE_LIMIT_PER_MINUTE", 10_000, 1, 100_000_000),
    monthlyDecisionQuotaOverride: optionalInteger(env, "MONTHLY_DECISION_QUOTA_OVERRIDE", 0, 1_000_000_000_000),
    enterpriseMonthlyDecisionQuota: integer(env, "ENTERPRISE_MONTHLY_DECISION_QUOTA", 10_000_000, 0, 1_000_000_000_000),
    apiKeyPepper: pepper || DEVELOPMENT_PEPPER,
    pepperIsDevelopment: !pepper,
    operatorKeyHash: operatorKey
      ? createHmac("sha256", pepper || DEVELOPMENT_PEPPER)
          .update(operatorKey)
          .digest("hex")
      : null,
    seedDemo: boolean(env, "SEED_DEMO", true),
    demoApiKey,
    maxBodyBytes: integer(env, "MAX_BODY_BYTES", 256 * 1024, 1024, 64 * 1024 * 1024),
    importMaxLineBytes: integer(env, "IMPORT_MAX_LINE_BYTES", 64 * 1024, 1024, 16 * 1024 * 1024),
    catalogMaxBytes: integer(env, "CATALOG_MAX_BYTES", 32 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
    maxDeadlineMs: integer(env, "MAX_DEADLINE_MS", 30_000, 100, 600_000),
    idleTimeoutSeconds: integer(env, "IDLE_TIMEOUT_SECONDS", 60, 1, 255),
    requestReadTimeoutMs: integer(env, "REQUEST_READ_TIMEOUT_MS", 10_000, 100, 600_000),
    grpcMaxConnections: integer(env, "GRPC_MAX_CONNECTIONS", 10_000, 1, 1_000_000),
    grpcMaxConcurrentStreams: integer(env, "GRPC_MAX_CONCURRENT_STREAMS", 100, 1, 10_000),
    shutdownTimeoutMs: integer(env, "SHUTDOWN_TIMEOUT_MS", 15_000, 0, 600_000),
    apiKeyCacheTtlMs: integer(env, "API_KEY_CACHE_TTL_MS", 10_000, 0, 15_000),
    apiKeyCacheSize: integer(env, "API_KEY_CACHE_SIZE", 100_000, 0, 10_000_000),
    apiKeyMissCacheSize: integer(env, "API_KEY_MISS_CACHE_SIZE", 10_000, 0, 10_000_000),
    catalogCacheTtlMs: integer(env, "CATALOG_CACHE_TTL_MS", 5_000, 0, 3_600_000),
    catalogCompileSliceMs: integer(env, "CATALOG_COMPILE_SLICE_MS", 2, 1, 1_000),
    catalogReloadWaitMs: integer(env, "CATALOG_RELOAD_WAIT_MS", 5_000, 0, 60_000),
    decisionEvaluationBudget: integer(env, "DECISION_EVALUATION_BUDGET", 2_000_000, 1_000, 1_000_000_000),
    propensityRefreshMs: integer(env, "PROPENSITY_REFRESH_MS", 0, 0, 1_000),
    profileCacheTtlMs: integer(env, "PROFILE_CACHE_TTL_MS", 5_000, 0, 3_600_000),
    profileCacheSize: integer(env, "PROFILE_CACHE_SIZE", 100_000, 0, 10_000_000),
    statsCacheTtlMs: integer(env, "STATS_CACHE_TTL_MS", 1_000, 0, 60_000),
    policyHistoryTimeoutMs: integer(env, "POLICY_HISTORY_TIMEOUT_MS", 1_000, 1, 60_000),
    capHoldMs: integer(env, "CAP_HOLD_SECONDS", 60, 0, 86_400) * 1000,
    capLockWaitMs: integer(env, "CAP_LOCK_WAIT_MS", 2_000, 1, 60_000),
    traceFlushMs: integer(env, "TRACE_FLUSH_MS", 100, 5, 1_000),
    traceBufferSize: integer(env, "TRACE_BUFFER_SIZE", 20_000, 1, 1_000_000),
    traceRetentionDays: integer(env, "TRACE_RETENTION_DAYS", 30, 1, 3650),
    decisionBufferSize: integer(env, "DECISION_BUFFER_SIZE", 50_000, 1, 1_000_000),
    recommendationRetentionDays: integer(env, "RECOMMENDATION_RETENTION_DAYS", 30, 1, 3650),
    eventRetentionHours: integer(env, "EVENT_RETENTION_HOURS", 168, 1, 24 * 365),
    eventRelay: boolean(env, "EVENT_RELAY", true),
    eventRelayPollMs: integer(env, "EVENT_RELAY_POLL_MS", 200, 10, 60_000),
    eventPruneIntervalMs: integer(env, "EVENT_PRUNE_INTERVAL_MS", 60_000, 100, 86_400_000),
    eventStream: eventStream(env),
    eventStreamName: streamName(env),
    eventStreamMaxLength: integer(env, "EVENT_STREAM_MAX_LENGTH", 1_000_000, 1_000, 1_000_000_000),
    natsUrl: env.NATS_URL || "127.0.0.1:4222",
    natsSubjectPrefix: subjectPrefix(env),
    webhookAllowPrivateTargets: boolean(env, "WEBHOOK_ALLOW_PRIVATE_TARGETS", false),
    webhookTimeoutMs: integer(env, "WEBHOOK_TIMEOUT_MS", 5_000, 100, 60_000),
    webhookMaxAttempts: integer(env, "WEBHOOK_MAX_ATTEMPTS", 8, 1, 100),
    webhookRetryBaseMs: integer(env, "WEBHOOK_RETRY_BASE_MS", 1_000, 1, 3_600_000),
    webhookRetryMaxMs: integer(env, "WEBHOOK_RETRY_MAX_MS", 300_000, 1, 86_400_000),
    interactionRetentionMonths: integer(env, "INTERACTION_RETENTION_MONTHS", 13, 1, 1200),
    respondBatchMaxWaitMs: integer(env, "RESPOND_BATCH_MAX_WAIT_MS", 2, 0, 1_000),
    respondBatchMax: integer(env, "RESPOND_BATCH_MAX", 200, 1, 10_000),
    respondBatchConcurrency: integer(env, "RESPOND_BATCH_CONCURRENCY", 2, 1, 64),
    respondCommitTimeoutMs: integer(env, "RESPOND_COMMIT_TIMEOUT_MS", 10_000, 100, 600_000),
    idempotencyKeyRetentionHours: integer(env, "IDEMPOTENCY_KEY_RETENTION_HOURS", 24, 1, 24 * 365),
    logLevel: logLevel as Config["logLevel"],
    requestLogSampleRate: fraction(env, "REQUEST_LOG_SAMPLE_RATE", 1),
  };
}
