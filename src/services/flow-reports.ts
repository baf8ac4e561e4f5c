// A decision flow's reports: the uplift of its decisions over its holdout group, and the offline
// evaluation of its draft on the decisions it logged.

import { create } from "@bufbuild/protobuf";
import { type Timestamp, timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  type EvaluateDecisionFlowRequest,
  type EvaluateDecisionFlowResponse,
  EvaluateDecisionFlowResponseSchema,
  type GetUpliftReportRequest,
  type GetUpliftReportResponse,
  GetUpliftReportResponseSchema,
  PolicyEstimateSchema,
  UpliftGroupSchema,
} from "../../gen/kaireon/v1/decision_flow_pb.ts";
import { ConfidenceIntervalSchema } from "../../gen/kaireon/v1/experiment_pb.ts";
import { type CompiledCatalog, compileCatalog } from "../decisioning/catalog.ts";
import { decide } from "../decisioning/engine.ts";
import { type Interval, twoProportionZTest, wilsonInterval, Z_95 } from "../decisioning/experiment-stats.ts";
import { type OffPolicyEstimate, offPolicyEstimate } from "../decisioning/off-policy.ts";
import { seededRandom } from "../random.ts";
import { notFound, validationError } from "../errors.ts";
import { flowHeads } from "../store/flows.ts";
import { loggedChoices, profilesOf, upliftCounts } from "../store/reports.ts";
import type { CallContext, ServiceDeps } from "./context.ts";
import { OUTCOME_TYPES } from "./respond.ts";
import { MAX_ID_LENGTH, Violations } from "./validate.ts";

const DAY_MS = 86_400_000;
/** A report's period when the request names no start: this long before its end. */
export const DEFAULT_REPORT_DAYS = 30;
export const DEFAULT_EVALUATED_DECISIONS = 10_000;
export const MAX_EVALUATED_DECISIONS = 100_000;
/** Decisions replayed per turn of the event loop, so an evaluation never holds up the answers of others. */
const REPLAY_SLICE = 500;

function period(v: Violations, from: Timestamp | undefined, to: Timestamp | undefined, now: Date): { from: Date; to: Date } {
  const end = to ? timestampDate(to) : now;
  const start = from ? timestampDate(from) : new Date(end.getTime() - DEFAULT_REPORT_DAYS * DAY_MS);
  if (Number.isNaN(end.getTime())) v.add("to", "to must be a timestamp");
  if (Number.isNaN(start.getTime())) v.add("from", "from must be a timestamp");
  else if (start.getTime() >= end.getTime()) v.add("from", "from must be before to");
  return { from: start, to: end };
}

function requireFlowId(v: Violations, field: string, id: string): void {
  if (!id) v.add(field, `${field} is required`);
  else if (id.length > MAX_ID_LENGTH) v.add(field, `${field} must be at most ${MAX_ID_LENGTH} characters`);
}

/** The outcome types a tenant counts as positive: the built-in ones and those it registered. */
function positiveTypes(catalog: CompiledCatalog): string[] {
  const out = Object.entries(OUTCOME_TYPES)
    .filter(([, c]) => c === "positive")
    .map(([t]) => t);
  for (const [t, c] of catalog.outcomeTypes) if (c === "positive") out.push(t);
  return out;
}

export async function getUpliftReport(deps: ServiceDeps, ctx: CallContext, req: GetUpliftReportRequest): Promise<GetUpliftReportResponse> {
  const v = new Violations();
  requireFlowId(v, "decisionFlowId", req.decisionFlowId);
  const { from, to } = period(v, req.from, req.to, deps.clock.now());
  const goal = req.goal || "conversion";
  const tenantId = ctx.auth.tenantId;
  const catalog = await deps.catalogs.get(tenantId);
  if (!(goal in OUTCOME_TYPES) && !catalog.outcomeTypes.has(goal)) v.add("goal", `unknown outcome type ${goal}`);
  if (v.list.length > 0) throw validationError(v.list);
  if (!catalog.flows.has(req.decisionFlowId)) throw notFound("Decision flow");

  const counts = await upliftCounts(deps.readDb, tenantId, { decisionFlowId: req.decisionFlowId, from, to, goal });
  const of = (heldOut: boolean) => counts.find((c) => c.heldOut === heldOut) ?? { heldOut, customers: 0, converted: 0 };
  const treated = of(false);
  const control = of(true);
  const group = (c: { customers: number; converted: number }) =>
    create(UpliftGroupSchema, {
      customers: c.customers,
      converted: c.converted,
      conversionRate: c.customers > 0 ? c.converted / c.customers : undefined,
      confidenceInterval: wilsonInterval(c.converted, c.customers) ?? undefined,
    });
  const res = create(GetUpliftReportResponseSchema, {
    decisionFlowId: req.decisionFlowId,
    from: timestampFromDate(from),
    to: timestampFromDate(to),
    goal,
    decisioned: group(treated),
    heldOut: group(control),
  });
  const stats = upliftOf(
    { conversions: treated.converted, impressions: treated.customers },
    { conversions: control.converted, impressions: control.customers },
  );
  if (stats) {
    res.absoluteUplift = stats.difference;
    res.upliftInterval = create(ConfidenceIntervalSchema, stats.interval);
    res.relativeUplift = stats.relative ?? undefined;
    res.zScore = stats.z ?? undefined;
    res.pValue = stats.pValue ?? undefined;
    res.significant = stats.pValue !== null && stats.pValue < 0.05;
  }
  return res;
}

