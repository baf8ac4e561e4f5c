// Recommend: run the tenant's decision flow for one customer on one channel and answer with ranked,
// personalized offers; record a decision trace when asked (or sampled).

import { create, type JsonObject, type MessageInitShape, toJson } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { DecisionTraceSchema, TraceStageSchema } from "../../gen/kaireon/v1/decision_trace_pb.ts";
import {
  ExperimentAssignmentSchema,
  PlacementRecommendationsSchema,
  type RecommendRequest,
  type RecommendResponse,
  RecommendResponseSchema,
  RecommendationSchema,
} from "../../gen/kaireon/v1/recommend_pb.ts";
import type { ResolvedFlow } from "../decisioning/catalog.ts";
import type { Recommendation as EngineRecommendation, StageRecord } from "../decisioning/engine.ts";
import type { TenantSettings } from "../decisioning/definitions.ts";
import { fnv1a32 } from "../decisioning/experiment.ts";
import type { ContactHistory, VolumeClaim } from "../decisioning/policies.ts";
import { AppError, notFound, validationError } from "../errors.ts";
import { decisionIdOf, newDecisionKey, newEventId, newInteractionId, newTraceId, recommendationIdOf } from "../ids.ts";
import { decisionMadeData, type ShownRecommendation } from "../store/decisions.ts";
import { loadContactHistory } from "../store/history.ts";
import { type CustomerHold, withHeldSlots } from "./caps.ts";
import type { CallContext, ServiceDeps } from "./context.ts";
import { dropOf } from "./trace-drops.ts";
import { MAX_ID_LENGTH, Violations } from "./validate.ts";

export const DEFAULT_MAX_OFFERS = 5;
export const MAX_OFFERS_LIMIT = 50;
export const MAX_ATTRIBUTES = 64;

const EMPTY_PROFILE = { attributes: {}, segments: [] };

export const MAX_EXCLUDED_OFFERS = 100;
export const MAX_PLACEMENTS = 10;

function validate(req: RecommendRequest): void {
  const v = new Violations();
  if (req.excludeOffers.length > MAX_EXCLUDED_OFFERS)
    v.add("excludeOffers", `excludeOffers may name at most ${MAX_EXCLUDED_OFFERS} offers`);
  else
    req.excludeOffers.forEach((id, i) => {
      v.requireString(`excludeOffers[${i}]`, id, MAX_ID_LENGTH);
    });
  if (req.placements.length > MAX_PLACEMENTS) v.add("placements", `placements may name at most ${MAX_PLACEMENTS} slots`);
  else if (req.placements.length > 0) {
    const seen = new Set<string>();
    let total = 0;
    req.placements.forEach((p, i) => {
      v.requireString(`placements[${i}].placement`, p.placement, MAX_ID_LENGTH);
      if (seen.has(p.placement)) v.add(`placements[${i}].placement`, `placement ${p.placement} is named twice`);
      seen.add(p.placement);
      const n = p.maxOffers ?? 1;
      if (n < 1 || n > MAX_OFFERS_LIMIT) v.add(`placements[${i}].maxOffers`, `maxOffers must be between 1 and ${MAX_OFFERS_LIMIT}`);
      total += n;
    });
    if (total > MAX_OFFERS_LIMIT)
      v.add("placements", `the placements' maxOffers add up to ${total}; at most ${MAX_OFFERS_LIMIT} in one answer`);
  }
  v.requireString("customerId", req.customerId, MAX_ID_LENGTH);
  v.requireString("channelId", req.channelId, MAX_ID_LENGTH);
  v.maxLength("decisionFlowId", req.decisionFlowId, MAX_ID_LENGTH);
  v.maxLength("placement", req.placement, MAX_ID_LENGTH);
  if (req.maxOffers !== undefined && (req.maxOffers < 1 || req.maxOffers > MAX_OFFERS_LIMIT)) {
    v.add("maxOffers", `maxOffers must be between 1 and ${MAX_OFFERS_LIMIT}`);
  }
  if (req.attributes && Object.keys(req.attributes).length > MAX_ATTRIBUTES) {
    v.add("attributes", `attributes may hold at most ${MAX_ATTRIBUTES} keys`);
  }
  if (v.list.length > 0) throw validationError(v.list);
}

/** One slot an answer fills: the request's placement, or one of its placements. */
interface Slot {
  placement: string;
  maxOffers: number;
}

/**
 * The control group a decision of this flow keeps: the flow's own holdout, else the tenant's (the same
 * customers in every flow), or none.
 */
