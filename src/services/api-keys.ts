// The calling tenant's API keys: create (the key is in the answer and nowhere else: only its HMAC is
// stored), get, list and revoke. A revoked key stops working on this instance at once and on every other
// within the key cache's TTL (at most 15 seconds).

import { create } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  type ApiKey,
  ApiKeySchema,
  type CreateApiKeyRequest,
  type CreateApiKeyResponse,
  CreateApiKeyResponseSchema,
  type GetApiKeyRequest,
  type GetApiKeyResponse,
  GetApiKeyResponseSchema,
  type ListApiKeysRequest,
  type ListApiKeysResponse,
  ListApiKeysResponseSchema,
  type RevokeApiKeyRequest,
  type RevokeApiKeyResponse,
  RevokeApiKeyResponseSchema,
} from "../../gen/kaireon/v1/api_key_pb.ts";
import { notFound, validationError } from "../errors.ts";
import { newApiKey, newApiKeyId } from "../ids.ts";
import { appendAudit } from "../store/audit.ts";
import { type ApiKeyRecord, getApiKey, insertApiKey, listApiKeysPage, revokeApiKeyById, type Scope } from "../store/tenants.ts";
import { hashApiKey } from "./auth.ts";
import type { CallContext, ServiceDeps } from "./context.ts";
import { actorOf, decodeCursor, encodeCursor, pageSize } from "./resources.ts";
import { MAX_ID_LENGTH, Violations } from "./validate.ts";

export const SCOPES: Scope[] = ["decide", "admin"];
const MAX_KEY_LIFETIME_MS = 10 * 365 * 86_400_000;
/** Characters of a key kept to tell it apart: "krn_" and 8 of its random ones. */
export const KEY_PREFIX_LENGTH = 12;

const ts = (d: Date | null) => (d ? timestampFromDate(d) : undefined);

export function apiKeyMessage(k: ApiKeyRecord): ApiKey {
  return create(ApiKeySchema, {
    apiKeyId: k.id,
    name: k.name,
    scopes: k.scopes,
    prefix: k.prefix,
    createdAt: ts(k.createdAt),
    expiresAt: ts(k.expiresAt),
    lastUsedAt: ts(k.lastUsedAt),
    revokedAt: ts(k.revokedAt),
  });
}

/** Creates a key for a tenant; shared with the operator command line. */
export async function issueApiKey(
  deps: Pick<ServiceDeps, "db" | "config" | "clock">,
  actor: { tenantId: string; keyId: string; requestId: string },
  req: { name: string; scopes: string[]; expiresAt: Date | null },
): Promise<{ key: string; record: ApiKeyRecord }> {
  const v = new Violations();
  v.maxLength("name", req.name, 200);
  if (req.scopes.length === 0) v.add("scopes", `scopes must name at least one of ${SCOPES.join(", ")}`);
  req.scopes.forEach((s, i) => {
    if (!SCOPES.includes(s as Scope)) v.add(`scopes[${i}]`, `scopes[${i}] must be one of ${SCOPES.join(", ")}`);
  });
  const now = deps.clock.now().getTime();
  if (req.expiresAt && (req.expiresAt.getTime() <= now || req.expiresAt.getTime() > now + MAX_KEY_LIFETIME_MS)) {
    v.add("expiresAt", "expiresAt must be in the future, at most 10 years ahead");
  }
  if (v.list.length > 0) throw validationError(v.list);
  const key = newApiKey();
  const id = newApiKeyId();
  const scopes = [...new Set(req.scopes)] as Scope[];
  const record = await deps.db.transaction(async (tx) => {
    await insertApiKey(tx, {
      id,
      tenantId: actor.tenantId,
      hash: hashApiKey(key, deps.config.apiKeyPepper),
      prefix: key.slice(0, KEY_PREFIX_LENGTH),
      name: req.name,
      scopes,
      expiresAt: req.expiresAt,
    });
    await appendAudit(tx, actor, {
      action: "api_key.create",
      resourceType: "api_key",
      resourceId: id,
      details: { name: req.name, scopes, expiresAt: req.expiresAt?.toISOString() ?? null },
    });
    return (await getApiKey(tx, actor.tenantId, id)) as ApiKeyRecord;
  });
  return { key, record };
}

export async function createApiKey(deps: ServiceDeps, ctx: CallContext, req: CreateApiKeyRequest): Promise<CreateApiKeyResponse> {
  const { key, record } = await issueApiKey(deps, actorOf(ctx), {
    name: req.name,
    scopes: req.scopes,
    expiresAt: req.expiresAt ? timestampDate(req.expiresAt) : null,
  });
  return create(CreateApiKeyResponseSchema, { apiKey: apiKeyMessage(record), key });
}

function requireId(id: string): void {
  const v = new Violations();
  v.requireString("apiKeyId", id, MAX_ID_LENGTH);
  if (v.list.length > 0) throw validationError(v.list);
}

export async function getApiKeyInfo(deps: ServiceDeps, ctx: CallContext, req: GetApiKeyRequest): Promise<GetApiKeyResponse> {
  requireId(req.apiKeyId);
  const record = await getApiKey(deps.db, ctx.auth.tenantId, req.apiKeyId);
  if (!record) throw notFound("API key");
  return create(GetApiKeyResponseSchema, { apiKey: apiKeyMessage(record) });
}

export async function listApiKeys(deps: ServiceDeps, ctx: CallContext, req: ListApiKeysRequest): Promise<ListApiKeysResponse> {
  const limit = pageSize(req.limit);
  const after = decodeCursor(req.cursor, 1)?.[0] ?? null;
  const { keys, more } = await listApiKeysPage(deps.db, ctx.auth.tenantId, after, limit);
  const last = keys[keys.length - 1];
  return create(ListApiKeysResponseSchema, { apiKeys: keys.map(apiKeyMessage), nextCursor: more && last ? encodeCursor([last.id]) : "" });
}

export async function revokeApiKey(deps: ServiceDeps, ctx: CallContext, req: RevokeApiKeyRequest): Promise<RevokeApiKeyResponse> {
  requireId(req.apiKeyId);
  const revoked = await deps.db.transaction(async (tx) => {
    const result = await revokeApiKeyById(tx, ctx.auth.tenantId, req.apiKeyId);
    if (!result) throw notFound("API key");
    await appendAudit(tx, actorOf(ctx), { action: "api_key.revoke", resourceType: "api_key", resourceId: req.apiKeyId, details: {} });
    return result;
  });
  deps.forgetApiKey(revoked.hash);
  return create(RevokeApiKeyResponseSchema, { apiKey: apiKeyMessage(revoked.key) });
}
