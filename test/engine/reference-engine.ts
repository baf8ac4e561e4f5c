// The decision engine as plainly as it can be written, kept as the reference that the engine in
// src/decisioning/engine.ts must agree with (test/engine/differential.test.ts): over its own compile of
// the catalog (reference-catalog.ts), every candidate of the flow visited in id order, every value
// computed the obvious way, the propensity model asked per offer, a full sort. Clarity over speed.

import { assignVariant } from "../../src/decisioning/experiment.ts";
import { type Evaluation, type FormulaScope, isTruthy, type Value } from "../../src/decisioning/formula.ts";
import type { DecisionInput, ExperimentChoice, StageRecord } from "../../src/decisioning/engine.ts";
import {
  creativeKey,
  placementKey,
  type ReferenceCatalog,
  type ReferenceComputedField as ComputedField,
  type ReferenceCreative as CompiledCreative,
  type ReferenceFlow,
  type ReferenceOffer as CompiledOffer,
} from "./reference-catalog.ts";

/** What the reference decides over: the engine's input, with the reference's own compiled catalog. */
export type ReferenceInput = Omit<DecisionInput, "catalog" | "flow"> & { catalog: ReferenceCatalog; flow: ReferenceFlow };

export interface Recommendation {
  offer: CompiledOffer;
  creative: CompiledCreative;
  rank: number;
  score: number;
  propensity: number;
  content: Record<string, unknown>;
  personalization: Record<string, Value>;
  experiment: ExperimentChoice | null;
}
import { prepareContactPolicies } from "../../src/decisioning/policies.ts";

interface Candidate {
  offer: CompiledOffer;
  creatives: CompiledCreative[];
  scope: FormulaScope;
  /** Computed values, once evaluated (see computeValues). */
  values: Record<string, Value> | null;
  issues: Record<string, string> | null;
  propensity: number;
  relevance: number;
  score: number;
}

/** Scores are reported with four decimals: enough to tell offers apart, short enough to read. */
const round4 = (x: number) => Math.round(x * 10_000) / 10_000;

function evaluate(field: ComputedField, scope: FormulaScope): Evaluation {
  if (!field.formula) return { value: null, issue: field.error ?? "invalid formula" };
  return field.formula.evaluate(scope);
}

const NO_CREATIVES: CompiledCreative[] = [];

function externalPropensity(attributes: Record<string, unknown>, offerId: string): number | null {
  const scores = attributes.propensityScores;
  if (!scores || typeof scores !== "object") return null;
  const p = (scores as Record<string, unknown>)[offerId];
  return typeof p === "number" && p >= 0 && p <= 1 ? p : null;
}

function scheduleReason(offer: CompiledOffer, now: Date): string | null {
  const d = offer.def;
  if (d.status !== "active") return "inactive";
  if (d.startsAt && d.startsAt > now) return "not_started";
  if (d.endsAt && d.endsAt <= now) return "expired";
  return null;
}

function chooseCreative(input: ReferenceInput, c: Candidate): { creative: CompiledCreative; experiment: ExperimentChoice | null } {
  const experiment = input.catalog.experiments.get(creativeKey(c.offer.def.id, input.channelId));
  if (experiment) {
    const eligible = experiment.def.variants.filter((v) => c.creatives.some((cr) => cr.def.id === v.creativeId));
    // Only split when every variant can be shown here; otherwise the split would be biased.
    if (eligible.length === experiment.def.variants.length) {
      const v = assignVariant(experiment.def.id, input.customerId, eligible);
      const creative = v && c.creatives.find((cr) => cr.def.id === v.creativeId);
      if (v && creative) return { creative, experiment: { experimentId: experiment.def.id, variant: v.variant, weight: v.weight } };
    }
  }
  const plain = c.creatives.filter((cr) => !input.catalog.experimentOnlyCreatives.has(cr.def.id));
  const pool = plain.length > 0 ? plain : c.creatives;
  // A creative made for the requested placement beats one that fits any placement.
  const exact = input.placement ? pool.find((cr) => cr.def.placementId === input.placement) : undefined;
  return { creative: (exact ?? pool[0]) as CompiledCreative, experiment: null };
}

