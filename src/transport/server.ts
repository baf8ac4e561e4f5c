// The listeners of one process. PORT is Bun.serve over HTTP/1.1: Connect and gRPC-Web calls go to
// the Connect dispatcher, everything else to the REST app. GRPC_PORT is our own HTTP/2 server in
// cleartext (h2c, h2-server.ts) for native gRPC, which needs HTTP trailers that Bun.serve cannot send. METRICS_PORT, when set, is a
// small Bun.serve of its own for GET /metrics, which PORT then answers 404.

import { createHash, timingSafeEqual } from "node:crypto";
import { universalServerRequestFromFetch, universalServerResponseToFetch } from "@connectrpc/connect/protocol";
import type { ApiKeyVerifier } from "../services/auth.ts";
import type { ServiceDeps } from "../services/context.ts";
import type { Probe } from "../services/health.ts";
import { AppError } from "../errors.ts";
import type { Metrics } from "../metrics.ts";
import { pathOf } from "./call-rules.ts";
import { createConnectDispatcher } from "./connect-dispatch.ts";
import { createNativeGrpc } from "./grpc-native.ts";
import { listenH2 } from "./h2-server.ts";
import { createRestApp, errorResponse } from "./rest.ts";
import { apiRoutes } from "./routes/index.ts";
import { bodyWithin } from "./read-deadline.ts";
import { requestIdFrom } from "./request-id.ts";

export interface Listeners {
  port: number;
  grpcPort: number;
  /** The listener of GET /metrics alone (METRICS_PORT); null when /metrics is served on `port`. */
  metricsPort: number | null;
  /** Native gRPC streams open now (a call the client abandoned included, until it is closed). */
  readonly openGrpcStreams: number;
  /** Native gRPC calls whose deadline is still being watched. */
  readonly pendingGrpcDeadlines: number;
  /** Stops accepting, waits for in-flight requests (up to the shutdown timeout), then closes. */
  shutdown(): Promise<void>;
}

const isMetricsPath = (pathname: string) => pathname === "/metrics" || pathname === "/metrics/";

/**
 * GET /metrics, behind METRICS_TOKEN when one is set (`Authorization: Bearer <token>`), compared by digest
 * in constant time.
 */
export function metricsHandler(metrics: Metrics, tokenHash: string | null): (request: Request) => Response {
  const expected = tokenHash ? Buffer.from(tokenHash, "hex") : null;
  return (request) => {
    const requestId = requestIdFrom(request.headers.get("x-request-id"));
    if (request.method !== "GET" && request.method !== "HEAD") {
      return errorResponse(new AppError("METHOD_NOT_ALLOWED", `${request.method} is not served here; use GET`), requestId, {
        allow: "GET",
      });
    }
    if (expected) {
      const given = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.get("authorization") ?? "")?.[1] ?? "";
      if (!timingSafeEqual(createHash("sha256").update(given).digest(), expected)) {
        return errorResponse(new AppError("UNAUTHORIZED", "The metrics need the bearer token of METRICS_TOKEN"), requestId, {
          "www-authenticate": 'Bearer realm="metrics"',
        });
      }
    }
    return new Response(metrics.render(), {
      headers: { "content-type": "text/plain; version=0.0.4", "x-request-id": requestId },
    });
  };
}

