// Reads a tenant's whole catalog definition: categories, offers, channels, placements, creatives,
// experiments and the latest published version of each decision flow.

import type {
  CatalogDefinition,
  CategoryDef,
  ChannelDef,
  CreativeDef,
  ExperimentDef,
  FlowDef,
  FlowDefinition,
  OfferDef,
  PlacementDef,
  OutcomeTypeDef,
  QualificationDef,
  QualificationRuleDef,
  TenantSettings,
} from "../decisioning/definitions.ts";
import type { ContactPolicyDef } from "../decisioning/policies.ts";
import { DEFAULT_TENANT_SETTINGS } from "../decisioning/definitions.ts";
import type { Queryable } from "./db.ts";

type R = Record<string, unknown>;

/** Reads the decision-path settings out of a tenant's settings document, ignoring what is malformed. */
export function tenantSettings(raw: Record<string, unknown>, plan: string = DEFAULT_TENANT_SETTINGS.plan): TenantSettings {
  const rate = raw.traceSampleRate;
  const days = raw.traceRetentionDays;
  // A limit set to null (or anything malformed) falls back to the plan's.
  const count = (v: unknown, min: number) => (typeof v === "number" && Number.isSafeInteger(v) && v >= min ? v : null);
  return {
    traceSampleRate: typeof rate === "number" && rate >= 0 && rate <= 1 ? rate : DEFAULT_TENANT_SETTINGS.traceSampleRate,
    traceRetentionDays: typeof days === "number" && Number.isInteger(days) && days >= 1 && days <= 3650 ? days : null,
    plan,
    rateLimitPerMinute: count(raw.rateLimitPerMinute, 1),
    respondRateLimitPerMinute: count(raw.respondRateLimitPerMinute, 1),
    monthlyDecisionQuota: count(raw.monthlyDecisionQuota, 0),
  };
}

/** Rows per read of the large catalog tables: each page is parsed in one go, so pages keep that short. */
const PAGE_ROWS = 500;

/**
 * Reads a tenant's rows of a large table in id order, a page at a time (`$2` the last id, `$3` the page
 * size), each page turned into definitions as it arrives.
 */
async function pagedById<T>(db: Queryable, text: string, tenantId: string, toDef: (row: R) => T): Promise<T[]> {
  const defs: T[] = [];
  let after = "";
  for (;;) {
    const page = await db.query<R>(text, [tenantId, after, PAGE_ROWS]);
    for (const row of page) defs.push(toDef(row));
    if (page.length < PAGE_ROWS) return defs;
    after = page[page.length - 1]?.id as string;
  }
}

function offerDef(r: R): OfferDef {
  return {
    id: r.id as string,
    categoryId: r.category_id as string,
    name: r.name as string,
    description: r.description as string,
    status: r.status as OfferDef["status"],
    startsAt: (r.starts_at as Date | null) ?? null,
    endsAt: (r.ends_at as Date | null) ?? null,
    priority: Number(r.priority),
    businessValue: Number(r.business_value),
    weight: Number(r.weight),
    mandatory: r.mandatory as boolean,
    fields: r.fields as Record<string, unknown>,
    computed: r.computed as Record<string, string>,
    qualification: r.qualification as QualificationDef,
  };
}

function creativeDef(r: R): CreativeDef {
  return {
    id: r.id as string,
    offerId: r.offer_id as string,
    channelId: r.channel_id as string,
    placementId: (r.placement_id as string | null) ?? null,
    name: r.name as string,
    status: r.status as CreativeDef["status"],
    content: r.content as Record<string, unknown>,
  };
}

