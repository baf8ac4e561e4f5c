// Connect, gRPC and gRPC-Web: the contract's services registered on a Connect router, with one
// interceptor that does for every call what the REST layer does for every route (request id,
// authentication, error mapping, metrics and logs).

import { create, type DescMessage, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  Code,
  type ConnectRouter,
  ConnectError,
  type ConnectRouterOptions,
  createContextKey,
  type HandlerContext,
  type Interceptor,
} from "@connectrpc/connect";
import { Health } from "../../gen/grpc/health/v1/health_pb.ts";
import { ServerReflection as ReflectionV1 } from "../../gen/grpc/reflection/v1/reflection_pb.ts";
import {
  ServerReflection as ReflectionV1alpha,
  ServerReflectionResponseSchema as ReflectionV1alphaResponse,
} from "../../gen/grpc/reflection/v1alpha/reflection_pb.ts";
import { ServerReflectionResponseSchema as ReflectionV1Response } from "../../gen/grpc/reflection/v1/reflection_pb.ts";
import { ApiKeyService } from "../../gen/kaireon/v1/api_key_pb.ts";
import { AuditLogService } from "../../gen/kaireon/v1/audit_log_pb.ts";
import { WebhookService } from "../../gen/kaireon/v1/webhook_pb.ts";
import { CatalogService } from "../../gen/kaireon/v1/catalog_pb.ts";
import { CustomerService } from "../../gen/kaireon/v1/customer_pb.ts";
import { DecisionFlowService } from "../../gen/kaireon/v1/decision_flow_pb.ts";
import { DecisionTraceService } from "../../gen/kaireon/v1/decision_trace_pb.ts";
import { ErrorDetailSchema } from "../../gen/kaireon/v1/errors_pb.ts";
import { ExperimentService } from "../../gen/kaireon/v1/experiment_pb.ts";
import { RecommendBatchResponseSchema, RecommendService } from "../../gen/kaireon/v1/recommend_pb.ts";
import { RespondService } from "../../gen/kaireon/v1/respond_pb.ts";
import { TenantSettingsService } from "../../gen/kaireon/v1/tenant_settings_pb.ts";
import { OperatorService } from "../../gen/kaireon/v1/operator_pb.ts";
import { AppError, type ErrorCode, toAppError, validationError } from "../errors.ts";
import { grpcStatusName } from "../request-log.ts";
import { createApiKey, getApiKeyInfo, listApiKeys, revokeApiKey } from "../services/api-keys.ts";
import {
  createWebhook,
  deleteWebhook,
  getWebhook,
  listDeadLetters,
  listWebhooks,
  redeliverDeadLetter,
  updateWebhook,
} from "../services/webhooks.ts";
import { listAuditEntries } from "../services/audit-log.ts";
import type { ApiKeyVerifier } from "../services/auth.ts";
import { exportCatalog, importCatalog } from "../services/catalog.ts";
import type { CallContext, ServiceDeps } from "../services/context.ts";
import { deleteCustomer, getCustomer, upsertCustomer } from "../services/customers.ts";
import { getDecisionTrace, listDecisionTraces } from "../services/decision-trace.ts";
import { listDecisionFlowVersions, publishDecisionFlow, rollBackDecisionFlow } from "../services/decision-flows.ts";
import { evaluateDecisionFlow, getUpliftReport } from "../services/flow-reports.ts";
import { createExperiment, getExperimentResults, updateExperiment } from "../services/experiments.ts";
import { checkHealth, type Probe } from "../services/health.ts";
import {
  categoryKind,
  channelKind,
  contactPolicyKind,
  creativeKind,
  decisionFlowKind,
  experimentKind,
  offerKind,
  outcomeTypeKind,
  placementKind,
  qualificationRuleKind,
} from "../services/kinds/index.ts";
import { recommend } from "../services/recommend.ts";
import { MAX_BATCH_MESSAGE_REQUESTS, recommendBatch } from "../services/recommend-batch.ts";
import {
  createResource,
  deleteResource,
  getResource,
  keyOf,
  listResources,
  type Resource,
  type ResourceKind,
  updateResource,
} from "../services/resources.ts";
import { respond, respondBulk } from "../services/respond.ts";
import { getTenantSettings, updateTenantSettings } from "../services/tenant-settings.ts";
import { createTenant, createTenantApiKey, getTenantInfo, listTenants, updateTenant } from "../services/operator.ts";
import { answer, ReflectionIndex, reflect } from "../services/reflection.ts";
import { requestIdFrom } from "./request-id.ts";
import { checkText } from "../services/text.ts";
import { admit, maxBytesOf, ruleOf } from "./call-rules.ts";

