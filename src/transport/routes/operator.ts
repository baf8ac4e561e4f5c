// The operator's routes: tenants, above the tenants' own API.

import { create } from "@bufbuild/protobuf";
import { TenantSettingsSchema } from "../../../gen/kaireon/v1/tenant_settings_pb.ts";
import {
  CreateTenantApiKeyRequestSchema,
  CreateTenantApiKeyResponseSchema,
  CreateTenantRequestSchema,
  GetTenantRequestSchema,
  ListTenantsRequestSchema,
  ListTenantsResponseSchema,
  OperatorService,
  UpdateTenantRequestSchema,
} from "../../../gen/kaireon/v1/operator_pb.ts";
import { validationError } from "../../errors.ts";
import type { ServiceDeps } from "../../services/context.ts";
import { WRITABLE_SETTINGS } from "../../services/tenant-settings.ts";
import { createTenant, createTenantApiKey, getTenantInfo, listTenants, updateTenant } from "../../services/operator.ts";
import { decodeJsonMessage, parseJsonObject } from "../json.ts";
import { fromQuery, json, listQuery, type RestRoute } from "./binding.ts";

/** The operator's routes: tenants above the tenants' own API, for the operator key only. */
export function operatorRoutes(deps: ServiceDeps): RestRoute[] {
  const v1 = "/api/v1";
  const tenant = (m: unknown) => json(TenantSettingsSchema, m as never);
  return [
    {
      method: "POST",
      path: `${v1}/tenants`,
      operationId: "createTenant",
      rpc: OperatorService.method.createTenant,
      summary: "Create a tenant with its plan, limits and quota (operator key)",
      tag: "Operator",
      body: TenantSettingsSchema,
      response: TenantSettingsSchema,
      run: async (ctx, { body }) =>
        tenant(
          (await createTenant(deps, ctx, create(CreateTenantRequestSchema, { tenant: decodeJsonMessage(TenantSettingsSchema, body) })))
            .tenant,
        ),
    },
    {
      method: "GET",
      path: `${v1}/tenants`,
      operationId: "listTenants",
      rpc: OperatorService.method.listTenants,
      summary: "List tenants with their status, plan, limits and quota (operator key)",
      tag: "Operator",
      query: listQuery(ListTenantsRequestSchema, []),
      response: ListTenantsResponseSchema,
      run: async (ctx, { query }) =>
        json(
          ListTenantsResponseSchema,
          await listTenants(deps, ctx, create(ListTenantsRequestSchema, fromQuery(ListTenantsRequestSchema, query, {}))),
        ),
    },
    {
      method: "GET",
      path: `${v1}/tenants/:tenantId`,
      operationId: "getTenant",
      rpc: OperatorService.method.getTenant,
      summary: "A tenant's status, plan, limits and quota (operator key)",
      tag: "Operator",
      response: TenantSettingsSchema,
      run: async (ctx, { params }) =>
        tenant((await getTenantInfo(deps, ctx, create(GetTenantRequestSchema, { tenantId: params.tenantId ?? "" }))).tenant),
    },
    {
      method: "PATCH",
      path: `${v1}/tenants/:tenantId`,
      operationId: "updateTenant",
      rpc: OperatorService.method.updateTenant,
      summary: "Suspend or activate a tenant, or change its plan, limits and quota: the fields the body names (operator key)",
      tag: "Operator",
      body: TenantSettingsSchema,
      response: TenantSettingsSchema,
      run: async (ctx, { body, params }) => {
        const sent = decodeJsonMessage(TenantSettingsSchema, body);
        const tenantId = params.tenantId ?? "";
        if (sent.tenantId && sent.tenantId !== tenantId) {
          throw validationError([
            { field: "tenantId", message: `tenantId in the body (${sent.tenantId}) differs from the path (${tenantId})` },
          ]);
        }
        sent.tenantId = tenantId;
        const writable: readonly string[] = [...WRITABLE_SETTINGS, "status"];
        const paths = Object.keys(parseJsonObject(body)).filter((k) => writable.includes(k));
        if (paths.length === 0) throw validationError([{ field: "", message: "the body names nothing to change" }]);
        const res = await updateTenant(deps, ctx, create(UpdateTenantRequestSchema, { tenant: sent, updateMask: { paths } }));
        return tenant(res.tenant);
      },
    },
    {
      method: "POST",
      path: `${v1}/tenants/:tenantId/api-keys`,
      operationId: "createTenantApiKey",
      rpc: OperatorService.method.createTenantApiKey,
      summary: "Create a key of the tenant, such as its first admin key; the key is in this answer only (operator key)",
      tag: "Operator",
      body: CreateTenantApiKeyRequestSchema,
      response: CreateTenantApiKeyResponseSchema,
      run: async (ctx, { body, params }) => {
        const sent = decodeJsonMessage(CreateTenantApiKeyRequestSchema, body);
        const tenantId = params.tenantId ?? "";
        if (sent.tenantId && sent.tenantId !== tenantId) {
          throw validationError([
            { field: "tenantId", message: `tenantId in the body (${sent.tenantId}) differs from the path (${tenantId})` },
          ]);
        }
        return json(CreateTenantApiKeyResponseSchema, await createTenantApiKey(deps, ctx, { ...sent, tenantId }));
      },
    },
  ];
}
