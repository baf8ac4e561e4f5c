// A Recommend answer as REST writes it, built field by field. It is the JSON the protobuf mapping gives
// (every implicit field, unset messages left out, timestamps in RFC 3339) less what a single-placement call
// does not use. The generic mapping walks the descriptors and each Struct value by reflection, which was
// about a tenth of a batch decision's CPU. `recommend-json.test.ts` checks this against that mapping.

import type { Timestamp } from "@bufbuild/protobuf/wkt";
import type { ExperimentAssignment, Recommendation, RecommendResponse } from "../../gen/kaireon/v1/recommend_pb.ts";

/** A double as the JSON mapping writes it: a number, or "NaN" / "Infinity" / "-Infinity" as strings. */
const double = (x: number): number | string => (Number.isFinite(x) ? x : String(x));

/** A Timestamp in RFC 3339, UTC, with 0, 3, 6 or 9 fractional digits, as the JSON mapping writes it. */
export function timestampText(t: Timestamp): string {
  const ms = Number(t.seconds) * 1000;
  if (!(ms >= -62_135_596_800_000 && ms <= 253_402_300_799_000) || t.nanos < 0 || t.nanos > 999_999_999) {
    throw new Error("timestamp out of range for JSON");
  }
  let z = "Z";
  if (t.nanos > 0) {
    const digits = String(t.nanos + 1_000_000_000).slice(1);
    z = digits.endsWith("000000") ? `.${digits.slice(0, 3)}Z` : digits.endsWith("000") ? `.${digits.slice(0, 6)}Z` : `.${digits}Z`;
  }
  return new Date(ms).toISOString().replace(".000Z", z);
}

function experimentJson(e: ExperimentAssignment): Record<string, unknown> {
  return { experimentId: e.experimentId, variant: e.variant, weight: e.weight };
}

/** One recommendation; `placement` is left out when empty (a single-placement answer). */
function recommendationJson(r: Recommendation): Record<string, unknown> {
  const out: Record<string, unknown> = {
    offerId: r.offerId,
    offerName: r.offerName,
    categoryId: r.categoryId,
    rank: r.rank,
    score: double(r.score),
    channelId: r.channelId,
    creativeId: r.creativeId,
  };
  if (r.content !== undefined) out.content = r.content;
  if (r.personalization !== undefined) out.personalization = r.personalization;
  if (r.experiment !== undefined) out.experiment = experimentJson(r.experiment);
  out.recommendationId = r.recommendationId;
  if (r.placement !== "") out.placement = r.placement;
  return out;
}

/** The answer: `placements` only with placements in the request, `heldOut` only when true. */
export function recommendResponseJson(res: RecommendResponse): Record<string, unknown> {
  const out: Record<string, unknown> = {
    customerId: res.customerId,
    recommendations: res.recommendations.map(recommendationJson),
    decisionFlowId: res.decisionFlowId,
  };
  if (res.traceId !== undefined) out.traceId = res.traceId;
  if (res.processedAt !== undefined) out.processedAt = timestampText(res.processedAt);
  if (res.placements.length > 0) {
    out.placements = res.placements.map((p) => ({ placement: p.placement, recommendations: p.recommendations.map(recommendationJson) }));
  }
  if (res.heldOut) out.heldOut = true;
  return out;
}
