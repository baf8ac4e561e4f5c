// JSON REST under /api/v1, plus health and metrics. A thin layer: each route decodes JSON into the
// contract's request message, calls the same service function as gRPC and Connect, and encodes the
// response message with every field present.

import { create, type MessageShape, toJson } from "@bufbuild/protobuf";
import { Elysia } from "elysia";
import {
  CustomerSchema,
  DeleteCustomerRequestSchema,
  DeleteCustomerResponseSchema,
  GetCustomerRequestSchema,
  UpsertCustomerRequestSchema,
} from "../../gen/kaireon/v1/customer_pb.ts";
import { DecisionTraceSchema, GetDecisionTraceRequestSchema } from "../../gen/kaireon/v1/decision_trace_pb.ts";
import {
  CreateExperimentRequestSchema,
  ExperimentSchema,
  GetExperimentResultsRequestSchema,
  GetExperimentResultsResponseSchema,
  UpdateExperimentRequestSchema,
} from "../../gen/kaireon/v1/experiment_pb.ts";
import { RecommendRequestSchema, RecommendResponseSchema } from "../../gen/kaireon/v1/recommend_pb.ts";
import { RespondRequestSchema, RespondResponseSchema } from "../../gen/kaireon/v1/respond_pb.ts";
import { AppError, httpStatusOf, toAppError } from "../errors.ts";
import type { ApiKeyVerifier } from "../services/auth.ts";
import type { Scope } from "../store/tenants.ts";
import type { CallContext, ServiceDeps } from "../services/context.ts";
import type { Probe } from "../services/health.ts";
import { deleteCustomer, getCustomer, importCustomers, upsertCustomer } from "../services/customers.ts";
import { getDecisionTrace } from "../services/decision-trace.ts";
import { createExperiment, getExperimentResults, updateExperiment } from "../services/experiments.ts";
import { recommend } from "../services/recommend.ts";
import { respond } from "../services/respond.ts";
import { decodeJsonMessage } from "./json.ts";
import { ndjsonLines } from "./ndjson.ts";
import { requestIdFrom } from "./request-id.ts";

const JSON_HEADERS = { "content-type": "application/json; charset=utf-8" };

export function jsonResponse(status: number, body: unknown, requestId: string, extra: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { ...JSON_HEADERS, "x-request-id": requestId, ...extra } });
}

export function errorResponse(err: AppError, requestId: string, extraHeaders: Record<string, string> = {}): Response {
  return jsonResponse(httpStatusOf[err.code], { error: err.message, code: err.code, details: err.details, requestId }, requestId, {
    ...extraHeaders,
    ...err.headers,
  });
}

/**
 * Reads the body as text within the size limit. A declared length over the limit is refused before
 * reading; an undeclared (chunked) body is counted as it streams in and refused once it passes the limit,
 * so nothing beyond the limit is ever buffered (Bun.serve's own ceiling is lifted for the streamed import).
 */
export async function readBodyText(request: Request, maxBytes: number): Promise<string> {
  const tooLarge = () => new AppError("PAYLOAD_TOO_LARGE", `Request body exceeds ${maxBytes} bytes`);
  const declared = request.headers.get("content-length");
  if (declared !== null && Number(declared) > maxBytes) throw tooLarge();
  if (!request.body) return "";
  // A declared length was checked above, and request.text() is much cheaper than a reader loop; only an
  // undeclared (chunked) body is counted as it arrives, since the listener itself no longer caps bodies.
  if (declared !== null) return request.text();
  const parts: Uint8Array[] = [];
  let size = 0;
  const reader = request.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => {});
      throw tooLarge();
    }
    parts.push(value);
  }
  return Buffer.concat(parts, size).toString("utf8");
}

/** The NDJSON content types the customer import accepts. */
const NDJSON_TYPES = ["application/x-ndjson", "application/ndjson", "application/jsonl"];

/** The optional ?phase= of experiment results: a whole number, or absent. */
function phaseParam(raw: string | undefined): number | undefined {
  if (raw === undefined || raw === "") return undefined;
  const phase = Number(raw);
  if (!Number.isInteger(phase) || phase < 1 || phase > 1_000_000) {
    throw new AppError("VALIDATION_ERROR", "phase must be a whole number of at least 1", [
      { field: "phase", message: "phase must be a whole number of at least 1" },
    ]);
  }
  return phase;
}

