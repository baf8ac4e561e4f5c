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
import { MAX_HOLDOUT_PERCENT } from "../decisioning/flow-validation.ts";
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
    adminRateLimitPerMinute: count(raw.adminRateLimitPerMinute, 1),
    monthlyDecisionQuota: count(raw.monthlyDecisionQuota, 0),
    holdoutPercent:
      typeof raw.holdoutPercent === "number" && raw.holdoutPercent >= 0 && raw.holdoutPercent <= MAX_HOLDOUT_PERCENT
        ? raw.holdoutPercent
        : 0,
  };
}

const OFFER_COLUMNS = `id, category_id, name, description, status, starts_at, ends_at, priority, business_value, weight,
  mandatory, fields, computed, qualification`;
const CREATIVE_COLUMNS = "id, offer_id, channel_id, placement_id, name, status, content";

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
        `select ${OFFER_COLUMNS} from offers where tenant_id = $1 and deleted_at is null and id collate "C" > $2 order by id collate "C" limit $3`,
        tenantId,
        offerDef,
      ),
      db.query<R>("select id, name, type, implicit_impressions from channels where tenant_id = $1 and deleted_at is null", [tenantId]),
      db.query<R>("select channel_id, id, name from placements where tenant_id = $1 and deleted_at is null", [tenantId]),
      pagedById(
        db,
        `select ${CREATIVE_COLUMNS} from creatives where tenant_id = $1 and deleted_at is null and id collate "C" > $2 order by id collate "C" limit $3`,
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

/** A row of a catalog table written after some revision: its table and id (empty where the key is not one id). */
export interface CatalogChange {
  kind: string;
  id: string;
}

/**
 * What was written to the tenant's catalog after revision `from` up to `to`, or null when that cannot be
 * told in full: more than `max` rows, or a revision no longer in the log (it is kept for an hour).
 */
export async function catalogChanges(
  db: Queryable,
  tenantId: string,
  from: number,
  to: number,
  max: number,
): Promise<CatalogChange[] | null> {
  if (to <= from) return [];
  const rows = await db.query<{ revision: string | number; kind: string; id: string }>(
    "select revision, kind, id from catalog_changes where tenant_id = $1 and revision > $2 and revision <= $3 limit $4",
    [tenantId, from, to, max + 1],
  );
  if (rows.length > max) return null;
  const revisions = new Set(rows.map((r) => Number(r.revision)));
  return revisions.size === to - from ? rows.map((r) => ({ kind: r.kind, id: r.id })) : null;
}

/** How long the change log keeps a row (the migration's comment says so too). */
export const CATALOG_CHANGE_RETENTION_MS = 3_600_000;

/** Drops change-log rows older than `ageMs`: instances further behind than that reload whole catalogs. */
export async function pruneCatalogChanges(db: Queryable, now: Date, ageMs: number): Promise<void> {
  await db.query("delete from catalog_changes where changed_at < $1", [new Date(now.getTime() - ageMs)]);
}

/** Index of the first item whose id is not below `id`, in items sorted by id. */
function lowerBound(items: readonly { id: string }[], id: string): number {
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((items[mid] as { id: string }).id < id) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** A copy of `items` (sorted by id) with each of `ids` replaced by its fresh definition, added, or removed. */
function patched<T extends { id: string }>(items: readonly T[], ids: readonly string[], fresh: Map<string, T>): T[] {
  const out = items.slice();
  for (const id of new Set(ids)) {
    const at = lowerBound(out, id);
    const present = out[at]?.id === id;
    const def = fresh.get(id);
    if (def && present) out[at] = def;
    else if (def) out.splice(at, 0, def);
    else if (present) out.splice(at, 1);
  }
  return out;
}

/**
 * The previous definition with the named offers and creatives read again: changed, added, or gone
 * (deleted). Everything else is the previous definition's own objects, which the compile then reuses.
 */
export async function reloadOffersAndCreatives(
  db: Queryable,
  tenantId: string,
  previous: CatalogDefinition,
  offerIds: string[],
  creativeIds: string[],
): Promise<CatalogDefinition> {
  const [offers, creatives] = await Promise.all([
    offerIds.length === 0
      ? []
      : db.query<R>(`select ${OFFER_COLUMNS} from offers where tenant_id = $1 and deleted_at is null and id = any($2)`, [
          tenantId,
          offerIds,
        ]),
    creativeIds.length === 0
      ? []
      : db.query<R>(`select ${CREATIVE_COLUMNS} from creatives where tenant_id = $1 and deleted_at is null and id = any($2)`, [
          tenantId,
          creativeIds,
        ]),
  ]);
  return {
    ...previous,
    offers: patched(previous.offers, offerIds, new Map(offers.map((r) => [r.id as string, offerDef(r)]))),
    creatives: patched(previous.creatives, creativeIds, new Map(creatives.map((r) => [r.id as string, creativeDef(r)]))),
  };
}

/** Takes the tenant's catalog revision lock: the first thing a catalog write does (see migration 007). */
export async function lockCatalogRevision(tx: Queryable, tenantId: string): Promise<void> {
  await tx.query("select lock_catalog_revision($1)", [tenantId]);
}

/** The tenant's catalog revision (migration 007): it changes with every write to the catalog; 0 before any. */
export async function catalogRevision(db: Queryable, tenantId: string): Promise<number> {
  const rows = await db.query<{ revision: string | number }>("select revision from catalog_revisions where tenant_id = $1", [tenantId]);
  return rows[0] ? Number(rows[0].revision) : 0;
}
