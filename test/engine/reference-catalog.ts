// The catalog compile as plainly as it can be written, for the reference engine (reference-engine.ts):
// independent of src/decisioning/catalog.ts, so that the differential test checks the compile too. It
// reads the stored definitions and builds what the reference engine looks at: per offer its merged
// fields, computed fields, qualifications (its own, then the tenant rules covering it) and fit rules; per
// channel and placement the creatives of each offer; per flow its candidates and contact policies.

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
} from "../../src/decisioning/definitions.ts";
import { DEFAULT_TENANT_SETTINGS } from "../../src/decisioning/definitions.ts";
import { compileFormula, type Formula, FormulaSyntaxError } from "../../src/decisioning/formula.ts";
import { type CompiledContactPolicies, combineContactPolicies, compileContactPolicies } from "../../src/decisioning/policies.ts";
import type { PropensityMode } from "../../src/decisioning/propensity.ts";
import { compileTemplate, type Template } from "../../src/decisioning/template.ts";

export interface ReferenceComputedField {
  name: string;
  formula: Formula | null;
  /** Why the formula could not be compiled (stored data predating a check); it then yields null. */
  error?: string;
}

export interface ReferenceCreative {
  def: CreativeDef;
  /** Content fields that are templates; other content values are passed through. */
  templates: [string, Template | null][];
}

/** One set of qualification checks: the offer's own (id null) or a tenant rule's. */
export interface ReferenceQualification {
  /** The tenant rule's id; null for the offer's own qualification. */
  ruleId: string | null;
  segment: string | undefined;
  condition: ReferenceComputedField | null;
  minPropensity: number | undefined;
}

export interface ReferenceOffer {
  def: OfferDef;
  category: CategoryDef | undefined;
  /** Category fields overlaid by the offer's own fields. */
  fields: Record<string, unknown>;
  /** Category computed fields first, then the offer's (an offer's formula replaces its category's). */
  computed: ReferenceComputedField[];
  /** The offer's own qualification first, then the tenant rules that apply to it, in id order. */
  qualifications: ReferenceQualification[];
  fit: { rule: ReferenceComputedField; relevance: number }[];
  /** What templates and formulas see as offer.*. */
  offerView: Record<string, unknown>;
  /** Whether a qualification condition or fit rule names a computed field (so it must be evaluated first). */
  rulesReadComputed: boolean;
}

export interface ReferenceExperiment {
  def: ExperimentDef;
  creatives: Map<string, ReferenceCreative>;
}

export interface ReferenceFlow {
  def: FlowDef;
  method: "prie" | "priority_weighted";
  weights: ScoreWeights;
  propensityMode: PropensityMode;
  priorWeight: number;
  perCategoryCap: number | null;
  candidates: ReferenceOffer[];
  /** Compiled contact policies; malformed stored ones are skipped and listed in `policies.issues`. */
  policies: CompiledContactPolicies;
}

export interface ReferenceCatalog {
  settings: TenantSettings;
  /** Tenant-registered outcome types → classification. */
  outcomeTypes: Map<string, OutcomeTypeDef["classification"]>;
  offers: ReferenceOffer[];
  offerById: Map<string, ReferenceOffer>;
  channels: Map<string, ChannelDef>;
  /** channelId → placement ids. */
  placements: Map<string, Set<string>>;
  /** `${offerId}\0${channelId}` → active creatives, ordered by id. */
  creatives: Map<string, ReferenceCreative[]>;
  /** channelId, or placementKey(channelId, placementId) → offer id → the active creatives usable there. */
  creativeIndex: Map<string, Map<string, ReferenceCreative[]>>;
  /** `${offerId}\0${channelId}` → the running experiment. */
  experiments: Map<string, ReferenceExperiment>;
  /** Creatives that only an experiment may choose (its non-control variants). */
  experimentOnlyCreatives: Set<string>;
  flows: Map<string, ReferenceFlow>;
  defaultFlowId: string | null;
  maxBusinessValue: number;
}

export const DEFAULT_WEIGHTS: ScoreWeights = { propensity: 0.4, relevance: 0.2, impact: 0.3, emphasis: 0.1 };
export const DEFAULT_PRIOR_WEIGHT = 10;

export function compileField(name: string, source: string, cache?: Map<string, Formula | string>): ReferenceComputedField {
  // Compiled formulas are stateless, so one compile serves every offer that shares the source text
  // (a category's formula is shared by all its offers).
  const known = cache?.get(source);
  if (known !== undefined) return typeof known === "string" ? { name, formula: null, error: known } : { name, formula: known };
  try {
    const formula = compileFormula(source);
    cache?.set(source, formula);
    return { name, formula };
  } catch (err) {
    const message = err instanceof FormulaSyntaxError ? err.message : String(err);
    cache?.set(source, message);
    return { name, formula: null, error: message };
  }
}