export async function startListeners(deps: ServiceDeps, verifier: ApiKeyVerifier, probe: Probe): Promise<Listeners> {
  const { config, log } = deps;
  const shutdownController = new AbortController();
  const connect = createConnectDispatcher(deps, verifier, probe, shutdownController.signal);
  const rest = createRestApp(deps, verifier, probe);
  // Calls over REST are counted under the RPC each route serves, as over gRPC and Connect.
  deps.metrics.rpcs.nameRestRoutes(
    apiRoutes(deps).map((r) => ({ method: r.method, path: r.path, name: r.restOnly ? r.operationId : pathOf(r.rpc).slice(1) })),
  );
  const serveMetrics = metricsHandler(deps.metrics, config.metricsTokenHash);
  // With a port of their own, or a token, the metrics are no longer the REST app's plain public route.
  const metricsOnPublicPort: ((request: Request) => Response) | null =
    config.metricsPort !== null
      ? (request) => errorResponse(new AppError("NOT_FOUND", "Route not found"), requestIdFrom(request.headers.get("x-request-id")))
      : config.metricsTokenHash
        ? serveMetrics
        : null;

  const withinReadTimeout = <B>(body: B): B =>
    body && typeof body === "object" && Symbol.asyncIterator in body
      ? (bodyWithin(body as AsyncIterable<Uint8Array>, config.requestReadTimeoutMs) as B)
      : body;

  let inFlight = 0;
  let drained: (() => void) | null = null;
  const settle = () => {
    inFlight--;
    if (inFlight === 0 && drained) drained();
  };
  deps.metrics.collect(() => deps.metrics.requestsInFlight.set({}, inFlight));

  async function dispatch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (metricsOnPublicPort && isMetricsPath(url.pathname)) return metricsOnPublicPort(request);
    const handler = connect.matchHttp1(url.pathname);
    if (!handler) return rest.handle(request);
    const requestId = requestIdFrom(request.headers.get("x-request-id"));
    const req = universalServerRequestFromFetch(request, { httpVersion: "1.1" });
    return universalServerResponseToFetch(
      await connect.handle(handler, { ...req, body: withinReadTimeout(req.body), header: new Headers(request.headers) }, requestId),
    );
  }

  const http = Bun.serve({
    hostname: config.host,
    port: config.port,
    idleTimeout: config.idleTimeoutSeconds,
    // No ceiling here: the customer import streams bodies of any size line by line, and every other
    // handler enforces MAX_BODY_BYTES itself while reading (REST counts a chunked body as it streams,
    // Connect its readMaxBytes), so the caller gets the error in its protocol's shape.
    maxRequestBodySize: Number.MAX_SAFE_INTEGER,
    development: false,
    async fetch(request) {
      inFlight++;
      try {
        return await dispatch(request);
      } finally {
        settle();
      }
    },
  });

  const metricsServer =
    config.metricsPort === null
      ? null
      : Bun.serve({
          hostname: config.host,
          port: config.metricsPort,
          idleTimeout: config.idleTimeoutSeconds,
          // A scrape sends no body.
          maxRequestBodySize: 1024,
          development: false,
          fetch(request) {
            if (isMetricsPath(new URL(request.url).pathname)) return serveMetrics(request);
            return errorResponse(new AppError("NOT_FOUND", "Route not found"), requestIdFrom(request.headers.get("x-request-id")));
          },
        });

  const native = createNativeGrpc(deps, verifier, probe, connect, { start: () => inFlight++, end: settle });
  const grpc = listenH2({
    hostname: config.host,
    port: config.grpcPort,
    maxConnections: config.grpcMaxConnections,
    maxConcurrentStreams: config.grpcMaxConcurrentStreams,
    idleTimeoutSeconds: config.idleTimeoutSeconds,
    onStream: (stream) => native.onStream(stream),
    log,
  });
  const grpcPort = grpc.port;
  const metricsPort = metricsServer ? (metricsServer.port as number) : null;
  log.info("listening", { port: http.port, grpcPort, ...(metricsPort !== null ? { metricsPort } : {}) });

  return {
    port: http.port as number,
    grpcPort,
    metricsPort,
    get openGrpcStreams() {
      return native.open;
    },
    get pendingGrpcDeadlines() {
      return native.pendingDeadlines;
    },
    async shutdown() {
      // Stop accepting on both listeners; requests already accepted run to completion.
      http.stop(false);
      grpc.close();
      if (inFlight > 0) {
        log.info("draining in-flight requests", { inFlight });
        await Promise.race([
          new Promise<void>((resolve) => {
            drained = resolve;
          }),
          Bun.sleep(config.shutdownTimeoutMs),
        ]);
      }
      shutdownController.abort();
      http.stop(true);
      grpc.destroy();
      // Scraped until the end, so the drain itself shows in the metrics.
      metricsServer?.stop(true);
    },
  };
}
