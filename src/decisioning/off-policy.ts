// Off-policy estimates: what a target policy would have earned on decisions logged by another, from the
// probability with which each logged choice was made. A logged decision i chose action a_i with
// probability p_i and got reward r_i (1 when the customer clicked or converted, else 0); the target would
// have chosen a_i with probability t_i (1 or 0 for a deterministic target). Its weight is w_i = t_i / p_i.
//
//   IPS   = (1/n) sum r_i w_i                 unbiased when every p_i > 0 where the target acts
//   SNIPS = sum r_i w_i / sum w_i             biased by O(1/n), much lower variance
//   ESS   = (sum w_i)^2 / sum w_i^2           how many on-policy decisions the estimate is worth
//
// Intervals are 95 %. IPS's is a betting interval (bettingInterval below), valid at any sample size for
// values bounded by the largest weight: it keeps its level where the normal approximation does not (rare
// rewards, uneven weights), at about 1.5 times its width with 2,000 decisions. SNIPS's is a score
// interval of its estimating equation (snipsScoreInterval), approximate. Both are clipped to [0, 1],
// where a rate lies.

import { type Interval, Z_95 } from "./experiment-stats.ts";

export interface LoggedOutcome {
  /** The reward: 1 for a click (or conversion), 0 otherwise. */
  reward: number;
  /** The probability with which the logging policy made the logged choice, in (0, 1]. */
  logged: number;
  /** The probability with which the target policy would have made the same choice, in [0, 1]. */
  target: number;
}

export interface OffPolicyEstimate {
  n: number;
  /** The logged policy's own rate: the mean reward. */
  loggedRate: number;
  ips: number;
  ipsInterval: Interval;
  /** Null when no logged choice is one the target would make. */
  snips: number | null;
  snipsInterval: Interval | null;
  effectiveSampleSize: number;
}

const clip = (x: number) => Math.min(1, Math.max(0, x));

export function offPolicyEstimate(samples: readonly LoggedOutcome[]): OffPolicyEstimate {
  const z = Z_95;
  const n = samples.length;
  let sumW = 0;
  let sumW2 = 0;
  let sumRW = 0;
  let sumR = 0;
  for (const s of samples) {
    const w = s.target / s.logged;
    sumW += w;
    sumW2 += w * w;
    sumRW += s.reward * w;
    sumR += s.reward;
  }
  const ips = n > 0 ? sumRW / n : 0;
  // The IPS terms lie in [0, W], W the largest weight: scaled into [0, 1] for the betting interval.
  let most = 0;
  for (const s of samples) most = Math.max(most, s.target / s.logged);
  const bet =
    most > 0
      ? bettingInterval(
          samples.map((s) => (s.reward * (s.target / s.logged)) / most),
          0.05,
        )
      : null;
  let snips: number | null = null;
  let snipsInterval: Interval | null = null;
  if (sumW > 0) {
    const v = sumRW / sumW;
    let spread = 0;
    for (const s of samples) {
      const w = s.target / s.logged;
      spread += w * w * (s.reward - v) ** 2;
    }
    snips = v;
    // Where the score interval is unbounded (too few decisions carry weight), the delta method's.
    const se = Math.sqrt(spread) / sumW;
    snipsInterval = snipsScoreInterval(samples, sumW, sumRW, z) ?? { low: clip(v - z * se), high: clip(v + z * se) };
  }
  return {
    n,
    loggedRate: n > 0 ? sumR / n : 0,
    ips,
    // Without a single decision the target would have made, the data say nothing of its rate.
    ipsInterval: bet ? { low: clip(bet.low * most), high: clip(bet.high * most) } : { low: 0, high: 1 },
    snips,
    snipsInterval,
    effectiveSampleSize: sumW2 > 0 ? (sumW * sumW) / sumW2 : 0,
  };
}