export function holdoutOf(
  flow: ResolvedFlow,
  settings: TenantSettings,
): { scope: string; percent: number; treatment: "empty" | "baseline" } | null {
  if (flow.holdout) return { scope: `flow:${flow.def.id}`, ...flow.holdout };
  return settings.holdoutPercent > 0 ? { scope: "tenant", percent: settings.holdoutPercent, treatment: "empty" } : null;
}

/** A holdout group member's place: a fixed share of [0, 100) by a hash of the scope and the customer. */
export function holdoutPoint(scope: string, customerId: string): number {
  return (fnv1a32(`holdout:${scope}:${customerId}`) / 2 ** 32) * 100;
}

export async function recommend(deps: ServiceDeps, ctx: CallContext, req: RecommendRequest): Promise<RecommendResponse> {
  validate(req);
  const started = performance.now();
  const tenantId = ctx.auth.tenantId;
  const catalog = await deps.catalogs.get(tenantId);

  const flowId = req.decisionFlowId || catalog.defaultFlowId;
  const flow = flowId ? catalog.flows.get(flowId) : undefined;
  if (!flow || flow.def.version === null) throw notFound("Decision flow");
  const channel = catalog.channels.get(req.channelId);
  if (!channel) throw notFound("Channel");
  const multi = req.placements.length > 0;
  const slots: Slot[] = multi
    ? req.placements.map((p) => ({ placement: p.placement, maxOffers: p.maxOffers ?? 1 }))
    : [{ placement: req.placement, maxOffers: req.maxOffers ?? DEFAULT_MAX_OFFERS }];
  for (const s of slots) if (s.placement && !catalog.placements.get(req.channelId)?.has(s.placement)) throw notFound("Placement");
  // The month's count came with the transport's rate-limit check, so the quota costs no extra round trip.
  const quota = deps.limits.monthlyQuota(catalog.settings);
  if (ctx.decisionsUsed !== undefined && ctx.decisionsUsed >= quota) throw deps.limits.quotaExceeded(quota);

  const now = deps.clock.now();
  if (flow.policies.issues.length > 0) reportPolicyIssues(ctx, flow);
  const holdout = holdoutOf(flow, catalog.settings);
  const heldOut = holdout !== null && holdoutPoint(holdout.scope, req.customerId) < holdout.percent;
  const decides = !heldOut || holdout?.treatment === "baseline";
  // Only flows with contact policies pay for the history read; it runs while the profile is enriched, and
  // while the customer's cap lock is taken when answers hold slots.
  const history = decides && flow.policies.needsHistory ? readContactHistory(deps, ctx, flow, req.customerId, now) : undefined;
  const holding = decides && deps.caps.holds(flow) ? deps.caps.hold(tenantId, req.customerId, now.getTime(), ctx.log) : undefined;

  const enrichStart = performance.now();
  const profile = (await deps.profiles.get(`${tenantId}\u0000${req.customerId}`)) ?? EMPTY_PROFILE;
  const enrichDuration = performance.now() - enrichStart;
  const propensity = await deps.propensity.get(tenantId);

  // Traces are recorded when asked for, and for a sampled fraction of the other calls.
  const rate = catalog.settings.traceSampleRate;
  const explain = req.trace || (rate > 0 && deps.random() < rate);
  const decisionKey = newDecisionKey();
  let hold: CustomerHold | undefined;
  let claims: VolumeClaim[] = [];
  // Each placement's first recommendation carries the probability it was chosen with (offline evaluation).
  const shown: { r: EngineRecommendation; placement: string; choiceProbability: number | null }[] = [];
  const stages: StageRecord[][] = [];
  let committed = false;
  try {
    let seen = await history;
    const held = await holding;
    if (held === "busy") seen = null;
    else if (held && held !== "unavailable") {
      hold = held;
      if (seen) seen = withHeldSlots(seen, held.slots);
    }
    const exclude = new Set(req.excludeOffers);
    for (const slot of decides ? slots : []) {
      const { decision, claims: reserved } = await deps.caps.decide(
        tenantId,
        {
          catalog,
          flow,
          customerId: req.customerId,
          channelId: req.channelId,
          placement: slot.placement,
          maxOffers: slot.maxOffers,
          attributes: req.attributes ?? {},
          profile,
          propensity,
          now,
          random: deps.random,
          explain,
          history: seen,
          exclude,
          baseline: heldOut,
          evaluationBudget: deps.config.decisionEvaluationBudget,
          propensityRefreshMs: deps.config.propensityRefreshMs,
        },
        ctx.log,
      );
      claims = claims.concat(reserved);
      if (decision.budgetExhausted) reportBudget(deps, ctx, flow, decision.evaluations);
      stages.push(decision.stages);
      for (const r of decision.recommendations) {
        shown.push({ r, placement: multi ? slot.placement : "", choiceProbability: r.rank === 1 ? decision.choiceProbability : null });
        if (!req.allowRepeats) exclude.add(r.offer.def.id);
      }
      // The next placement's caps count this one's offers as shown.
      if (seen && multi) seen = withShown(seen, decision.recommendations, req.channelId, now);
    }

    const res = create(RecommendResponseSchema, {
      customerId: req.customerId,
      decisionFlowId: flow.def.id,
      processedAt: timestampFromDate(now),
      heldOut,
    });
    let inPlacement = 0;
    shown.forEach(({ r, placement }, i) => {
      inPlacement = i > 0 && shown[i - 1]?.placement === placement ? inPlacement + 1 : 1;
      res.recommendations.push(
        create(RecommendationSchema, {
          offerId: r.offer.def.id,
          offerName: r.offer.def.name,
          categoryId: r.offer.def.categoryId,
          rank: multi ? inPlacement : r.rank,
          score: r.score,
          channelId: req.channelId,
          creativeId: r.creative.def.id,
          content: r.content as JsonObject,
          personalization: r.personalization as JsonObject,
          experiment: r.experiment ? create(ExperimentAssignmentSchema, r.experiment) : undefined,
          // The id counts across placements, so each recommendation of the decision has its own.
          recommendationId: recommendationIdOf(decisionKey, i + 1),
          placement,
        }),
      );
    });
    if (multi) {
      res.placements = slots.map((s) =>
        create(PlacementRecommendationsSchema, {
          placement: s.placement,
          recommendations: res.recommendations.filter((r) => r.placement === s.placement),
        }),
      );
    }
    deps.metrics.decisions.inc({ outcome: res.recommendations.length > 0 ? "offers" : "empty" });
    // Only an answer with offers is a decision the tenant pays for.
    if (res.recommendations.length > 0) deps.limits.countDecision(tenantId);

    if (explain) {
      const traceId = newTraceId();
      const trace = create(DecisionTraceSchema, {
        traceId,
        customerId: req.customerId,
        decisionFlowId: flow.def.id,
        decisionFlowVersion: flow.def.version,
        channelId: req.channelId,
        processedAt: res.processedAt,
        totalDuration: roundMs(performance.now() - started),
        heldOut,
        stages: [
          create(TraceStageSchema, {
            name: "enrich",
            duration: roundMs(enrichDuration),
            detail: { case: "enrich", value: { input: { customerId: req.customerId }, output: enrichOutput(profile) } },
          }),
          ...stages.flatMap((list, i) => list.map((s) => stageMessage(s, multi ? (slots[i]?.placement ?? "") : ""))),
        ],
      });
      const taken = deps.traces.add({
        tenantId,
        traceId,
        customerId: req.customerId,
        decisionFlowId: flow.def.id,
        body: toJson(DecisionTraceSchema, trace) as Record<string, unknown>,
        createdAt: now,
        expiresAt: new Date(now.getTime() + (catalog.settings.traceRetentionDays ?? deps.config.traceRetentionDays) * 86_400_000),
      });
      // A trace id is returned only for a trace that will be written.
      if (taken) res.traceId = traceId;
      else deps.metrics.tracesRefused.inc();
    }

    recordDecision(deps, ctx, req, res, flow, shown, now, decisionIdOf(decisionKey), holdout !== null);
    if (hold) {
      await hold.commit(
        shown.map(({ r }, i) => ({
          recommendationId: recommendationIdOf(decisionKey, i + 1),
          offerId: r.offer.def.id,
          channelId: req.channelId,
          at: now.getTime(),
        })),
      );
      committed = true;
    }
    if (channel.implicitImpressions && shown.length > 0) {
      await recordImplicitImpressions(
        deps,
        tenantId,
        req,
        res,
        shown.map((s) => s.r),
        now,
      );
    }
    return res;
  } catch (err) {
    // The answer is not sent: what it reserved goes back.
    await deps.caps.release(tenantId, claims);
    if (committed) {
      await deps.caps.dropSlots(
        tenantId,
        req.customerId,
        shown.map((_, i) => recommendationIdOf(decisionKey, i + 1)),
      );
    }
    throw err;
  } finally {
    if (hold && !committed) await hold.commit([]);
  }
}

