// A tenant's catalog as the engine uses it: the stored definitions (definitions.ts) compiled once —
// formulas and templates parsed, and per flow, channel and placement the list of offers that can be shown
// there with their score parts — then shared by every decision until the catalog changes.
//
// Compiling is a generator that yields between small units of work, so a caller can spread a large
// catalog over many event-loop turns while the previous catalog keeps serving (`compileCatalog` runs it
// at once). Parsed formulas and templates are kept by source text between compiles, so a change to one
// offer re-parses nothing else.

import { compileFormula, type Formula, FormulaSyntaxError } from "./formula.ts";
import { compileTemplate, type Template } from "./template.ts";
import type {
  CatalogDefinition,
  CategoryDef,
  ChannelDef,
  CreativeDef,
  ExperimentDef,
  FlowDef,
  OfferDef,
  OutcomeTypeDef,
  QualificationDef,
  QualificationRuleDef,
  ScoreWeights,
  TenantSettings,
} from "./definitions.ts";
import { DEFAULT_TENANT_SETTINGS } from "./definitions.ts";
import { type CompiledContactPolicies, combineContactPolicies, compileContactPolicies } from "./policies.ts";
import type { PropensityMode, PropensityTable } from "./propensity.ts";

export interface ComputedField {
  name: string;
  formula: Formula | null;
  /** Why the formula could not be compiled (stored data predating a check); it then yields null. */
  error?: string;
  /**
   * For a formula that reads only `customer.*` and `attributes.*`: its slot in the per-request memo, since
   * its value is the same for every offer of a decision. -1 for formulas that read the offer.
   */
  requestSlot: number;
}

export interface CompiledCreative {
  def: CreativeDef;
  /** Content fields that are templates; other content values are passed through. */
  templates: [string, Template | null][];
}

/** One set of qualification checks: the offer's own (id null) or a tenant rule's. */
export interface CompiledQualification {
  /** The tenant rule's id; null for the offer's own qualification. */
  ruleId: string | null;
  segment: string | undefined;
  condition: ComputedField | null;
  minPropensity: number | undefined;
}

export interface CompiledOffer {
  def: OfferDef;
  category: CategoryDef | undefined;
  /** Category fields overlaid by the offer's own fields. */
  fields: Record<string, unknown>;
  /** Category computed fields first, then the offer's (an offer's formula replaces its category's). */
  computed: ComputedField[];
  /** The offer's own qualification first, then the tenant rules that apply to it, in id order. */
  qualifications: CompiledQualification[];
  fit: { rule: ComputedField; relevance: number }[];
  /** What templates and formulas see as offer.*. */
  offerView: Record<string, unknown>;
  /** Whether a qualification condition or fit rule names a computed field (so it must be evaluated first). */
  rulesReadComputed: boolean;
  /** The schedule as epoch milliseconds: -Infinity and Infinity when open-ended. */
  startsMs: number;
  endsMs: number;
}

export interface CompiledExperiment {
  def: ExperimentDef;
  creatives: Map<string, CompiledCreative>;
}

/**
 * The offers of one flow that can be shown on one channel (or one placement of it): active, with a
 * creative there, in id order, with what their score needs that does not depend on the customer. Only
 * the schedule, which depends on the clock, is left to the decision.
 */
export interface CandidateList {
  /** The channel the list is for (a placement's list is for the placement's channel). */
  channelId: string;
  offers: CompiledOffer[];
  /** The offers' definitions (same positions), which is what the propensity model looks them up by. */
  defs: OfferDef[];
  /** The creatives usable here, per offer (same positions as `offers`). */
  creatives: CompiledCreative[][];
  /** PRIE: impact ** w.impact and emphasis ** w.emphasis; priority_weighted: priority/100 · weight/100 in `impactTerm`. */
  impactTerm: Float64Array;
  emphasisTerm: Float64Array;
  /** Whether any offer here has fit rules (its relevance then depends on the customer). */
  hasFit: boolean;
  /** Propensity of every offer here for the current statistics snapshot; filled by the engine. */
  propensity: PropensityTable | null;
  /**
   * Propensities prepared ahead for statistics about to serve (or for a catalog about to serve); a
   * decision takes them over when it is asked with those statistics.
   */
  staged: PropensityTable | null;
  /** The rank order of this list in the catalog compiled before: a starting point for this one's. */
  seedRanking: Int32Array | null;
}

