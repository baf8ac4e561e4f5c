// Prometheus metrics in the text exposition format, kept in process memory and served at GET /metrics
// (or on METRICS_PORT alone): the service's own counters, the calls by transport, RPC and status, and the
// process, runtime, database pool and Redis figures read when the metrics are scraped.

import { readdirSync, readFileSync } from "node:fs";
import packageJson from "../package.json" with { type: "json" };

type Labels = Record<string, string>;

function renderLabels(labels: Labels): string {
  const keys = Object.keys(labels).sort();
  return keys.map((k) => `${k}="${String(labels[k]).replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`).join(",");
}

/**
 * Rendering label sets is too slow for every increment on the hot path, so rendered keys are remembered
 * by their values in call order (each metric's call sites pass its labels in one order).
 */
class LabelKeys {
  private readonly memo = new Map<string, string>();
  of(labels: Labels): string {
    let raw = "";
    for (const k in labels) raw += `${k}\u0000${labels[k]}\u0001`;
    let key = this.memo.get(raw);
    if (key === undefined) {
      key = renderLabels(labels);
      // Label values come from a closed set (routes, codes, caches); the cap only guards against misuse.
      if (this.memo.size < 10_000) this.memo.set(raw, key);
    }
    return key;
  }
}

export class Counter {
  private readonly values = new Map<string, number>();
  private readonly keys = new LabelKeys();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}
  inc(labels: Labels = {}, by = 1): void {
    const key = this.keys.of(labels);
    this.values.set(key, (this.values.get(key) ?? 0) + by);
  }
  /** An increment of one label set, its key rendered once: for call sites on the hot path. */
  labelled(labels: Labels): (by?: number) => void {
    const key = this.keys.of(labels);
    return (by = 1) => {
      this.values.set(key, (this.values.get(key) ?? 0) + by);
    };
  }
  get(labels: Labels = {}): number {
    return this.values.get(this.keys.of(labels)) ?? 0;
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    for (const [key, value] of this.values) lines.push(`${this.name}${key ? `{${key}}` : ""} ${value}`);
    return lines.join("\n");
  }
}

export class Histogram {
  private readonly series = new Map<string, { counts: number[]; sum: number; count: number }>();
  private readonly keys = new LabelKeys();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly buckets: number[],
  ) {}
  observe(labels: Labels, value: number): void {
    this.observeAt(this.keys.of(labels), value);
  }
  /** An observation of one label set, its key rendered once: for call sites on the hot path. */
  labelled(labels: Labels): (value: number) => void {
    const key = this.keys.of(labels);
    return (value) => this.observeAt(key, value);
  }
  private observeAt(key: string, value: number): void {
    let s = this.series.get(key);
    if (!s) {
      s = { counts: new Array(this.buckets.length).fill(0), sum: 0, count: 0 };
      this.series.set(key, s);
    }
    for (let i = 0; i < this.buckets.length; i++) {
      if (value <= (this.buckets[i] as number)) {
        s.counts[i] = (s.counts[i] as number) + 1;
        break;
      }
    }
    s.sum += value;
    s.count++;
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const [key, s] of this.series) {
      const sep = key ? `${key},` : "";
      let cumulative = 0;
      this.buckets.forEach((le, i) => {
        cumulative += s.counts[i] as number;
        lines.push(`${this.name}_bucket{${sep}le="${le}"} ${cumulative}`);
      });
      lines.push(`${this.name}_bucket{${sep}le="+Inf"} ${s.count}`);
      lines.push(`${this.name}_sum${key ? `{${key}}` : ""} ${s.sum}`);
      lines.push(`${this.name}_count${key ? `{${key}}` : ""} ${s.count}`);
    }
    return lines.join("\n");
  }
}

/**
 * A figure read from elsewhere (the process, the pool) each time the metrics are rendered. Most are
 * gauges; a total the runtime keeps (CPU seconds) is exposed as a counter.
 */
