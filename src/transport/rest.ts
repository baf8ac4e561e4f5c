// JSON REST under /api/v1, plus health, metrics and the API's own description. A thin layer: each route
// (transport/routes/) decodes JSON into the contract's request message, calls the same service
// function as gRPC and Connect, and encodes the response message with every field present.

import { Elysia } from "elysia";
import { AppError, httpStatusOf, toAppError, validationError } from "../errors.ts";
import type { ApiKeyVerifier } from "../services/auth.ts";
import type { ServiceDeps } from "../services/context.ts";
import type { Probe } from "../services/health.ts";
import { renderDocsPage } from "./docs-page.ts";
import { openApiDocument, type PublicRoute } from "./openapi.ts";
import { readWithin } from "./read-deadline.ts";
import { requestIdFrom } from "./request-id.ts";
import { admit, type CallRule } from "./call-rules.ts";
import { apiRoutes, type RestRoute, ruleOfRoute } from "./routes/index.ts";
import { checkText } from "../services/text.ts";

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

/** What GET / answers: where everything else is. */
const INDEX = {
  service: "kaireon",
  api: "/api/v1",
  docs: "/api/v1/docs",
  openapi: "/api/v1/openapi.json",
  health: "/healthz",
  readiness: "/readyz",
};

/**
 * A JSON body may come with no content type (read as JSON) or a JSON one (`application/json`, any
 * `application/*+json`, with parameters); a body declared as anything else is refused, not guessed at.
 */
export function checkJsonContentType(header: string | null): void {
  if (header === null || header.trim() === "") return;
  const type = (header.split(";", 1)[0] ?? "").trim().toLowerCase();
  if (type === "application/json" || (type.startsWith("application/") && type.endsWith("+json"))) return;
  throw new AppError("UNSUPPORTED_MEDIA_TYPE", `content-type ${type} is not JSON; send application/json`, [
    { field: "content-type", message: `content-type must be application/json, got ${type}` },
  ]);
}