export interface ResolvedFlow {
  def: FlowDef;
  method: "prie" | "priority_weighted";
  weights: ScoreWeights;
  propensityMode: PropensityMode;
  priorWeight: number;
  perCategoryCap: number | null;
  /** The flow's control group, or null when it holds nobody out. */
  holdout: { percent: number; treatment: "empty" | "baseline" } | null;
  candidates: CompiledOffer[];
  /** Compiled contact policies; malformed stored ones are skipped and listed in `policies.issues`. */
  policies: CompiledContactPolicies;
  /** channelId, or placementKey(channelId, placementId) → the candidates that can be shown there. */
  lists: Map<string, CandidateList>;
}

export interface CompiledCatalog {
  /** The catalog revision this was compiled from (store/catalog.ts), or null when unknown. */
  revision: number | null;
  settings: TenantSettings;
  /** Tenant-registered outcome types → classification. */
  outcomeTypes: Map<string, OutcomeTypeDef["classification"]>;
  offers: CompiledOffer[];
  offerById: Map<string, CompiledOffer>;
  channels: Map<string, ChannelDef>;
  /** channelId → placement ids. */
  placements: Map<string, Set<string>>;
  /** channelId, or placementKey(channelId, placementId) → offer id → the active creatives usable there. */
  creativeIndex: Map<string, Map<string, CompiledCreative[]>>;
  /** `${offerId}\0${channelId}` → the running experiment. */
  experiments: Map<string, CompiledExperiment>;
  /** Creatives that only an experiment may choose (its non-control variants). */
  experimentOnlyCreatives: Set<string>;
  flows: Map<string, ResolvedFlow>;
  defaultFlowId: string | null;
  maxBusinessValue: number;
  /** How many request-only formulas the catalog has: the size of a decision's memo. */
  requestSlots: number;
  /** Parsed formulas and templates by source, handed to the next compile of this tenant's catalog. */
  parsed: ParseCache;
  /** The definitions this was compiled from (offers and creatives in id order), for the next compile. */
  definition: CatalogDefinition;
}

/** Parsed formulas (or why one failed) and templates by source text. */
export interface ParseCache {
  formulas: Map<string, Formula | string>;
  templates: Map<string, Template | null>;
  /** Compiled fields by name and source, and the request slots they were given. */
  fields: Map<string, ComputedField>;
  slots: Map<Formula, number>;
  /**
   * How many fields the last compile from scratch had. Compiles on top of a previous one keep every field
   * they ever saw (a kept offer may use any); once that is more than twice as many, the next compile starts
   * afresh.
   */
  baseFields: number;
}

export const DEFAULT_WEIGHTS: ScoreWeights = { propensity: 0.4, relevance: 0.2, impact: 0.3, emphasis: 0.1 };
export const DEFAULT_PRIOR_WEIGHT = 10;

/** Units of work (offers, creatives, list entries) between two yields of the compile. */
const STEP = 32;

export function placementKey(channelId: string, placementId: string): string {
  return `${channelId}\u0000${placementId}`;
}

export function creativeKey(offerId: string, channelId: string): string {
  return `${offerId}\u0000${channelId}`;
}

const byId = <T extends { id: string }>(a: T, b: T) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** Sorted by id; the store reads large tables in id order already, and checking is cheaper than sorting. */
function sortedById<T extends { id: string }>(items: readonly T[]): T[] {
  for (let i = 1; i < items.length; i++) {
    if ((items[i - 1] as T).id >= (items[i] as T).id) return [...items].sort(byId);
  }
  return [...items];
}

const readsOnlyRequest = (f: Formula) => f.names.every((n) => n.startsWith("customer.") || n.startsWith("attributes."));

/** Compiles formulas through the parse cache and hands out request slots. */
class FieldCompiler {
  private readonly slots: Map<Formula, number>;
  private readonly used: Map<string, Formula | string>;
  private readonly fields: Map<string, ComputedField>;
  private readonly previous: Map<string, Formula | string> | undefined;