function compileCreative(def: CreativeDef): ReferenceCreative {
  const templates: [string, Template | null][] = [];
  for (const [key, value] of Object.entries(def.content)) {
    if (typeof value !== "string") continue;
    try {
      templates.push([key, compileTemplate(value)]);
    } catch {
      templates.push([key, null]);
    }
  }
  return { def, templates };
}

function compileQualification(
  ruleId: string | null,
  q: Pick<QualificationDef, "segment" | "condition" | "minPropensity">,
  formulaCache: Map<string, Formula | string>,
): ReferenceQualification | null {
  if (!q.segment && !q.condition && q.minPropensity === undefined) return null;
  return {
    ruleId,
    segment: q.segment || undefined,
    condition: q.condition ? compileField(ruleId ? `rule ${ruleId}` : "condition", q.condition, formulaCache) : null,
    minPropensity: q.minPropensity,
  };
}

/** Whether a tenant rule applies to an offer. */
function ruleCovers(rule: QualificationRuleDef, offer: OfferDef): boolean {
  const byOffer = rule.offerIds?.length ? rule.offerIds.includes(offer.id) : false;
  const byCategory = rule.categoryIds?.length ? rule.categoryIds.includes(offer.categoryId) : false;
  return (!rule.offerIds?.length && !rule.categoryIds?.length) || byOffer || byCategory;
}

function compileOffer(
  def: OfferDef,
  category: CategoryDef | undefined,
  rules: QualificationRuleDef[],
  formulaCache: Map<string, Formula | string>,
): ReferenceOffer {
  const formulas = new Map<string, string>();
  for (const [name, source] of Object.entries(category?.computed ?? {})) formulas.set(name, source);
  for (const [name, source] of Object.entries(def.computed)) formulas.set(name, source);
  const q = def.qualification;
  const qualifications = [
    compileQualification(null, q, formulaCache),
    ...rules.filter((r) => ruleCovers(r, def)).map((r) => compileQualification(r.id, r, formulaCache)),
  ].filter((x): x is ReferenceQualification => x !== null);
  const fit = (q.fit ?? []).map((r, i) => ({ rule: compileField(`fit[${i}]`, r.when, formulaCache), relevance: r.relevance }));
  const ruleFields = [...qualifications.map((x) => x.condition), ...fit.map((f) => f.rule)].filter(
    (r): r is ReferenceComputedField => r !== null,
  );
  return {
    def,
    category,
    fields: { ...(category?.fields ?? {}), ...def.fields },
    computed: [...formulas].map(([name, source]) => compileField(name, source, formulaCache)),
    qualifications,
    fit,
    rulesReadComputed: ruleFields.some((r) => r.formula?.names.some((n) => formulas.has(n)) ?? false),
    offerView: { id: def.id, name: def.name, description: def.description, categoryId: def.categoryId, priority: def.priority },
  };
}

function resolveFlow(def: FlowDef, offers: ReferenceOffer[], tenantPolicies: CompiledContactPolicies): ReferenceFlow {
  const d = def.definition;
  const w = { ...DEFAULT_WEIGHTS, ...(d.score?.weights ?? {}) };
  const total = w.propensity + w.relevance + w.impact + w.emphasis;
  const weights =
    total > 0
      ? { propensity: w.propensity / total, relevance: w.relevance / total, impact: w.impact / total, emphasis: w.emphasis / total }
      : DEFAULT_WEIGHTS;
  const categoryIds = d.candidates?.categoryIds;
  const offerIds = d.candidates?.offerIds;
  const candidates =
    categoryIds?.length || offerIds?.length
      ? offers.filter((o) => (categoryIds?.includes(o.def.categoryId) ?? false) || (offerIds?.includes(o.def.id) ?? false))
      : offers;
  return {
    def,
    method: d.score?.method ?? "prie",
    weights,
    propensityMode: d.score?.propensity ?? "mean",
    priorWeight: d.score?.priorWeight ?? DEFAULT_PRIOR_WEIGHT,
    perCategoryCap: d.rank?.perCategoryCap ?? null,
    candidates,
    policies: combineContactPolicies(
      compileContactPolicies(d.policies, (i) => `df:${def.id}:${i}`),
      tenantPolicies,
    ),
  };
}

const key = (offerId: string, channelId: string) => `${offerId}\u0000${channelId}`;

