// The decision engine: compute, filter, score and rank over a compiled catalog for one customer and
// channel. It is pure: the caller brings the profile, the propensity model, the clock and the random
// source, and gets back the ranked recommendations and, when asked, what each stage did.
//
// A decision visits the flow's candidate list for the channel (built when the catalog was compiled) and
// allocates nothing per candidate unless a rule needs the offer's computed values. Where the score
// cannot depend on the customer (mean propensity, no fit rules, no propensities in the request), every
// score is known per statistics snapshot: offers are visited in rank order and the visit stops once the
// answer is full. Otherwise every candidate is scored and the best are selected with a heap instead of a
// full sort. A traced decision visits every candidate of the flow, to say what happened to each.

import { assignVariant } from "./experiment.ts";
import { type Evaluation, type FormulaScope, isTruthy, type Value } from "./formula.ts";
import type { CandidateList, CompiledCatalog, CompiledCreative, CompiledOffer, ComputedField, ResolvedFlow } from "./catalog.ts";
import { creativeKey, placementKey } from "./catalog.ts";
import { type ContactHistory, type ContactPolicyGate, prepareContactPolicies, type VolumeView } from "./policies.ts";
import { type PropensityModel, type PropensityTable, sampleBeta } from "./propensity.ts";

export interface CustomerProfile {
  attributes: Record<string, unknown>;
  segments: string[];
}

export interface DecisionInput {
  catalog: CompiledCatalog;
  flow: ResolvedFlow;
  customerId: string;
  channelId: string;
  /** A placement id of the channel, or "" for any. */
  placement: string;
  maxOffers: number;
  attributes: Record<string, unknown>;
  profile: CustomerProfile;
  propensity: PropensityModel;
  now: Date;
  random: () => number;
  /** Collect per-stage details for a decision trace. */
  explain: boolean;
  /**
   * The customer's contact history for the flow's contact policies: undefined when the flow has none,
   * null when it could not be read (offers under a policy are then dropped: fail closed).
   */
  history?: ContactHistory | null;
  /** What is known of the volume caps' shared counters; unset: nothing spent yet. */
  volume?: VolumeView;
  /** A holdout's baseline: eligible offers in random order instead of by score. */
  baseline?: boolean;
  /** Offers this answer must not hold: the request's `excludeOffers`, or offers another placement took. */
  exclude?: ReadonlySet<string>;
  /**
   * Formula work one decision may do, in syntax-tree nodes evaluated; past it every formula yields null
   * (conditions then fail). Unset: no limit.
   */
  evaluationBudget?: number;
  /**
   * How long (ms) the propensities of a candidate list may go on serving after the model learned more;
   * 0 or unset: always the model's current state.
   */
  propensityRefreshMs?: number;
}

export interface ExperimentChoice {
  experimentId: string;
  variant: string;
  weight: number;
}

export interface Recommendation {
  offer: CompiledOffer;
  creative: CompiledCreative;
  rank: number;
  score: number;
  /** The propensity the score was computed with. */
  propensity: number;
  content: Record<string, unknown>;
  personalization: Record<string, Value>;
  experiment: ExperimentChoice | null;
}

export interface StageRecord {
  name: "compute" | "filter" | "score" | "rank";
  duration: number;
  computed?: Record<string, Record<string, unknown>>;
  candidatesIn?: number;
  candidatesOut?: number;
  filtered?: string[];
  scores?: Record<string, number>;
  factors?: Record<string, Record<string, number>>;
  finalOrder?: string[];
  experiments?: Record<string, Record<string, unknown>>;
}

export interface Decision {
  recommendations: Recommendation[];
  stages: StageRecord[];
  /** Candidates the decision examined (schedule, rules, policies). */
  visited: number;
  /** Formula work done to choose the offers (the winners' values aside), in syntax-tree nodes evaluated. */
  evaluations: number;
  /** Whether the evaluation budget ran out (some formulas yielded null for it). */
  budgetExhausted: boolean;
  /**
   * The probability with which the first recommendation was chosen first, for offline evaluation: 1 for a
   * deterministic ranking, 1/n for a holdout's random baseline among n eligible offers, and for Thompson
   * sampling an estimate by resampling the posteriors (see choiceProbability); 0 for an empty answer.
   */
  choiceProbability: number;
}

