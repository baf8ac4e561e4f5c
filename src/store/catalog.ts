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
} from "../decisioning/catalog.ts";
import type { ContactPolicyDef } from "../decisioning/policies.ts";
import { DEFAULT_TENANT_SETTINGS } from "../decisioning/catalog.ts";
import type { Queryable } from "./db.ts";
import { insertExperiment } from "./experiments.ts";

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

export async function loadCatalog(db: Queryable, tenantId: string): Promise<CatalogDefinition> {
  // Deleted rows stay for the history that names them, but are no longer part of any decision.
  const [tenants, outcomeTypes, categories, offers, channels, placements, creatives, experiments, flows, policies, rules] =
    await Promise.all([
      db.query<R>("select plan, settings from tenants where id = $1", [tenantId]),
      db.query<R>("select id, classification from outcome_types where tenant_id = $1 and deleted_at is null", [tenantId]),
      db.query<R>("select id, name, fields, computed from categories where tenant_id = $1 and deleted_at is null", [tenantId]),
      db.query<R>(
        `select id, category_id, name, description, status, starts_at, ends_at, priority, business_value, weight,
                mandatory, fields, computed, qualification
           from offers where tenant_id = $1 and deleted_at is null`,
        [tenantId],
      ),
      db.query<R>("select id, name, type, implicit_impressions from channels where tenant_id = $1 and deleted_at is null", [tenantId]),
      db.query<R>("select channel_id, id, name from placements where tenant_id = $1 and deleted_at is null", [tenantId]),
      db.query<R>(
        `select id, offer_id, channel_id, placement_id, name, status, content from creatives
          where tenant_id = $1 and deleted_at is null`,
        [tenantId],
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
    offers: offers.map(
      (r): OfferDef => ({
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
      }),
    ),
    channels: channels.map(
      (r): ChannelDef => ({
        id: r.id as string,
        name: r.name as string,
        type: r.type as string,
        implicitImpressions: r.implicit_impressions as boolean,
      }),
    ),
    placements: placements.map((r): PlacementDef => ({ channelId: r.channel_id as string, id: r.id as string, name: r.name as string })),
    creatives: creatives.map(
      (r): CreativeDef => ({
        id: r.id as string,
        offerId: r.offer_id as string,
        channelId: r.channel_id as string,
        placementId: (r.placement_id as string | null) ?? null,
        name: r.name as string,
        status: r.status as CreativeDef["status"],
        content: r.content as Record<string, unknown>,
      }),
    ),
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

export interface FlowVersionInput {
  id: string;
  name: string;
  isDefault: boolean;
  definition: FlowDefinition;
}

/** Writes catalog definitions for a tenant in one go (seeding, imports); rows must not exist yet. */
export async function insertCatalog(
  tx: Queryable,
  tenantId: string,
  def: Omit<CatalogDefinition, "flows"> & { flows: FlowVersionInput[] },
): Promise<void> {
  for (const c of def.categories) {
    await tx.query("insert into categories (tenant_id, id, name, fields, computed) values ($1, $2, $3, $4, $5)", [
      tenantId,
      c.id,
      c.name,
      c.fields,
      c.computed,
    ]);
  }
  for (const o of def.offers) {
    await tx.query(
      `insert into offers (tenant_id, id, category_id, name, description, status, starts_at, ends_at, priority, business_value,
                           weight, mandatory, fields, computed, qualification)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
      [
        tenantId,
        o.id,
        o.categoryId,
        o.name,
        o.description,
        o.status,
        o.startsAt,
        o.endsAt,
        o.priority,
        o.businessValue,
        o.weight,
        o.mandatory,
        o.fields,
        o.computed,
        o.qualification,
      ],
    );
  }
  for (const c of def.channels) {
    await tx.query("insert into channels (tenant_id, id, name, type, implicit_impressions) values ($1, $2, $3, $4, $5)", [
      tenantId,
      c.id,
      c.name,
      c.type,
      c.implicitImpressions,
    ]);
  }
  for (const p of def.placements) {
    await tx.query("insert into placements (tenant_id, channel_id, id, name) values ($1, $2, $3, $4)", [
      tenantId,
      p.channelId,
      p.id,
      p.name,
    ]);
  }
  for (const c of def.creatives) {
    await tx.query(
      "insert into creatives (tenant_id, id, offer_id, channel_id, placement_id, name, status, content) values ($1, $2, $3, $4, $5, $6, $7, $8)",
      [tenantId, c.id, c.offerId, c.channelId, c.placementId, c.name, c.status, c.content],
    );
  }
  for (const e of def.experiments) {
    await insertExperiment(tx, tenantId, { ...e, goal: "conversion" });
  }
  for (const f of def.flows) {
    await tx.query("insert into decision_flows (tenant_id, id, name, is_default) values ($1, $2, $3, $4)", [
      tenantId,
      f.id,
      f.name,
      f.isDefault,
    ]);
    await tx.query(
      `insert into decision_flow_versions (tenant_id, flow_id, version, status, definition, published_at)
       values ($1, $2, 1, 'published', $3, now())`,
      [tenantId, f.id, f.definition],
    );
  }
}