export class Gauge {
  private readonly values = new Map<string, number>();
  private readonly keys = new LabelKeys();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: "gauge" | "counter" = "gauge",
  ) {}
  set(labels: Labels, value: number): void {
    this.values.set(this.keys.of(labels), value);
  }
  get(labels: Labels = {}): number | undefined {
    return this.values.get(this.keys.of(labels));
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`];
    for (const [key, value] of this.values) lines.push(`${this.name}${key ? `{${key}}` : ""} ${value}`);
    return lines.join("\n");
  }
}

interface RpcSeries {
  /** The rendered label set: method, status, transport. */
  key: string;
  counts: number[];
  sum: number;
  count: number;
}

/** Past this many series a new combination is counted under method="other": a guard against a wiring fault. */
const MAX_RPC_SERIES = 2_000;

/**
 * Every call by transport, RPC method and status: a counter and a latency histogram over one table of
 * series, updated once per call from the request log. The hot path looks the series up by the values
 * the transports already hold (transport, route, HTTP method, status), so labels are worked out and
 * rendered only the first time a combination is seen.
 */
export class RpcMetrics {
  private readonly series: RpcSeries[] = [];
  private readonly index = new Map<string, Map<string, Map<string, Map<string | number, RpcSeries>>>>();
  /** REST routes by path and HTTP method: the RPC each serves (`kaireon.v1.RecommendService/Recommend`). */
  private readonly restNames = new Map<string, Map<string, string>>();

  constructor(readonly buckets: number[]) {}

  /** Names the RPC of each REST route; a route not named is labelled by its HTTP method and path pattern. */
  nameRestRoutes(routes: Iterable<{ method: string; path: string; name: string }>): void {
    for (const r of routes) {
      const byMethod = this.restNames.get(r.path) ?? new Map<string, string>();
      byMethod.set(r.method, r.name);
      this.restNames.set(r.path, byMethod);
    }
  }

  /**
   * One finished call. `route` is the REST path pattern (`/api/v1/decision-traces/:traceId`) or the RPC
   * path (`/kaireon.v1.RecommendService/Recommend`); `status` the HTTP status or the gRPC status name.
   */
  record(transport: string, route: string, httpMethod: string, status: number | string, seconds: number): void {
    let byRoute = this.index.get(transport);
    if (!byRoute) {
      byRoute = new Map();
      this.index.set(transport, byRoute);
    }
    let byMethod = byRoute.get(route);
    if (!byMethod) {
      byMethod = new Map();
      byRoute.set(route, byMethod);
    }
    let byStatus = byMethod.get(httpMethod);
    if (!byStatus) {
      byStatus = new Map();
      byMethod.set(httpMethod, byStatus);
    }
    let s = byStatus.get(status);
    if (!s) {
      s = this.seriesOf(transport, route, httpMethod, status);
      byStatus.set(status, s);
    }
    const buckets = this.buckets;
    for (let i = 0; i < buckets.length; i++) {
      if (seconds <= (buckets[i] as number)) {
        s.counts[i] = (s.counts[i] as number) + 1;
        break;
      }
    }
    s.sum += seconds;
    s.count++;
  }

  /** Calls counted under these labels (as rendered: the RPC name and the status or status class). */
  count(labels: { transport: string; method: string; status: string }): number {
    const key = renderLabels(labels);
    return this.series.find((s) => s.key === key)?.count ?? 0;
  }

  private seriesOf(transport: string, route: string, httpMethod: string, status: number | string): RpcSeries {
    const method =
      this.series.length >= MAX_RPC_SERIES
        ? "other"
        : transport === "rest"
          ? (this.restNames.get(route)?.get(httpMethod) ?? `${httpMethod} ${route}`)
          : route.startsWith("/")
            ? route.slice(1)
            : route;
    // REST by status class: the error code is in kaireon_errors_total; gRPC status names are a closed set.
    const statusLabel = typeof status === "number" ? `${Math.floor(status / 100)}xx` : status;
    const key = renderLabels({ method, status: statusLabel, transport });
    // Two raw statuses of one class (200, 201) share a series.
    let s = this.series.find((x) => x.key === key);
    if (!s) {
      s = { key, counts: new Array(this.buckets.length).fill(0), sum: 0, count: 0 };
      this.series.push(s);
    }
    return s;
  }

  render(): string {
    const total = "kaireon_rpc_requests_total";
    const duration = "kaireon_rpc_duration_seconds";
    const counter = [
      `# HELP ${total} Calls by transport, RPC method and status (gRPC status name, or HTTP status class on REST).`,
      `# TYPE ${total} counter`,
    ];
    const histogram = [`# HELP ${duration} Call latency by transport, RPC method and status.`, `# TYPE ${duration} histogram`];
    for (const s of this.series) {
      counter.push(`${total}{${s.key}} ${s.count}`);
      let cumulative = 0;
      this.buckets.forEach((le, i) => {
        cumulative += s.counts[i] as number;
        histogram.push(`${duration}_bucket{${s.key},le="${le}"} ${cumulative}`);
      });
      histogram.push(`${duration}_bucket{${s.key},le="+Inf"} ${s.count}`);
      histogram.push(`${duration}_sum{${s.key}} ${s.sum}`);
      histogram.push(`${duration}_count{${s.key}} ${s.count}`);
    }
    return `${counter.join("\n")}\n${histogram.join("\n")}`;
  }
}