/** The history with a placement's offers added as impressions, for the caps of the placements after it. */
function withShown(history: ContactHistory, shown: EngineRecommendation[], channelId: string, now: Date): ContactHistory {
  if (shown.length === 0) return history;
  const at = now.getTime();
  return {
    ...history,
    events: [...history.events, ...shown.map((r) => ({ offerId: r.offer.def.id, channelId, outcomeType: "impression", at }))],
  };
}

/**
 * Hands what the decision showed and its decision.made.v1 event to the decision writer. When its buffer is
 * full nothing is recorded: the answer then carries no recommendation ids (a response cannot name what
 * was never stored), and the loss is counted and logged.
 */
function recordDecision(
  deps: ServiceDeps,
  ctx: CallContext,
  req: RecommendRequest,
  res: RecommendResponse,
  flow: ResolvedFlow,
  shown: { r: EngineRecommendation; choiceProbability: number | null }[],
  now: Date,
  decisionId: string,
  /** The flow keeps a control group: the decision is recorded even when it showed nothing. */
  keepEmpty: boolean,
): void {
  const tenantId = ctx.auth.tenantId;
  const traceId = res.traceId ?? null;
  const recommendations: ShownRecommendation[] = res.recommendations.map((r, i) => ({
    recommendationId: r.recommendationId,
    customerId: req.customerId,
    channelId: req.channelId,
    placement: r.placement || req.placement || null,
    offerId: r.offerId,
    creativeId: r.creativeId,
    // The position in the whole answer (across placements), which the recommendation id names.
    rank: i + 1,
    score: r.score,
    propensity: shown[i]?.r.propensity ?? null,
    choiceProbability: shown[i]?.choiceProbability ?? null,
    experimentId: r.experiment?.experimentId ?? null,
    variant: r.experiment?.variant ?? null,
    decisionFlowId: flow.def.id,
    flowVersion: flow.def.version ?? 0,
    traceId,
  }));
  const taken = deps.decisions.add({
    tenantId,
    decisionId,
    createdAt: now,
    recommendations,
    about: {
      customerId: req.customerId,
      channelId: req.channelId,
      placement: req.placement || null,
      decisionFlowId: flow.def.id,
      flowVersion: flow.def.version ?? 0,
      traceId,
      heldOut: res.heldOut,
      keepEmpty,
    },
    event: {
      id: newEventId(),
      type: "decision.made.v1",
      tenantId,
      customerId: req.customerId,
      occurredAt: now,
      data: decisionMadeData({
        decisionId,
        customerId: req.customerId,
        channelId: req.channelId,
        placement: req.placement,
        decisionFlowId: flow.def.id,
        decisionFlowVersion: flow.def.version ?? 0,
        traceId: traceId ?? "",
        recommendations,
        heldOut: res.heldOut,
      }),
    },
  });
  if (taken) return;
  for (const r of res.recommendations) r.recommendationId = "";
  deps.metrics.decisionsUnrecorded.inc({ reason: "buffer_full" });
  reportUnrecorded(ctx, deps.decisions.buffered);
}

