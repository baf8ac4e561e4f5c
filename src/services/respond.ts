// Respond: record how a customer reacted to an offer. The answer is sent only after the interaction and
// its effects (counters, opt-out, idempotency key) are committed, so an acknowledged response is never
// lost; concurrent responds share one commit (store/interactions.ts, InteractionWriter).

import { clone, create, fromJson, type JsonValue } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  type RespondBulkError,
  RespondBulkErrorSchema,
  type RespondBulkRequest,
  type RespondBulkResponse,
  RespondBulkResponseSchema,
  type RespondBulkResult,
  RespondBulkResultSchema,
  type RespondRequest,
  type RespondResponse,
  RespondResponseSchema,
} from "../../gen/kaireon/v1/respond_pb.ts";
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
import type { CompiledCatalog } from "../decisioning/catalog.ts";
import type { CreativeDef } from "../decisioning/definitions.ts";
import { readRecommendations, type ShownRecommendation } from "../store/decisions.ts";
import type { StoredIdempotentResult } from "../store/idempotency-keys.ts";
import { CATALOG_RECHECK_MS, type CallContext, type ServiceDeps } from "./context.ts";
import { checkIdempotencyKey, IDEMPOTENCY_KEY_FIELD, respondRequestHash } from "./idempotency.ts";
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

const ID_FIELDS = ["customerId", "offerId", "channelId", "creativeId", "traceId", "recommendationId"] as const;

function validate(req: RespondRequest, idempotencyKey: string | undefined): void {
  const v = new Violations();
  v.requireString("customerId", req.customerId, MAX_ID_LENGTH);
  v.requireString("offerId", req.offerId, MAX_ID_LENGTH);
  v.requireString("channelId", req.channelId, MAX_ID_LENGTH);
  v.requireString("outcomeType", req.outcomeType, 64);
  v.maxLength("creativeId", req.creativeId, MAX_ID_LENGTH);
  v.maxLength("traceId", req.traceId, MAX_ID_LENGTH);
  v.maxLength("recommendationId", req.recommendationId, MAX_ID_LENGTH);
  // PostgreSQL text cannot hold NUL: refuse it here rather than fail the write.
  for (const field of ID_FIELDS) {
    if (req[field].includes("\u0000")) v.add(field, `${field} must not contain NUL characters`);
  }
  checkIdempotencyKey(v, idempotencyKey);
  if (v.list.length > 0) throw validationError(v.list);
}

/**
 * The recommendation a response names: from this instance's decision buffer, else the database; a
 * recommendation made on another instance moments ago may still be in that instance's buffer, so the
 * database is asked once more after a flush interval before the id is called unknown.
 */
type RecommendationLookup = (id: string) => Promise<ShownRecommendation | null>;

/**
 * The recommendations a response (or a bulk respond) names, looked up together: the buffer, then one query, then (for
 * what is still missing) one wait of a flush interval and one more query, however many items name one.
 */
async function recommendationsNamed(deps: ServiceDeps, tenantId: string, ids: string[]): Promise<Map<string, ShownRecommendation>> {
  const found = new Map<string, ShownRecommendation>();
  const lookUp = async (wanted: string[]) => {
    const missing = wanted.filter((id) => {
      const buffered = deps.decisions.peek(tenantId, id);
      if (buffered) found.set(id, buffered);
      return !buffered;
    });
    for (const r of await readRecommendations(deps.db, tenantId, missing)) found.set(r.recommendationId, r);
  };
  await lookUp(ids);
  const late = ids.filter((id) => !found.has(id));
  if (late.length > 0) {
    await Bun.sleep(deps.config.traceFlushMs * 2);
    await lookUp(late);
  }
  return found;
}

async function recommendationNamed(deps: ServiceDeps, tenantId: string, id: string): Promise<ShownRecommendation | null> {
  return (await recommendationsNamed(deps, tenantId, [id])).get(id) ?? null;
}

/** Every creative of a compiled catalog by id, built once per catalog. */
const creativesByCatalog = new WeakMap<CompiledCatalog, Map<string, CreativeDef>>();

function creativeOf(catalog: CompiledCatalog, creativeId: string): CreativeDef | undefined {
  let byId = creativesByCatalog.get(catalog);
  if (!byId) {
    byId = new Map(catalog.definition.creatives.map((c) => [c.id, c]));
    creativesByCatalog.set(catalog, byId);
  }
  return byId.get(creativeId);
}

/**
 * Checks what the response names against the catalog and the recommendation, and fills in what the
 * recommendation knows: the creative (when the response names none), and for impressions the score and
 * propensity the offer was shown with.
 */