  /**
   * `previous` lends its parsed formulas. With `carryOver` (offers compiled before are kept as they were)
   * its fields and request slots go on too, so a kept field and a new one never share a slot.
   */
  constructor(previous: ParseCache | undefined, carryOver: boolean) {
    this.previous = previous?.formulas;
    this.slots = carryOver && previous ? new Map(previous.slots) : new Map();
    this.used = carryOver && previous ? new Map(previous.formulas) : new Map();
    this.fields = carryOver && previous ? new Map(previous.fields) : new Map();
  }

  get slotCount(): number {
    return this.slots.size;
  }

  /** What the next compile may reuse. */
  get cache(): Omit<ParseCache, "templates" | "baseFields"> {
    return { formulas: this.used, fields: this.fields, slots: this.slots };
  }

  /** The compiled field; offers sharing a name and a source share one (it is never changed). */
  field(name: string, source: string): ComputedField {
    const key = `${name}\u0000${source}`;
    let field = this.fields.get(key);
    if (!field) {
      field = this.compile(name, source);
      this.fields.set(key, field);
    }
    return field;
  }

  private compile(name: string, source: string): ComputedField {
    let parsed = this.used.get(source) ?? this.previous?.get(source);
    if (parsed === undefined) {
      try {
        parsed = compileFormula(source);
      } catch (err) {
        parsed = err instanceof FormulaSyntaxError ? err.message : String(err);
      }
    }
    this.used.set(source, parsed);
    if (typeof parsed === "string") return { name, formula: null, error: parsed, requestSlot: -1 };
    let slot = -1;
    if (readsOnlyRequest(parsed)) {
      slot = this.slots.get(parsed) ?? this.slots.size;
      this.slots.set(parsed, slot);
    }
    return { name, formula: parsed, requestSlot: slot };
  }
}

function compileCreative(
  def: CreativeDef,
  previous: Map<string, Template | null> | undefined,
  used: Map<string, Template | null>,
): CompiledCreative {
  const templates: [string, Template | null][] = [];
  for (const [key, value] of Object.entries(def.content)) {
    if (typeof value !== "string") continue;
    let t = used.get(value) ?? previous?.get(value);
    if (t === undefined) {
      try {
        t = compileTemplate(value);
      } catch {
        t = null;
      }
    }
    used.set(value, t);
    templates.push([key, t]);
  }
  return { def, templates };
}

function compileQualification(
  ruleId: string | null,
  q: Pick<QualificationDef, "segment" | "condition" | "minPropensity">,
  fields: FieldCompiler,
): CompiledQualification | null {
  if (!q.segment && !q.condition && q.minPropensity === undefined) return null;
  return {
    ruleId,
    segment: q.segment || undefined,
    condition: q.condition ? fields.field(ruleId ? `rule ${ruleId}` : "condition", q.condition) : null,
    minPropensity: q.minPropensity,
  };
}

/** Whether a tenant rule applies to an offer. */
function ruleCovers(rule: QualificationRuleDef, offer: OfferDef): boolean {
  const byOffer = rule.offerIds?.length ? rule.offerIds.includes(offer.id) : false;
  const byCategory = rule.categoryIds?.length ? rule.categoryIds.includes(offer.categoryId) : false;
  return (!rule.offerIds?.length && !rule.categoryIds?.length) || byOffer || byCategory;
}

const NONE: readonly never[] = Object.freeze([]);

/** What offers share: their category's fields and computed fields, and the tenant's rules, compiled once. */
class OfferCompiler {
  private readonly byCategory = new Map<string, { fields: Record<string, unknown>; computed: ComputedField[] }>();
  private readonly rules: { def: QualificationRuleDef; compiled: CompiledQualification }[] = [];

  constructor(
    private readonly fieldCompiler: FieldCompiler,
    rules: QualificationRuleDef[],
  ) {
    for (const r of rules) {
      const compiled = compileQualification(r.id, r, fieldCompiler);
      if (compiled) this.rules.push({ def: r, compiled });
    }
  }

  private categoryParts(category: CategoryDef | undefined) {
    const key = category?.id ?? "";
    let parts = this.byCategory.get(key);
    if (!parts) {
      parts = {
        fields: category?.fields ?? {},
        computed: Object.entries(category?.computed ?? {}).map(([name, source]) => this.fieldCompiler.field(name, source)),
      };
      this.byCategory.set(key, parts);
    }
    return parts;
  }

