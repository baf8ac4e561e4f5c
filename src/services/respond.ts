// Respond: record how a customer reacted to an offer. The answer is sent only after the interaction and
// its effects (counters, opt-out, idempotency key) are committed, so an acknowledged response is never
// lost; concurrent responds share one commit (store/interactions.ts, InteractionWriter).

import { create, fromJson, type JsonObject, type JsonValue, toJson } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type RespondRequest, RespondRequestSchema, type RespondResponse, RespondResponseSchema } from "../../gen/kaireon/v1/respond_pb.ts";
import { AppError, notFound, validationError } from "../errors.ts";
import { newInteractionId } from "../ids.ts";
import { classifyDbFailure, sqlStateOf } from "../store/db-errors.ts";
import {
  IdempotencyResultMissingError,
  InteractionCommitTimeoutError,
  InteractionWriterClosedError,
  type NewInteraction,
  type OutcomeClass,
  type WriteResult,
} from "../store/interactions.ts";
import { CATALOG_RECHECK_MS, type CallContext, type ServiceDeps } from "./context.ts";
import { checkIdempotencyKey, IDEMPOTENCY_KEY_FIELD, requestHash } from "./idempotency.ts";
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

const ID_FIELDS = ["customerId", "offerId", "channelId", "creativeId", "traceId"] as const;

function validate(req: RespondRequest, idempotencyKey: string | undefined): void {
  const v = new Violations();
  v.requireString("customerId", req.customerId, MAX_ID_LENGTH);
  v.requireString("offerId", req.offerId, MAX_ID_LENGTH);
  v.requireString("channelId", req.channelId, MAX_ID_LENGTH);
  v.requireString("outcomeType", req.outcomeType, 64);
  v.maxLength("creativeId", req.creativeId, MAX_ID_LENGTH);
  v.maxLength("traceId", req.traceId, MAX_ID_LENGTH);
  // PostgreSQL text cannot hold NUL: refuse it here rather than fail the write.
  for (const field of ID_FIELDS) {
    if (req[field].includes("\u0000")) v.add(field, `${field} must not contain NUL characters`);
  }
  checkIdempotencyKey(v, idempotencyKey);
  if (v.list.length > 0) throw validationError(v.list);
}

/**
 * The score and propensity an offer was shown with, from the score stage of a decision trace still in this
 * instance's write buffer. Undefined when the trace is not here (then the insert looks in decision_traces).
 */
function shownWith(deps: ServiceDeps, tenantId: string, traceId: string, offerId: string) {
  const body = deps.traces.peek(tenantId, traceId)?.body;
  if (!body) return undefined;
  const stages = Array.isArray(body.stages) ? (body.stages as Record<string, unknown>[]) : [];
  const stage = stages.find((s) => s && s.name === "score");
  const score = (stage?.scores as Record<string, unknown> | undefined)?.[offerId];
  const propensity = (stage?.factors as Record<string, Record<string, unknown> | undefined> | undefined)?.[offerId]?.propensity;
  return {
    score: typeof score === "number" ? score : null,
    propensity: typeof propensity === "number" ? propensity : null,
  };
}

/** The caller's view of a failed write: nothing here is acknowledged, so a retry is always safe with a key. */
function writeFailure(ctx: CallContext, err: unknown): unknown {
  if (err instanceof InteractionWriterClosedError || err instanceof IdempotencyResultMissingError) {
    return new AppError("UNAVAILABLE", "The interaction could not be recorded now; retry");
  }
  if (err instanceof InteractionCommitTimeoutError) {
    ctx.log.warn("interaction commit timed out", { err });
    return new AppError("UNAVAILABLE", "The interaction was not confirmed in time; retry with the same Idempotency-Key");
  }
  const state = sqlStateOf(err);
  // The id fields are checked for NUL above; what the database still cannot store sits in metadata.
  if (state === "22P05" || state === "22021") {
    return validationError([{ field: "metadata", message: "metadata holds characters that cannot be stored (NUL)" }]);
  }
  switch (classifyDbFailure(err)) {
    case "unavailable":
    case "retryable":
      ctx.log.warn("interaction not committed", { err });
      return new AppError(
        "UNAVAILABLE",
        "The database is unavailable; the interaction was not recorded, retry with the same Idempotency-Key",
      );
    default:
      return err;
  }
}

