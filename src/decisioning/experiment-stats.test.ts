import { describe, expect, test } from "bun:test";
import { analyseExperiment, gammaQ, sampleRatioMismatch, twoProportionZTest, wilsonInterval } from "./experiment-stats.ts";

// Reference values are derived by hand from the formulas (z = 1.959964 for 95%):
//   Wilson: center = (p + z²/2n) / (1 + z²/n), half = z·sqrt(p(1−p)/n + z²/4n²) / (1 + z²/n)
//   pooled z: p̄ = (x₁+x₂)/(n₁+n₂), se = sqrt(p̄(1−p̄)(1/n₁+1/n₂)), z = (p₂−p₁)/se, p = 2(1−Φ(|z|))
//   SRM: χ² = Σ (o−e)²/e with e = N·wᵢ; p = Q(df/2, χ²/2); for df = 1, p = erfc(sqrt(χ²/2)); for df = 2, p = e^(−χ²/2)

describe("case 1: control 100/1000 (10%), variant 130/1000 (13%)", () => {
  const r = analyseExperiment([
    { variant: "control", weight: 50, impressions: 1000, conversions: 100 },
    { variant: "variant_a", weight: 50, impressions: 1000, conversions: 130 },
  ]);
  const [control, variant] = r.variants;

  test("Wilson intervals", () => {
    // control: z²/n = 0.0038415, center = (0.1 + 0.00192073)/1.0038415 = 0.101530,
    // half = 1.959964·sqrt(0.00009 + 0.00000096)/1.0038415 = 0.018621 → [0.082909, 0.120152]
    expect(control?.confidenceInterval?.low).toBeCloseTo(0.082909, 5);
    expect(control?.confidenceInterval?.high).toBeCloseTo(0.120152, 5);
    // variant: center = (0.13 + 0.00192073)/1.0038415 = 0.131416, half = 0.020852 → [0.110564, 0.152268]
    expect(variant?.confidenceInterval?.low).toBeCloseTo(0.110564, 5);
    expect(variant?.confidenceInterval?.high).toBeCloseTo(0.152268, 5);
  });

  test("uplift, z and p", () => {
    // uplift = (0.13 − 0.10)/0.10 = 30%; p̄ = 230/2000 = 0.115, se = sqrt(0.115·0.885·0.002) = 0.0142671,
    // z = 0.03/0.0142671 = 2.10274, p = 2(1 − Φ(2.10274)) = 0.035488 < 0.05
    expect(variant?.conversionRate).toBe(0.13);
    expect(variant?.uplift).toBeCloseTo(30, 10);
    expect(variant?.zScore).toBeCloseTo(2.10274, 4);
    expect(variant?.pValue).toBeCloseTo(0.035488, 5);
    expect(variant?.significant).toBe(true);
    expect(control?.uplift).toBeNull();
    expect(control?.significant).toBe(false);
  });
});

describe("case 2: a zero-conversion variant (control 10/500, variant 0/500)", () => {
  const r = analyseExperiment([
    { variant: "control", weight: 50, impressions: 500, conversions: 10 },
    { variant: "variant_a", weight: 50, impressions: 500, conversions: 0 },
  ]);
  const variant = r.variants[1];
  test("has a finite interval starting at 0, −100% uplift and a significant drop", () => {
    // Wilson with p = 0: center = half = (z²/2n)/(1 + z²/n) = 0.00384146/1.00768292 = 0.0038122 → [0, 0.0076243]
    expect(variant?.confidenceInterval?.low).toBeCloseTo(0, 10);
    expect(variant?.confidenceInterval?.high).toBeCloseTo(0.0076243, 6);
    expect(variant?.uplift).toBe(-100);
    // p̄ = 10/1000 = 0.01, se = sqrt(0.01·0.99·0.004) = 0.0062929, z = −0.02/0.0062929 = −3.17821, p = 0.0014819
    expect(variant?.zScore).toBeCloseTo(-3.17821, 4);
    expect(variant?.pValue).toBeCloseTo(0.0014819, 6);
    expect(variant?.significant).toBe(true);
  });
});