function experimentJson(experiment: MessageShape<typeof ExperimentSchema> | undefined): unknown {
  return experiment ? toJson(ExperimentSchema, experiment, { alwaysEmitImplicit: true }) : null;
}

function customerJson(customer: MessageShape<typeof CustomerSchema> | undefined): unknown {
  return customer ? toJson(CustomerSchema, customer, { alwaysEmitImplicit: true }) : null;
}

/** Stage fields of a trace that belong to each stage; the rest are left out of the REST shape. */
const STAGE_FIELDS: Record<string, string[]> = {
  enrich: ["input", "output"],
  compute: ["computed"],
  filter: ["candidatesIn", "candidatesOut", "filtered"],
  score: ["scores", "factors"],
  rank: ["finalOrder", "experiments"],
};
const ALL_STAGE_FIELDS = new Set(Object.values(STAGE_FIELDS).flat());

function traceJson(trace: MessageShape<typeof DecisionTraceSchema>): unknown {
  const json = toJson(DecisionTraceSchema, trace, { alwaysEmitImplicit: true }) as Record<string, unknown>;
  const stages = (json.stages ?? []) as Record<string, unknown>[];
  json.stages = stages.map((stage) => {
    const keep = new Set(STAGE_FIELDS[stage.name as string] ?? []);
    return Object.fromEntries(Object.entries(stage).filter(([k]) => !ALL_STAGE_FIELDS.has(k) || keep.has(k)));
  });
  return json;
}

