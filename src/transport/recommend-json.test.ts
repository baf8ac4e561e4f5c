import { describe, expect, test } from "bun:test";
import { create, toJson } from "@bufbuild/protobuf";
import {
  ExperimentAssignmentSchema,
  PlacementRecommendationsSchema,
  type Recommendation,
  type RecommendResponse,
  RecommendationSchema,
  RecommendResponseSchema,
} from "../../gen/kaireon/v1/recommend_pb.ts";
import { seededRandom } from "../random.ts";
import { randomJson } from "../../test/random-json.ts";
import { recommendResponseJson } from "./recommend-json.ts";

/** The answer as REST wrote it before: the generic JSON mapping with every field, less the unused ones. */
function viaJsonMapping(res: RecommendResponse): Record<string, unknown> {
  const out = toJson(RecommendResponseSchema, res, { alwaysEmitImplicit: true }) as Record<string, unknown>;
  if (res.placements.length === 0) delete out.placements;
  if (!res.heldOut) delete out.heldOut;
  for (const r of out.recommendations as Record<string, unknown>[]) if (r.placement === "") delete r.placement;
  return out;
}

const random = seededRandom(1203);
const { pick, text, object } = randomJson(random);

const maybe = <T>(f: () => T): T | undefined => (random() < 0.5 ? f() : undefined);

function recommendation(placement: string): Recommendation {
  return create(RecommendationSchema, {
    offerId: text(12),
    offerName: text(20),
    categoryId: text(8),
    rank: pick([0, 1, 2, 7, 2_147_483_647, -1]),
    score: pick([0, -0, 1, 0.1 + 0.2, 1e-300, 5e-324, 1e300, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, random()]),
    channelId: text(8),
    creativeId: text(8),
    content: maybe(() => object(0)),
    personalization: maybe(() => object(1)),
    experiment: maybe(() => create(ExperimentAssignmentSchema, { experimentId: text(8), variant: text(8), weight: pick([0, 1, 50, 100]) })),
    recommendationId: text(16),
    placement,
  });
}

function response(): RecommendResponse {
  const multi = random() < 0.3;
  const names = multi ? Array.from({ length: 1 + Math.floor(random() * 3) }, (_, i) => `${text(6)}#${i}`) : [];
  const recommendations = multi
    ? names.flatMap((p) => Array.from({ length: Math.floor(random() * 3) }, () => recommendation(p)))
    : Array.from({ length: Math.floor(random() * 4) }, () => recommendation(""));
  const seconds = BigInt(pick([0, 1, 1_764_790_000, 253_402_300_799, -62_135_596_800]));
  return create(RecommendResponseSchema, {
    customerId: text(12),
    recommendations,
    decisionFlowId: text(10),
    traceId: maybe(() => text(10)),
    processedAt: maybe(() => ({ seconds, nanos: pick([0, 1, 999_999_999, 5_000_000, 120_000_000, 123_456_000, 1_000, 7]) })),
    // A placement of a request is never empty (validation requires it).
    placements: names.map((placement) =>
      create(PlacementRecommendationsSchema, { placement, recommendations: recommendations.filter((r) => r.placement === placement) }),
    ),
    heldOut: random() < 0.2,
  });
}

describe("Recommend answer JSON", () => {
  test("is the JSON mapping's text, byte for byte, on 5,000 random answers", () => {
    for (let i = 0; i < 5_000; i++) {
      const res = response();
      expect(JSON.stringify(recommendResponseJson(res))).toBe(JSON.stringify(viaJsonMapping(res)));
    }
  });

  test("a demo-like answer: RFC 3339 time with milliseconds, placement and unused fields left out", () => {
    const res = create(RecommendResponseSchema, {
      customerId: "cust_12345",
      decisionFlowId: "df_default",
      processedAt: { seconds: 1_764_790_000n, nanos: 5_000_000 },
      recommendations: [recommendation("")],
    });
    const out = recommendResponseJson(res);
    expect(out.processedAt).toBe("2025-12-03T19:26:40.005Z");
    expect(Object.keys(out)).toEqual(["customerId", "recommendations", "decisionFlowId", "processedAt"]);
    const [first] = out.recommendations as Record<string, unknown>[];
    expect(first).toBeDefined();
    expect("placement" in (first as Record<string, unknown>)).toBe(false);
  });

  test("names every field of the messages it writes, so a field added to the contract fails here first", () => {
    const fields = (s: { fields: { jsonName: string }[] }) => s.fields.map((f) => f.jsonName);
    expect(fields(RecommendResponseSchema)).toEqual([
      "customerId",
      "recommendations",
      "decisionFlowId",
      "traceId",
      "processedAt",
      "placements",
      "heldOut",
    ]);
    expect(fields(RecommendationSchema)).toEqual([
      "offerId",
      "offerName",
      "categoryId",
      "rank",
      "score",
      "channelId",
      "creativeId",
      "content",
      "personalization",
      "experiment",
      "recommendationId",
      "placement",
    ]);
    expect(fields(ExperimentAssignmentSchema)).toEqual(["experimentId", "variant", "weight"]);
    expect(fields(PlacementRecommendationsSchema)).toEqual(["placement", "recommendations"]);
  });
});