describe("case 3: a tiny sample and an empty one", () => {
  test("1/3 against 2/4 computes, without significance", () => {
    const r = analyseExperiment([
      { variant: "control", weight: 50, impressions: 3, conversions: 1 },
      { variant: "variant_a", weight: 50, impressions: 4, conversions: 2 },
    ]);
    // p̄ = 3/7, se = sqrt(3/7·4/7·(1/3 + 1/4)) = 0.377964, z = (0.5 − 0.333333)/0.377964 = 0.440959, p = 0.659243
    expect(r.variants[1]?.zScore).toBeCloseTo(0.440959, 5);
    expect(r.variants[1]?.pValue).toBeCloseTo(0.659243, 5);
    expect(r.variants[1]?.significant).toBe(false);
    // Wilson 1/3: [0.061492, 0.792340]
    expect(r.variants[0]?.confidenceInterval?.low).toBeCloseTo(0.061492, 5);
    expect(r.variants[0]?.confidenceInterval?.high).toBeCloseTo(0.79234, 5);
  });

  test("no impressions, or no conversions anywhere, give nulls, never NaN", () => {
    const empty = analyseExperiment([
      { variant: "control", weight: 70, impressions: 0, conversions: 0 },
      { variant: "variant_a", weight: 30, impressions: 0, conversions: 0 },
    ]);
    for (const v of empty.variants) {
      expect(v.conversionRate).toBeNull();
      expect(v.confidenceInterval).toBeNull();
      expect(v.uplift).toBeNull();
      expect(v.zScore).toBeNull();
      expect(v.pValue).toBeNull();
      expect(v.significant).toBe(false);
    }
    expect(empty.sampleRatio).toBeNull();
    // Both at 0%: no variance, so no test; the control rate is 0, so no relative uplift.
    expect(twoProportionZTest({ conversions: 0, impressions: 10 }, { conversions: 0, impressions: 12 })).toBeNull();
    const flat = analyseExperiment([
      { variant: "control", weight: 50, impressions: 10, conversions: 0 },
      { variant: "variant_a", weight: 50, impressions: 12, conversions: 3 },
    ]);
    expect(flat.variants[1]?.uplift).toBeNull();
    expect(JSON.stringify(flat)).not.toContain("NaN");
    expect(wilsonInterval(0, 0)).toBeNull();
  });
});

describe("sample ratio mismatch", () => {
  test("50/50 with 5,000 vs 4,600 is flagged", () => {
    // e = 4,800 each; χ² = (200² + 200²)/4,800 = 16.6667, df = 1, p = erfc(sqrt(8.3333)) = 4.4557e-5 < 0.001
    const srm = sampleRatioMismatch([5000, 4600], [50, 50]);
    expect(srm?.chiSquared).toBeCloseTo(16.6667, 4);
    expect(srm?.pValue).toBeCloseTo(4.4557e-5, 8);
    expect(srm?.mismatch).toBe(true);
  });

  test("50/50 with 4,820 vs 4,780 is not", () => {
    // χ² = (20² + 20²)/4,800 = 0.16667, p = erfc(sqrt(0.083333)) = 0.683091
    const srm = sampleRatioMismatch([4820, 4780], [50, 50]);
    expect(srm?.pValue).toBeCloseTo(0.683091, 5);
    expect(srm?.mismatch).toBe(false);
  });

  test("three variants 70/20/10 with 7,000/2,100/900", () => {
    // e = 7,000/2,000/1,000; χ² = 0 + 5 + 10 = 15, df = 2, p = e^(−7.5) = 5.5308e-4 < 0.001
    const srm = sampleRatioMismatch([7000, 2100, 900], [70, 20, 10]);
    expect(srm?.chiSquared).toBeCloseTo(15, 10);
    expect(srm?.pValue).toBeCloseTo(Math.exp(-7.5), 9);
    expect(srm?.mismatch).toBe(true);
  });

  test("the incomplete gamma function matches closed forms", () => {
    expect(gammaQ(1, 3)).toBeCloseTo(Math.exp(-3), 12);
    expect(gammaQ(1, 0.2)).toBeCloseTo(Math.exp(-0.2), 12);
    // Q(2, x) = e^(−x)(1 + x)
    expect(gammaQ(2, 5)).toBeCloseTo(Math.exp(-5) * 6, 12);
    expect(gammaQ(2, 1)).toBeCloseTo(Math.exp(-1) * 2, 12);
  });
});
