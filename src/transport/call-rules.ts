// The rules of every call, in one table: which key scope a method needs, which rate-limit window it
// spends and how large its request may be. REST, Connect, gRPC-Web and native gRPC all admit a call
// through `admit` below with the rule of the RPC method it serves, so no transport can disagree with
// another on who may call what.

import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { Health } from "../../gen/grpc/health/v1/health_pb.ts";
import { ServerReflection as ReflectionV1 } from "../../gen/grpc/reflection/v1/reflection_pb.ts";
import { ServerReflection as ReflectionV1alpha } from "../../gen/grpc/reflection/v1alpha/reflection_pb.ts";
import { ApiKeyService } from "../../gen/kaireon/v1/api_key_pb.ts";
import { AuditLogService } from "../../gen/kaireon/v1/audit_log_pb.ts";
import { WebhookService } from "../../gen/kaireon/v1/webhook_pb.ts";
import { CatalogService } from "../../gen/kaireon/v1/catalog_pb.ts";
import { CategoryService } from "../../gen/kaireon/v1/category_pb.ts";
import { ChannelService } from "../../gen/kaireon/v1/channel_pb.ts";
import { ContactPolicyService } from "../../gen/kaireon/v1/contact_policy_pb.ts";
import { CreativeService } from "../../gen/kaireon/v1/creative_pb.ts";
import { CustomerService } from "../../gen/kaireon/v1/customer_pb.ts";
import { DecisionFlowService } from "../../gen/kaireon/v1/decision_flow_pb.ts";
import { DecisionTraceService } from "../../gen/kaireon/v1/decision_trace_pb.ts";
import { ExperimentService } from "../../gen/kaireon/v1/experiment_pb.ts";
import { OfferService } from "../../gen/kaireon/v1/offer_pb.ts";
import { OperatorService } from "../../gen/kaireon/v1/operator_pb.ts";
import { OutcomeTypeService } from "../../gen/kaireon/v1/outcome_type_pb.ts";
import { PlacementService } from "../../gen/kaireon/v1/placement_pb.ts";
import { QualificationRuleService } from "../../gen/kaireon/v1/qualification_rule_pb.ts";
import { RecommendService } from "../../gen/kaireon/v1/recommend_pb.ts";
import { RespondService } from "../../gen/kaireon/v1/respond_pb.ts";
import { TenantSettingsService } from "../../gen/kaireon/v1/tenant_settings_pb.ts";
import type { Config } from "../config.ts";
import type { Logger } from "../log.ts";
import type { ApiKeyVerifier, CallScope } from "../services/auth.ts";
import type { CallContext, ServiceDeps } from "../services/context.ts";
import type { LimitBucket } from "../services/limits.ts";

export interface CallRule {
  /** The key scope the call needs; "public" calls (health, reflection) need no key at all. */
  scope: CallScope | "public";
  /** The rate-limit window the call takes a slot of; "none" for calls that belong to no tenant. */
  bucket: LimitBucket | "none";
  /** The largest request message (or REST body) accepted, from the configuration. */
  maxBytes: (config: Config) => number;
}

const body = (config: Config) => config.maxBodyBytes;
const catalog = (config: Config) => config.catalogMaxBytes;

const PUBLIC: CallRule = { scope: "public", bucket: "none", maxBytes: body };
const DECIDE: CallRule = { scope: "decide", bucket: "decide", maxBytes: body };
const ADMIN: CallRule = { scope: "admin", bucket: "admin", maxBytes: body };

/**
 * Every registered service, each with the rule of its methods and the methods that differ. A service
 * missing here has no rule, and every call of it is refused as a wiring fault (a test walks them all).
 */
const SERVICE_RULES: [DescService, CallRule, Record<string, Partial<CallRule>>?][] = [
  [Health, PUBLIC],
  [ReflectionV1, PUBLIC],
  [ReflectionV1alpha, PUBLIC],
  // A batch message carries up to 10,000 requests.
  [RecommendService, DECIDE, { RecommendBatch: { maxBytes: catalog } }],
  // A bulk respond carries up to 1,000 interactions.
  [RespondService, { ...DECIDE, bucket: "respond" }, { RespondBulk: { maxBytes: catalog } }],
  // A decide key reads the traces of the decisions it made.
  [DecisionTraceService, DECIDE],
  // A catalog document may be far larger than any other message.
  [CatalogService, ADMIN, { ImportCatalog: { maxBytes: catalog } }],
  [CategoryService, ADMIN],
  [OfferService, ADMIN],
  [ChannelService, ADMIN],
  [PlacementService, ADMIN],
  [CreativeService, ADMIN],
  [ContactPolicyService, ADMIN],
  [QualificationRuleService, ADMIN],
  [OutcomeTypeService, ADMIN],
  [DecisionFlowService, ADMIN],
  [ExperimentService, ADMIN],
  [CustomerService, ADMIN],
  [TenantSettingsService, ADMIN],
  [ApiKeyService, ADMIN],
  [AuditLogService, ADMIN],
  [WebhookService, ADMIN],
  // Operator calls belong to no tenant, so they spend no tenant's window.
  [OperatorService, { scope: "operator", bucket: "none", maxBytes: body }],
];

/** The rule of each method, by its path (`/kaireon.v1.RecommendService/Recommend`). */
const RULES = new Map<string, CallRule>();
for (const [service, rule, overrides] of SERVICE_RULES) {
  for (const method of service.methods) RULES.set(pathOf(method), { ...rule, ...overrides?.[method.name] });
}

export function pathOf(method: DescMethod): string {
  return `/${method.parent.typeName}/${method.name}`;
}

/** The rule of a method (by descriptor or path); undefined for a method the table does not know. */
export function ruleOf(method: DescMethod | string): CallRule | undefined {
  return RULES.get(typeof method === "string" ? method : pathOf(method));
}

/** The largest request a method accepts (MAX_BODY_BYTES for a method the table does not know). */
export function maxBytesOf(method: DescMethod | string, deps: Pick<ServiceDeps, "config">): number {
  return (ruleOf(method) ?? PUBLIC).maxBytes(deps.config);
}

/** What a call needs to run: who calls, and where the caller's rate-limit window stands. */
export interface Admission {
  ctx: CallContext;
  limitHeaders: Record<string, string>;
}

/**
 * Admits one call under its rule: verifies the key for the rule's scope, takes a slot of its rate-limit
 * window and builds the call context. Public calls are admitted with no key and a context of nobody.
 */
export async function admit(
  deps: ServiceDeps,
  verifier: ApiKeyVerifier,
  rule: CallRule,
  header: (name: string) => string | null | undefined,
  requestId: string,
  log: Logger,
): Promise<Admission> {
  const idempotencyKey = header("idempotency-key") ?? undefined;
  if (rule.scope === "public") {
    return { ctx: { auth: { tenantId: "", keyId: "", scopes: [] }, requestId, log, idempotencyKey }, limitHeaders: {} };
  }
  const auth = await verifier.verify(header("x-tenant-id") ?? null, header("x-api-key") ?? null, rule.scope);
  const limits = rule.bucket === "none" ? { headers: {}, decisionsUsed: 0 } : await deps.limits.check(auth.tenantId, rule.bucket);
  return { ctx: { auth, requestId, log, idempotencyKey, decisionsUsed: limits.decisionsUsed }, limitHeaders: limits.headers };
}
