// Connect, gRPC and gRPC-Web: the contract's services registered on a Connect router, with one
// interceptor that does for every call what the REST layer does for every route (request id,
// authentication, error mapping, metrics and logs).

import { create } from "@bufbuild/protobuf";
import { Code, type ConnectRouter, ConnectError, type ConnectRouterOptions, createContextKey, type Interceptor } from "@connectrpc/connect";
import { Health } from "../../gen/grpc/health/v1/health_pb.ts";
import { CustomerService } from "../../gen/kaireon/v1/customer_pb.ts";
import { DecisionTraceService } from "../../gen/kaireon/v1/decision_trace_pb.ts";
import { ErrorDetailSchema } from "../../gen/kaireon/v1/errors_pb.ts";
import { ExperimentService } from "../../gen/kaireon/v1/experiment_pb.ts";
import { RecommendService } from "../../gen/kaireon/v1/recommend_pb.ts";
import { RespondService } from "../../gen/kaireon/v1/respond_pb.ts";
import { AppError, type ErrorCode, toAppError, validationError } from "../errors.ts";
import type { ApiKeyVerifier } from "../services/auth.ts";
import type { CallContext, ServiceDeps } from "../services/context.ts";
import { deleteCustomer, getCustomer, upsertCustomer } from "../services/customers.ts";
import { getDecisionTrace } from "../services/decision-trace.ts";
import { createExperiment, getExperimentResults, updateExperiment } from "../services/experiments.ts";
import { checkHealth, type Probe } from "../services/health.ts";
import { recommend } from "../services/recommend.ts";
import { respond } from "../services/respond.ts";
import { requestIdFrom } from "./request-id.ts";

export const connectCodeOf: Record<ErrorCode, Code> = {
  VALIDATION_ERROR: Code.InvalidArgument,
  UNAUTHORIZED: Code.Unauthenticated,
  FORBIDDEN: Code.PermissionDenied,
  NOT_FOUND: Code.NotFound,
  CONFLICT: Code.AlreadyExists,
  PAYLOAD_TOO_LARGE: Code.ResourceExhausted,
  RATE_LIMITED: Code.ResourceExhausted,
  QUOTA_EXCEEDED: Code.ResourceExhausted,
  INTERNAL_ERROR: Code.Internal,
  UNAVAILABLE: Code.Unavailable,
};

/** Set by the dispatcher when a binary message did not decode; never trusted from the caller. */
export const INVALID_MESSAGE_HEADER = "x-kaireon-invalid-message";

/** Services that need an admin key; every other (but Health) needs a decide key. */
const ADMIN_SERVICES = new Set([ExperimentService.typeName, CustomerService.typeName]);

const callKey = createContextKey<CallContext | undefined>(undefined, { description: "kaireon call context" });

export function toConnectError(err: AppError, requestId: string): ConnectError {
  const metadata = new Headers(err.headers);
  metadata.set("x-request-id", requestId);
  metadata.set("x-error-code", err.code);
  return new ConnectError(err.message, connectCodeOf[err.code], metadata, [
    { desc: ErrorDetailSchema, value: create(ErrorDetailSchema, { code: err.code, details: err.details, requestId }) },
  ]);
}

function transportOf(contentType: string | null): string {
  if (!contentType) return "connect";
  if (contentType.startsWith("application/grpc-web")) return "grpc-web";
  if (contentType.startsWith("application/grpc")) return "grpc";
  return "connect";
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
    let status = "OK";
    let limitHeaders: Record<string, string> = {};
    try {
      const invalid = req.header.get(INVALID_MESSAGE_HEADER);
      if (invalid) throw validationError([{ field: "", message: `request message is not valid protobuf: ${invalid}` }]);
      if (req.service.typeName !== Health.typeName) {
        const scope = ADMIN_SERVICES.has(req.service.typeName) ? "admin" : "decide";
        const auth = await verifier.verify(req.header.get("x-tenant-id"), req.header.get("x-api-key"), scope);
        const limits = await deps.limits.check(auth.tenantId, req.service.typeName === RespondService.typeName ? "respond" : "default");
        limitHeaders = limits.headers;
        const idempotencyKey = req.header.get("idempotency-key") ?? undefined;
        req.contextValues.set(callKey, { auth, requestId, log, idempotencyKey, decisionsUsed: limits.decisionsUsed });
      }
      const res = await next(req);
      res.header.set("x-request-id", requestId);
      for (const [name, value] of Object.entries(limitHeaders)) res.header.set(name, value);
      return res;
    } catch (err) {
      if (err instanceof ConnectError) {
        // Raised by the protocol layer itself (deadline, cancellation): pass it on with our request id.
        status = Code[err.code];
        err.metadata.set("x-request-id", requestId);
        throw err;
      }
      let appError = toAppError(err);
      // A refusal after the limit check (a quota, a bad request) still tells the caller where its window stands.
      if (Object.keys(limitHeaders).length > 0) {
        appError = new AppError(appError.code, appError.message, appError.details, { ...limitHeaders, ...appError.headers });
      }
      status = appError.code;
      deps.metrics.errors.inc({ code: appError.code, transport });
      if (appError.code === "INTERNAL_ERROR") log.error("request failed", { err });
      throw toConnectError(appError, requestId);
    } finally {
      const seconds = (performance.now() - started) / 1000;
      deps.metrics.requestDuration.observe({ route, transport }, seconds);
      log.debug("request", { status, durationMs: Math.round(seconds * 1e6) / 1e3 });
    }
  };
}

export function registerServices(deps: ServiceDeps, probe: Probe) {
  return (router: ConnectRouter) => {
    // Health checks come from infrastructure without API keys; the interceptor lets them through.
    router.service(Health, { check: (req) => checkHealth(probe, req) });
    router.service(RecommendService, {
      recommend: (req, ctx) => recommend(deps, contextOf(ctx.values), req),
    });
    router.service(RespondService, {
      respond: (req, ctx) => respond(deps, contextOf(ctx.values), req),
    });
    router.service(ExperimentService, {
      createExperiment: (req, ctx) => createExperiment(deps, contextOf(ctx.values), req),
      updateExperiment: (req, ctx) => updateExperiment(deps, contextOf(ctx.values), req),
      getExperimentResults: (req, ctx) => getExperimentResults(deps, contextOf(ctx.values), req),
    });
    router.service(CustomerService, {
      upsertCustomer: (req, ctx) => upsertCustomer(deps, contextOf(ctx.values), req),
      getCustomer: (req, ctx) => getCustomer(deps, contextOf(ctx.values), req),
      deleteCustomer: (req, ctx) => deleteCustomer(deps, contextOf(ctx.values), req),
    });
    router.service(DecisionTraceService, {
      getDecisionTrace: (req, ctx) => getDecisionTrace(deps, contextOf(ctx.values), req),
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