/** The soft limit on open files (Linux), read once: it does not change under a running process. */
function maxOpenFiles(): number | null {
  try {
    const line = readFileSync("/proc/self/limits", "utf8")
      .split("\n")
      .find((l) => l.startsWith("Max open files"));
    const soft = line?.slice("Max open files".length).trim().split(/\s+/)[0];
    return soft && /^\d+$/.test(soft) ? Number(soft) : null;
  } catch {
    return null;
  }
}

/** The commit of a git checkout the service runs from, when it runs from one (no git needed). */
export function gitCommitOf(root: string): string | null {
  try {
    const head = readFileSync(`${root}/.git/HEAD`, "utf8").trim();
    if (/^[0-9a-f]{40}$/.test(head)) return head;
    const ref = /^ref: (refs\/[^\s]+)$/.exec(head)?.[1];
    if (!ref) return null;
    try {
      return readFileSync(`${root}/.git/${ref}`, "utf8").trim();
    } catch {
      const packed = readFileSync(`${root}/.git/packed-refs`, "utf8");
      return (
        packed
          .split("\n")
          .find((l) => l.endsWith(` ${ref}`))
          ?.slice(0, 40) ?? null
      );
    }
  } catch {
    return null;
  }
}

/** What the metrics read of the database pool: connections the pool holds, those running a call, calls waiting for one. */
export interface PoolReading {
  max: number;
  open: number;
  inUse: number;
  waiting: number;
}

export interface MetricsOptions {
  /** The commit the service was built from, when known (BUILD_COMMIT, or the checkout it runs from). */
  commit?: string | null;
}

