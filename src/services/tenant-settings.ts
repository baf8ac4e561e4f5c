// The calling tenant's own settings: name, plan, rate limits, decision quota, trace sampling and
// retention. A write names the version it read, is audited, and reaches every instance within a second
// (the catalog reload that carries the settings).

import { clone, create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  type GetTenantSettingsResponse,
  GetTenantSettingsResponseSchema,
  type TenantSettings,
  TenantSettingsSchema,
  type UpdateTenantSettingsRequest,
  type UpdateTenantSettingsResponse,
  UpdateTenantSettingsResponseSchema,
} from "../../gen/kaireon/v1/tenant_settings_pb.ts";
import { notFound, validationError } from "../errors.ts";
import { appendAudit } from "../store/audit.ts";
import { tenantSettings } from "../store/catalog.ts";
import type { Queryable } from "../store/db.ts";
import type { CallContext, ServiceDeps } from "./context.ts";
import { actorOf, canonicalJson, catalogWrite, checkVersion } from "./resources.ts";
import { Violations } from "./validate.ts";

export const PLANS = ["community", "professional", "enterprise"];
export const WRITABLE_SETTINGS = [
  "name",
  "plan",
  "rateLimitPerMinute",
  "respondRateLimitPerMinute",
  "adminRateLimitPerMinute",
  "monthlyDecisionQuota",
  "traceSampleRate",
  "traceRetentionDays",
] as const;
const MAX_RATE_LIMIT = 100_000_000;
const MAX_QUOTA = 1_000_000_000_000n;

type R = Record<string, unknown>;

async function readTenant(db: Queryable, tenantId: string, lock = false): Promise<R> {
  const rows = await db.query<R>(
    `select id, name, status, plan, settings, version, updated_at from tenants where id = $1${lock ? " for update" : ""}`,
    [tenantId],
  );
  // The caller's key was just verified against this tenant, so it exists.
  if (!rows[0]) throw notFound("Tenant");
  return rows[0];
}

function toMessage(deps: ServiceDeps, row: R): TenantSettings {
  const raw = row.settings as Record<string, unknown>;
  const s = tenantSettings(raw, row.plan as string);
  return create(TenantSettingsSchema, {
    tenantId: row.id as string,
    name: row.name as string,
    plan: row.plan as string,
    status: row.status as string,
    rateLimitPerMinute: s.rateLimitPerMinute ?? undefined,
    respondRateLimitPerMinute: s.respondRateLimitPerMinute ?? undefined,
    adminRateLimitPerMinute: s.adminRateLimitPerMinute ?? undefined,
    monthlyDecisionQuota: s.monthlyDecisionQuota === null ? undefined : BigInt(s.monthlyDecisionQuota),
    traceSampleRate: s.traceSampleRate,
    traceRetentionDays: s.traceRetentionDays ?? undefined,
    effectiveRateLimitPerMinute: deps.limits.rateLimit(s, "decide").limit,
    effectiveMonthlyDecisionQuota: BigInt(deps.limits.monthlyQuota(s)),
    effectiveTraceRetentionDays: s.traceRetentionDays ?? deps.config.traceRetentionDays,
    version: Number(row.version),
    updatedAt: timestampFromDate(row.updated_at as Date),
  });
}

export async function getTenantSettings(deps: ServiceDeps, ctx: CallContext): Promise<GetTenantSettingsResponse> {
  return create(GetTenantSettingsResponseSchema, { tenantSettings: toMessage(deps, await readTenant(deps.db, ctx.auth.tenantId)) });
}