/**
 * The difference of two conversion rates (treated minus control) with its 95 % interval by the normal
 * approximation (unpooled variance), the relative difference in percent, and the pooled z-test.
 */
export function upliftOf(
  treated: { conversions: number; impressions: number },
  control: { conversions: number; impressions: number },
): { difference: number; interval: Interval; relative: number | null; z: number | null; pValue: number | null } | null {
  if (treated.impressions <= 0 || control.impressions <= 0) return null;
  const p1 = treated.conversions / treated.impressions;
  const p0 = control.conversions / control.impressions;
  const difference = p1 - p0;
  const se = Math.sqrt((p1 * (1 - p1)) / treated.impressions + (p0 * (1 - p0)) / control.impressions);
  const test = twoProportionZTest(control, treated);
  return {
    difference,
    interval: { low: difference - Z_95 * se, high: difference + Z_95 * se },
    relative: p0 > 0 ? (difference / p0) * 100 : null,
    z: test?.z ?? null,
    pValue: test?.pValue ?? null,
  };
}

export async function evaluateDecisionFlow(
  deps: ServiceDeps,
  ctx: CallContext,
  req: EvaluateDecisionFlowRequest,
): Promise<EvaluateDecisionFlowResponse> {
  const v = new Violations();
  requireFlowId(v, "decisionFlowId", req.decisionFlowId);
  const loggedFlowId = req.loggedDecisionFlowId || req.decisionFlowId;
  if (req.loggedDecisionFlowId) requireFlowId(v, "loggedDecisionFlowId", req.loggedDecisionFlowId);
  const { from, to } = period(v, req.from, req.to, deps.clock.now());
  const limit = req.maxDecisions ?? DEFAULT_EVALUATED_DECISIONS;
  if (!(Number.isInteger(limit) && limit >= 1 && limit <= MAX_EVALUATED_DECISIONS)) {
    v.add("maxDecisions", `maxDecisions must be a whole number from 1 to ${MAX_EVALUATED_DECISIONS}`);
  }
  if (v.list.length > 0) throw validationError(v.list);
  const tenantId = ctx.auth.tenantId;
  const catalog = await deps.catalogs.get(tenantId);
  const flowDef = catalog.definition.flows.find((f) => f.id === req.decisionFlowId);
  if (!flowDef) throw notFound("Decision flow");
  if (!catalog.flows.has(loggedFlowId)) throw notFound("Decision flow");
  const head = (await flowHeads(deps.db, tenantId, [req.decisionFlowId])).get(req.decisionFlowId);
  const evaluated = head?.draft ?? head?.published;
  if (!evaluated) throw notFound("Decision flow");

  // The catalog as it is, with the evaluated flow's draft in place of what it publishes.
  const drafted = compileCatalog({
    ...catalog.definition,
    flows: catalog.definition.flows.map((f) =>
      f.id === req.decisionFlowId ? { ...f, version: evaluated.version, definition: evaluated.definition } : f,
    ),
  });
  const flow = drafted.flows.get(req.decisionFlowId);
  if (!flow) throw notFound("Decision flow");

  const logged = await loggedChoices(deps.readDb, tenantId, {
    decisionFlowId: loggedFlowId,
    from,
    to,
    limit,
    positive: positiveTypes(catalog),
  });
  const profiles = await profilesOf(deps.readDb, tenantId, [...new Set(logged.map((l) => l.customerId))]);
  const propensity = await deps.propensity.get(tenantId);
  const clicks: { reward: number; logged: number; target: number }[] = [];
  const conversions: { reward: number; logged: number; target: number }[] = [];
  let matched = 0;
  for (let i = 0; i < logged.length; i++) {
    if (i > 0 && i % REPLAY_SLICE === 0) await Bun.sleep(0);
    const l = logged[i] as (typeof logged)[number];
    // One draw of the draft's choice per decision (a stochastic draft's weight is then unbiased); the
    // draft sees the customer's profile as it is now and no request attributes, which are not logged.
    const decision = decide({
      catalog: drafted,
      flow,
      customerId: l.customerId,
      channelId: l.channelId,
      placement: l.placement ?? "",
      maxOffers: 1,
      attributes: {},
      profile: profiles.get(l.customerId) ?? { attributes: {}, segments: [] },
      propensity,
      now: l.createdAt,
      random: seededRandom(i + 1),
      explain: false,
      // Contact policies were applied when the logged decision was made; the replay does not repeat them.
      history: { events: [], optedOutChannels: new Set() },
    });
    const target = decision.recommendations[0]?.offer.def.id === l.offerId ? 1 : 0;
    matched += target;
    clicks.push({ reward: l.clicked ? 1 : 0, logged: l.probability, target });
    conversions.push({ reward: l.converted ? 1 : 0, logged: l.probability, target });
  }
  const click = offPolicyEstimate(clicks);
  return create(EvaluateDecisionFlowResponseSchema, {
    decisionFlowId: req.decisionFlowId,
    draftVersion: evaluated.version,
    loggedDecisionFlowId: loggedFlowId,
    from: timestampFromDate(from),
    to: timestampFromDate(to),
    decisions: logged.length,
    matched,
    effectiveSampleSize: click.effectiveSampleSize,
    click: estimateMessage(click),
    conversion: estimateMessage(offPolicyEstimate(conversions)),
  });
}

function estimateMessage(e: OffPolicyEstimate) {
  return create(PolicyEstimateSchema, {
    logged: e.loggedRate,
    ips: e.ips,
    ipsInterval: e.ipsInterval,
    snips: e.snips ?? undefined,
    snipsInterval: e.snipsInterval ?? undefined,
  });
}
