// Typed clients for every kaireon.v1 service over any connect-es transport: Connect or gRPC-Web from a
// browser (@connectrpc/connect-web), Connect, gRPC-Web or native gRPC from Node.js and Bun
// (@connectrpc/connect-node). The client sends the tenant and key on every call; errors are ConnectErrors
// whose ErrorDetail (the REST error body's code and field violations) errorDetailOf reads.

import { type Client, type ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { ApiKeyService } from "../../../gen/kaireon/v1/api_key_pb.js";
import { AuditLogService } from "../../../gen/kaireon/v1/audit_log_pb.js";
import { CatalogService } from "../../../gen/kaireon/v1/catalog_pb.js";
import { CategoryService } from "../../../gen/kaireon/v1/category_pb.js";
import { ChannelService } from "../../../gen/kaireon/v1/channel_pb.js";
import { ContactPolicyService } from "../../../gen/kaireon/v1/contact_policy_pb.js";
import { CreativeService } from "../../../gen/kaireon/v1/creative_pb.js";
import { CustomerService } from "../../../gen/kaireon/v1/customer_pb.js";
import { DecisionFlowService } from "../../../gen/kaireon/v1/decision_flow_pb.js";
import { DecisionTraceService } from "../../../gen/kaireon/v1/decision_trace_pb.js";
import { type ErrorDetail, ErrorDetailSchema } from "../../../gen/kaireon/v1/errors_pb.js";
import { ExperimentService } from "../../../gen/kaireon/v1/experiment_pb.js";
import { OfferService } from "../../../gen/kaireon/v1/offer_pb.js";
import { OperatorService } from "../../../gen/kaireon/v1/operator_pb.js";
import { OutcomeTypeService } from "../../../gen/kaireon/v1/outcome_type_pb.js";
import { PlacementService } from "../../../gen/kaireon/v1/placement_pb.js";
import { QualificationRuleService } from "../../../gen/kaireon/v1/qualification_rule_pb.js";
import { RecommendService } from "../../../gen/kaireon/v1/recommend_pb.js";
import { RespondService } from "../../../gen/kaireon/v1/respond_pb.js";
import { TenantSettingsService } from "../../../gen/kaireon/v1/tenant_settings_pb.js";

export * from "../../../gen/kaireon/v1/api_key_pb.js";
export * from "../../../gen/kaireon/v1/audit_log_pb.js";
export * from "../../../gen/kaireon/v1/catalog_pb.js";
export * from "../../../gen/kaireon/v1/category_pb.js";
export * from "../../../gen/kaireon/v1/channel_pb.js";
export * from "../../../gen/kaireon/v1/contact_policy_pb.js";
export * from "../../../gen/kaireon/v1/creative_pb.js";
export * from "../../../gen/kaireon/v1/customer_pb.js";
export * from "../../../gen/kaireon/v1/decision_flow_pb.js";
export * from "../../../gen/kaireon/v1/decision_trace_pb.js";
export * from "../../../gen/kaireon/v1/errors_pb.js";
export * from "../../../gen/kaireon/v1/experiment_pb.js";
export * from "../../../gen/kaireon/v1/offer_pb.js";
export * from "../../../gen/kaireon/v1/operator_pb.js";
export * from "../../../gen/kaireon/v1/outcome_type_pb.js";
export * from "../../../gen/kaireon/v1/placement_pb.js";
export * from "../../../gen/kaireon/v1/qualification_rule_pb.js";
export * from "../../../gen/kaireon/v1/recommend_pb.js";
export * from "../../../gen/kaireon/v1/respond_pb.js";
export * from "../../../gen/kaireon/v1/tenant_settings_pb.js";

/** Every service, by the name a KaireonClient gives its client. */
const SERVICES = {
  recommend: RecommendService,
  respond: RespondService,
  decisionTraces: DecisionTraceService,
  offers: OfferService,
  categories: CategoryService,
  channels: ChannelService,
  creatives: CreativeService,
  placements: PlacementService,
  qualificationRules: QualificationRuleService,
  contactPolicies: ContactPolicyService,
  outcomeTypes: OutcomeTypeService,
  decisionFlows: DecisionFlowService,
  experiments: ExperimentService,
  customers: CustomerService,
  catalog: CatalogService,
  settings: TenantSettingsService,
  apiKeys: ApiKeyService,
  auditLog: AuditLogService,
  operator: OperatorService,
} as const;

export type KaireonClient = { readonly [K in keyof typeof SERVICES]: Client<(typeof SERVICES)[K]> };

export interface KaireonClientOptions {
  /** A connect-es transport: createConnectTransport, createGrpcWebTransport or createGrpcTransport. */
  transport: Transport;
  /** The tenant every call acts for (x-tenant-id). Leave it out for the operator's own calls. */
  tenantId?: string;
  /**
   * The tenant's API key, or the operator key (x-api-key). Leave it out where a proxy in front of the
   * service adds it, as a browser page's own server should: a key in a page is a key given away.
   */
  apiKey?: string;
}

/**
 * One client per service, all on one transport, each call carrying the tenant and key:
 *
 *     const kaireon = createKaireonClient({ transport, tenantId: "demo", apiKey });
 *     const answer = await kaireon.recommend.recommend({ customerId: "cust_12345", channelId: "ch_email" });
 */
export function createKaireonClient(options: KaireonClientOptions): KaireonClient {
  const auth: Record<string, string> = {};
  if (options.apiKey) auth["x-api-key"] = options.apiKey;
  if (options.tenantId) auth["x-tenant-id"] = options.tenantId;
  const transport = withHeaders(options.transport, auth);
  const clients: Record<string, unknown> = {};
  for (const [name, service] of Object.entries(SERVICES)) clients[name] = createClient(service, transport);
  return clients as KaireonClient;
}

/** The ErrorDetail a failed call carries: its code (VALIDATION_ERROR, …), field violations and request id. */
export function errorDetailOf(err: ConnectError): ErrorDetail | undefined {
  return err.findDetails(ErrorDetailSchema)[0];
}

/** A transport that adds `extra` to every call's headers; a header the call sets itself wins. */
function withHeaders(transport: Transport, extra: Record<string, string>): Transport {
  const merge = (header: Parameters<Transport["unary"]>[3]): Headers => {
    const merged = new Headers(header);
    for (const [name, value] of Object.entries(extra)) if (!merged.has(name)) merged.set(name, value);
    return merged;
  };
  return {
    unary: (method, signal, timeoutMs, header, input, contextValues) =>
      transport.unary(method, signal, timeoutMs, merge(header), input, contextValues),
    stream: (method, signal, timeoutMs, header, input, contextValues) =>
      transport.stream(method, signal, timeoutMs, merge(header), input, contextValues),
  };
}