export function referenceCompile(def: CatalogDefinition): ReferenceCatalog {
  const categories = new Map(def.categories.map((c) => [c.id, c]));
  const formulaCache = new Map<string, Formula | string>();
  const rules = [...(def.qualificationRules ?? [])].sort((a, b) => (a.id < b.id ? -1 : 1));
  const offers = [...def.offers]
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .map((o) => compileOffer(o, categories.get(o.categoryId), rules, formulaCache));
  const offerById = new Map(offers.map((o) => [o.def.id, o]));

  const placements = new Map<string, Set<string>>();
  for (const p of def.placements) {
    const set = placements.get(p.channelId) ?? new Set<string>();
    set.add(p.id);
    placements.set(p.channelId, set);
  }

  const creatives = new Map<string, ReferenceCreative[]>();
  const creativeById = new Map<string, ReferenceCreative>();
  for (const c of [...def.creatives].sort((a, b) => (a.id < b.id ? -1 : 1))) {
    if (c.status !== "active") continue;
    const compiled = compileCreative(c);
    creativeById.set(c.id, compiled);
    const k = key(c.offerId, c.channelId);
    const list = creatives.get(k);
    if (list) list.push(compiled);
    else creatives.set(k, [compiled]);
  }

  // Per channel (and per channel and placement): offer id → the creatives it can show there. A decision
  // looks up its channel once, then each offer by id, without building keys per candidate.
  const creativeIndex = new Map<string, Map<string, ReferenceCreative[]>>();
  const indexFor = (k: string) => {
    let m = creativeIndex.get(k);
    if (!m) {
      m = new Map();
      creativeIndex.set(k, m);
    }
    return m;
  };
  for (const list of creatives.values()) {
    const first = list[0] as ReferenceCreative;
    indexFor(first.def.channelId).set(first.def.offerId, list);
  }
  for (const p of def.placements) {
    const byOffer = indexFor(placementKey(p.channelId, p.id));
    for (const list of creatives.values()) {
      const first = list[0] as ReferenceCreative;
      if (first.def.channelId !== p.channelId) continue;
      const fit = list.filter((c) => c.def.placementId === null || c.def.placementId === p.id);
      if (fit.length > 0) byOffer.set(first.def.offerId, fit);
    }
  }

  const experiments = new Map<string, ReferenceExperiment>();
  const experimentOnlyCreatives = new Set<string>();
  for (const e of def.experiments) {
    e.variants.forEach((v, i) => {
      if (i > 0) experimentOnlyCreatives.add(v.creativeId);
    });
    if (e.status !== "running") continue;
    const byId = new Map<string, ReferenceCreative>();
    for (const v of e.variants) {
      const c = creativeById.get(v.creativeId);
      if (c) byId.set(v.creativeId, c);
    }
    experiments.set(key(e.offerId, e.channelId), { def: e, creatives: byId });
  }

  const tenantPolicyList = [...(def.contactPolicies ?? [])].sort((a, b) => (a.id < b.id ? -1 : 1));
  // Volume caps count under the policy's id (tenant policies) or the flow and place (a flow's own).
  const tenantPolicies = compileContactPolicies(
    tenantPolicyList.map((p) => p.policy),
    (i) => `cp:${tenantPolicyList[i]?.id ?? i}`,
  );
  // Issues name the policy by its id rather than its place in a list nobody wrote.
  tenantPolicies.issues = tenantPolicies.issues.map((issue) =>
    issue.replace(/^policies\[(\d+)\]/, (_, i: string) => `contact policy ${tenantPolicyList[Number(i)]?.id ?? i}`),
  );
  const flows = new Map(def.flows.map((f) => [f.id, resolveFlow(f, offers, tenantPolicies)]));
  const defaultFlow = def.flows.find((f) => f.isDefault);
  return {
    settings: def.settings ?? DEFAULT_TENANT_SETTINGS,
    outcomeTypes: new Map((def.outcomeTypes ?? []).map((o) => [o.id, o.classification])),
    offers,
    offerById,
    channels: new Map(def.channels.map((c) => [c.id, c])),
    placements,
    creatives,
    creativeIndex,
    experiments,
    experimentOnlyCreatives,
    flows,
    defaultFlowId: defaultFlow?.id ?? null,
    maxBusinessValue: offers.reduce((m, o) => Math.max(m, o.def.businessValue), 0),
  };
}

export function placementKey(channelId: string, placementId: string): string {
  return `${channelId}\u0000${placementId}`;
}

export function creativeKey(offerId: string, channelId: string): string {
  return key(offerId, channelId);
}