export class Metrics {
  readonly requestDuration = new Histogram(
    "kaireon_request_duration_seconds",
    "Request latency by route and transport.",
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  );
  readonly errors = new Counter("kaireon_errors_total", "Failed requests by error code and transport.");
  readonly decisions = new Counter("kaireon_decisions_total", "Recommend answers, by whether they held offers.");
  readonly interactions = new Counter("kaireon_interactions_total", "Interactions recorded, by outcome type.");
  readonly interactionCommits = new Counter(
    "kaireon_interaction_commits_total",
    "Interaction transactions (group commits), by result (ok or error).",
  );
  readonly interactionBatchSize = new Histogram(
    "kaireon_interaction_batch_size",
    "Interactions per committed transaction.",
    [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000],
  );
  readonly cache = new Counter("kaireon_cache_lookups_total", "Cache lookups by cache and result (hit or miss).");
  readonly tracesDropped = new Counter("kaireon_traces_dropped_total", "Decision traces given up after repeated write failures.");
  readonly rateLimitFallback = new Counter(
    "kaireon_rate_limit_fallback_total",
    "Rate-limit checks answered without Redis (unreachable, error or timeout), by reason and mode (open or closed).",
  );
  readonly decisionsUnrecorded = new Counter(
    "kaireon_decisions_unrecorded_total",
    "Decisions whose recommendations and decision.made.v1 event were not recorded, by reason: buffer_full (refused, no recommendation ids returned) or write_failed (given up after repeated write failures).",
  );
  readonly eventsDelivered = new Counter(
    "kaireon_events_delivered_total",
    "Events delivered by the relay, by destination kind (webhook, redis, nats).",
  );
  readonly eventDeliveryFailures = new Counter(
    "kaireon_event_delivery_failures_total",
    "Failed delivery attempts by destination kind; each is retried, a webhook's until its dead-letter list.",
  );
  readonly eventsDeadLettered = new Counter(
    "kaireon_events_dead_lettered_total",
    "Events put on a webhook's dead-letter list after its last retry.",
  );
  readonly tracesRefused = new Counter("kaireon_traces_refused_total", "Decision traces not recorded because the write buffer was full.");
  readonly apiKeyLookups = new Counter("kaireon_api_key_lookups_total", "API keys looked up in the database (cache misses that read it).");
  readonly catalogCompiles = new Counter(
    "kaireon_catalog_compiles_total",
    "Catalog loads by result: compiled (read whole), rows (only changed offers and creatives read again), unchanged (the revision check found nothing new) or error.",
  );
  readonly catalogCompileSeconds = new Histogram(
    "kaireon_catalog_compile_seconds",
    "Time from the start of a catalog compile to its end, spread over many event-loop turns.",
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  );
  readonly catalogCompileSliceSeconds = new Histogram(
    "kaireon_catalog_compile_slice_seconds",
    "The longest uninterrupted stretch of each catalog compile (how long it held the event loop).",
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
  );
  readonly capCounters = new Counter(
    "kaireon_cap_counter_failures_total",
    "Cap steps that could not use the shared counters, by step: volume (offers under a volume cap were dropped), hold (a customer's caps counted reported impressions only) or busy (another decision of the customer held its lock too long; capped offers were dropped).",
  );
  readonly volumeRefusals = new Counter(
    "kaireon_volume_cap_refusals_total",
    "Offers an answer chose but could not reserve under a volume cap (another instance took the last room); the answer was decided again without them.",
  );
  readonly budgetExhausted = new Counter(
    "kaireon_decision_budget_exhausted_total",
    "Decisions whose formula work ran past DECISION_EVALUATION_BUDGET, by tenant: a catalog to look at.",
  );
  readonly requestsInFlight = new Gauge(
    "kaireon_requests_in_flight",
    "Calls accepted and not yet answered, on PORT (REST, Connect, gRPC-Web; scrapes there included) and GRPC_PORT: what a shutdown waits for.",
  );
  readonly rpcs = new RpcMetrics([0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]);

  readonly buildInfo = new Gauge("kaireon_build_info", "The version of the service, the Bun it runs on and the commit it was built from.");
  readonly startTime = new Gauge("kaireon_process_start_time_seconds", "When the process started, in seconds since the Unix epoch.");
  readonly residentMemory = new Gauge("kaireon_process_resident_memory_bytes", "Resident memory of the process.");
  readonly heapUsed = new Gauge("kaireon_process_heap_used_bytes", "JavaScript heap in use.");
  readonly heapTotal = new Gauge("kaireon_process_heap_total_bytes", "JavaScript heap reserved.");
  readonly externalMemory = new Gauge(
    "kaireon_process_external_memory_bytes",
    "Memory held outside the JavaScript heap for its objects (buffers).",
  );
  readonly cpuSeconds = new Gauge("kaireon_process_cpu_seconds_total", "CPU time of the process, by mode (user or system).", "counter");
  readonly openFds = new Gauge("kaireon_process_open_fds", "File descriptors the process holds open (Linux).");
  readonly maxFds = new Gauge("kaireon_process_max_fds", "The process's limit on open file descriptors (Linux).");
  readonly eventLoopDelay = new Histogram(
    "kaireon_event_loop_delay_seconds",
    "How late a timer due every 10 ms fired: the time the event loop was held up by other work.",
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  );

