import { describe, expect, test } from "bun:test";
import { PropensityModel, sampleBeta } from "./propensity.ts";

const row = (offerId: string, categoryId: string, impressions: number, positives: number, channelId = "web") => ({
  offerId,
  categoryId,
  channelId,
  impressions,
  positives,
});

describe("PropensityModel", () => {
  test("is 0.5 with no evidence at all", () => {
    expect(new PropensityModel([]).posterior("a", "cat", "web", 10).mean).toBe(0.5);
  });

  test("smooths an offer towards its category, and the category towards the channel", () => {
    // Channel: 30 positives / 200 trials → (30 + 10·0.5) / 210 = 1/6.
    // Category of "a": 20 / 100 → (20 + 10/6) / 110 = 0.19697.
    // Offer "a": 2 / 10 → (2 + 10·0.19697) / 20 = 0.198485.
    const model = new PropensityModel([row("a", "c1", 10, 2), row("b", "c1", 90, 18), row("x", "c2", 100, 10)]);
    const channelRate = 35 / 210;
    const categoryRate = (20 + 10 * channelRate) / 110;
    expect(model.posterior("a", "c1", "web", 10).mean).toBeCloseTo((2 + 10 * categoryRate) / 20, 10);
    // An offer never seen on the channel borrows its category's rate outright.
    expect(model.posterior("new", "c1", "web", 10).mean).toBeCloseTo(categoryRate, 10);
    // Other channels know nothing yet.
    expect(model.posterior("a", "c1", "email", 10).mean).toBe(0.5);
  });

  test("recorded outcomes move the posterior at once", () => {
    const model = new PropensityModel([]);
    model.record("a", "c", "web", { impressions: 1, positives: 0 });
    expect(model.posterior("a", "c", "web", 10).mean).toBeLessThan(0.5);
    for (let i = 0; i < 5; i++) model.record("a", "c", "web", { impressions: 0, positives: 1 });
    expect(model.posterior("a", "c", "web", 10).mean).toBeGreaterThan(0.5);
  });

  test("clicks without recorded impressions still count as trials", () => {
    const model = new PropensityModel([row("a", "c", 0, 30)]);
    expect(model.posterior("a", "c", "web", 10).mean).toBeGreaterThan(0.8);
  });

  test("Thompson samples average to the posterior mean", () => {
    let seed = 42;
    const random = () => {
      seed = (seed * 1664525 + 1013904223) % 4294967296;
      return seed / 4294967296;
    };
    let sum = 0;
    for (let i = 0; i < 20_000; i++) sum += sampleBeta(3, 7, random);
    expect(sum / 20_000).toBeCloseTo(0.3, 2);
    expect(sampleBeta(0.5, 0.5, random)).toBeGreaterThanOrEqual(0);
  });
});