function render(creative: CompiledCreative, scope: FormulaScope): Record<string, unknown> {
  const content: Record<string, unknown> = { ...creative.def.content };
  for (const [key, template] of creative.templates) {
    content[key] = template ? template.render(scope) : "";
  }
  return content;
}

/** Evaluates the offer's computed fields into its scope (once), so that rules and templates can read them. */
function computeValues(c: Candidate): Record<string, Value> {
  if (c.values) return c.values;
  const values: Record<string, Value> = {};
  for (const field of c.offer.computed) {
    const r = evaluate(field, c.scope);
    values[field.name] = r.value;
    c.scope.own[field.name] = r.value;
    if (r.issue) {
      c.issues ??= {};
      c.issues[field.name] = r.issue;
    }
  }
  c.values = values;
  return values;
}

/** Why the offer's own qualification or a tenant rule refuses the candidate, or null when all pass. */
function disqualification(c: Candidate, segments: string[]): string | null {
  for (const q of c.offer.qualifications) {
    let reason: string | null = null;
    if (q.segment && !segments.includes(q.segment)) reason = "segment_required";
    else if (q.condition) {
      const r = evaluate(q.condition, c.scope);
      if (!isTruthy(r.value)) reason = `condition_failed${r.issue ? `: ${r.issue}` : ""}`;
    }
    if (!reason && q.minPropensity !== undefined && c.propensity < q.minPropensity) reason = `propensity < ${q.minPropensity}`;
    if (reason) return q.ruleId ? `${reason}, rule ${q.ruleId}` : reason;
  }
  return null;
}

