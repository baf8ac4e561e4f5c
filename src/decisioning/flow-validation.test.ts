import { describe, expect, test } from "bun:test";
import { validateFlowDefinition } from "./flow-validation.ts";

describe("validateFlowDefinition", () => {
  test("accepts the documented shape", () => {
    expect(
      validateFlowDefinition({
        candidates: { categoryIds: ["cat_a"] },
        score: {
          method: "prie",
          weights: { propensity: 0.4, relevance: 0.2, impact: 0.3, emphasis: 0.1 },
          propensity: "thompson",
          priorWeight: 10,
        },
        rank: { perCategoryCap: 2 },
        policies: [{ type: "frequency_cap", scope: "offer", max: 3, window: "day" }, { type: "opt_out" }],
      }),
    ).toEqual([]);
    expect(validateFlowDefinition({})).toEqual([]);
  });

  test("names every bad field", () => {
    const fields = validateFlowDefinition({
      candidates: { offerIds: "act_x" },
      score: {
        method: "magic",
        weights: { propensity: 0.5, relevance: 0.5, impact: 0.5, emphasis: 0.5 },
        propensity: "guess",
        priorWeight: 0,
      },
      rank: { perCategoryCap: 0 },
      policies: [{ type: "frequency_cap", scope: "offer", max: 3, window: "day" }, { type: "spam" }],
      extra: true,
    }).map((v) => v.field);
    expect(fields.sort()).toEqual(
      [
        "candidates.offerIds",
        "extra",
        "policies[1]",
        "rank.perCategoryCap",
        "score.method",
        "score.priorWeight",
        "score.propensity",
        "score.weights",
      ].sort(),
    );
  });
});
