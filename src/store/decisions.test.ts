import { describe, expect, test } from "bun:test";
import { create, toJson } from "@bufbuild/protobuf";
import { DecisionMadeV1Schema, RecommendationShownSchema } from "../../gen/kaireon/v1/events_pb.ts";
import { decisionMadeData, type ShownRecommendation } from "./decisions.ts";

const shown = (over: Partial<ShownRecommendation>): ShownRecommendation => ({
  recommendationId: "rec_a",
  customerId: "c",
  channelId: "ch",
  placement: null,
  offerId: "o",
  creativeId: "cr",
  rank: 1,
  score: 0.42,
  propensity: 0.1,
  experimentId: null,
  variant: null,
  decisionFlowId: "f",
  flowVersion: 3,
  traceId: null,
  ...over,
});

describe("decision.made.v1", () => {
  test("its data is the JSON mapping of DecisionMadeV1, whatever is set", () => {
    const cases = [
      { placement: "", traceId: "", decisionFlowVersion: 3, recommendations: [] as ShownRecommendation[] },
      {
        placement: "hero",
        traceId: "trace_x",
        decisionFlowVersion: 1,
        recommendations: [
          shown({}),
          shown({ rank: 2, score: 0, propensity: 0, experimentId: "exp", variant: "b" }),
          shown({ propensity: null }),
        ],
      },
    ];
    for (const c of cases) {
      const d = { decisionId: "dec_1", customerId: "c", channelId: "ch", decisionFlowId: "f", ...c };
      const expected = toJson(
        DecisionMadeV1Schema,
        create(DecisionMadeV1Schema, {
          ...d,
          recommendations: d.recommendations.map((r) =>
            create(RecommendationShownSchema, {
              recommendationId: r.recommendationId,
              offerId: r.offerId,
              creativeId: r.creativeId,
              rank: r.rank,
              score: r.score,
              propensity: r.propensity ?? undefined,
              experimentId: r.experimentId ?? "",
              variant: r.variant ?? "",
            }),
          ),
        }),
      );
      expect(JSON.stringify(decisionMadeData(d))).toBe(JSON.stringify(expected));
    }
  });
});