export async function respond(deps: ServiceDeps, ctx: CallContext, req: RespondRequest): Promise<RespondResponse> {
  validate(req, ctx.idempotencyKey);
  const tenantId = ctx.auth.tenantId;
  let catalog = await deps.catalogs.get(tenantId);
  if (!catalog.offerById.has(req.offerId) || !catalog.channels.has(req.channelId)) {
    // The cached catalog may predate the offer or channel: look once more before refusing.
    catalog = await deps.catalogs.getFresh(tenantId, CATALOG_RECHECK_MS);
  }
  if (!(req.outcomeType in OUTCOME_TYPES) && !catalog.outcomeTypes.has(req.outcomeType)) {
    // A type registered moments ago may not be in the cached catalog yet.
    catalog = await deps.catalogs.getFresh(tenantId, CATALOG_RECHECK_MS);
    if (!catalog.outcomeTypes.has(req.outcomeType)) {
      const known = [...Object.keys(OUTCOME_TYPES), ...catalog.outcomeTypes.keys()].join(", ");
      throw validationError([{ field: "outcomeType", message: `outcomeType must be one of ${known}` }]);
    }
  }
  if (!catalog.offerById.has(req.offerId)) throw notFound("Offer");
  if (!catalog.channels.has(req.channelId)) throw notFound("Channel");

  const recordedAt = deps.clock.now();
  const res = create(RespondResponseSchema, {
    id: newInteractionId(),
    customerId: req.customerId,
    offerId: req.offerId,
    channelId: req.channelId,
    outcomeType: req.outcomeType,
    creativeId: req.creativeId,
    traceId: req.traceId,
    recordedAt: timestampFromDate(recordedAt),
  });
  const outcomeClass = OUTCOME_TYPES[req.outcomeType] ?? catalog.outcomeTypes.get(req.outcomeType) ?? "neutral";
  const interaction: NewInteraction = {
    id: res.id,
    tenantId,
    customerId: req.customerId,
    offerId: req.offerId,
    channelId: req.channelId,
    creativeId: req.creativeId || null,
    outcomeType: req.outcomeType,
    traceId: req.traceId || null,
    metadata: req.metadata ?? {},
    recordedAt,
    outcomeClass,
    optOut: req.outcomeType === "opt_out",
  };
  if (req.outcomeType === "impression" && req.traceId) {
    const shown = shownWith(deps, tenantId, req.traceId, req.offerId);
    if (shown) Object.assign(interaction, shown);
    else interaction.scoresFromTrace = true;
  }
  let hash = "";
  if (ctx.idempotencyKey !== undefined) {
    const json = toJson(RespondRequestSchema, req, { alwaysEmitImplicit: true }) as JsonObject;
    // Absent and empty metadata are the same request.
    json.metadata ??= {};
    hash = requestHash(json);
    interaction.idempotency = { key: ctx.idempotencyKey, requestHash: hash, response: toJson(RespondResponseSchema, res) as JsonObject };
  }

  let result: WriteResult | undefined;
  try {
    [result] = await deps.interactions.write([interaction]);
  } catch (err) {
    throw writeFailure(ctx, err);
  }
  if (result?.status === "duplicate") {
    if (result.existing.requestHash !== hash) {
      throw new AppError("CONFLICT", `${IDEMPOTENCY_KEY_FIELD} was already used with a different request`, [
        { field: IDEMPOTENCY_KEY_FIELD, message: `${IDEMPOTENCY_KEY_FIELD} was already used with a different request` },
      ]);
    }
    // A retry: the first request's answer, with its id and recordedAt; nothing was written this time.
    return fromJson(RespondResponseSchema, result.existing.response as JsonValue, { ignoreUnknownFields: true });
  }

  // This instance learns at once; others within the statistics cache's TTL.
  if (outcomeClass === "impression" || outcomeClass === "positive") {
    const offer = catalog.offerById.get(req.offerId);
    deps.propensity.peek(tenantId)?.record(req.offerId, offer?.def.categoryId ?? "", req.channelId, {
      impressions: outcomeClass === "impression" ? 1 : 0,
      positives: outcomeClass === "positive" ? 1 : 0,
    });
  }
  deps.metrics.interactions.inc({ outcome: req.outcomeType });
  return res;
}