/** An offer whose computed values or scope a rule or the answer needed. */
interface Candidate {
  offer: CompiledOffer;
  scope: FormulaScope;
  values: Record<string, Value> | null;
  issues: Record<string, string> | null;
}

/** Scores are reported with four decimals: enough to tell offers apart, short enough to read. */
const round4 = (x: number) => Math.round(x * 10_000) / 10_000;

const BUDGET_EXHAUSTED: Evaluation = { value: null, issue: "evaluation budget exhausted" };

// Scratch space of the decision under way: decide() runs to completion synchronously, so one set of
// buffers serves every decision, grown to the largest candidate list seen.
let scores = new Float64Array(0);
let propensities = new Float64Array(0);
let relevances = new Float64Array(0);
let heap = new Int32Array(0);

function ensureScratch(n: number): void {
  if (scores.length >= n) return;
  const size = Math.max(n, scores.length * 2, 64);
  scores = new Float64Array(size);
  propensities = new Float64Array(size);
  relevances = new Float64Array(size);
  heap = new Int32Array(size);
}

/** What one decision shares between its candidates: the customer, the memo of request-only formulas, the budget. */
class Request {
  readonly customer: Record<string, unknown>;
  readonly attributes: Record<string, unknown>;
  readonly segments: string[];
  readonly nowMs: number;
  readonly externalScores: Record<string, unknown> | null;
  /** A scope reused for formulas of offers that need no computed values (formulas never write to it). */
  private readonly shared: FormulaScope;
  private readonly memo: (Evaluation | undefined)[];
  private readonly budget: number;
  spent = 0;
  exhausted = false;

  constructor(input: DecisionInput) {
    this.customer = input.profile.attributes;
    this.attributes = input.attributes;
    this.segments = input.profile.segments;
    this.nowMs = input.now.getTime();
    const ext = input.attributes.propensityScores;
    this.externalScores = ext && typeof ext === "object" ? (ext as Record<string, unknown>) : null;
    this.shared = { own: {}, customer: this.customer, attributes: this.attributes, offer: {} };
    this.memo = new Array(input.catalog.requestSlots);
    this.budget = input.evaluationBudget ?? Number.POSITIVE_INFINITY;
  }

  /** A propensity the request brings for the offer, or null. */
  external(offerId: string): number | null {
    if (!this.externalScores) return null;
    const p = this.externalScores[offerId];
    return typeof p === "number" && p >= 0 && p <= 1 ? p : null;
  }

  /** `metered` false: neither counted nor refused (the winners' values: at most maxOffers offers, bounded by the write-time limits). */
  evaluate(field: ComputedField, scope: FormulaScope, metered = true): Evaluation {
    if (!field.formula) return { value: null, issue: field.error ?? "invalid formula" };
    const slot = field.requestSlot;
    if (slot >= 0) {
      const known = this.memo[slot];
      if (known && known !== BUDGET_EXHAUSTED) return known;
    }
    const cost = field.formula.nodes;
    if (metered && this.spent + cost > this.budget) {
      this.exhausted = true;
      return BUDGET_EXHAUSTED;
    }
    if (metered) this.spent += cost;
    const r = field.formula.evaluate(scope);
    if (slot >= 0) this.memo[slot] = r;
    return r;
  }

  /** The scope a formula of the offer sees: the candidate's when it has one, else the shared one. */
  scopeFor(offer: CompiledOffer, c: Candidate | undefined): FormulaScope {
    if (c) return c.scope;
    this.shared.own = offer.fields;
    this.shared.offer = offer.offerView;
    return this.shared;
  }

  candidate(offer: CompiledOffer): Candidate {
    const scope: FormulaScope = { own: { ...offer.fields }, customer: this.customer, attributes: this.attributes, offer: offer.offerView };
    return { offer, scope, values: null, issues: null };
  }