export const connectCodeOf: Record<ErrorCode, Code> = {
  VALIDATION_ERROR: Code.InvalidArgument,
  UNAUTHORIZED: Code.Unauthenticated,
  FORBIDDEN: Code.PermissionDenied,
  NOT_FOUND: Code.NotFound,
  // REST's alone: an RPC has no method to get wrong.
  METHOD_NOT_ALLOWED: Code.Unimplemented,
  CONFLICT: Code.AlreadyExists,
  PAYLOAD_TOO_LARGE: Code.ResourceExhausted,
  UNSUPPORTED_MEDIA_TYPE: Code.InvalidArgument,
  // The caller did not finish sending: canceled (Connect 499), never a 5xx for what is the caller's doing.
  REQUEST_TIMEOUT: Code.Canceled,
  RATE_LIMITED: Code.ResourceExhausted,
  QUOTA_EXCEEDED: Code.ResourceExhausted,
  INTERNAL_ERROR: Code.Internal,
  UNAVAILABLE: Code.Unavailable,
};

/** Set by the dispatcher when a binary message did not decode; never trusted from the caller. */
export const INVALID_MESSAGE_HEADER = "x-kaireon-invalid-message";

const callKey = createContextKey<CallContext | undefined>(undefined, { description: "kaireon call context" });

export function toConnectError(err: AppError, requestId: string): ConnectError {
  const metadata = new Headers(err.headers);
  metadata.set("x-request-id", requestId);
  metadata.set("x-error-code", err.code);
  const code = err.code === "CONFLICT" && err.conflict === "aborted" ? Code.Aborted : connectCodeOf[err.code];
  return new ConnectError(err.message, code, metadata, [
    { desc: ErrorDetailSchema, value: create(ErrorDetailSchema, { code: err.code, details: err.details, requestId }) },
  ]);
}

function transportOf(contentType: string | null): string {
  if (!contentType) return "connect";
  if (contentType.startsWith("application/grpc-web")) return "grpc-web";
  if (contentType.startsWith("application/grpc")) return "grpc";
  return "connect";
}

/** The handler context the service implementations read their call context from (native gRPC builds one too). */
export function handlerValuesOf(ctx: CallContext): { get: (k: typeof callKey) => CallContext | undefined } {
  return { get: (k) => (k === callKey ? ctx : undefined) };
}

function contextOf(values: { get: (k: typeof callKey) => CallContext | undefined }): CallContext {
  const ctx = values.get(callKey);
  // The interceptor sets it for every call; its absence is a wiring bug, not a client error.
  if (!ctx) throw new Error("call context missing");
  return ctx;
}

