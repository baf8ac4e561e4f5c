// Respond: record how a customer reacted to an offer. The answer is sent only after the interaction and
// its counters are committed, so an acknowledged response is never lost.

import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type RespondRequest, type RespondResponse, RespondResponseSchema } from "../../gen/kaireon/v1/respond_pb.ts";
import { notFound, validationError } from "../errors.ts";
import { newInteractionId } from "../ids.ts";
import { type OutcomeClass, recordInteraction } from "../store/interactions.ts";
import type { CallContext, ServiceDeps } from "./context.ts";
import { MAX_ID_LENGTH, Violations } from "./validate.ts";

/** The built-in outcome types and how each moves the learned counters. */
export const OUTCOME_TYPES: Record<string, OutcomeClass> = {
  impression: "impression",
  click: "positive",
  conversion: "positive",
  dismiss: "negative",
  not_interested: "negative",
  opt_out: "negative",
};

function validate(req: RespondRequest): void {
  const v = new Violations();
  v.requireString("customerId", req.customerId, MAX_ID_LENGTH);
  v.requireString("offerId", req.offerId, MAX_ID_LENGTH);
  v.requireString("channelId", req.channelId, MAX_ID_LENGTH);
  v.requireString("outcomeType", req.outcomeType, 64);
  if (req.outcomeType && !(req.outcomeType in OUTCOME_TYPES)) {
    v.add("outcomeType", `outcomeType must be one of ${Object.keys(OUTCOME_TYPES).join(", ")}`);
  }
  v.maxLength("creativeId", req.creativeId, MAX_ID_LENGTH);
  v.maxLength("traceId", req.traceId, MAX_ID_LENGTH);
  if (v.list.length > 0) throw validationError(v.list);
}

export async function respond(deps: ServiceDeps, ctx: CallContext, req: RespondRequest): Promise<RespondResponse> {
  validate(req);
  const tenantId = ctx.auth.tenantId;
  let catalog = await deps.catalogs.get(tenantId);
  if (!catalog.offerById.has(req.offerId) || !catalog.channels.has(req.channelId)) {
    // The cached catalog may predate the offer or channel: look once more before refusing.
    catalog = await deps.catalogs.refresh(tenantId);
  }
  if (!catalog.offerById.has(req.offerId)) throw notFound("Offer");
  if (!catalog.channels.has(req.channelId)) throw notFound("Channel");

  const recordedAt = deps.clock.now();
  const interaction = {
    id: newInteractionId(),
    tenantId,
    customerId: req.customerId,
    offerId: req.offerId,
    channelId: req.channelId,
    creativeId: req.creativeId || null,
    outcomeType: req.outcomeType,
    traceId: req.traceId || null,
    metadata: req.metadata ?? {},
    recordedAt,
  };
  const outcomeClass = OUTCOME_TYPES[req.outcomeType] ?? "neutral";
  await recordInteraction(deps.db, interaction, outcomeClass);
  // This instance learns at once; others within the statistics cache's TTL.
  if (outcomeClass === "impression" || outcomeClass === "positive") {
    const offer = catalog.offerById.get(req.offerId);
    deps.propensity.peek(tenantId)?.record(req.offerId, offer?.def.categoryId ?? "", req.channelId, {
      impressions: outcomeClass === "impression" ? 1 : 0,
      positives: outcomeClass === "positive" ? 1 : 0,
    });
  }
  deps.metrics.interactions.inc({ outcome: req.outcomeType });

  return create(RespondResponseSchema, {
    id: interaction.id,
    customerId: req.customerId,
    offerId: req.offerId,
    channelId: req.channelId,
    outcomeType: req.outcomeType,
    creativeId: req.creativeId,
    traceId: req.traceId,
    recordedAt: timestampFromDate(recordedAt),
  });
}
