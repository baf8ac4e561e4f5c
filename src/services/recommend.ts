// Recommend: run the tenant's decision flow for one customer on one channel and answer with ranked,
// personalized offers; record a decision trace when asked (or sampled).

import { create, type JsonObject, toJson } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { DecisionTraceSchema, TraceStageSchema } from "../../gen/kaireon/v1/decision_trace_pb.ts";
import {
  ExperimentAssignmentSchema,
  type RecommendRequest,
  type RecommendResponse,
  RecommendResponseSchema,
  RecommendationSchema,
} from "../../gen/kaireon/v1/recommend_pb.ts";
import { decide, type StageRecord } from "../decisioning/engine.ts";
import { notFound, validationError } from "../errors.ts";
import { newTraceId } from "../ids.ts";
import type { CallContext, ServiceDeps } from "./context.ts";
import { MAX_ID_LENGTH, Violations } from "./validate.ts";

export const DEFAULT_MAX_OFFERS = 5;
export const MAX_OFFERS_LIMIT = 50;
export const MAX_ATTRIBUTES = 64;

const EMPTY_PROFILE = { attributes: {}, segments: [] };

function validate(req: RecommendRequest): void {
  const v = new Violations();
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

export async function recommend(deps: ServiceDeps, ctx: CallContext, req: RecommendRequest): Promise<RecommendResponse> {
  validate(req);
  const started = performance.now();
  const tenantId = ctx.auth.tenantId;
  const catalog = await deps.catalogs.get(tenantId);

  const flowId = req.decisionFlowId || catalog.defaultFlowId;
  const flow = flowId ? catalog.flows.get(flowId) : undefined;
  if (!flow || flow.def.version === null) throw notFound("Decision flow");
  if (!catalog.channels.has(req.channelId)) throw notFound("Channel");
  if (req.placement && !catalog.placements.get(req.channelId)?.has(req.placement)) throw notFound("Placement");

  const enrichStart = performance.now();
  const profile = (await deps.profiles.get(`${tenantId}\u0000${req.customerId}`)) ?? EMPTY_PROFILE;
  const enrichDuration = performance.now() - enrichStart;
  const propensity = await deps.propensity.get(tenantId);

  const now = deps.clock.now();
  // Traces are recorded when asked for, and for a sampled fraction of the other calls.
  const rate = catalog.settings.traceSampleRate;
  const explain = req.trace || (rate > 0 && deps.random() < rate);
  const decision = decide({
    catalog,
    flow,
    customerId: req.customerId,
    channelId: req.channelId,
    placement: req.placement,
    maxOffers: req.maxOffers ?? DEFAULT_MAX_OFFERS,
    attributes: req.attributes ?? {},
    profile,
    propensity,
    now,
    random: deps.random,
    explain,
  });

  const res = create(RecommendResponseSchema, {
    customerId: req.customerId,
    decisionFlowId: flow.def.id,
    processedAt: timestampFromDate(now),
    recommendations: decision.recommendations.map((r) =>
      create(RecommendationSchema, {
        offerId: r.offer.def.id,
        offerName: r.offer.def.name,
        categoryId: r.offer.def.categoryId,
        rank: r.rank,
        score: r.score,
        channelId: req.channelId,
        creativeId: r.creative.def.id,
        content: r.content as JsonObject,
        personalization: r.personalization as JsonObject,
        experiment: r.experiment ? create(ExperimentAssignmentSchema, r.experiment) : undefined,
      }),
    ),
  });
  deps.metrics.decisions.inc({ outcome: res.recommendations.length > 0 ? "offers" : "empty" });

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
      stages: [
        create(TraceStageSchema, {
          name: "enrich",
          duration: roundMs(enrichDuration),
          input: { customerId: req.customerId },
          output: enrichOutput(profile),
        }),
        ...decision.stages.map(stageMessage),
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
  return res;
}

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

function stageMessage(s: StageRecord) {
  return create(TraceStageSchema, {
    name: s.name,
    duration: roundMs(s.duration),
    computed: s.computed as JsonObject | undefined,
    candidatesIn: s.candidatesIn,
    candidatesOut: s.candidatesOut,
    filtered: s.filtered ?? [],
    scores: s.scores ?? {},
    factors: s.factors as JsonObject | undefined,
    finalOrder: s.finalOrder ?? [],
  });
}