/** Reads a tenant's whole catalog definition; offers and creatives come in id order. */
export async function loadCatalog(db: Queryable, tenantId: string): Promise<CatalogDefinition> {
  // Deleted rows stay for the history that names them, but are no longer part of any decision.
  const [tenants, outcomeTypes, categories, offers, channels, placements, creatives, experiments, flows, policies, rules] =
    await Promise.all([
      db.query<R>("select plan, settings from tenants where id = $1", [tenantId]),
      db.query<R>("select id, classification from outcome_types where tenant_id = $1 and deleted_at is null", [tenantId]),
      db.query<R>("select id, name, fields, computed from categories where tenant_id = $1 and deleted_at is null", [tenantId]),
      pagedById(
        db,
        `select id, category_id, name, description, status, starts_at, ends_at, priority, business_value, weight,
                mandatory, fields, computed, qualification
           from offers where tenant_id = $1 and deleted_at is null and id > $2 order by id limit $3`,
        tenantId,
        offerDef,
      ),
      db.query<R>("select id, name, type, implicit_impressions from channels where tenant_id = $1 and deleted_at is null", [tenantId]),
      db.query<R>("select channel_id, id, name from placements where tenant_id = $1 and deleted_at is null", [tenantId]),
      pagedById(
        db,
        `select id, offer_id, channel_id, placement_id, name, status, content from creatives
          where tenant_id = $1 and deleted_at is null and id > $2 order by id limit $3`,
        tenantId,
        creativeDef,
      ),
      db.query<R>("select id, offer_id, channel_id, status, variants from experiments where tenant_id = $1 and deleted_at is null", [
        tenantId,
      ]),
      db.query<R>(
        `select f.id, f.name, f.is_default, v.version, v.definition
           from decision_flows f
           left join lateral (
             select version, definition from decision_flow_versions
              where tenant_id = f.tenant_id and flow_id = f.id and status = 'published'
              order by version desc limit 1
           ) v on true
          where f.tenant_id = $1 and f.deleted_at is null`,
        [tenantId],
      ),
      db.query<R>("select id, definition from contact_policies where tenant_id = $1 and status = 'active' and deleted_at is null", [
        tenantId,
      ]),
      db.query<R>("select id, definition from qualification_rules where tenant_id = $1 and status = 'active' and deleted_at is null", [
        tenantId,
      ]),
    ]);
  return {
    settings: tenantSettings((tenants[0]?.settings ?? {}) as Record<string, unknown>, tenants[0]?.plan as string | undefined),
    outcomeTypes: outcomeTypes.map((r) => ({ id: r.id as string, classification: r.classification as OutcomeTypeDef["classification"] })),
    contactPolicies: policies.map((r) => ({ id: r.id as string, policy: r.definition as ContactPolicyDef })),
    qualificationRules: rules.map((r) => ({ ...(r.definition as Omit<QualificationRuleDef, "id">), id: r.id as string })),
    categories: categories.map(
      (r): CategoryDef => ({
        id: r.id as string,
        name: r.name as string,
        fields: r.fields as Record<string, unknown>,
        computed: r.computed as Record<string, string>,
      }),
    ),
    offers,
    channels: channels.map(
      (r): ChannelDef => ({
        id: r.id as string,
        name: r.name as string,
        type: r.type as string,
        implicitImpressions: r.implicit_impressions as boolean,
      }),
    ),
    placements: placements.map((r): PlacementDef => ({ channelId: r.channel_id as string, id: r.id as string, name: r.name as string })),
    creatives,
    experiments: experiments.map(
      (r): ExperimentDef => ({
        id: r.id as string,
        offerId: r.offer_id as string,
        channelId: r.channel_id as string,
        status: r.status as ExperimentDef["status"],
        variants: r.variants as ExperimentDef["variants"],
      }),
    ),
    flows: flows.map(
      (r): FlowDef => ({
        id: r.id as string,
        name: r.name as string,
        isDefault: r.is_default as boolean,
        version: r.version === null || r.version === undefined ? null : Number(r.version),
        definition: (r.definition as FlowDefinition | null) ?? {},
      }),
    ),
  };
}

/** The tenant's catalog revision (migration 007): it changes with every write to the catalog; 0 before any. */
export async function catalogRevision(db: Queryable, tenantId: string): Promise<number> {
  const rows = await db.query<{ revision: string | number }>("select revision from catalog_revisions where tenant_id = $1", [tenantId]);
  return rows[0] ? Number(rows[0].revision) : 0;
}