  /** Evaluates the offer's computed fields into its scope (once), so that rules and templates can read them. */
  computeValues(c: Candidate, metered = true): Record<string, Value> {
    if (c.values) return c.values;
    const values: Record<string, Value> = {};
    for (const field of c.offer.computed) {
      const r = this.evaluate(field, c.scope, metered);
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

  /**
   * The values an answer shows: never cut short by the budget, which bounds the search, not what the
   * customer is shown (values computed before the budget ran out are computed again).
   */
  winnerValues(c: Candidate): Record<string, Value> {
    if (c.values && c.issues && Object.values(c.issues).includes(BUDGET_EXHAUSTED.issue as string)) {
      c.values = null;
      c.issues = null;
      c.scope.own = { ...c.offer.fields };
    }
    return this.computeValues(c, false);
  }

  /** Why the offer's own qualification or a tenant rule refuses it, or null when all pass. */
  disqualification(offer: CompiledOffer, c: Candidate | undefined, propensity: number): string | null {
    for (const q of offer.qualifications) {
      let reason: string | null = null;
      if (q.segment && !this.segments.includes(q.segment)) reason = "segment_required";
      else if (q.condition) {
        const r = this.evaluate(q.condition, this.scopeFor(offer, c));
        if (!isTruthy(r.value)) reason = `condition_failed${r.issue ? `: ${r.issue}` : ""}`;
      }
      if (!reason && q.minPropensity !== undefined && propensity < q.minPropensity) reason = `propensity < ${q.minPropensity}`;
      if (reason) return q.ruleId ? `${reason}, rule ${q.ruleId}` : reason;
    }
    return null;
  }

  relevance(offer: CompiledOffer, c: Candidate | undefined): number {
    let relevance = 1;
    for (const fit of offer.fit) {
      if (!isTruthy(this.evaluate(fit.rule, this.scopeFor(offer, c)).value)) relevance = Math.min(relevance, fit.relevance);
    }
    return relevance;
  }
}

function scheduleReason(offer: CompiledOffer, nowMs: number): string | null {
  if (offer.def.status !== "active") return "inactive";
  if (offer.startsMs > nowMs) return "not_started";
  if (offer.endsMs <= nowMs) return "expired";
  return null;
}

/** Whether a table still serves decisions with `model`: the model learned nothing since, or not for long. */
function current(t: PropensityTable | null, flow: ResolvedFlow, model: PropensityModel, nowMs: number, refreshMs: number): boolean {
  return (
    t !== null &&
    t.model === model &&
    t.priorWeight === flow.priorWeight &&
    (t.version === model.version || (refreshMs > 0 && Math.abs(nowMs - t.builtAt) < refreshMs))
  );
}

/** The list's propensities for the model as it is now (or as it was at most `refreshMs` ago). */
function propensityTable(
  list: CandidateList,
  flow: ResolvedFlow,
  model: PropensityModel,
  nowMs: number,
  refreshMs: number,
): PropensityTable {
  const t = list.propensity;
  if (t && current(t, flow, model, nowMs, refreshMs)) return t;
  const staged = list.staged;
  if (staged && current(staged, flow, model, nowMs, refreshMs)) {
    list.propensity = staged;
    list.staged = null;
    return staged;
  }
  const fresh = model.table(list.defs, list.channelId, flow.priorWeight, nowMs);
  fresh.previousRanking = t?.ranking ?? t?.previousRanking ?? list.seedRanking;
  list.propensity = fresh;
  return fresh;
}

/** Whether the flow's scores on the list are the same for every customer (then the early exit applies). */
function customerFree(flow: ResolvedFlow, list: CandidateList): boolean {
  return flow.propensityMode !== "thompson" && !list.hasFit;
}

/**
 * Computes, one list at a time, what decisions would otherwise compute on first use after a compile or a
 * statistics reload: each list's propensities for `model` and, where the early exit applies, its rank order.
 */
export function* prepareCandidateLists(catalog: CompiledCatalog, model: PropensityModel, now: Date): Generator<void, void> {
  const nowMs = now.getTime();
  for (const flow of catalog.flows.values()) {
    for (const list of flow.lists.values()) {
      if (list.offers.length === 0) continue;
      // Staged beside the table that serves: decisions in between go on with the statistics they have.
      const previous = list.propensity;
      const table = yield* model.tableSteps(list.defs, list.channelId, flow.priorWeight, nowMs);
      table.previousRanking = previous?.ranking ?? previous?.previousRanking ?? list.seedRanking;
      if (customerFree(flow, list)) table.ranking = yield* rankingSteps(list, flow, table, table.previousRanking);
      list.staged = table;
      yield;
    }
  }
}

/** The list's positions in rank order for the table's means (no fit rules: relevance 1). */
function rankingOf(list: CandidateList, flow: ResolvedFlow, table: PropensityTable, previous: Int32Array | null): Int32Array {
  if (table.ranking) return table.ranking;
  const steps = rankingSteps(list, flow, table, previous);
  for (;;) {
    const r = steps.next();
    if (r.done) {
      table.ranking = r.value;
      return r.value;
    }
  }
}

/**
 * Computes a rank order step by step. After the model learned a little, the previous order is nearly
 * right: it is repaired by insertion, about one comparison per offer, and sorted afresh only when too
 * much moved. The scores are kept in `keys` across steps (decisions in between use the scratch space) and
 * copied into the scratch space only for the comparisons, which run without a step between.
 */
function* rankingSteps(
  list: CandidateList,
  flow: ResolvedFlow,
  table: PropensityTable,
  previous: Int32Array | null,
): Generator<void, Int32Array> {
  const n = list.offers.length;
  const keys = new Float64Array(n);
  let packed = n < POSITIONS;
  for (let j = 0; j < n; j++) {
    if (j % RANK_STEP === RANK_STEP - 1) yield;
    const s = score(flow, list, j, table.mean[j] as number, 1);
    keys[j] = s;
    if (!(s >= 0 && s <= 1)) packed = false;
  }
  if (previous && previous.length === n) {
    // Decisions use `scores` between the steps: the keys are copied in for the repair, which runs at once.
    ensureScratch(n);
    scores.set(keys);
    const order = Int32Array.from(previous);
    let moves = 0;
    const limit = 8 * n + 64;
    for (let i = 1; i < n && moves <= limit; i++) {
      const j = order[i] as number;
      let k = i - 1;
      while (k >= 0 && before(list, j, order[k] as number)) {
        order[k + 1] = order[k] as number;
        k--;
        moves++;
      }
      order[k + 1] = j;
    }
    if (moves <= limit) return order;
  }
  yield;
  if (packed) return sortedByRank(list, keys, n);
  ensureScratch(n);
  scores.set(keys);
  return sortedByComparison(list, n);
}

/** Offers per step of a rank order computed in steps. */
const RANK_STEP = 512;

/**
 * Positions 0..n-1 in rank order by their scores (`keys`, four-decimal numbers in [0, 1]): mandatory flag,
 * score and position pack into one number each, and a native numeric sort does the work.
 */
function sortedByRank(list: CandidateList, keys: Float64Array, n: number): Int32Array {
  for (let j = 0; j < n; j++) {
    const s = Math.round((keys[j] as number) * 10_000);
    const mandatory = (list.offers[j] as CompiledOffer).def.mandatory ? 0 : 1;
    keys[j] = (mandatory * 10_001 + (10_000 - s)) * POSITIONS + j;
  }
  keys.sort();
  const order = new Int32Array(n);
  for (let k = 0; k < n; k++) order[k] = (keys[k] as number) % POSITIONS;
  return order;
}

/** Room for positions in a packed sort key. */
const POSITIONS = 2 ** 24;

function sortedByComparison(list: CandidateList, n: number): Int32Array {
  const order = Array.from({ length: n }, (_, j) => j);
  order.sort((a, b) => (before(list, a, b) ? -1 : 1));
  return Int32Array.from(order);
}

function score(flow: ResolvedFlow, list: CandidateList, j: number, propensity: number, relevance: number): number {
  if (flow.method === "priority_weighted") return round4((list.impactTerm[j] as number) * relevance);
  const p = Math.min(1, Math.max(0, propensity));
  const w = flow.weights;
  return round4(p ** w.propensity * relevance ** w.relevance * (list.impactTerm[j] as number) * (list.emphasisTerm[j] as number));
}

/** Whether candidate a ranks before b: mandatory first, then by score, ties by offer id (list position). */
function before(list: CandidateList, a: number, b: number): boolean {
  const ma = (list.offers[a] as CompiledOffer).def.mandatory;
  const mb = (list.offers[b] as CompiledOffer).def.mandatory;
  if (ma !== mb) return ma;
  const sa = scores[a] as number;
  const sb = scores[b] as number;
  if (sa !== sb) return sa > sb;
  return a < b;
}

function siftDown(list: CandidateList, size: number, from: number): void {
  let i = from;
  for (;;) {
    const l = 2 * i + 1;
    if (l >= size) return;
    const r = l + 1;
    let best = l;
    if (r < size && before(list, heap[r] as number, heap[l] as number)) best = r;
    if (!before(list, heap[best] as number, heap[i] as number)) return;
    const t = heap[i] as number;
    heap[i] = heap[best] as number;
    heap[best] = t;
    i = best;
  }
}

function heapPop(list: CandidateList, size: number): number {
  const top = heap[0] as number;
  heap[0] = heap[size - 1] as number;
  siftDown(list, size - 1, 0);
  return top;
}

function chooseCreative(
  input: DecisionInput,
  offer: CompiledOffer,
  creatives: CompiledCreative[],
): { creative: CompiledCreative; experiment: ExperimentChoice | null } {
  const experiment = input.catalog.experiments.get(creativeKey(offer.def.id, input.channelId));
  if (experiment) {
    const eligible = experiment.def.variants.filter((v) => creatives.some((cr) => cr.def.id === v.creativeId));
    // Only split when every variant can be shown here; otherwise the split would be biased.
    if (eligible.length === experiment.def.variants.length) {
      const v = assignVariant(experiment.def.id, input.customerId, eligible);
      const creative = v && creatives.find((cr) => cr.def.id === v.creativeId);
      if (v && creative) return { creative, experiment: { experimentId: experiment.def.id, variant: v.variant, weight: v.weight } };
    }
  }
  const plain = creatives.filter((cr) => !input.catalog.experimentOnlyCreatives.has(cr.def.id));
  const pool = plain.length > 0 ? plain : creatives;
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

/** Arbitration: takes candidates in rank order and places those the limits allow, until the answer is full. */
class Answer {
  readonly recommendations: Recommendation[] = [];
  private readonly perCategory = new Map<string, number>();

  constructor(
    private readonly input: DecisionInput,
    private readonly req: Request,
    private readonly policies: ContactPolicyGate | null,
  ) {}

  get full(): boolean {
    return this.recommendations.length >= this.input.maxOffers;
  }

  place(offer: CompiledOffer, creatives: CompiledCreative[], c: Candidate | undefined, score: number, propensity: number): void {
    if (this.full) return;
    const id = offer.def.id;
    const categoryId = offer.def.categoryId;
    // Offers shown together are impressions together: a shared frequency cap may admit only some.
    if (this.policies && !this.policies.fits(id, categoryId)) return;
    const cap = this.input.flow.perCategoryCap;
    if (cap !== null) {
      const n = this.perCategory.get(categoryId) ?? 0;
      if (n >= cap) return;
      this.perCategory.set(categoryId, n + 1);
    }
    this.policies?.take(id, categoryId);
    const { creative, experiment } = chooseCreative(this.input, offer, creatives);
    const candidate = c ?? this.req.candidate(offer);
    const personalization = this.req.winnerValues(candidate);
    this.recommendations.push({
      offer,
      creative,
      rank: this.recommendations.length + 1,
      score,
      propensity,
      content: render(creative, candidate.scope),
      personalization,
      experiment,
    });
  }
}

function gateFor(input: DecisionInput): ContactPolicyGate | null {
  const { flow, catalog } = input;
  if (flow.policies.policies.length === 0) return null;
  return prepareContactPolicies(
    flow.policies,
    input.history ?? null,
    input.channelId,
    input.now,
    (id) => catalog.offerById.get(id)?.def.categoryId,
    (id) => catalog.offerById.get(id)?.def.businessValue ?? 0,
    input.volume,
  );
}

const EMPTY_LIST: CandidateList = {
  channelId: "",
  offers: [],
  defs: [],
  creatives: [],
  impactTerm: new Float64Array(0),
  emphasisTerm: new Float64Array(0),
  hasFit: false,
  propensity: null,
  staged: null,
  seedRanking: null,
};

export function decide(input: DecisionInput): Decision {
  const { flow } = input;
  const list = flow.lists.get(input.placement ? placementKey(input.channelId, input.placement) : input.channelId) ?? EMPTY_LIST;
  const req = new Request(input);
  if (input.explain) return explained(input, list, req);
  const policies = gateFor(input);
  const answer = new Answer(input, req, policies);
  const exclude = input.exclude && input.exclude.size > 0 ? input.exclude : null;
  ensureScratch(list.offers.length);
  const table = propensityTable(list, flow, input.propensity, req.nowMs, input.propensityRefreshMs ?? 0);
  const thompson = flow.propensityMode === "thompson";
  // Offers whose rules read computed values get a candidate of their own; they are few.
  let candidates: Map<number, Candidate> | null = null;

  /** Examines position j: its propensity into `propensities`, its score into `scores`; false when it is dropped. */
  const examine = (j: number): boolean => {
    const offer = list.offers[j] as CompiledOffer;
    if (offer.startsMs > req.nowMs || offer.endsMs <= req.nowMs) return false;
    if (exclude?.has(offer.def.id)) return false;
    let c: Candidate | undefined;
    if (offer.rulesReadComputed) {
      c = req.candidate(offer);
      req.computeValues(c);
      candidates ??= new Map();
      candidates.set(j, c);
    }
    const d = offer.def;
    const p =
      req.external(d.id) ??
      (thompson ? sampleBeta(table.alpha[j] as number, table.beta[j] as number, input.random) : (table.mean[j] as number));
    propensities[j] = p;
    if (!d.mandatory && req.disqualification(offer, c, p) !== null) return false;
    if (policies?.check(d.id, d.categoryId, d.mandatory)) return false;
    const relevance = offer.fit.length > 0 ? req.relevance(offer, c) : 1;
    relevances[j] = relevance;
    scores[j] = input.baseline ? input.random() : score(flow, list, j, p, relevance);
    return true;
  };
  const place = (j: number) =>
    answer.place(
      list.offers[j] as CompiledOffer,
      list.creatives[j] as CompiledCreative[],
      candidates?.get(j),
      scores[j] as number,
      propensities[j] as number,
    );

  const n = list.offers.length;
  let visited = 0;
  let size = 0;
  let contenders: Contender[] | null = null;
  if (customerFree(flow, list) && !req.externalScores && !input.baseline) {
    // The early exit: every score is the snapshot's, so the offers are visited best first and the first
    // that pass the filters are the answer.
    const ranking = rankingOf(list, flow, table, table.previousRanking);
    for (let k = 0; k < n && !answer.full; k++) {
      const j = ranking[k] as number;
      visited++;
      if (examine(j)) place(j);
    }
  } else {
    for (let j = 0; j < n; j++) {
      visited++;
      if (examine(j)) heap[size++] = j;
    }
    if (resamples(input))
      contenders = Array.from(heap.subarray(0, size), (j) => ({
        j,
        relevance: relevances[j] as number,
        offer: list.offers[j] as CompiledOffer,
      }));
    for (let i = (size >> 1) - 1; i >= 0; i--) siftDown(list, size, i);
  }
  while (size > 0 && !answer.full) {
    place(heapPop(list, size));
    size--;
  }
  return {
    recommendations: answer.recommendations,
    stages: [],
    visited,
    evaluations: req.spent,
    budgetExhausted: req.exhausted,
    choiceProbability: choiceProbability(input, list, table, req, contenders, answer.recommendations[0]?.offer),
  };
}

/** An offer that passed the filters, as the resampling of a choice probability needs it. */
interface Contender {
  j: number;
  offer: CompiledOffer;
  relevance: number;
}

/** Whether the first choice is random, so its probability needs the offers that competed for it. */
const resamples = (input: DecisionInput) => input.baseline === true || input.flow.propensityMode === "thompson";

/** Thompson sampling's choice probability: draws per decision, enough to resolve it, bounded in cost. */
export const CHOICE_DRAW_BUDGET = 512;
export const MIN_CHOICE_DRAWS = 4;
export const MAX_CHOICE_DRAWS = 32;

/**
 * The probability that `first` came first. Deterministic rankings: 1. A holdout's baseline picks uniformly
 * among the offers that passed the filters: 1/n. Thompson sampling: the decision's posteriors are drawn
 * again D times (D = CHOICE_DRAW_BUDGET / offers, from MIN_ to MAX_CHOICE_DRAWS) and the probability is the
 * share of draws, the decision's own included, in which `first` scores highest; the set of offers that
 * passed the filters is kept as it was (a propensity minimum is not re-applied per draw), and arbitration
 * limits are not replayed. Mandatory offers come first whatever the draw: 1.
 */
function choiceProbability(
  input: DecisionInput,
  list: CandidateList,
  table: PropensityTable,
  req: Request,
  contenders: Contender[] | null,
  first: CompiledOffer | undefined,
): number {
  if (!first) return 0;
  if (first.def.mandatory || !contenders) return 1;
  const open = contenders.filter((c) => !c.offer.def.mandatory);
  if (input.baseline) return open.length > 0 ? 1 / open.length : 1;
  const { flow } = input;
  if (flow.method === "priority_weighted" || open.length < 2) return 1;
  const draws = Math.min(MAX_CHOICE_DRAWS, Math.max(MIN_CHOICE_DRAWS, Math.floor(CHOICE_DRAW_BUDGET / open.length)));
  let wins = 1;
  for (let d = 0; d < draws; d++) {
    let best: Contender | null = null;
    let bestScore = Number.NEGATIVE_INFINITY;
    for (const c of open) {
      const p = req.external(c.offer.def.id) ?? sampleBeta(table.alpha[c.j] as number, table.beta[c.j] as number, input.random);
      const s = score(flow, list, c.j, p, c.relevance);
      if (s > bestScore || (s === bestScore && best !== null && c.j < best.j)) {
        best = c;
        bestScore = s;
      }
    }
    if (best?.offer === first) wins++;
  }
  return wins / (draws + 1);
}

/** A traced decision: every candidate of the flow is visited and what happened to it is recorded. */
function explained(input: DecisionInput, list: CandidateList, req: Request): Decision {
  const { flow, catalog } = input;
  const stages: StageRecord[] = [];
  const filtered: string[] = [];

  // compute: the offers that could be shown at all on this channel now, with their computed values.
  let t = performance.now();
  const eligible: { j: number; c: Candidate }[] = [];
  let at = 0;
  for (const offer of flow.candidates) {
    const inList = list.offers[at] === offer;
    const reason = scheduleReason(offer, req.nowMs);
    if (inList) at++;
    if (reason) {
      filtered.push(`${offer.def.id} (${reason})`);
      continue;
    }
    if (input.exclude?.has(offer.def.id)) {
      filtered.push(`${offer.def.id} (excluded)`);
      continue;
    }
    if (!inList) {
      filtered.push(`${offer.def.id} (no_creative)`);
      continue;
    }
    const c = req.candidate(offer);
    req.computeValues(c);
    eligible.push({ j: at - 1, c });
  }
  const computed: Record<string, Record<string, unknown>> = {};
  for (const { c } of eligible) {
    const values = c.values ?? {};
    computed[c.offer.def.id] = c.issues ? { ...values, _issues: c.issues } : { ...values };
  }
  stages.push({ name: "compute", duration: performance.now() - t, computed });

  // filter: qualification rules, then contact policies; mandatory offers bypass the rules and every
  // policy but the frequency caps.
  t = performance.now();
  const policies = gateFor(input);
  const table = propensityTable(list, flow, input.propensity, req.nowMs, input.propensityRefreshMs ?? 0);
  const thompson = flow.propensityMode === "thompson";
  const survivors: { j: number; c: Candidate; propensity: number; relevance: number; score: number }[] = [];
  for (const { j, c } of eligible) {
    const d = c.offer.def;
    const p =
      req.external(d.id) ??
      (thompson ? sampleBeta(table.alpha[j] as number, table.beta[j] as number, input.random) : (table.mean[j] as number));
    if (!d.mandatory) {
      const refusal = req.disqualification(c.offer, c, p);
      if (refusal) {
        filtered.push(`${d.id} (${refusal})`);
        continue;
      }
    }
    const refused = policies?.check(d.id, d.categoryId, d.mandatory);
    if (refused) {
      filtered.push(`${d.id} (${refused})`);
      continue;
    }
    survivors.push({ j, c, propensity: p, relevance: 1, score: 0 });
  }
  stages.push({
    name: "filter",
    duration: performance.now() - t,
    candidatesIn: flow.candidates.length,
    candidatesOut: survivors.length,
    filtered,
  });

  // score
  t = performance.now();
  const maxValue = catalog.maxBusinessValue;
  const factors: Record<string, Record<string, number>> = {};
  const scoreOf: Record<string, number> = {};
  for (const s of survivors) {
    const d = s.c.offer.def;
    s.relevance = req.relevance(s.c.offer, s.c);
    s.score = input.baseline ? input.random() : score(flow, list, s.j, s.propensity, s.relevance);
    scoreOf[d.id] = s.score;
    factors[d.id] = {
      propensity: round4(s.propensity),
      relevance: round4(s.relevance),
      impact: round4(maxValue > 0 ? d.businessValue / maxValue : 1),
      emphasis: round4(d.priority / 100),
    };
  }
  stages.push({ name: "score", duration: performance.now() - t, scores: scoreOf, factors });

  // rank: mandatory first, then by score, ties broken by offer id; then arbitration limits.
  t = performance.now();
  survivors.sort((a, b) => {
    const ma = a.c.offer.def.mandatory;
    if (ma !== b.c.offer.def.mandatory) return ma ? -1 : 1;
    if (a.score !== b.score) return b.score - a.score;
    return a.j - b.j;
  });
  const answer = new Answer(input, req, policies);
  for (const s of survivors) {
    if (answer.full) break;
    answer.place(s.c.offer, list.creatives[s.j] as CompiledCreative[], s.c, s.score, s.propensity);
  }
  const experiments: Record<string, Record<string, unknown>> = {};
  for (const r of answer.recommendations)
    if (r.experiment) experiments[r.offer.def.id] = { ...r.experiment, creativeId: r.creative.def.id };
  stages.push({
    name: "rank",
    duration: performance.now() - t,
    finalOrder: answer.recommendations.map((r) => r.offer.def.id),
    experiments,
  });
  const contenders = resamples(input) ? survivors.map((s) => ({ j: s.j, offer: s.c.offer, relevance: s.relevance })) : null;
  return {
    recommendations: answer.recommendations,
    stages,
    visited: flow.candidates.length,
    evaluations: req.spent,
    budgetExhausted: req.exhausted,
    choiceProbability: choiceProbability(input, list, table, req, contenders, answer.recommendations[0]?.offer),
  };
}