async function attribute(
  deps: ServiceDeps,
  ctx: CallContext,
  req: RespondRequest,
  catalog: CompiledCatalog,
  lookup: RecommendationLookup,
): Promise<{ catalog: CompiledCatalog; shown: ShownRecommendation | null }> {
  const tenantId = ctx.auth.tenantId;
  let shown: ShownRecommendation | null = null;
  if (req.recommendationId) {
    shown = await lookup(req.recommendationId);
    if (!shown) throw notFound("Recommendation");
    const v = new Violations();
    for (const [field, named, recorded] of [
      ["customerId", req.customerId, shown.customerId],
      ["offerId", req.offerId, shown.offerId],
      ["channelId", req.channelId, shown.channelId],
    ] as const) {
      if (named !== recorded) v.add(field, `${field} must be ${recorded}, as in recommendation ${req.recommendationId}`);
    }
    if (req.creativeId && req.creativeId !== shown.creativeId) {
      v.add("creativeId", `creativeId must be ${shown.creativeId}, the creative recommendation ${req.recommendationId} showed`);
    }
    if (v.list.length > 0) throw validationError(v.list);
  }
  if (req.creativeId) {
    let creative = creativeOf(catalog, req.creativeId);
    if (!creative || creative.offerId !== req.offerId || creative.channelId !== req.channelId) {
      catalog = await deps.catalogs.getFresh(tenantId, CATALOG_RECHECK_MS);
      creative = creativeOf(catalog, req.creativeId);
    }
    if (!creative || creative.offerId !== req.offerId || creative.channelId !== req.channelId) {
      throw validationError([
        {
          field: "creativeId",
          message: `creativeId ${req.creativeId} is not a creative of offer ${req.offerId} on channel ${req.channelId}`,
        },
      ]);
    }
  }
  return { catalog, shown };
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

interface Prepared {
  interaction: NewInteraction;
  hash: string;
  catalog: CompiledCatalog;
}

/** The answer to a Respond: what was recorded (a bulk respond answers each item with its id only). */
function answerOf({ interaction: i }: Prepared): RespondResponse {
  return create(RespondResponseSchema, {
    id: i.id,
    customerId: i.customerId,
    offerId: i.offerId,
    channelId: i.channelId,
    outcomeType: i.outcomeType,
    creativeId: i.creativeId ?? "",
    traceId: i.traceId ?? "",
    recordedAt: timestampFromDate(i.recordedAt),
    recommendationId: i.recommendationId ?? "",
  });
}

/** Checks one response against the catalog and what it names, and builds what is written and answered. */
async function prepare(
  deps: ServiceDeps,
  ctx: CallContext,
  req: RespondRequest,
  idempotencyKey: string | undefined,
  lookup: RecommendationLookup = (id) => recommendationNamed(deps, ctx.auth.tenantId, id),
): Promise<Prepared> {
  validate(req, idempotencyKey);
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
  const attributed = await attribute(deps, ctx, req, catalog, lookup);
  catalog = attributed.catalog;
  const shown = attributed.shown;
  const creativeId = req.creativeId || shown?.creativeId || "";

  const recordedAt = deps.clock.now();
  const outcomeClass = OUTCOME_TYPES[req.outcomeType] ?? catalog.outcomeTypes.get(req.outcomeType) ?? "neutral";
  const interaction: NewInteraction = {
    id: newInteractionId(),
    tenantId,
    customerId: req.customerId,
    offerId: req.offerId,
    channelId: req.channelId,
    creativeId: creativeId || null,
    outcomeType: req.outcomeType,
    traceId: req.traceId || null,
    recommendationId: req.recommendationId || null,
    metadata: req.metadata ?? {},
    recordedAt,
    outcomeClass,
    optOut: req.outcomeType === "opt_out",
  };
  if (outcomeClass === "impression") {
    const seen = shown ?? (req.traceId ? deps.decisions.peekByTrace(tenantId, req.traceId, req.offerId) : undefined);
    if (seen) Object.assign(interaction, { score: seen.score, propensity: seen.propensity });
    else if (req.traceId) interaction.scoresFromTrace = true;
  }
  let hash = "";
  if (idempotencyKey !== undefined) {
    // Absent and empty metadata are the same request.
    hash = respondRequestHash(req);
    interaction.idempotency = { key: idempotencyKey, requestHash: hash };
  }
  return { interaction, hash, catalog };
}

const conflict = () =>
  new AppError("CONFLICT", `${IDEMPOTENCY_KEY_FIELD} was already used with a different request`, [
    { field: IDEMPOTENCY_KEY_FIELD, message: `${IDEMPOTENCY_KEY_FIELD} was already used with a different request` },
  ]);

/** What a committed interaction teaches at once: this instance learns now, others within the statistics cache's TTL. */
function learn(deps: ServiceDeps, p: Prepared): void {
  const { interaction: i, catalog } = p;
  if (i.outcomeClass === "impression" || i.outcomeClass === "positive") {
    const offer = catalog.offerById.get(i.offerId);
    deps.propensity.peek(i.tenantId)?.record(i.offerId, offer?.def.categoryId ?? "", i.channelId, {
      impressions: i.outcomeClass === "impression" ? 1 : 0,
      positives: i.outcomeClass === "positive" ? 1 : 0,
    });
  }
  deps.metrics.interactions.inc({ outcome: i.outcomeType });
}

export async function respond(deps: ServiceDeps, ctx: CallContext, req: RespondRequest): Promise<RespondResponse> {
  const prepared = await prepare(deps, ctx, req, ctx.idempotencyKey);
  let result: WriteResult | undefined;
  try {
    [result] = await deps.interactions.write([prepared.interaction]);
  } catch (err) {
    throw writeFailure(ctx, err);
  }
  if (result?.status === "duplicate") {
    if (result.existing.requestHash !== prepared.hash) throw conflict();
    // A retry: the first request's answer, with its id and recordedAt; nothing was written this time.
    return replayed(answerOf(prepared), result.existing);
  }
  learn(deps, prepared);
  return answerOf(prepared);
}

/**
 * The answer the first request with this key got. The retry is the same request, so its own answer says
 * everything but what the first write decided: the interaction's id and when it was recorded (the creative
 * is the request's or its recommendation's, which does not change). Keys stored before migration 012 hold
 * the whole answer, replayed as it is.
 */
function replayed(retry: RespondResponse, first: StoredIdempotentResult): RespondResponse {
  if (first.response) return fromJson(RespondResponseSchema, first.response as JsonValue, { ignoreUnknownFields: true });
  const answer = clone(RespondResponseSchema, retry);
  answer.id = first.interactionId;
  if (first.recordedAt) answer.recordedAt = timestampFromDate(first.recordedAt);
  return answer;
}

export const MAX_BULK_ITEMS = 1_000;

/** The field a not-found resource is named by in a request. */
const NOT_FOUND_FIELDS: Record<string, string> = { Offer: "offerId", Channel: "channelId", Recommendation: "recommendationId" };

/**
 * RespondBulk: each item checked on its own, the valid ones written in one call to the interaction writer
 * (one transaction, shared with concurrent responds), answered once committed. A database failure fails
 * the whole call: nothing of it is acknowledged, and a retry with the same idempotency keys is safe.
 */
export async function respondBulk(deps: ServiceDeps, ctx: CallContext, req: RespondBulkRequest): Promise<RespondBulkResponse> {
  if (req.items.length === 0 || req.items.length > MAX_BULK_ITEMS) {
    throw validationError([{ field: "items", message: `items must hold 1 to ${MAX_BULK_ITEMS} interactions` }]);
  }
  const errors: RespondBulkError[] = [];
  const ready: { index: number; p: Prepared }[] = [];
  const named = [
    ...new Set(req.items.map((i) => i.recommendationId).filter((id) => id !== "" && id.length <= MAX_ID_LENGTH && !id.includes("\u0000"))),
  ];
  const known = named.length > 0 ? await recommendationsNamed(deps, ctx.auth.tenantId, named) : new Map<string, ShownRecommendation>();
  const lookup: RecommendationLookup = async (id) => known.get(id) ?? null;
  for (const [index, item] of req.items.entries()) {
    // The item without its key is a RespondRequest (the compiler checks that every field is named).
    const one: RespondRequest = {
      $typeName: "kaireon.v1.RespondRequest",
      customerId: item.customerId,
      offerId: item.offerId,
      channelId: item.channelId,
      outcomeType: item.outcomeType,
      creativeId: item.creativeId,
      traceId: item.traceId,
      metadata: item.metadata,
      recommendationId: item.recommendationId,
    };
    const idempotencyKey = item.idempotencyKey === "" ? undefined : item.idempotencyKey;
    try {
      ready.push({ index, p: await prepare(deps, ctx, one, idempotencyKey, lookup) });
    } catch (err) {
      if (!(err instanceof AppError) || (err.code !== "VALIDATION_ERROR" && err.code !== "NOT_FOUND")) throw err;
      const details =
        err.details.length > 0 ? err.details : [{ field: NOT_FOUND_FIELDS[err.message.split(" ")[0] ?? ""] ?? "", message: err.message }];
      for (const d of details) {
        // An item names its key in a field of its own, not in the header single Responds use.
        const field = d.field === IDEMPOTENCY_KEY_FIELD ? "idempotencyKey" : d.field;
        errors.push(create(RespondBulkErrorSchema, { index, field, message: d.message.replace(IDEMPOTENCY_KEY_FIELD, "idempotencyKey") }));
      }
    }
  }
  let written: WriteResult[] = [];
  try {
    written = await deps.interactions.write(ready.map((r) => r.p.interaction));
  } catch (err) {
    throw writeFailure(ctx, err);
  }
  const results: RespondBulkResult[] = [];
  written.forEach((result, n) => {
    const { index, p } = ready[n] as { index: number; p: Prepared };
    if (result.status === "written") {
      learn(deps, p);
      results.push(create(RespondBulkResultSchema, { index, id: p.interaction.id }));
    } else if (result.existing.requestHash !== p.hash) {
      errors.push(
        create(RespondBulkErrorSchema, {
          index,
          field: "idempotencyKey",
          message: "idempotencyKey was already used with a different request",
        }),
      );
    } else {
      results.push(create(RespondBulkResultSchema, { index, id: result.existing.interactionId, duplicate: true }));
    }
  });
  errors.sort((a, b) => a.index - b.index);
  const failed = new Set(errors.map((e) => e.index)).size;
  return create(RespondBulkResponseSchema, {
    processed: req.items.length,
    succeeded: results.length,
    failed,
    errors,
    results,
  });
}