  compile(def: OfferDef, category: CategoryDef | undefined): CompiledOffer {
    const shared = this.categoryParts(category);
    const fields = this.fieldCompiler;
    const ownComputed = Object.keys(def.computed);
    let computed = shared.computed;
    if (ownComputed.length > 0) {
      // An offer's formula replaces its category's of the same name, in the category's place.
      const formulas = new Map<string, string>(Object.entries(category?.computed ?? {}));
      for (const [name, source] of Object.entries(def.computed)) formulas.set(name, source);
      computed = [...formulas].map(([name, source]) => fields.field(name, source));
    }
    const q = def.qualification;
    const own = compileQualification(null, q, fields);
    const covering = this.rules.filter((r) => ruleCovers(r.def, def));
    const qualifications: CompiledQualification[] =
      own || covering.length > 0
        ? [...(own ? [own] : []), ...covering.map((r) => r.compiled)]
        : (NONE as unknown as CompiledQualification[]);
    const fit = q.fit?.length
      ? q.fit.map((r, i) => ({ rule: fields.field(`fit[${i}]`, r.when), relevance: r.relevance }))
      : (NONE as unknown as CompiledOffer["fit"]);
    const computedNames = (n: string) => computed.some((c) => c.name === n);
    const reads = (r: ComputedField | null) => r?.formula?.names.some(computedNames) ?? false;
    return {
      def,
      category,
      // Shared with the category when the offer adds nothing: decisions only read it.
      fields: Object.keys(def.fields).length > 0 ? { ...shared.fields, ...def.fields } : shared.fields,
      computed,
      qualifications,
      fit,
      rulesReadComputed: computed.length > 0 && (qualifications.some((x) => reads(x.condition)) || fit.some((f) => reads(f.rule))),
      offerView: { id: def.id, name: def.name, description: def.description, categoryId: def.categoryId, priority: def.priority },
      startsMs: def.startsAt ? def.startsAt.getTime() : Number.NEGATIVE_INFINITY,
      endsMs: def.endsAt ? def.endsAt.getTime() : Number.POSITIVE_INFINITY,
    };
  }
}

function flowSettings(def: FlowDef) {
  const d = def.definition;
  const w = { ...DEFAULT_WEIGHTS, ...(d.score?.weights ?? {}) };
  const total = w.propensity + w.relevance + w.impact + w.emphasis;
  const weights =
    total > 0
      ? { propensity: w.propensity / total, relevance: w.relevance / total, impact: w.impact / total, emphasis: w.emphasis / total }
      : DEFAULT_WEIGHTS;
  return {
    method: d.score?.method ?? "prie",
    weights,
    propensityMode: d.score?.propensity ?? "mean",
    priorWeight: d.score?.priorWeight ?? DEFAULT_PRIOR_WEIGHT,
    perCategoryCap: d.rank?.perCategoryCap ?? null,
    holdout:
      d.holdout && d.holdout.percent > 0 ? { percent: d.holdout.percent, treatment: d.holdout.treatment ?? ("empty" as const) } : null,
  };
}

function flowCandidates(def: FlowDef, offers: CompiledOffer[]): CompiledOffer[] {
  const categoryIds = def.definition.candidates?.categoryIds;
  const offerIds = def.definition.candidates?.offerIds;
  if (!categoryIds?.length && !offerIds?.length) return offers;
  return offers.filter((o) => (categoryIds?.includes(o.def.categoryId) ?? false) || (offerIds?.includes(o.def.id) ?? false));
}