export function createInterceptor(deps: ServiceDeps, verifier: ApiKeyVerifier): Interceptor {
  return (next) => async (req) => {
    const started = performance.now();
    const requestId = requestIdFrom(req.header.get("x-request-id"));
    const transport = transportOf(req.header.get("content-type"));
    const route = `/${req.service.typeName}/${req.method.name}`;
    const log = deps.log.child({ requestId, transport, route });
    let limitHeaders: Record<string, string> = {};
    let tenantId: string | undefined;
    try {
      const invalid = req.header.get(INVALID_MESSAGE_HEADER);
      if (invalid) throw validationError([{ field: "", message: `request message is not valid protobuf: ${invalid}` }]);
      if (!req.stream) checkText(req.message);
      const rule = ruleOf(req.method);
      // Every registered method has a rule (a test walks them); one without is a wiring fault.
      if (!rule) throw new Error(`no call rule for ${route}`);
      const admitted = await admit(deps, verifier, rule, (name) => req.header.get(name), requestId, log);
      limitHeaders = admitted.limitHeaders;
      tenantId = admitted.ctx.auth.tenantId || undefined;
      req.contextValues.set(callKey, admitted.ctx);
      const res = await next(req);
      res.header.set("x-request-id", requestId);
      for (const [name, value] of Object.entries(limitHeaders)) res.header.set(name, value);
      deps.requestLog.answered(log, { status: "OK", startedAt: started, tenantId });
      return res;
    } catch (err) {
      if (err instanceof ConnectError) {
        // Raised by the protocol layer itself (deadline, cancellation): pass it on with our request id.
        deps.requestLog.ended(log, { status: grpcStatusName(err.code), startedAt: started, tenantId }, err.rawMessage);
        err.metadata.set("x-request-id", requestId);
        throw err;
      }
      let appError = toAppError(err);
      // A refusal after the limit check (a quota, a bad request) still tells the caller where its window stands.
      if (Object.keys(limitHeaders).length > 0) {
        appError = new AppError(
          appError.code,
          appError.message,
          appError.details,
          { ...limitHeaders, ...appError.headers },
          appError.conflict,
        );
      }
      deps.metrics.errors.inc({ code: appError.code, transport });
      const error = toConnectError(appError, requestId);
      deps.requestLog.refused(log, { status: grpcStatusName(error.code), startedAt: started, tenantId }, appError, err);
      throw error;
    } finally {
      deps.metrics.requestDuration.observe({ route, transport }, (performance.now() - started) / 1000);
    }
  };
}

type Handler = (req: Resource, ctx: HandlerContext) => Promise<unknown>;

/** The field of a request or response message that holds the resource (or, repeated, a page of them). */
function fieldOf(message: DescMessage, kind: ResourceKind): string {
  const field = message.fields.find(
    (f) => (f.fieldKind === "message" || f.fieldKind === "list") && f.message?.typeName === kind.schema.typeName,
  );
  // The contract pairs every resource service with its message; a mismatch is a wiring bug.
  if (!field) throw new Error(`${message.typeName} has no ${kind.schema.typeName} field`);
  return field.localName;
}

/**
 * Create, Get, List, Update and Delete of a resource service, on the generic resource functions. A
 * method is matched by its name (CreateOffer, ListOffers…) and its messages holding the resource.
 */
function resourceService(deps: ServiceDeps, kind: ResourceKind): Record<string, Handler> {
  const impl: Record<string, Handler> = {};
  const M = kind.schema.name;
  const holds = (message: DescMessage) =>
    message.fields.some((f) => (f.fieldKind === "message" || f.fieldKind === "list") && f.message?.typeName === kind.schema.typeName);
  for (const m of kind.service.methods) {
    const wrap = (fn: (ctx: CallContext, req: Resource) => Promise<Record<string, unknown>>): Handler => {
      return async (req, hctx) => create(m.output, (await fn(contextOf(hctx.values), req)) as never);
    };
    if (m.name === `Create${M}` && holds(m.input)) {
      const field = fieldOf(m.input, kind);
      impl[m.localName] = wrap(async (ctx, req) => ({ [field]: await createResource(deps, ctx, kind, req[field]) }));
    } else if (m.name === `Get${M}`) {
      impl[m.localName] = wrap(async (ctx, req) => ({ [fieldOf(m.output, kind)]: await getResource(deps, ctx, kind, keyOf(kind, req)) }));
    } else if (m.name.startsWith("List") && holds(m.output)) {
      impl[m.localName] = wrap(async (ctx, req) => {
        const page = await listResources(deps, ctx, kind, req as never);
        return { [fieldOf(m.output, kind)]: page.items, nextCursor: page.nextCursor };
      });
    } else if (m.name === `Update${M}` && holds(m.input)) {
      const field = fieldOf(m.input, kind);
      impl[m.localName] = wrap(async (ctx, req) => ({
        [field]: await updateResource(deps, ctx, kind, req[field], req.updateMask?.paths ?? []),
      }));
    } else if (m.name === `Delete${M}`) {
      impl[m.localName] = wrap(async (ctx, req) => ({
        [fieldOf(m.output, kind)]: await deleteResource(deps, ctx, kind, keyOf(kind, req), req.version ?? 0),
      }));
    }
  }
  return impl;
}

