// Online propensity: a Beta-Bernoulli posterior of positive outcomes over impressions per offer and
// channel, smoothed towards the category's rate and that towards the channel's overall rate with a
// pseudo-count prior, so thin evidence borrows from the level above. With no evidence at all it is 0.5.

export interface OutcomeCounts {
  impressions: number;
  positives: number;
}

export interface StatsRow extends OutcomeCounts {
  offerId: string;
  categoryId: string;
  channelId: string;
}

export type PropensityMode = "mean" | "thompson";

export const NO_EVIDENCE_RATE = 0.5;

/** Offers per step of a table computed in steps. */
const TABLE_STEP = 512;

function add(map: Map<string, OutcomeCounts>, key: string, row: OutcomeCounts): void {
  const c = map.get(key);
  if (c) {
    c.impressions += row.impressions;
    c.positives += row.positives;
  } else {
    map.set(key, { impressions: row.impressions, positives: row.positives });
  }
}

function nested(map: Map<string, Map<string, OutcomeCounts>>, key: string): Map<string, OutcomeCounts> {
  let inner = map.get(key);
  if (!inner) {
    inner = new Map();
    map.set(key, inner);
  }
  return inner;
}

/** Clicks may be reported without their impression; a positive always implies a trial. */
function trials(c: OutcomeCounts): number {
  return Math.max(c.impressions, c.positives);
}

function smoothed(c: OutcomeCounts | undefined, prior: number, weight: number): number {
  if (!c) return prior;
  return (c.positives + weight * prior) / (trials(c) + weight);
}

export interface Posterior {
  alpha: number;
  beta: number;
  mean: number;
}

/**
 * The posterior of every offer of one candidate list (same positions), for one statistics snapshot:
 * flat arrays, so a decision reads a propensity by position instead of through three map lookups.
 */
export interface PropensityTable {
  model: PropensityModel;
  /** The model's version the table was computed at, and when (epoch ms). */
  version: number;
  builtAt: number;
  priorWeight: number;
  alpha: Float64Array;
  beta: Float64Array;
  mean: Float64Array;
  /**
   * The list's positions in the order a flow whose score cannot depend on the customer ranks them, for
   * these means; computed by the engine when first needed.
   */
  ranking: Int32Array | null;
  /** The ranking of the table this one replaced, a starting point for computing this one's. */
  previousRanking: Int32Array | null;
}

export class PropensityModel {
  // Nested by channel so that a lookup builds no key strings.
  private readonly offers = new Map<string, Map<string, OutcomeCounts>>();
  private readonly categories = new Map<string, Map<string, OutcomeCounts>>();
  private readonly channels = new Map<string, OutcomeCounts>();
  /** Counts every recorded outcome, so tables computed from the model know when they are behind. */
  version = 0;

  constructor(rows: readonly StatsRow[]) {
    for (const row of rows) this.record(row.offerId, row.categoryId, row.channelId, row);
  }

  /** Counts one more outcome, so this instance learns at once instead of at the next reload. */
  record(offerId: string, categoryId: string, channelId: string, outcome: OutcomeCounts): void {
    this.version++;
    add(nested(this.offers, channelId), offerId, outcome);
    add(nested(this.categories, channelId), categoryId, outcome);
    add(this.channels, channelId, outcome);
  }

  posterior(offerId: string, categoryId: string, channelId: string, priorWeight: number): Posterior {
    const channelRate = smoothed(this.channels.get(channelId), NO_EVIDENCE_RATE, priorWeight);
    const categoryRate = smoothed(this.categories.get(channelId)?.get(categoryId), channelRate, priorWeight);
    const own = this.offers.get(channelId)?.get(offerId);
    const positives = own?.positives ?? 0;
    const alpha = positives + priorWeight * categoryRate;
    const beta = (own ? trials(own) : 0) - positives + priorWeight * (1 - categoryRate);
    return { alpha, beta, mean: alpha / (alpha + beta) };
  }

  /**
   * The posteriors of a list of offers on one channel, computed exactly as `posterior` does (the channel's
   * and each category's rate once, not per offer).
   */
  table(offers: readonly { id: string; categoryId: string }[], channelId: string, priorWeight: number, now: number): PropensityTable {
    const steps = this.tableSteps(offers, channelId, priorWeight, now);
    for (;;) {
      const r = steps.next();
      if (r.done) return r.value;
    }
  }

  /** `table`, yielding after every few thousand offers so that a caller can spread a large list out. */
  *tableSteps(
    offers: readonly { id: string; categoryId: string }[],
    channelId: string,
    priorWeight: number,
    now: number,
  ): Generator<void, PropensityTable> {
    const n = offers.length;
    const alpha = new Float64Array(n);
    const beta = new Float64Array(n);
    const mean = new Float64Array(n);
    const version = this.version;
    const channelRate = smoothed(this.channels.get(channelId), NO_EVIDENCE_RATE, priorWeight);
    const categoryCounts = this.categories.get(channelId);
    const offerCounts = this.offers.get(channelId);
    const categoryRates = new Map<string, number>();
    for (let j = 0; j < n; j++) {
      if (j % TABLE_STEP === TABLE_STEP - 1) yield;
      const o = offers[j] as { id: string; categoryId: string };
      let categoryRate = categoryRates.get(o.categoryId);
      if (categoryRate === undefined) {
        categoryRate = smoothed(categoryCounts?.get(o.categoryId), channelRate, priorWeight);
        categoryRates.set(o.categoryId, categoryRate);
      }
      const own = offerCounts?.get(o.id);
      const positives = own?.positives ?? 0;
      const a = positives + priorWeight * categoryRate;
      const b = (own ? trials(own) : 0) - positives + priorWeight * (1 - categoryRate);
      alpha[j] = a;
      beta[j] = b;
      mean[j] = a / (a + b);
    }
    // Outcomes recorded while the steps were spread out are not in the table: it says it is behind.
    return {
      model: this,
      version: this.version === version ? version : -1,
      builtAt: now,
      priorWeight,
      alpha,
      beta,
      mean,
      ranking: null,
      previousRanking: null,
    };
  }

  estimate(
    offerId: string,
    categoryId: string,
    channelId: string,
    mode: PropensityMode,
    priorWeight: number,
    random: () => number,
  ): number {
    const p = this.posterior(offerId, categoryId, channelId, priorWeight);
    if (mode === "mean") return p.mean;
    return sampleBeta(p.alpha, p.beta, random);
  }
}

/** Standard normal by Box-Muller. */
function sampleNormal(random: () => number): number {
  let u = 0;
  while (u === 0) u = random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

/** Gamma(shape, 1) by Marsaglia and Tsang; shapes below 1 use the boost x * U^(1/shape). */
function sampleGamma(shape: number, random: () => number): number {
  if (shape < 1) return sampleGamma(shape + 1, random) * random() ** (1 / shape);
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = sampleNormal(random);
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = random();
    if (u < 1 - 0.0331 * x ** 4) return d * v;
    if (Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
  }
}

export function sampleBeta(alpha: number, beta: number, random: () => number): number {
  if (alpha <= 0 || beta <= 0) return alpha > 0 ? 1 : 0;
  const x = sampleGamma(alpha, random);
  const y = sampleGamma(beta, random);
  return x + y === 0 ? 0.5 : x / (x + y);
}
