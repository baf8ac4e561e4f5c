// The operator's API, above the tenants: create, read, list and update tenants (status, plan, limits,
// quota) and create a tenant's keys. Only the operator key reaches it (services/auth.ts); every write is
// recorded in the tenant's own audit log with the actor "operator".

import { create } from "@bufbuild/protobuf";
import {
  type CreateTenantApiKeyRequest,
  type CreateTenantApiKeyResponse,
  CreateTenantApiKeyResponseSchema,
  type CreateTenantRequest,
  type CreateTenantResponse,
  CreateTenantResponseSchema,
  type GetTenantRequest,
  type GetTenantResponse,
  GetTenantResponseSchema,
  type ListTenantsRequest,
  type ListTenantsResponse,
  ListTenantsResponseSchema,
  type UpdateTenantRequest,
  type UpdateTenantResponse,
  UpdateTenantResponseSchema,
} from "../../gen/kaireon/v1/operator_pb.ts";
import { TenantSettingsSchema } from "../../gen/kaireon/v1/tenant_settings_pb.ts";
import { AppError, notFound, validationError } from "../errors.ts";
import { appendAudit } from "../store/audit.ts";
import { sqlStateOf } from "../store/db-errors.ts";
import { getTenant } from "../store/tenants.ts";
import { apiKeyMessage, issueApiKey } from "./api-keys.ts";
import { OPERATOR_KEY_ID } from "./auth.ts";
import type { CallContext, ServiceDeps } from "./context.ts";
import { decodeCursor, encodeCursor, pageSize } from "./resources.ts";
import { check, readTenant, settingsDocument, toMessage, writeTenantSettings } from "./tenant-settings.ts";
import { Violations } from "./validate.ts";

/** Tenant ids: what a header, a Redis key and a path segment all carry without escaping. */
export const TENANT_ID = /^[a-z0-9][a-z0-9_-]{0,62}$/;

function requireTenantId(id: string, field = "tenantId"): void {
  const v = new Violations();
  if (!id) v.add(field, `${field} is required`);
  else if (!TENANT_ID.test(id)) v.add(field, `${field} must be 1 to 63 lowercase letters, digits, _ or -, starting with a letter or digit`);
  if (v.list.length > 0) throw validationError(v.list);
}

function actorFor(ctx: CallContext, tenantId: string) {
  return { tenantId, keyId: OPERATOR_KEY_ID, requestId: ctx.requestId };
}

export async function createTenant(deps: ServiceDeps, ctx: CallContext, req: CreateTenantRequest): Promise<CreateTenantResponse> {
  const sent = req.tenant ?? create(TenantSettingsSchema);
  requireTenantId(sent.tenantId);
  const t = create(TenantSettingsSchema, {
    ...sent,
    name: sent.name || sent.tenantId,
    plan: sent.plan || "community",
    status: "active",
  });
  check(t);
  const row = await deps.db
    .transaction(async (tx) => {
      const rows = await tx.query<Record<string, unknown>>(
        `insert into tenants (id, name, plan, settings) values ($1, $2, $3, $4)
         returning id, name, status, plan, settings, version, updated_at`,
        [t.tenantId, t.name, t.plan, settingsDocument(t)],
      );
      await appendAudit(tx, actorFor(ctx, t.tenantId), {
        action: "tenant.create",
        resourceType: "tenant",
        resourceId: t.tenantId,
        details: { name: t.name, plan: t.plan, ...settingsDocument(t) },
      });
      return rows[0] as Record<string, unknown>;
    })
    .catch((err: unknown) => {
      if (sqlStateOf(err) === "23505") throw new AppError("CONFLICT", `Tenant ${t.tenantId} already exists`);
      throw err;
    });
  ctx.log.info("tenant created", { tenantId: t.tenantId, plan: t.plan });
  return create(CreateTenantResponseSchema, { tenant: toMessage(deps, row) });
}

export async function getTenantInfo(deps: ServiceDeps, _ctx: CallContext, req: GetTenantRequest): Promise<GetTenantResponse> {
  requireTenantId(req.tenantId);
  return create(GetTenantResponseSchema, { tenant: toMessage(deps, await readTenant(deps.db, req.tenantId)) });
}

export async function listTenants(deps: ServiceDeps, _ctx: CallContext, req: ListTenantsRequest): Promise<ListTenantsResponse> {
  const limit = pageSize(req.limit);
  const after = decodeCursor(req.cursor, 1)?.[0] ?? null;
  const rows = await deps.db.query<Record<string, unknown>>(
    `select id, name, status, plan, settings, version, updated_at from tenants
      where ($1::text is null or id > $1) order by id limit $2`,
    [after, limit + 1],
  );
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return create(ListTenantsResponseSchema, {
    tenants: page.map((r) => toMessage(deps, r)),
    nextCursor: rows.length > limit && last ? encodeCursor([last.id as string]) : "",
  });
}

export async function updateTenant(deps: ServiceDeps, ctx: CallContext, req: UpdateTenantRequest): Promise<UpdateTenantResponse> {
  const tenantId = req.tenant?.tenantId ?? "";
  requireTenantId(tenantId);
  const tenant = await writeTenantSettings(deps, ctx, tenantId, req.tenant, req.updateMask?.paths ?? [], true);
  ctx.log.info("tenant updated", { tenantId, status: tenant.status, plan: tenant.plan });
  return create(UpdateTenantResponseSchema, { tenant });
}

export async function createTenantApiKey(
  deps: ServiceDeps,
  ctx: CallContext,
  req: CreateTenantApiKeyRequest,
): Promise<CreateTenantApiKeyResponse> {
  requireTenantId(req.tenantId);
  if (!(await getTenant(deps.db, req.tenantId))) throw notFound("Tenant");
  const { key, record } = await issueApiKey(deps, actorFor(ctx, req.tenantId), { name: req.name, scopes: req.scopes, expiresAt: null });
  return create(CreateTenantApiKeyResponseSchema, {
    apiKey: apiKeyMessage(record),
    key,
  });
}