export function registerServices(deps: ServiceDeps, probe: Probe) {
  return (router: ConnectRouter) => {
    // Health checks come from infrastructure without API keys; the interceptor lets them through.
    router.service(Health, { check: (req) => checkHealth(probe, req) });
    router.service(RecommendService, {
      recommend: (req, ctx) => recommend(deps, contextOf(ctx.values), req),
      async *recommendBatch(req, ctx) {
        if (req.requests.length > MAX_BATCH_MESSAGE_REQUESTS) {
          const message = `requests may hold at most ${MAX_BATCH_MESSAGE_REQUESTS}; send more in further calls`;
          throw validationError([{ field: "requests", message }]);
        }
        async function* items() {
          for (const request of req.requests) yield { request };
        }
        let index = 0;
        for await (const run of recommendBatch(deps, contextOf(ctx.values), items())) {
          for (const a of run) yield create(RecommendBatchResponseSchema, { index: index++, ...a });
        }
      },
    });
    router.service(RespondService, {
      respond: (req, ctx) => respond(deps, contextOf(ctx.values), req),
      respondBulk: (req, ctx) => respondBulk(deps, contextOf(ctx.values), req),
    });
    router.service(ExperimentService, {
      // Create and update keep the contract's flat requests (below); the rest are the resource's.
      ...resourceService(deps, experimentKind),
      createExperiment: (req, ctx) => createExperiment(deps, contextOf(ctx.values), req),
      updateExperiment: (req, ctx) => updateExperiment(deps, contextOf(ctx.values), req),
      getExperimentResults: (req, ctx) => getExperimentResults(deps, contextOf(ctx.values), req),
    });
    // Resources with nothing beyond create, get, list, update and delete.
    for (const kind of [
      categoryKind,
      offerKind,
      channelKind,
      placementKind,
      creativeKind,
      contactPolicyKind,
      qualificationRuleKind,
      outcomeTypeKind,
    ]) {
      router.service(kind.service, resourceService(deps, kind) as never);
    }
    router.service(DecisionFlowService, {
      ...(resourceService(deps, decisionFlowKind) as object),
      publishDecisionFlow: (req, ctx) => publishDecisionFlow(deps, contextOf(ctx.values), req),
      listDecisionFlowVersions: (req, ctx) => listDecisionFlowVersions(deps, contextOf(ctx.values), req),
      rollBackDecisionFlow: (req, ctx) => rollBackDecisionFlow(deps, contextOf(ctx.values), req),
      getUpliftReport: (req, ctx) => getUpliftReport(deps, contextOf(ctx.values), req),
      evaluateDecisionFlow: (req, ctx) => evaluateDecisionFlow(deps, contextOf(ctx.values), req),
    });
    router.service(TenantSettingsService, {
      getTenantSettings: (_req, ctx) => getTenantSettings(deps, contextOf(ctx.values)),
      updateTenantSettings: (req, ctx) => updateTenantSettings(deps, contextOf(ctx.values), req),
    });
    router.service(ApiKeyService, {
      createApiKey: (req, ctx) => createApiKey(deps, contextOf(ctx.values), req),
      getApiKey: (req, ctx) => getApiKeyInfo(deps, contextOf(ctx.values), req),
      listApiKeys: (req, ctx) => listApiKeys(deps, contextOf(ctx.values), req),
      revokeApiKey: (req, ctx) => revokeApiKey(deps, contextOf(ctx.values), req),
    });
    router.service(OperatorService, {
      createTenant: (req, ctx) => createTenant(deps, contextOf(ctx.values), req),
      getTenant: (req, ctx) => getTenantInfo(deps, contextOf(ctx.values), req),
      listTenants: (req, ctx) => listTenants(deps, contextOf(ctx.values), req),
      updateTenant: (req, ctx) => updateTenant(deps, contextOf(ctx.values), req),
      createTenantApiKey: (req, ctx) => createTenantApiKey(deps, contextOf(ctx.values), req),
    });
    router.service(AuditLogService, { listAuditEntries: (req, ctx) => listAuditEntries(deps, contextOf(ctx.values), req) });
    router.service(WebhookService, {
      createWebhook: (req, ctx) => createWebhook(deps, contextOf(ctx.values), req),
      getWebhook: (req, ctx) => getWebhook(deps, contextOf(ctx.values), req),
      listWebhooks: (_req, ctx) => listWebhooks(deps, contextOf(ctx.values)),
      updateWebhook: (req, ctx) => updateWebhook(deps, contextOf(ctx.values), req),
      deleteWebhook: (req, ctx) => deleteWebhook(deps, contextOf(ctx.values), req),
      listDeadLetters: (req, ctx) => listDeadLetters(deps, contextOf(ctx.values), req),
      redeliverDeadLetter: (req, ctx) => redeliverDeadLetter(deps, contextOf(ctx.values), req),
    });
    router.service(
      CatalogService,
      {
        exportCatalog: (_req, ctx) => exportCatalog(deps, contextOf(ctx.values)),
        importCatalog: (req, ctx) => importCatalog(deps, contextOf(ctx.values), req),
      },
      // A catalog document may be far larger than any other message (its rule says how large).
      { readMaxBytes: maxBytesOf(CatalogService.method.importCatalog, deps) },
    );
    router.service(CustomerService, {
      upsertCustomer: (req, ctx) => upsertCustomer(deps, contextOf(ctx.values), req),
      getCustomer: (req, ctx) => getCustomer(deps, contextOf(ctx.values), req),
      deleteCustomer: (req, ctx) => deleteCustomer(deps, contextOf(ctx.values), req),
    });
    router.service(DecisionTraceService, {
      getDecisionTrace: (req, ctx) => getDecisionTrace(deps, contextOf(ctx.values), req),
      listDecisionTraces: (req, ctx) => listDecisionTraces(deps, contextOf(ctx.values), req),
    });
    // Reflection describes every service registered above, and itself.
    const index = new ReflectionIndex([...router.handlers.map((h) => h.service), ReflectionV1, ReflectionV1alpha]);
    router.service(ReflectionV1, { serverReflectionInfo: (requests) => reflect(index, requests) });
    router.service(ReflectionV1alpha, {
      // The same messages under another package: answered as v1, re-read as v1alpha.
      async *serverReflectionInfo(requests) {
        for await (const req of requests) {
          const v1 = answer(
            index,
            fromBinary(ReflectionV1.method.serverReflectionInfo.input, toBinary(ReflectionV1alpha.method.serverReflectionInfo.input, req)),
          );
          yield fromBinary(ReflectionV1alphaResponse, toBinary(ReflectionV1Response, v1));
        }
      },
    });
  };
}

export function routerOptions(deps: ServiceDeps, verifier: ApiKeyVerifier, shutdownSignal: AbortSignal): ConnectRouterOptions {
  return {
    interceptors: [createInterceptor(deps, verifier)],
    readMaxBytes: deps.config.maxBodyBytes,
    writeMaxBytes: 4 * 1024 * 1024,
    maxTimeoutMs: deps.config.maxDeadlineMs,
    shutdownSignal,
    jsonOptions: { ignoreUnknownFields: true },
  };
}
