// Off-policy estimates against simulations whose true value is known: a logging policy that picks among
// four offers with known probabilities per kind of customer, click rates known per kind and offer, and a
// deterministic target whose value is computed exactly.

import { describe, expect, test } from "bun:test";
import { seededRandom } from "../random.ts";
import { fnv1a32 } from "./experiment.ts";
import { bettingInterval, type LoggedOutcome, offPolicyEstimate } from "./off-policy.ts";

const KINDS = 5;
const OFFERS = 4;
// One world for every simulation; each simulation draws its own customers, choices and clicks.
const world = seededRandom(12_345);
const RATE = Array.from({ length: KINDS }, () => Array.from({ length: OFFERS }, () => 0.02 + 0.3 * world()));
const LOGGING = Array.from({ length: KINDS }, () => {
  const e = Array.from({ length: OFFERS }, () => Math.exp(2 * world()));
  const total = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / total);
});
// The target shows each kind its worst offer but the first: far from what the logging policy prefers.
const TARGET = RATE.map((row) => row.indexOf(Math.min(...row.slice(1))));
const TRUE_VALUE = RATE.reduce((sum, row, kind) => sum + (row[TARGET[kind] as number] as number) / KINDS, 0);

function simulate(seed: number, decisions: number): LoggedOutcome[] {
  const r = seededRandom(seed);
  const out: LoggedOutcome[] = [];
  for (let i = 0; i < decisions; i++) {
    const kind = Math.floor(r() * KINDS);
    const p = LOGGING[kind] as number[];
    let u = r();
    let offer = 0;
    while (offer < OFFERS - 1 && u >= (p[offer] as number)) u -= p[offer++] as number;
    const reward = r() < ((RATE[kind] as number[])[offer] as number) ? 1 : 0;
    out.push({ reward, logged: p[offer] as number, target: offer === TARGET[kind] ? 1 : 0 });
  }
  return out;
}

const within = (x: number, i: { low: number; high: number } | null) => i !== null && i.low <= x && x <= i.high;

describe("off-policy estimates", () => {
  test("the IPS interval holds the true value in at least 95 of 100 seeded simulations; SNIPS's in about 95", () => {
    let ips = 0;
    let snips = 0;
    let error = 0;
    for (let s = 1; s <= 100; s++) {
      // Seeds spread by a hash: consecutive seeds of this generator start correlated streams.
      const e = offPolicyEstimate(simulate(fnv1a32(`simulation:${s}`), 2_000));
      if (within(TRUE_VALUE, e.ipsInterval)) ips++;
      if (within(TRUE_VALUE, e.snipsInterval)) snips++;
      error += Math.abs((e.snips as number) - TRUE_VALUE);
    }
    console.log(`true value ${TRUE_VALUE.toFixed(4)}: IPS interval held it ${ips}/100, SNIPS interval ${snips}/100`);
    expect(ips).toBeGreaterThanOrEqual(95);
    // The SNIPS interval is approximate (95 % in the long run): a weaker bound, so the test says only what holds.
    expect(snips).toBeGreaterThanOrEqual(88);
    // And the estimates are close: the mean error is a small part of the value.
    expect(error / 100).toBeLessThan(0.2 * TRUE_VALUE);
  });

  test("weights, effective sample size and both estimates by hand", () => {
    // Four decisions: the target makes the choice of the first three (probabilities 0.5, 0.25, 1).
    const e = offPolicyEstimate([
      { reward: 1, logged: 0.5, target: 1 },
      { reward: 0, logged: 0.25, target: 1 },
      { reward: 1, logged: 1, target: 1 },
      { reward: 1, logged: 0.5, target: 0 },
    ]);
    // weights 2, 4, 1, 0: IPS = (2 + 0 + 1 + 0) / 4; SNIPS = 3 / 7; ESS = 7^2 / (4 + 16 + 1).
    expect(e.ips).toBeCloseTo(0.75, 12);
    expect(e.snips).toBeCloseTo(3 / 7, 12);
    expect(e.effectiveSampleSize).toBeCloseTo(49 / 21, 12);
    expect(e.loggedRate).toBe(0.75);
    expect(e.n).toBe(4);
  });

  test("a target that never makes a logged choice: no SNIPS, and an IPS interval that claims nothing", () => {
    const e = offPolicyEstimate([
      { reward: 1, logged: 0.5, target: 0 },
      { reward: 0, logged: 0.5, target: 0 },
    ]);
    expect(e.ips).toBe(0);
    expect(e.snips).toBeNull();
    expect(e.ipsInterval).toEqual({ low: 0, high: 1 });
    expect(e.effectiveSampleSize).toBe(0);
  });

  test("the betting interval keeps its level for a rare, skewed mean where a normal interval does not", () => {
    // Values 0 or 1 with mean 0.01, 300 at a time: the normal interval often misses; the betting one holds.
    let betting = 0;
    let normal = 0;
    for (let s = 1; s <= 400; s++) {
      const r = seededRandom(fnv1a32(`rare:${s}`));
      const xs: number[] = Array.from({ length: 300 }, () => (r() < 0.01 ? 1 : 0));
      const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
      const se = Math.sqrt((mean * (1 - mean)) / xs.length);
      if (within(0.01, bettingInterval(xs))) betting++;
      if (within(0.01, { low: mean - 1.96 * se, high: mean + 1.96 * se })) normal++;
    }
    expect(betting / 400).toBeGreaterThanOrEqual(0.95);
    expect(normal / 400).toBeLessThan(0.95);
  });
});
