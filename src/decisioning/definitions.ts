// The catalog as it is stored and written: categories, offers, channels, placements, creatives,
// experiments, flows and the tenant-wide rules, as plain definitions. The engine compiles them
// (catalog.ts); the store reads and writes them.

import type { Variant } from "./experiment.ts";
import type { ContactPolicyDef } from "./policies.ts";
import type { PropensityMode } from "./propensity.ts";

export interface CategoryDef {
  id: string;
  name: string;
  fields: Record<string, unknown>;
  /** Computed field name → formula. */
  computed: Record<string, string>;
}

export interface FitRule {
  /** When this formula is not true, relevance is lowered to `relevance`. */
  when: string;
  relevance: number;
}

export interface QualificationDef {
  /** The customer must belong to this segment. */
  segment?: string;
  /** A formula that must be true. */
  condition?: string;
  /** The offer is dropped when its propensity is below this. */
  minPropensity?: number;
  fit?: FitRule[];
}

/**
 * A qualification rule of the tenant's: the checks of a QualificationDef (fit rules aside) applied to the
 * offers it names, by id or by category (either matches; naming none means every offer).
 */
export interface QualificationRuleDef {
  id: string;
  offerIds?: string[];
  categoryIds?: string[];
  segment?: string;
  condition?: string;
  minPropensity?: number;
}

/** A tenant-wide contact policy: applied by every decision flow, beside the flow's own. */
export interface ContactPolicyRecordDef {
  id: string;
  policy: ContactPolicyDef;
}

export interface OfferDef {
  id: string;
  categoryId: string;
  name: string;
  description: string;
  status: "active" | "inactive";
  startsAt: Date | null;
  endsAt: Date | null;
  priority: number;
  businessValue: number;
  weight: number;
  mandatory: boolean;
  fields: Record<string, unknown>;
  computed: Record<string, string>;
  qualification: QualificationDef;
}

/** An offer with every optional setting at its default: active, always on, priority 50, no rules. */
export function offerWithDefaults(o: Partial<OfferDef> & Pick<OfferDef, "id" | "categoryId" | "name">): OfferDef {
  return {
    description: "",
    status: "active",
    startsAt: null,
    endsAt: null,
    priority: 50,
    businessValue: 100,
    weight: 100,
    mandatory: false,
    fields: {},
    computed: {},
    qualification: {},
    ...o,
  };
}

export interface ChannelDef {
  id: string;
  name: string;
  type: string;
  implicitImpressions: boolean;
}

export interface PlacementDef {
  channelId: string;
  id: string;
  name: string;
}

export interface CreativeDef {
  id: string;
  offerId: string;
  channelId: string;
  placementId: string | null;
  name: string;
  status: "active" | "inactive";
  content: Record<string, unknown>;
}

export interface ExperimentDef {
  id: string;
  offerId: string;
  channelId: string;
  status: "draft" | "running" | "stopped";
  variants: Variant[];
}

export interface ScoreWeights {
  propensity: number;
  relevance: number;
  impact: number;
  emphasis: number;
}

export interface FlowDefinition {
  candidates?: { categoryIds?: string[]; offerIds?: string[] };
  score?: {
    method?: "prie" | "priority_weighted";
    weights?: Partial<ScoreWeights>;
    propensity?: PropensityMode;
    priorWeight?: number;
  };
  rank?: { perCategoryCap?: number };
  /** Contact policies (frequency caps, cooldowns, outcome suppression, opt-outs, volume caps), see policies.ts. */
  policies?: ContactPolicyDef[];
  /**
   * A control group: `percent` of the flow's customers (a sticky hash of the customer id) get no decision,
   * an empty answer or, with treatment "baseline", offers in random order; the uplift report compares them.
   */
  holdout?: { percent: number; treatment?: "empty" | "baseline" };
}

export interface FlowDef {
  id: string;
  name: string;
  isDefault: boolean;
  /** The latest published version, or null when the flow was never published. */
  version: number | null;
  definition: FlowDefinition;
}

/** Per-tenant settings the decision path needs. */
export interface TenantSettings {
  /** Fraction of calls without `trace: true` that still record a trace (0–1). */
  traceSampleRate: number;
  /** Days a decision trace is kept; null means the service's default. */
  traceRetentionDays: number | null;
  /** The tenant's plan (`tenants.plan`): community, professional or enterprise. */
  plan: string;
  /** Requests per rate-limit window of this tenant; null means its plan's. */
  rateLimitPerMinute: number | null;
  /** A separate window for Respond calls; null means Respond shares the tenant's window. */
  respondRateLimitPerMinute: number | null;
  /** Administration calls per window; null means its plan's. */
  adminRateLimitPerMinute: number | null;
  /** Non-empty Recommend answers per calendar month (UTC); null means its plan's. */
  monthlyDecisionQuota: number | null;
  /** Percent of customers (0–50) held out of every flow without a holdout of its own. */
  holdoutPercent: number;
}

export const DEFAULT_TENANT_SETTINGS: TenantSettings = {
  traceSampleRate: 0,
  traceRetentionDays: null,
  holdoutPercent: 0,
  plan: "community",
  rateLimitPerMinute: null,
  respondRateLimitPerMinute: null,
  adminRateLimitPerMinute: null,
  monthlyDecisionQuota: null,
};

/** An outcome type a tenant registered, and how it moves learning. */
export interface OutcomeTypeDef {
  id: string;
  classification: "positive" | "negative" | "neutral";
}

export interface CatalogDefinition {
  settings?: TenantSettings;
  outcomeTypes?: OutcomeTypeDef[];
  /** Active tenant-wide contact policies. */
  contactPolicies?: ContactPolicyRecordDef[];
  /** Active tenant-wide qualification rules. */
  qualificationRules?: QualificationRuleDef[];
  categories: CategoryDef[];
  offers: OfferDef[];
  channels: ChannelDef[];
  placements: PlacementDef[];
  creatives: CreativeDef[];
  experiments: ExperimentDef[];
  flows: FlowDef[];
}