export function referenceDecide(input: ReferenceInput): { recommendations: Recommendation[]; stages: StageRecord[] } {
  const { flow, catalog, explain } = input;
  const stages: StageRecord[] = [];
  const customer = input.profile.attributes;
  const segments = input.profile.segments;

  // compute: only for offers that could be shown at all on this channel now; the rest are recorded as
  // filtered without spending formula evaluations on them.
  let t = performance.now();
  // Reasons are only collected for a trace: with thousands of candidates, building them costs real time.
  const filtered: string[] = [];
  const drop = explain ? (id: string, reason: string) => filtered.push(`${id} (${reason})`) : () => 0;
  const eligible: Candidate[] = [];
  const creativesHere = catalog.creativeIndex.get(input.placement ? placementKey(input.channelId, input.placement) : input.channelId);
  for (const offer of flow.candidates) {
    const reason = scheduleReason(offer, input.now);
    if (reason) {
      drop(offer.def.id, reason);
      continue;
    }
    if (input.exclude?.has(offer.def.id)) {
      drop(offer.def.id, "excluded");
      continue;
    }
    const creatives = creativesHere?.get(offer.def.id) ?? NO_CREATIVES;
    if (creatives.length === 0) {
      drop(offer.def.id, "no_creative");
      continue;
    }
    const own: Record<string, unknown> = { ...offer.fields };
    const scope: FormulaScope = { own, customer, attributes: input.attributes, offer: offer.offerView };
    const c: Candidate = { offer, creatives, scope, values: null, issues: null, propensity: 0, relevance: 1, score: 0 };
    // Computed values are evaluated now only when something before ranking reads them (a trace, a rule
    // that names one); otherwise only for the offers that make the answer.
    if (explain || offer.rulesReadComputed) computeValues(c);
    eligible.push(c);
  }
  if (explain) {
    const computed: Record<string, Record<string, unknown>> = {};
    for (const c of eligible) {
      const values = c.values ?? {};
      computed[c.offer.def.id] = c.issues ? { ...values, _issues: c.issues } : { ...values };
    }
    stages.push({ name: "compute", duration: performance.now() - t, computed });
  }

  // filter: qualification rules, then contact policies; mandatory offers bypass the rules and every
  // policy but the frequency caps.
  t = performance.now();
  const policies =
    flow.policies.policies.length > 0
      ? prepareContactPolicies(
          flow.policies,
          input.history ?? null,
          input.channelId,
          input.now,
          (id) => catalog.offerById.get(id)?.def.categoryId,
          (id) => catalog.offerById.get(id)?.def.businessValue ?? 0,
          input.volume,
        )
      : null;
  const survivors: Candidate[] = [];
  for (const c of eligible) {
    const d = c.offer.def;
    const ext = externalPropensity(input.attributes, d.id);
    c.propensity =
      ext ?? input.propensity.estimate(d.id, d.categoryId, input.channelId, flow.propensityMode, flow.priorWeight, input.random);
    if (!d.mandatory) {
      const refusal = disqualification(c, segments);
      if (refusal) {
        drop(d.id, refusal);
        continue;
      }
    }
    const refused = policies?.check(d.id, d.categoryId, d.mandatory);
    if (refused) {
      drop(d.id, refused);
      continue;
    }
    survivors.push(c);
  }
  if (explain) {
    stages.push({
      name: "filter",
      duration: performance.now() - t,
      candidatesIn: flow.candidates.length,
      candidatesOut: survivors.length,
      filtered,
    });
  }

  // score
  t = performance.now();
  const w = flow.weights;
  const maxValue = catalog.maxBusinessValue;
  const factors: Record<string, Record<string, number>> = {};
  for (const c of survivors) {
    const d = c.offer.def;
    for (const fit of c.offer.fit) {
      if (!isTruthy(evaluate(fit.rule, c.scope).value)) c.relevance = Math.min(c.relevance, fit.relevance);
    }
    const impact = maxValue > 0 ? d.businessValue / maxValue : 1;
    const emphasis = d.priority / 100;
    if (flow.method === "priority_weighted") {
      c.score = (d.priority / 100) * (d.weight / 100) * c.relevance;
    } else {
      const p = Math.min(1, Math.max(0, c.propensity));
      c.score = p ** w.propensity * c.relevance ** w.relevance * impact ** w.impact * emphasis ** w.emphasis;
    }
    c.score = round4(c.score);
    if (explain) {
      factors[d.id] = {
        propensity: round4(c.propensity),
        relevance: round4(c.relevance),
        impact: round4(impact),
        emphasis: round4(emphasis),
      };
    }
  }
  if (explain) {
    const scores: Record<string, number> = {};
    for (const c of survivors) scores[c.offer.def.id] = c.score;
    stages.push({ name: "score", duration: performance.now() - t, scores, factors });
  }

  // rank: mandatory first, then by score, ties broken by offer id; then arbitration limits.
  t = performance.now();
  survivors.sort((a, b) => {
    if (a.offer.def.mandatory !== b.offer.def.mandatory) return a.offer.def.mandatory ? -1 : 1;
    if (a.score !== b.score) return b.score - a.score;
    return a.offer.def.id < b.offer.def.id ? -1 : a.offer.def.id > b.offer.def.id ? 1 : 0;
  });
  const perCategory = new Map<string, number>();
  const recommendations: Recommendation[] = [];
  for (const c of survivors) {
    if (recommendations.length >= input.maxOffers) break;
    // Offers shown together are impressions together: a shared frequency cap may admit only some.
    if (policies && !policies.fits(c.offer.def.id, c.offer.def.categoryId)) continue;
    if (flow.perCategoryCap !== null) {
      const n = perCategory.get(c.offer.def.categoryId) ?? 0;
      if (n >= flow.perCategoryCap) continue;
      perCategory.set(c.offer.def.categoryId, n + 1);
    }
    policies?.take(c.offer.def.id, c.offer.def.categoryId);
    const { creative, experiment } = chooseCreative(input, c);
    const personalization = computeValues(c);
    recommendations.push({
      offer: c.offer,
      creative,
      rank: recommendations.length + 1,
      score: c.score,
      propensity: c.propensity,
      content: render(creative, c.scope),
      personalization,
      experiment,
    });
  }
  if (explain) {
    const experiments: Record<string, Record<string, unknown>> = {};
    for (const r of recommendations) if (r.experiment) experiments[r.offer.def.id] = { ...r.experiment, creativeId: r.creative.def.id };
    stages.push({ name: "rank", duration: performance.now() - t, finalOrder: recommendations.map((r) => r.offer.def.id), experiments });
  }
  return { recommendations, stages };
}