export function createRestApp(deps: ServiceDeps, verifier: ApiKeyVerifier, probe: Probe) {
  const { config, metrics } = deps;
  const routes = apiRoutes(deps);
  const readiness = async () => {
    const checks = await probe.ready();
    const ok = Object.values(checks).every((c) => c === "ok");
    return Response.json({ status: ok ? "ok" : "unavailable", checks, details: probe.details?.() ?? {} }, { status: ok ? 200 : 503 });
  };
  // Built once: the routes do not change while the process runs.
  let openApi = "";
  let docsPage = "";
  const publicRoutes: (PublicRoute & { handle: () => Response | Promise<Response> })[] = [
    {
      method: "GET",
      path: "/",
      operationId: "getIndex",
      summary: "Where the API, its description and the health checks are",
      contentType: "application/json",
      example: INDEX,
      handle: () => Response.json(INDEX),
    },
    {
      method: "GET",
      path: "/api/v1/openapi.json",
      operationId: "getOpenApiDocument",
      summary: "This document",
      contentType: "application/json",
      handle: () => new Response(openApi, { headers: JSON_HEADERS }),
    },
    {
      method: "GET",
      path: "/api/v1/docs",
      operationId: "getApiDocs",
      summary: "This document as a page to read",
      contentType: "text/html",
      handle: () => new Response(docsPage, { headers: { "content-type": "text/html; charset=utf-8" } }),
    },
    {
      method: "GET",
      path: "/healthz",
      operationId: "getHealth",
      summary: "The process is alive",
      contentType: "application/json",
      handle: () => Response.json({ status: "ok" }),
    },
    {
      method: "GET",
      path: "/readyz",
      operationId: "getReadiness",
      summary: "The database and Redis are reachable (503 otherwise)",
      contentType: "application/json",
      handle: readiness,
    },
    {
      method: "GET",
      path: "/metrics",
      operationId: "getMetrics",
      summary: "Prometheus metrics",
      contentType: "text/plain",
      handle: () => new Response(metrics.render(), { headers: { "content-type": "text/plain; version=0.0.4" } }),
    },
  ];
  const document = openApiDocument(routes, publicRoutes);
  openApi = JSON.stringify(document);
  docsPage = renderDocsPage(document);

  /** Runs one REST call: request id, auth, rate limit, body limit, the route, errors, metrics. */
  async function call(
    route: RestRoute,
    rule: CallRule,
    request: Request,
    params: Record<string, string>,
    query: Record<string, string | undefined>,
  ) {
    const started = performance.now();
    const requestId = requestIdFrom(request.headers.get("x-request-id"));
    const log = deps.log.child({ requestId, transport: "rest", route: route.path });
    let limitHeaders: Record<string, string> = {};
    let tenantId: string | undefined;
    try {
      // Path and query text is checked before it can reach a key lookup or a query. A path segment
      // that is not percent-encoded UTF-8 reaches us as null.
      const undecodable = Object.entries(params).filter(([, v]) => typeof v !== "string");
      if (undecodable.length > 0) {
        throw validationError(undecodable.map(([field]) => ({ field, message: `${field} is not percent-encoded UTF-8 text` })));
      }
      checkText(params);
      checkText(query);
      const admitted = await admit(deps, verifier, rule, (name) => request.headers.get(name), requestId, log);
      limitHeaders = admitted.limitHeaders;
      tenantId = admitted.ctx.auth.tenantId || undefined;
      if (route.body !== undefined && route.body !== "ndjson") checkJsonContentType(request.headers.get("content-type"));
      const body =
        route.body === undefined || route.body === "ndjson"
          ? ""
          : await readWithin(readBodyText(request, rule.maxBytes(config)), config.requestReadTimeoutMs);
      const out = await route.run(admitted.ctx, { request, params, query, body });
      deps.requestLog.answered(log, { method: route.method, status: 200, startedAt: started, tenantId });
      // A streamed answer (batch decisions) comes ready-made; it carries the same headers as any other.
      if (out instanceof Response) {
        out.headers.set("x-request-id", requestId);
        for (const [k, v] of Object.entries(limitHeaders)) out.headers.set(k, v);
        return out;
      }
      return jsonResponse(200, out, requestId, limitHeaders);
    } catch (err) {
      const appError = toAppError(err);
      metrics.errors.inc({ code: appError.code, transport: "rest" });
      deps.requestLog.refused(
        log,
        { method: route.method, status: httpStatusOf[appError.code], startedAt: started, tenantId },
        appError,
        err,
      );
      // A refusal after the limit check (a quota, a bad request) still tells the caller where its window stands.
      return errorResponse(appError, requestId, limitHeaders);
    } finally {
      metrics.requestDuration.observe({ route: route.path, transport: "rest" }, (performance.now() - started) / 1000);
    }
  }

  const app = new Elysia();
  for (const route of routes) {
    // Looked up once: a route whose RPC has no rule stops the service at start-up, not at its first call.
    const rule = ruleOfRoute(route);
    app.route(route.method, route.path, ({ request, params, query }) =>
      call(route, rule, request, (params ?? {}) as Record<string, string>, (query ?? {}) as Record<string, string | undefined>),
    );
  }
  for (const route of publicRoutes) {
    app.get(route.path, async ({ request }) => {
      const res = await route.handle();
      res.headers.set("x-request-id", requestIdFrom(request.headers.get("x-request-id")));
      return res;
    });
  }
  // Each path pattern with the methods it is served for, to tell a wrong method from a wrong path.
  const patterns = new Map<string, { pattern: RegExp; methods: Set<string> }>();
  for (const route of [...routes, ...publicRoutes]) {
    const entry = patterns.get(route.path) ?? {
      pattern: new RegExp(`^${route.path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&").replace(/:[A-Za-z]+/g, "[^/]+")}/?$`),
      methods: new Set<string>(),
    };
    entry.methods.add(route.method);
    patterns.set(route.path, entry);
  }
  const allowedMethods = (pathname: string): string[] => {
    const methods = new Set<string>();
    for (const { pattern, methods: m } of patterns.values()) if (pattern.test(pathname)) for (const x of m) methods.add(x);
    return [...methods].sort();
  };
  return app.onError(({ code, request }) => {
    const requestId = requestIdFrom(request.headers.get("x-request-id"));
    if (code === "NOT_FOUND") {
      const allowed = allowedMethods(new URL(request.url).pathname);
      if (allowed.length > 0 && !allowed.includes(request.method)) {
        const allow = allowed.join(", ");
        return errorResponse(new AppError("METHOD_NOT_ALLOWED", `${request.method} is not served here; use ${allow}`), requestId, {
          allow,
        });
      }
      return errorResponse(new AppError("NOT_FOUND", "Route not found"), requestId);
    }
    return errorResponse(toAppError(null), requestId);
  });
}
