// Statistics of experiment results: conversion rates with 95% Wilson intervals, relative uplift over the
// control, a pooled two-proportion z-test, and a chi-squared sample-ratio-mismatch check against the
// configured weights. Every value that cannot be computed (no impressions, a zero control rate, no
// variance) is null rather than NaN, and `significant` is then false.

export const Z_95 = 1.959963984540054;

/** erfc(x) by the Chebyshev fit of Numerical Recipes (fractional error below 1.2e-7 everywhere). */
export function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t *
                  (0.09678418 +
                    t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? r : 2 - r;
}

/** Two-sided p-value of a standard normal statistic. */
export function twoSidedP(z: number): number {
  return erfc(Math.abs(z) / Math.SQRT2);
}

function logGamma(x: number): number {
  // Lanczos approximation (g = 7, n = 9).
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905,
    -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const xx = x - 1;
  let a = c[0] as number;
  const t = xx + 7.5;
  for (let i = 1; i < 9; i++) a += (c[i] as number) / (xx + i);
  return 0.5 * Math.log(2 * Math.PI) + (xx + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Regularised upper incomplete gamma Q(a, x), by series below a + 1 and a continued fraction above. */
export function gammaQ(a: number, x: number): number {
  if (x <= 0) return 1;
  const lg = logGamma(a);
  if (x < a + 1) {
    let sum = 1 / a;
    let term = sum;
    for (let n = 1; n < 500; n++) {
      term *= x / (a + n);
      sum += term;
      if (Math.abs(term) < Math.abs(sum) * 1e-15) break;
    }
    return 1 - sum * Math.exp(-x + a * Math.log(x) - lg);
  }
  // Lentz's method.
  const tiny = 1e-300;
  let b = x + 1 - a;
  let c = 1 / tiny;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 500; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < 1e-15) break;
  }
  return Math.exp(-x + a * Math.log(x) - lg) * h;
}

export interface Interval {
  low: number;
  high: number;
}

export function wilsonInterval(conversions: number, impressions: number, z = Z_95): Interval | null {
  if (impressions <= 0) return null;
  const p = conversions / impressions;
  const z2 = z * z;
  const denominator = 1 + z2 / impressions;
  const center = (p + z2 / (2 * impressions)) / denominator;
  const half = (z * Math.sqrt((p * (1 - p)) / impressions + z2 / (4 * impressions * impressions))) / denominator;
  return { low: Math.max(0, center - half), high: Math.min(1, center + half) };
}

export interface ZTest {
  z: number;
  pValue: number;
}

/** Pooled two-proportion z-test of a variant against the control; null when there is no variance. */
export function twoProportionZTest(
  control: { conversions: number; impressions: number },
  variant: { conversions: number; impressions: number },
): ZTest | null {
  if (control.impressions <= 0 || variant.impressions <= 0) return null;
  const pooled = (control.conversions + variant.conversions) / (control.impressions + variant.impressions);
  const se = Math.sqrt(pooled * (1 - pooled) * (1 / control.impressions + 1 / variant.impressions));
  if (se === 0) return null;
  const z = (variant.conversions / variant.impressions - control.conversions / control.impressions) / se;
  return { z, pValue: twoSidedP(z) };
}

export interface SampleRatioCheck {
  chiSquared: number;
  degreesOfFreedom: number;
  pValue: number;
  /** True when the observed split is implausible under the configured weights (p < 0.001). */
  mismatch: boolean;
}

export const SRM_THRESHOLD = 0.001;

export function sampleRatioMismatch(observed: number[], weights: number[]): SampleRatioCheck | null {
  const total = observed.reduce((a, b) => a + b, 0);
  const weightSum = weights.reduce((a, b) => a + b, 0);
  if (total === 0 || observed.length < 2 || observed.length !== weights.length || weightSum <= 0) return null;
  let chiSquared = 0;
  for (let i = 0; i < observed.length; i++) {
    const expected = (total * (weights[i] as number)) / weightSum;
    if (expected <= 0) return null;
    chiSquared += ((observed[i] as number) - expected) ** 2 / expected;
  }
  const degreesOfFreedom = observed.length - 1;
  const pValue = gammaQ(degreesOfFreedom / 2, chiSquared / 2);
  return { chiSquared, degreesOfFreedom, pValue, mismatch: pValue < SRM_THRESHOLD };
}

export interface VariantCounts {
  variant: string;
  weight: number;
  impressions: number;
  conversions: number;
}

export interface VariantResult extends VariantCounts {
  conversionRate: number | null;
  confidenceInterval: Interval | null;
  /** Relative difference to the control's rate, in percent. */
  uplift: number | null;
  zScore: number | null;
  pValue: number | null;
  significant: boolean;
}

export interface ExperimentResults {
  variants: VariantResult[];
  sampleRatio: SampleRatioCheck | null;
}

/** Results of every variant against the first one, the control. */
export function analyseExperiment(counts: VariantCounts[], alpha = 0.05): ExperimentResults {
  const control = counts[0];
  const variants = counts.map((v, i): VariantResult => {
    const rate = v.impressions > 0 ? v.conversions / v.impressions : null;
    const controlRate = control && control.impressions > 0 ? control.conversions / control.impressions : null;
    const test = i > 0 && control ? twoProportionZTest(control, v) : null;
    return {
      ...v,
      conversionRate: rate,
      confidenceInterval: wilsonInterval(v.conversions, v.impressions),
      uplift: i > 0 && rate !== null && controlRate !== null && controlRate > 0 ? ((rate - controlRate) / controlRate) * 100 : null,
      zScore: test?.z ?? null,
      pValue: test?.pValue ?? null,
      significant: test !== null && test.pValue < alpha,
    };
  });
  return {
    variants,
    sampleRatio: sampleRatioMismatch(
      counts.map((c) => c.impressions),
      counts.map((c) => c.weight),
    ),
  };
}
