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

export class PropensityModel {
  // Nested by channel so that a lookup builds no key strings: it runs for every candidate of a decision.
  private readonly offers = new Map<string, Map<string, OutcomeCounts>>();
  private readonly categories = new Map<string, Map<string, OutcomeCounts>>();
  private readonly channels = new Map<string, OutcomeCounts>();

  constructor(rows: readonly StatsRow[]) {
    for (const row of rows) this.record(row.offerId, row.categoryId, row.channelId, row);
  }

  /** Counts one more outcome, so this instance learns at once instead of at the next reload. */
  record(offerId: string, categoryId: string, channelId: string, outcome: OutcomeCounts): void {
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