let unrecordedLoggedAt = 0;

/** Logs lost decisions at most once a second: under overload one line per call would add to it. */
function reportUnrecorded(ctx: CallContext, buffered: number): void {
  const now = Date.now();
  if (now - unrecordedLoggedAt < 1_000) return;
  unrecordedLoggedAt = now;
  ctx.log.error("decision not recorded: the decision buffer is full; no recommendation ids or decision.made.v1 event", {
    buffered,
  });
}

/**
 * For channels whose clients cannot report impressions, every recommended offer counts as shown. The
 * impressions are committed before the answer leaves, so contact policies see them on the next call; if
 * they cannot be, the answer is refused rather than given uncounted.
 */
async function recordImplicitImpressions(
  deps: ServiceDeps,
  tenantId: string,
  req: RecommendRequest,
  res: RecommendResponse,
  recommendations: EngineRecommendation[],
  now: Date,
): Promise<void> {
  const traceId = res.traceId ?? null;
  try {
    await deps.interactions.write(
      recommendations.map((r, i) => ({
        id: newInteractionId(),
        tenantId,
        customerId: req.customerId,
        offerId: r.offer.def.id,
        channelId: req.channelId,
        creativeId: r.creative.def.id,
        outcomeType: "impression",
        outcomeClass: "impression" as const,
        traceId,
        metadata: { implicit: true, rank: r.rank },
        recommendationId: res.recommendations[i]?.recommendationId || null,
        recordedAt: now,
        propensity: r.propensity,
        score: r.score,
      })),
    );
  } catch (err) {
    throw err instanceof AppError ? err : new AppError("UNAVAILABLE", "Impressions could not be recorded; try again");
  }
  const model = deps.propensity.peek(tenantId);
  for (const r of recommendations) model?.record(r.offer.def.id, r.offer.def.categoryId, req.channelId, { impressions: 1, positives: 0 });
}