export function createRestApp(deps: ServiceDeps, verifier: ApiKeyVerifier, probe: Probe) {
  const { config, metrics } = deps;

  /** Runs one REST call: request id, size limit, auth, decode, service, encode, errors, metrics. */
  async function call<Req>(
    route: string,
    scope: Scope,
    request: Request,
    decode: (body: string) => Req,
    run: (ctx: CallContext, req: Req) => Promise<unknown>,
    /** "stream": the route reads `request.body` itself, without the body size limit. */
    body: "json" | "stream" = "json",
  ): Promise<Response> {
    const started = performance.now();
    const requestId = requestIdFrom(request.headers.get("x-request-id"));
    const log = deps.log.child({ requestId, transport: "rest", route });
    let limitHeaders: Record<string, string> = {};
    try {
      const auth = await verifier.verify(request.headers.get("x-tenant-id"), request.headers.get("x-api-key"), scope);
      const limits = await deps.limits.check(auth.tenantId, route === "/api/v1/respond" ? "respond" : "default");
      limitHeaders = limits.headers;
      const text = request.method === "GET" || body === "stream" ? "" : await readBodyText(request, config.maxBodyBytes);
      const req = decode(text);
      const idempotencyKey = request.headers.get("idempotency-key") ?? undefined;
      const out = await run({ auth, requestId, log, idempotencyKey, decisionsUsed: limits.decisionsUsed }, req);
      return jsonResponse(200, out, requestId, limits.headers);
    } catch (err) {
      const appError = toAppError(err);
      metrics.errors.inc({ code: appError.code, transport: "rest" });
      if (appError.code === "INTERNAL_ERROR") log.error("request failed", { err });
      // A refusal after the limit check (a quota, a bad request) still tells the caller where its window stands.
      return errorResponse(appError, requestId, limitHeaders);
    } finally {
      metrics.requestDuration.observe({ route, transport: "rest" }, (performance.now() - started) / 1000);
    }
  }

  return new Elysia()
    .post("/api/v1/recommend", ({ request }) =>
      call(
        "/api/v1/recommend",
        "decide",
        request,
        (body) => decodeJsonMessage(RecommendRequestSchema, body),
        async (ctx, req) => toJson(RecommendResponseSchema, await recommend(deps, ctx, req), { alwaysEmitImplicit: true }),
      ),
    )
    .post("/api/v1/respond", ({ request }) =>
      call(
        "/api/v1/respond",
        "decide",
        request,
        (body) => decodeJsonMessage(RespondRequestSchema, body),
        async (ctx, req) => toJson(RespondResponseSchema, await respond(deps, ctx, req), { alwaysEmitImplicit: true }),
      ),
    )
    .get("/api/v1/decision-traces/:traceId", ({ request, params }) =>
      call(
        "/api/v1/decision-traces/:traceId",
        "decide",
        request,
        () => create(GetDecisionTraceRequestSchema, { traceId: params.traceId }),
        async (ctx, req) => {
          const res = await getDecisionTrace(deps, ctx, req);
          return res.trace ? traceJson(res.trace) : null;
        },
      ),
    )
    .post("/api/v1/experiments", ({ request }) =>
      call(
        "/api/v1/experiments",
        "admin",
        request,
        (body) => decodeJsonMessage(CreateExperimentRequestSchema, body),
        async (ctx, req) => experimentJson((await createExperiment(deps, ctx, req)).experiment),
      ),
    )
    .patch("/api/v1/experiments/:experimentId", ({ request, params }) =>
      call(
        "/api/v1/experiments/:experimentId",
        "admin",
        request,
        (body) => ({ ...decodeJsonMessage(UpdateExperimentRequestSchema, body), experimentId: params.experimentId }),
        async (ctx, req) => experimentJson((await updateExperiment(deps, ctx, req)).experiment),
      ),
    )
    .get("/api/v1/experiments/:experimentId/results", ({ request, params, query }) =>
      call(
        "/api/v1/experiments/:experimentId/results",
        "admin",
        request,
        () => create(GetExperimentResultsRequestSchema, { experimentId: params.experimentId, phase: phaseParam(query.phase) }),
        async (ctx, req) =>
          toJson(GetExperimentResultsResponseSchema, await getExperimentResults(deps, ctx, req), { alwaysEmitImplicit: true }),
      ),
    )
    .put("/api/v1/customers/:customerId", ({ request, params }) =>
      call(
        "/api/v1/customers/:customerId",
        "admin",
        request,
        (body) => ({ ...decodeJsonMessage(UpsertCustomerRequestSchema, body), customerId: params.customerId }),
        async (ctx, req) => customerJson((await upsertCustomer(deps, ctx, req)).customer),
      ),
    )
    .get("/api/v1/customers/:customerId", ({ request, params }) =>
      call(
        "/api/v1/customers/:customerId",
        "admin",
        request,
        () => create(GetCustomerRequestSchema, { customerId: params.customerId }),
        async (ctx, req) => customerJson((await getCustomer(deps, ctx, req)).customer),
      ),
    )
    .delete("/api/v1/customers/:customerId", ({ request, params }) =>
      call(
        "/api/v1/customers/:customerId",
        "admin",
        request,
        () => create(DeleteCustomerRequestSchema, { customerId: params.customerId }),
        async (ctx, req) => toJson(DeleteCustomerResponseSchema, await deleteCustomer(deps, ctx, req), { alwaysEmitImplicit: true }),
      ),
    )
    .post("/api/v1/customers/import", ({ request }) =>
      call(
        "/api/v1/customers/import",
        "admin",
        request,
        () => {
          const type = (request.headers.get("content-type") ?? "").split(";", 1)[0]?.trim().toLowerCase() ?? "";
          if (!NDJSON_TYPES.includes(type)) {
            const message = `content-type must be ${NDJSON_TYPES[0]}`;
            throw new AppError("VALIDATION_ERROR", message, [{ field: "content-type", message }]);
          }
          return null;
        },
        (ctx) => importCustomers(deps, ctx, ndjsonLines(request.body, config.importMaxLineBytes)),
        "stream",
      ),
    )
    .get("/healthz", () => Response.json({ status: "ok" }))
    .get("/readyz", async () => {
      const checks = await probe.ready();
      const ok = Object.values(checks).every((c) => c === "ok");
      return Response.json({ status: ok ? "ok" : "unavailable", checks }, { status: ok ? 200 : 503 });
    })
    .get("/metrics", () => new Response(metrics.render(), { headers: { "content-type": "text/plain; version=0.0.4" } }))
    .onError(({ code, request }) => {
      const requestId = requestIdFrom(request.headers.get("x-request-id"));
      if (code === "NOT_FOUND") return errorResponse(new AppError("NOT_FOUND", "Route not found"), requestId);
      return errorResponse(toAppError(null), requestId);
    });
}
