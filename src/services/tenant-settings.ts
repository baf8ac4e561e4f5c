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
import { AppError, notFound, validationError } from "../errors.ts";
import { appendAudit } from "../store/audit.ts";
import { tenantSettings } from "../store/catalog.ts";
import type { Queryable } from "../store/db.ts";
import type { CallContext, ServiceDeps } from "./context.ts";
import { actorOf, canonicalJson, catalogWrite, checkVersion } from "./resources.ts";
import { Violations } from "./validate.ts";
import { MAX_HOLDOUT_PERCENT } from "../decisioning/flow-validation.ts";

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
  "holdoutPercent",
] as const;
/** What the operator sets and a tenant's own keys only read. */
export const OPERATOR_SETTINGS: readonly string[] = [
  "plan",
  "rateLimitPerMinute",
  "respondRateLimitPerMinute",
  "adminRateLimitPerMinute",
  "monthlyDecisionQuota",
];
export const TENANT_STATUSES = ["active", "suspended"];
const MAX_RATE_LIMIT = 100_000_000;
const MAX_QUOTA = 1_000_000_000_000n;

type R = Record<string, unknown>;

export async function readTenant(db: Queryable, tenantId: string, lock = false): Promise<R> {
  const rows = await db.query<R>(
    `select id, name, status, plan, settings, version, updated_at from tenants where id = $1${lock ? " for update" : ""}`,
    [tenantId],
  );
  // A tenant key was just verified against this tenant; the operator may name one that does not exist.
  if (!rows[0]) throw notFound("Tenant");
  return rows[0];
}

export function toMessage(deps: ServiceDeps, row: R): TenantSettings {
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
    holdoutPercent: s.holdoutPercent,
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

export function check(s: TenantSettings): void {
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
  if (!(s.holdoutPercent >= 0 && s.holdoutPercent <= MAX_HOLDOUT_PERCENT)) {
    v.add("holdoutPercent", `holdoutPercent must be a number from 0 to ${MAX_HOLDOUT_PERCENT}`);
  }
  const days = s.traceRetentionDays;
  if (days !== undefined && !(Number.isInteger(days) && days >= 1 && days <= 3650)) {
    v.add("traceRetentionDays", "traceRetentionDays must be a whole number from 1 to 3650");
  }
  if (v.list.length > 0) throw validationError(v.list);
}

/** What the settings document stores: null where the plan's or the service's default applies. */
export function settingsDocument(s: TenantSettings): Record<string, unknown> {
  return {
    rateLimitPerMinute: s.rateLimitPerMinute ?? null,
    respondRateLimitPerMinute: s.respondRateLimitPerMinute ?? null,
    adminRateLimitPerMinute: s.adminRateLimitPerMinute ?? null,
    monthlyDecisionQuota: s.monthlyDecisionQuota === undefined ? null : Number(s.monthlyDecisionQuota),
    traceSampleRate: s.traceSampleRate,
    traceRetentionDays: s.traceRetentionDays ?? null,
    holdoutPercent: s.holdoutPercent,
  };
}

export async function updateTenantSettings(
  deps: ServiceDeps,
  ctx: CallContext,
  req: UpdateTenantSettingsRequest,
): Promise<UpdateTenantSettingsResponse> {
  const saved = await writeTenantSettings(deps, ctx, ctx.auth.tenantId, req.tenantSettings, req.updateMask?.paths ?? [], false);
  return create(UpdateTenantSettingsResponseSchema, { tenantSettings: saved });
}

/**
 * Writes a tenant's settings: every writable one, or those the mask names. Plan, limits and quota change
 * only for the operator; a tenant's key that would change them is refused (403) with each field named.
 * The status (active or suspended) is writable only where the operator updates a tenant.
 */
export async function writeTenantSettings(
  deps: ServiceDeps,
  ctx: CallContext,
  tenantId: string,
  sentSettings: TenantSettings | undefined,
  mask: string[],
  statusWritable: boolean,
): Promise<TenantSettings> {
  const sent = sentSettings ?? create(TenantSettingsSchema);
  const writable: readonly string[] = statusWritable ? [...WRITABLE_SETTINGS, "status"] : WRITABLE_SETTINGS;
  const fields = TenantSettingsSchema.fields;
  const v = new Violations();
  const masked = mask.map((p) => fields.find((f) => f.name === p || f.jsonName === p));
  mask.forEach((p, i) => {
    const f = masked[i];
    if (!f || !writable.includes(f.localName)) v.add("updateMask", `updateMask: ${p} is not a writable setting`);
  });
  if (v.list.length > 0) throw validationError(v.list);
  const actorCtx = { ...ctx, auth: { ...ctx.auth, tenantId } };
  const saved = await catalogWrite(deps, tenantId, async (tx) => {
    const row = await readTenant(tx, tenantId, true);
    const prev = toMessage(deps, row);
    checkVersion("Tenant settings", sent.version, prev.version);
    const next = clone(TenantSettingsSchema, prev);
    const operatorOnly = (f: string) => !ctx.auth.operator && OPERATOR_SETTINGS.includes(f);
    const sentValue = (f: string) => (sent as unknown as R)[f];
    const differs = (f: string) => canonicalJson((prev as unknown as R)[f] ?? null) !== canonicalJson(sentValue(f) ?? null);
    // A field the mask names is a change when its value differs; a replace leaves out what it does not
    // send (plan "", limits unset), so a tenant's key may send back the plan and limits it read.
    const take = mask.length > 0 ? masked.map((f) => f?.localName as string) : writable;
    const lifted = take
      .filter((f) => operatorOnly(f) && (mask.length > 0 || (sentValue(f) !== undefined && sentValue(f) !== "")) && differs(f))
      .map((f) => fields.find((d) => d.localName === f)?.jsonName ?? f);
    if (lifted.length > 0) {
      const them = lifted.length === 1 ? "it" : "them";
      throw new AppError(
        "FORBIDDEN",
        `${lifted.join(", ")} ${lifted.length === 1 ? "is" : "are"} set by the operator; a tenant's key can only read ${them}`,
        lifted.map((field) => ({ field, message: `${field} is set by the operator` })),
      );
    }
    for (const f of take) if (!operatorOnly(f)) (next as unknown as R)[f] = sentValue(f);
    check(next);
    if (statusWritable && !TENANT_STATUSES.includes(next.status)) {
      throw validationError([{ field: "status", message: `status must be one of ${TENANT_STATUSES.join(", ")}` }]);
    }
    const before = { name: prev.name, plan: prev.plan, status: prev.status, ...settingsDocument(prev) } as R;
    const after = { name: next.name, plan: next.plan, status: next.status, ...settingsDocument(next) } as R;
    const updated = await tx.query<R>(
      `update tenants set name = $2, plan = $3, settings = settings || $4::jsonb, status = $5, version = version + 1, updated_at = now()
        where id = $1 returning id, name, status, plan, settings, version, updated_at`,
      [tenantId, next.name, next.plan, settingsDocument(next), next.status],
    );
    const changes = Object.fromEntries(
      Object.keys(after)
        .filter((k) => canonicalJson(before[k]) !== canonicalJson(after[k]))
        .map((k) => [k, { from: before[k] ?? null, to: after[k] ?? null }]),
    );
    await appendAudit(tx, actorOf(actorCtx), {
      action: "tenant_settings.update",
      resourceType: "tenant",
      resourceId: tenantId,
      details: { version: prev.version + 1, changes },
    });
    return updated[0] as R;
  });
  return toMessage(deps, saved);
}