/** Builds the candidate list of a flow for one channel or placement (the caller yields between lists). */
function* buildList(
  seedRanking: Int32Array | null,
  channelId: string,
  flow: Omit<ResolvedFlow, "lists" | "def" | "candidates" | "policies" | "holdout">,
  candidates: CompiledOffer[],
  creativesHere: Map<string, CompiledCreative[]> | undefined,
  maxValue: number,
): Generator<void, CandidateList> {
  const offers: CompiledOffer[] = [];
  const creatives: CompiledCreative[][] = [];
  for (let i = 0; i < candidates.length; i++) {
    if (i % STEP === STEP - 1) yield;
    const o = candidates[i] as CompiledOffer;
    if (o.def.status !== "active") continue;
    const here = creativesHere?.get(o.def.id);
    if (!here || here.length === 0) continue;
    offers.push(o);
    creatives.push(here);
  }
  const n = offers.length;
  const impactTerm = new Float64Array(n);
  const emphasisTerm = new Float64Array(n);
  const w = flow.weights;
  let hasFit = false;
  for (let j = 0; j < n; j++) {
    const d = (offers[j] as CompiledOffer).def;
    if ((offers[j] as CompiledOffer).fit.length > 0) hasFit = true;
    if (flow.method === "priority_weighted") {
      impactTerm[j] = (d.priority / 100) * (d.weight / 100);
      emphasisTerm[j] = 1;
    } else {
      const impact = maxValue > 0 ? d.businessValue / maxValue : 1;
      impactTerm[j] = impact ** w.impact;
      emphasisTerm[j] = (d.priority / 100) ** w.emphasis;
    }
  }
  yield;
  return {
    channelId,
    offers,
    defs: offers.map((o) => o.def),
    creatives,
    impactTerm,
    emphasisTerm,
    hasFit,
    propensity: null,
    staged: null,
    seedRanking,
  };
}

/**
 * Compiles a catalog step by step: yields after each small unit of work. `previous` is the tenant's
 * catalog compiled before, whose parsed formulas and templates are reused.
 */