/** When each tenant's exhausted evaluation budget was last logged: once a minute is enough to be seen. */
const budgetLogged = new Map<string, number>();
const BUDGET_LOG_INTERVAL_MS = 60_000;

function reportBudget(deps: ServiceDeps, ctx: CallContext, flow: ResolvedFlow, evaluations: number): void {
  const tenantId = ctx.auth.tenantId;
  deps.metrics.budgetExhausted.inc({ tenant: tenantId });
  const now = Date.now();
  if (now - (budgetLogged.get(tenantId) ?? 0) < BUDGET_LOG_INTERVAL_MS) return;
  if (budgetLogged.size >= 10_000) budgetLogged.clear();
  budgetLogged.set(tenantId, now);
  ctx.log.warn("decision ran out of its formula evaluation budget; formulas past it yielded null", {
    tenantId,
    decisionFlowId: flow.def.id,
    evaluations,
    budget: deps.config.decisionEvaluationBudget,
  });
}

/** Flows whose malformed contact policies were already logged; the next catalog compile logs them again. */
const reportedPolicyIssues = new WeakSet<ResolvedFlow>();

function reportPolicyIssues(ctx: CallContext, flow: ResolvedFlow): void {
  if (reportedPolicyIssues.has(flow)) return;
  reportedPolicyIssues.add(flow);
  ctx.log.warn("decision flow has malformed contact policies; they are skipped", {
    decisionFlowId: flow.def.id,
    issues: flow.policies.issues,
  });
}

/**
 * The customer's contact history within the flow's longest policy window, or null when it cannot be read
 * in time: the engine then drops the offers under a policy (fail closed) and the request still succeeds.
 */
async function readContactHistory(
  deps: ServiceDeps,
  ctx: CallContext,
  flow: ResolvedFlow,
  customerId: string,
  now: Date,
): Promise<ContactHistory | null> {
  const { policies } = flow;
  const read = loadContactHistory(deps.db, {
    tenantId: ctx.auth.tenantId,
    customerId,
    since: new Date(now.getTime() - policies.lookbackMs),
    outcomeTypes: policies.outcomeTypes,
    optOuts: policies.needsOptOuts,
  });
  // The timeout measures the read, not the time this process was too busy to look at its answer.
  const timeoutMs = deps.config.policyHistoryTimeoutMs;
  const deadline = deps.loopStalls.deadline(timeoutMs, timeoutMs * HISTORY_WALL_CLOCK_FACTOR);
  const timedOut = deadline.reached.then(() => "timeout" as const);
  try {
    const result = await Promise.race([read, timedOut]);
    if (result !== "timeout") return result;
    // The query cannot be cancelled through the pool; let it finish unobserved.
    read.catch(() => {});
    ctx.log.warn("contact history read timed out; offers under contact policies are dropped", {
      timeoutMs: deps.config.policyHistoryTimeoutMs,
    });
  } catch (err) {
    ctx.log.warn("contact history unavailable; offers under contact policies are dropped", { err });
  } finally {
    deadline.cancel();
  }
  return null;
}

/** However busy the process, a history read is given up after this many times its timeout of wall-clock time. */
const HISTORY_WALL_CLOCK_FACTOR = 5;

function roundMs(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/** The enriched profile as the formulas see it: customer.* names, and the segments. */
function enrichOutput(profile: { attributes: Record<string, unknown>; segments: string[] }): JsonObject {
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(profile.attributes)) out[`customer.${k}`] = v as JsonObject[string];
  if (profile.segments.length > 0) out["customer.segments"] = profile.segments;
  return out;
}

/** A stage of the engine as its message: name and duration, and what it found in the message of its kind. */
function stageMessage(s: StageRecord, placement: string) {
  return create(TraceStageSchema, { name: s.name, placement, duration: roundMs(s.duration), detail: stageDetail(s) });
}

function stageDetail(s: StageRecord): MessageInitShape<typeof TraceStageSchema>["detail"] {
  switch (s.name) {
    case "compute":
      return { case: "compute", value: { computed: s.computed as JsonObject | undefined } };
    case "filter":
      return {
        case: "filter",
        value: {
          candidatesIn: s.candidatesIn ?? 0,
          candidatesOut: s.candidatesOut ?? 0,
          filtered: s.filtered ?? [],
          drops: (s.filtered ?? []).map(dropOf),
        },
      };
    case "score":
      return { case: "score", value: { scores: s.scores ?? {}, factors: s.factors as JsonObject | undefined } };
    case "rank":
      return { case: "rank", value: { finalOrder: s.finalOrder ?? [], experiments: s.experiments as JsonObject | undefined } };
  }
}