/**
 * The score interval of SNIPS: the values V whose estimating equation sum w_i (r_i - V) = 0 is not
 * rejected, |sum w_i (r_i - V)| <= z sqrt(sum w_i^2 (r_i - V)^2). As Wilson's interval does for a
 * proportion, it takes the variance at V rather than at the estimate, which keeps its coverage when
 * rewards are rare and weights uneven. Null when the weights are too uneven for it to be bounded
 * (an effective sample size below z^2).
 */
function snipsScoreInterval(samples: readonly LoggedOutcome[], sumW: number, sumRW: number, z: number): Interval | null {
  // (S1 - V S0)^2 <= z^2 (R2 - 2 V R1 + V^2 W2), with S1 = sum w r, S0 = sum w, R2 = sum w^2 r^2,
  // R1 = sum w^2 r, W2 = sum w^2: a quadratic in V whose roots are the interval's ends.
  let w2 = 0;
  let r1 = 0;
  let r2 = 0;
  for (const s of samples) {
    const w = s.target / s.logged;
    w2 += w * w;
    r1 += w * w * s.reward;
    r2 += w * w * s.reward * s.reward;
  }
  const z2 = z * z;
  const qa = sumW * sumW - z2 * w2;
  if (qa <= 0) return null;
  const qb = sumRW * sumW - z2 * r1;
  const qc = sumRW * sumRW - z2 * r2;
  const disc = qb * qb - qa * qc;
  if (disc < 0) return null;
  const root = Math.sqrt(disc);
  return { low: clip((qb - root) / qa), high: clip((qb + root) / qa) };
}

/**
 * A confidence interval for the mean of values in [0, 1] that holds at level 1 - alpha for any
 * distribution, not only asymptotically: the hedged-capital interval of Waudby-Smith and Ramdas
 * ("Estimating means of bounded random variables by betting", 2023). A candidate mean m is rejected
 * when a bettor who wagers, value by value in the order given, that the mean is above m (or below it)
 * multiplies their capital by 1/alpha; the interval is the candidates never rejected. Bets are sized from
 * the values seen before each one, as the construction requires. It is somewhat wider than the normal
 * approximation and keeps its level when values are rare and skewed (IPS terms of a rare reward).
 */
export function bettingInterval(values: readonly number[], alpha = 0.05): Interval {
  const n = values.length;
  if (n === 0) return { low: 0, high: 1 };
  // Bet sizes depend only on earlier values, not on the candidate: computed once.
  const lambda = new Float64Array(n);
  let sum = 0;
  let squares = 0.25;
  let mean = 0.5;
  const scale = 2 * Math.log(2 / alpha);
  for (let i = 0; i < n; i++) {
    const variance = squares / (i + 1);
    lambda[i] = Math.sqrt(scale / (n * variance));
    const x = values[i] as number;
    squares += (x - mean) ** 2;
    sum += x;
    mean = (0.5 + sum) / (i + 2);
  }
  const threshold = Math.log(1 / alpha);
  // log of max(K+/2, K-/2) at m: rejected when it reaches log(1/alpha).
  const rejected = (m: number): boolean => {
    let up = 0;
    let down = 0;
    const capUp = m > 0 ? 0.5 / m : Number.POSITIVE_INFINITY;
    const capDown = m < 1 ? 0.5 / (1 - m) : Number.POSITIVE_INFINITY;
    for (let i = 0; i < n; i++) {
      const d = (values[i] as number) - m;
      const l = lambda[i] as number;
      up += Math.log1p(Math.min(l, capUp) * d);
      down += Math.log1p(-Math.min(l, capDown) * d);
    }
    return Math.max(up, down) - Math.LN2 >= threshold;
  };
  const centre = sum / n;
  // The rejected candidates lie beyond each end; each end is found by bisection.
  const edge = (inside: number, outside: number): number => {
    if (!rejected(outside)) return outside;
    let a = inside;
    let b = outside;
    for (let k = 0; k < 40; k++) {
      const mid = (a + b) / 2;
      if (rejected(mid)) b = mid;
      else a = mid;
    }
    return a;
  };
  return { low: edge(centre, 0), high: edge(centre, 1) };
}
