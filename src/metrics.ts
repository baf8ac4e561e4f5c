// Prometheus metrics in the text exposition format, kept in process memory and served at GET /metrics.

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
    const key = this.keys.of(labels);
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
  readonly budgetExhausted = new Counter(
    "kaireon_decision_budget_exhausted_total",
    "Decisions whose formula work ran past DECISION_EVALUATION_BUDGET, by tenant: a catalog to look at.",
  );

  render(): string {
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
      this.rateLimitFallback,
      this.apiKeyLookups,
      this.catalogCompiles,
      this.catalogCompileSeconds,
      this.catalogCompileSliceSeconds,
      this.budgetExhausted,
    ]
      .map((m) => m.render())
      .join("\n")}\n`;
  }
}
