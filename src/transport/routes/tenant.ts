// The tenant's own administration: its settings, its API keys and its audit log.

import { create } from "@bufbuild/protobuf";
import {
  ApiKeyService,
  ApiKeySchema,
  CreateApiKeyRequestSchema,
  CreateApiKeyResponseSchema,
  GetApiKeyRequestSchema,
  ListApiKeysRequestSchema,
  ListApiKeysResponseSchema,
  RevokeApiKeyRequestSchema,
} from "../../../gen/kaireon/v1/api_key_pb.ts";
import { AuditLogService, ListAuditEntriesRequestSchema, ListAuditEntriesResponseSchema } from "../../../gen/kaireon/v1/audit_log_pb.ts";
import {
  TenantSettingsSchema,
  TenantSettingsService,
  UpdateTenantSettingsRequestSchema,
} from "../../../gen/kaireon/v1/tenant_settings_pb.ts";
import { validationError } from "../../errors.ts";
import { createApiKey, getApiKeyInfo, listApiKeys, revokeApiKey } from "../../services/api-keys.ts";
import { listAuditEntries } from "../../services/audit-log.ts";
import type { ServiceDeps } from "../../services/context.ts";
import { getTenantSettings, updateTenantSettings, WRITABLE_SETTINGS } from "../../services/tenant-settings.ts";
import { decodeJsonMessage, parseJsonObject } from "../json.ts";
import { fromQuery, json, listQuery, type RestRoute } from "./binding.ts";

/** Settings, API keys and the audit log of the calling tenant. */
export function tenantRoutes(deps: ServiceDeps): RestRoute[] {
  const v1 = "/api/v1";
  return [
    {
      method: "GET",
      path: `${v1}/settings`,
      operationId: "getTenantSettings",
      rpc: TenantSettingsService.method.getTenantSettings,
      summary: "The tenant's plan, limits and trace settings",
      tag: "Tenant",
      response: TenantSettingsSchema,
      run: async (ctx) => json(TenantSettingsSchema, (await getTenantSettings(deps, ctx)).tenantSettings),
    },
    ...(["PUT", "PATCH"] as const).map(
      (method): RestRoute => ({
        method,
        path: `${v1}/settings`,
        operationId: method === "PUT" ? "replaceTenantSettings" : "updateTenantSettings",
        rpc: TenantSettingsService.method.updateTenantSettings,
        summary:
          method === "PUT"
            ? "Replace the tenant's settings (send the version you read)"
            : "Change the settings the body names (send the version you read)",
        tag: "Tenant",
        body: TenantSettingsSchema,
        response: TenantSettingsSchema,
        run: async (ctx, { body }) => {
          const sent = decodeJsonMessage(TenantSettingsSchema, body);
          const paths =
            method === "PATCH"
              ? Object.keys(parseJsonObject(body)).filter((k) => (WRITABLE_SETTINGS as readonly string[]).includes(k))
              : [];
          if (method === "PATCH" && paths.length === 0)
            throw validationError([{ field: "", message: "the body names no setting to change" }]);
          const res = await updateTenantSettings(
            deps,
            ctx,
            create(UpdateTenantSettingsRequestSchema, { tenantSettings: sent, updateMask: { paths } }),
          );
          return json(TenantSettingsSchema, res.tenantSettings);
        },
      }),
    ),
    {
      method: "POST",
      path: `${v1}/api-keys`,
      operationId: "createApiKey",
      rpc: ApiKeyService.method.createApiKey,
      summary: "Create an API key; the key is in this answer only",
      tag: "Tenant",
      body: CreateApiKeyRequestSchema,
      response: CreateApiKeyResponseSchema,
      run: async (ctx, { body }) =>
        json(CreateApiKeyResponseSchema, await createApiKey(deps, ctx, decodeJsonMessage(CreateApiKeyRequestSchema, body))),
    },
    {
      method: "GET",
      path: `${v1}/api-keys`,
      operationId: "listApiKeys",
      rpc: ApiKeyService.method.listApiKeys,
      summary: "List API keys (prefix, name, scopes, last use, expiry), revoked ones included",
      tag: "Tenant",
      query: listQuery(ListApiKeysRequestSchema, []),
      response: ListApiKeysResponseSchema,
      run: async (ctx, { query }) =>
        json(
          ListApiKeysResponseSchema,
          await listApiKeys(deps, ctx, create(ListApiKeysRequestSchema, fromQuery(ListApiKeysRequestSchema, query, {}))),
        ),
    },
    {
      method: "GET",
      path: `${v1}/api-keys/:apiKeyId`,
      operationId: "getApiKey",
      rpc: ApiKeyService.method.getApiKey,
      summary: "Get an API key's details",
      tag: "Tenant",
      response: ApiKeySchema,
      run: async (ctx, { params }) =>
        json(ApiKeySchema, (await getApiKeyInfo(deps, ctx, create(GetApiKeyRequestSchema, { apiKeyId: params.apiKeyId ?? "" }))).apiKey),
    },
    {
      method: "DELETE",
      path: `${v1}/api-keys/:apiKeyId`,
      operationId: "revokeApiKey",
      rpc: ApiKeyService.method.revokeApiKey,
      summary: "Revoke an API key: refused everywhere within 15 seconds",
      tag: "Tenant",
      response: ApiKeySchema,
      run: async (ctx, { params }) =>
        json(ApiKeySchema, (await revokeApiKey(deps, ctx, create(RevokeApiKeyRequestSchema, { apiKeyId: params.apiKeyId ?? "" }))).apiKey),
    },
    {
      method: "GET",
      path: `${v1}/audit-log`,
      operationId: "listAuditEntries",
      rpc: AuditLogService.method.listAuditEntries,
      summary: "The tenant's audit log, newest first: who changed what, and when",
      tag: "Tenant",
      query: listQuery(ListAuditEntriesRequestSchema, []),
      response: ListAuditEntriesResponseSchema,
      run: async (ctx, { query }) =>
        json(
          ListAuditEntriesResponseSchema,
          await listAuditEntries(deps, ctx, create(ListAuditEntriesRequestSchema, fromQuery(ListAuditEntriesRequestSchema, query, {}))),
        ),
    },
  ];
}