  readonly dbPoolConnections = new Gauge(
    "kaireon_db_pool_connections",
    "Connections of the PostgreSQL pool by state: in_use (running a call) or idle (open, waiting for one).",
  );
  readonly dbPoolMax = new Gauge("kaireon_db_pool_max_connections", "The PostgreSQL pool's size (DATABASE_POOL_SIZE).");
  readonly dbPoolWaiting = new Gauge("kaireon_db_pool_waiting_calls", "Database calls waiting for a connection of the pool.");
  readonly dbQueryDuration = new Histogram(
    "kaireon_db_query_duration_seconds",
    "Database calls as the service waits for them (a connection, then the answer), by kind (query, exec or transaction) and result (ok or error).",
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  );
  readonly redisUp = new Gauge("kaireon_redis_up", "1 while the Redis connection is ready, else 0 (present only with Redis configured).");
  readonly rateLimitRedisFallback = new Gauge(
    "kaireon_rate_limit_redis_fallback",
    "1 while rate limits are counted in this process because Redis failed or was slow, else 0 (present only with Redis configured).",
  );
  readonly redisCommandDuration = new Histogram(
    "kaireon_redis_command_duration_seconds",
    "Redis commands from being written to their reply, by command and result (ok or error).",
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
  );
  readonly maintenanceDuration = new Histogram(
    "kaireon_maintenance_duration_seconds",
    "Rounds of periodic maintenance this instance ran, by task and result (ok or error); a round another instance held is not counted.",
    [0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300],
  );
  readonly maintenanceRows = new Counter(
    "kaireon_maintenance_rows_total",
    "Rows maintenance moved out of a default partition or deleted, by action.",
  );
  readonly maintenancePartitions = new Counter(
    "kaireon_maintenance_partitions_total",
    "Partitions maintenance created or dropped, by action.",
  );

  /** Read when the metrics are rendered: figures that live elsewhere (pool, Redis state). */
  private readonly collectors: (() => void)[] = [() => this.collectProcess()];
  private readonly fdLimit = maxOpenFiles();

  constructor(opts: MetricsOptions = {}) {
    this.buildInfo.set({ version: packageJson.version, bun: Bun.version, commit: opts.commit || "unknown" }, 1);
    this.startTime.set({}, Math.round(performance.timeOrigin) / 1000);
  }

  /** Adds figures read at each render; a collector that throws leaves its figures as they were. */
  collect(collector: () => void): void {
    this.collectors.push(collector);
  }

  /** The PostgreSQL pool, read at each render. */
  watchPool(read: () => PoolReading): void {
    this.collect(() => {
      const p = read();
      this.dbPoolMax.set({}, p.max);
      this.dbPoolConnections.set({ state: "in_use" }, p.inUse);
      this.dbPoolConnections.set({ state: "idle" }, Math.max(0, p.open - p.inUse));
      this.dbPoolWaiting.set({}, p.waiting);
    });
  }

  private collectProcess(): void {
    const memory = process.memoryUsage();
    this.residentMemory.set({}, memory.rss);
    this.heapUsed.set({}, memory.heapUsed);
    this.heapTotal.set({}, memory.heapTotal);
    this.externalMemory.set({}, memory.external);
    const cpu = process.cpuUsage();
    this.cpuSeconds.set({ mode: "user" }, cpu.user / 1e6);
    this.cpuSeconds.set({ mode: "system" }, cpu.system / 1e6);
    if (this.fdLimit !== null) {
      this.maxFds.set({}, this.fdLimit);
      // The listing holds one descriptor of its own while it reads.
      this.openFds.set({}, readdirSync("/proc/self/fd").length - 1);
    }
  }

  render(): string {
    for (const collector of this.collectors) {
      try {
        collector();
      } catch {
        // A figure that cannot be read now keeps its last value; the rest still render.
      }
    }
    return `${[
      this.requestDuration,
      this.errors,
      this.decisions,
      this.interactions,
      this.interactionCommits,
      this.interactionBatchSize,
      this.cache,
      this.tracesDropped,
      this.tracesRefused,
      this.decisionsUnrecorded,
      this.eventsDelivered,
      this.eventDeliveryFailures,
      this.eventsDeadLettered,
      this.rateLimitFallback,
      this.apiKeyLookups,
      this.catalogCompiles,
      this.catalogCompileSeconds,
      this.catalogCompileSliceSeconds,
      this.budgetExhausted,
      this.capCounters,
      this.volumeRefusals,
      this.rpcs,
      this.requestsInFlight,
      this.buildInfo,
      this.startTime,
      this.residentMemory,
      this.heapUsed,
      this.heapTotal,
      this.externalMemory,
      this.cpuSeconds,
      this.openFds,
      this.maxFds,
      this.eventLoopDelay,
      this.dbPoolConnections,
      this.dbPoolMax,
      this.dbPoolWaiting,
      this.dbQueryDuration,
      this.redisUp,
      this.rateLimitRedisFallback,
      this.redisCommandDuration,
      this.maintenanceDuration,
      this.maintenanceRows,
      this.maintenancePartitions,
    ]
      .map((m) => m.render())
      .join("\n")}\n`;
  }
}