export function* compileCatalogSteps(
  def: CatalogDefinition,
  opts: { revision?: number | null; previous?: CompiledCatalog } = {},
): Generator<void, CompiledCatalog> {
  const categories = new Map(def.categories.map((c) => [c.id, c]));
  // An offer or creative whose definition is the very object compiled last time (the store re-read only
  // what changed), with the same categories and rules, is taken over as it was.
  const before = opts.previous;
  const reusable =
    before !== undefined &&
    before.definition.categories === def.categories &&
    before.definition.qualificationRules === def.qualificationRules &&
    before.parsed.fields.size <= 2 * before.parsed.baseFields + 64;
  const fields = new FieldCompiler(before?.parsed, reusable);
  const offerCompiler = new OfferCompiler(fields, [...(def.qualificationRules ?? [])].sort(byId));
  const sortedOffers = sortedById(def.offers);
  const compiledOffers = new Map<OfferDef, CompiledOffer>();
  const compiledCreatives = new Map<CreativeDef, CompiledCreative>();
  if (before && reusable) {
    for (const o of before.offers) compiledOffers.set(o.def, o);
    yield;
    for (const list of before.creativeIndex.values()) for (const cs of list.values()) for (const c of cs) compiledCreatives.set(c.def, c);
  }
  yield;
  const offers: CompiledOffer[] = [];
  for (const o of sortedOffers) {
    offers.push(compiledOffers.get(o) ?? offerCompiler.compile(o, categories.get(o.categoryId)));
    if (offers.length % STEP === 0) yield;
  }
  const offerById = new Map(offers.map((o) => [o.def.id, o]));
  yield;

  const placements = new Map<string, Set<string>>();
  for (const p of def.placements) {
    const set = placements.get(p.channelId) ?? new Set<string>();
    set.add(p.id);
    placements.set(p.channelId, set);
  }

  // Active creatives per offer and channel, in id order.
  const creatives = new Map<string, CompiledCreative[]>();
  const creativeById = new Map<string, CompiledCreative>();
  const usedTemplates = new Map<string, Template | null>();
  const sortedCreatives = sortedById(def.creatives);
  let done = 0;
  for (const c of sortedCreatives) {
    if (++done % STEP === 0) yield;
    if (c.status !== "active") continue;
    const compiled = compiledCreatives.get(c) ?? compileCreative(c, opts.previous?.parsed.templates, usedTemplates);
    for (const [, t] of compiled.templates) if (t) usedTemplates.set(t.source, t);
    creativeById.set(c.id, compiled);
    const k = creativeKey(c.offerId, c.channelId);
    const list = creatives.get(k);
    if (list) list.push(compiled);
    else creatives.set(k, [compiled]);
  }

  // Per channel (and per channel and placement): offer id → the creatives it can show there.
  const creativeIndex = new Map<string, Map<string, CompiledCreative[]>>();
  const indexFor = (k: string) => {
    let m = creativeIndex.get(k);
    if (!m) {
      m = new Map();
      creativeIndex.set(k, m);
    }
    return m;
  };
  for (const ch of def.channels) indexFor(ch.id);
  for (const list of creatives.values()) {
    if (++done % STEP === 0) yield;
    const first = list[0] as CompiledCreative;
    indexFor(first.def.channelId).set(first.def.offerId, list);
    for (const p of placements.get(first.def.channelId) ?? []) {
      const fit = list.filter((c) => c.def.placementId === null || c.def.placementId === p);
      if (fit.length > 0) indexFor(placementKey(first.def.channelId, p)).set(first.def.offerId, fit);
    }
  }
  for (const p of def.placements) indexFor(placementKey(p.channelId, p.id));

  const experiments = new Map<string, CompiledExperiment>();
  const experimentOnlyCreatives = new Set<string>();
  for (const e of def.experiments) {
    e.variants.forEach((v, i) => {
      if (i > 0) experimentOnlyCreatives.add(v.creativeId);
    });
    if (e.status !== "running") continue;
    const variants = new Map<string, CompiledCreative>();
    for (const v of e.variants) {
      const c = creativeById.get(v.creativeId);
      if (c) variants.set(v.creativeId, c);
    }
    experiments.set(creativeKey(e.offerId, e.channelId), { def: e, creatives: variants });
  }

  const tenantPolicyList = [...(def.contactPolicies ?? [])].sort(byId);
  // Volume caps count under the policy's id, so edits and other policies leave their counters alone.
  const tenantPolicies = compileContactPolicies(
    tenantPolicyList.map((p) => p.policy),
    (i) => `cp:${tenantPolicyList[i]?.id ?? i}`,
  );
  // Issues name the policy by its id rather than its place in a list nobody wrote.
  tenantPolicies.issues = tenantPolicies.issues.map((issue) =>
    issue.replace(/^policies\[(\d+)\]/, (_, i: string) => `contact policy ${tenantPolicyList[Number(i)]?.id ?? i}`),
  );
  const maxBusinessValue = offers.reduce((m, o) => Math.max(m, o.def.businessValue), 0);
  const flows = new Map<string, ResolvedFlow>();
  for (const f of def.flows) {
    const settings = flowSettings(f);
    const candidates = flowCandidates(f, offers);
    const lists = new Map<string, CandidateList>();
    const previousLists = opts.previous?.flows.get(f.id)?.lists;
    for (const [k, here] of creativeIndex) {
      const before = previousLists?.get(k)?.propensity;
      const seed = before?.ranking ?? before?.previousRanking ?? null;
      lists.set(k, yield* buildList(seed, k.split("\u0000")[0] as string, settings, candidates, here, maxBusinessValue));
    }
    flows.set(f.id, {
      def: f,
      ...settings,
      candidates,
      policies: combineContactPolicies(
        compileContactPolicies(f.definition.policies, (i) => `df:${f.id}:${i}`),
        tenantPolicies,
      ),
      lists,
    });
  }
  const defaultFlow = def.flows.find((f) => f.isDefault);
  return {
    revision: opts.revision ?? null,
    settings: def.settings ?? DEFAULT_TENANT_SETTINGS,
    outcomeTypes: new Map((def.outcomeTypes ?? []).map((o) => [o.id, o.classification])),
    offers,
    offerById,
    channels: new Map(def.channels.map((c) => [c.id, c])),
    placements,
    creativeIndex,
    experiments,
    experimentOnlyCreatives,
    flows,
    defaultFlowId: defaultFlow?.id ?? null,
    maxBusinessValue,
    requestSlots: fields.slotCount,
    parsed: {
      ...fields.cache,
      templates: usedTemplates,
      baseFields: before && reusable ? before.parsed.baseFields : fields.cache.fields.size,
    },
    definition: { ...def, offers: sortedOffers, creatives: sortedCreatives },
  };
}

/** Compiles a catalog in one go. */
export function compileCatalog(
  def: CatalogDefinition,
  opts: { revision?: number | null; previous?: CompiledCatalog } = {},
): CompiledCatalog {
  const steps = compileCatalogSteps(def, opts);
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}