function check(s: TenantSettings): void {
  const v = new Violations();
  v.requireString("name", s.name, 200);
  if (!PLANS.includes(s.plan)) v.add("plan", `plan must be one of ${PLANS.join(", ")}`);
  const limit = (field: string, value: number | undefined) => {
    if (value !== undefined && !(Number.isInteger(value) && value >= 1 && value <= MAX_RATE_LIMIT)) {
      v.add(field, `${field} must be a whole number from 1 to ${MAX_RATE_LIMIT}, or left out for the plan's`);
    }
  };
  limit("rateLimitPerMinute", s.rateLimitPerMinute);
  limit("respondRateLimitPerMinute", s.respondRateLimitPerMinute);
  limit("adminRateLimitPerMinute", s.adminRateLimitPerMinute);
  const q = s.monthlyDecisionQuota;
  if (q !== undefined && (q < 0n || q > MAX_QUOTA)) v.add("monthlyDecisionQuota", `monthlyDecisionQuota must be from 0 to ${MAX_QUOTA}`);
  if (!(s.traceSampleRate >= 0 && s.traceSampleRate <= 1)) v.add("traceSampleRate", "traceSampleRate must be a number from 0 to 1");
  const days = s.traceRetentionDays;
  if (days !== undefined && !(Number.isInteger(days) && days >= 1 && days <= 3650)) {
    v.add("traceRetentionDays", "traceRetentionDays must be a whole number from 1 to 3650");
  }
  if (v.list.length > 0) throw validationError(v.list);
}

/** What the settings document stores: null where the plan's or the service's default applies. */
function settingsDocument(s: TenantSettings): Record<string, unknown> {
  return {
    rateLimitPerMinute: s.rateLimitPerMinute ?? null,
    respondRateLimitPerMinute: s.respondRateLimitPerMinute ?? null,
    adminRateLimitPerMinute: s.adminRateLimitPerMinute ?? null,
    monthlyDecisionQuota: s.monthlyDecisionQuota === undefined ? null : Number(s.monthlyDecisionQuota),
    traceSampleRate: s.traceSampleRate,
    traceRetentionDays: s.traceRetentionDays ?? null,
  };
}

export async function updateTenantSettings(
  deps: ServiceDeps,
  ctx: CallContext,
  req: UpdateTenantSettingsRequest,
): Promise<UpdateTenantSettingsResponse> {
  const sent = req.tenantSettings ?? create(TenantSettingsSchema);
  const mask = req.updateMask?.paths ?? [];
  const fields = TenantSettingsSchema.fields;
  const v = new Violations();
  const masked = mask.map((p) => fields.find((f) => f.name === p || f.jsonName === p));
  mask.forEach((p, i) => {
    const f = masked[i];
    if (!f || !(WRITABLE_SETTINGS as readonly string[]).includes(f.localName))
      v.add("updateMask", `updateMask: ${p} is not a writable setting`);
  });
  if (v.list.length > 0) throw validationError(v.list);
  const tenantId = ctx.auth.tenantId;
  const saved = await catalogWrite(deps, tenantId, async (tx) => {
    const row = await readTenant(tx, tenantId, true);
    const prev = toMessage(deps, row);
    checkVersion("Tenant settings", sent.version, prev.version);
    const next = clone(TenantSettingsSchema, prev);
    const take = mask.length > 0 ? masked.map((f) => f?.localName as (typeof WRITABLE_SETTINGS)[number]) : WRITABLE_SETTINGS;
    for (const f of take) (next as Record<string, unknown>)[f] = sent[f];
    check(next);
    const before = { name: prev.name, plan: prev.plan, ...settingsDocument(prev) } as R;
    const after = { name: next.name, plan: next.plan, ...settingsDocument(next) } as R;
    const updated = await tx.query<R>(
      `update tenants set name = $2, plan = $3, settings = settings || $4::jsonb, version = version + 1, updated_at = now()
        where id = $1 returning id, name, status, plan, settings, version, updated_at`,
      [tenantId, next.name, next.plan, settingsDocument(next)],
    );
    const changes = Object.fromEntries(
      Object.keys(after)
        .filter((k) => canonicalJson(before[k]) !== canonicalJson(after[k]))
        .map((k) => [k, { from: before[k] ?? null, to: after[k] ?? null }]),
    );
    await appendAudit(tx, actorOf(ctx), {
      action: "tenant_settings.update",
      resourceType: "tenant",
      resourceId: tenantId,
      details: { version: prev.version + 1, changes },
    });
    return updated[0] as R;
  });
  return create(UpdateTenantSettingsResponseSchema, { tenantSettings: toMessage(deps, saved) });
}
