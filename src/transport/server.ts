// The two listeners of one process. PORT is Bun.serve over HTTP/1.1: Connect and gRPC-Web calls go to
// the Connect router's fetch handlers, everything else to the REST app. GRPC_PORT is node:http2 in
// cleartext (h2c) for native gRPC, which needs HTTP trailers that Bun.serve cannot send.

import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { createConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { UniversalHandler } from "@connectrpc/connect/protocol";
import { universalServerRequestFromFetch, universalServerResponseToFetch } from "@connectrpc/connect/protocol";
import type { ApiKeyVerifier } from "../services/auth.ts";
import type { ServiceDeps } from "../services/context.ts";
import { registerServices, routerOptions } from "./connect.ts";
import { createRestApp, type Probe } from "./rest.ts";
import { requestIdFrom } from "./request-id.ts";

export interface Listeners {
  port: number;
  grpcPort: number;
  /** Stops accepting, waits for in-flight requests (up to the shutdown timeout), then closes. */
  shutdown(): Promise<void>;
}

export async function startListeners(deps: ServiceDeps, verifier: ApiKeyVerifier, probe: Probe): Promise<Listeners> {
  const { config, log } = deps;
  const shutdownController = new AbortController();
  const options = routerOptions(deps, verifier, shutdownController.signal);
  const routes = registerServices(deps);

  const router = createConnectRouter(options);
  routes(router);
  const connectHandlers = new Map<string, UniversalHandler>(router.handlers.map((h) => [h.requestPath, h]));
  const rest = createRestApp(deps, verifier, probe);

  let inFlight = 0;
  let drained: (() => void) | null = null;
  const settle = () => {
    inFlight--;
    if (inFlight === 0 && drained) drained();
  };

  async function dispatch(request: Request): Promise<Response> {
    const path = new URL(request.url).pathname;
    const handler = connectHandlers.get(path);
    if (!handler) return rest.handle(request);
    // Connect and gRPC-Web: same router, same interceptor as native gRPC. The request id is fixed here so
    // that errors raised before the interceptor (a malformed or oversized message) carry it too; the
    // router's readMaxBytes enforces the size limit.
    const requestId = requestIdFrom(request.headers.get("x-request-id"));
    const header = new Headers(request.headers);
    header.set("x-request-id", requestId);
    const res = await handler({ ...universalServerRequestFromFetch(request, { httpVersion: "1.1" }), header });
    if (!res.header) res.header = new Headers();
    else res.header = new Headers(res.header);
    (res.header as Headers).set("x-request-id", requestId);
    return universalServerResponseToFetch(res);
  }

  const http = Bun.serve({
    hostname: config.host,
    port: config.port,
    idleTimeout: config.idleTimeoutSeconds,
    // A hard ceiling well above the configured limit; the handlers enforce the limit itself, so the
    // caller gets the error in its protocol's shape.
    maxRequestBodySize: config.maxBodyBytes * 4 + 64 * 1024,
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

  const nodeHandler = connectNodeAdapter({ ...options, routes });
  const sessions = new Set<http2.ServerHttp2Session>();
  const grpc = http2.createServer(
    {
      maxSessionMemory: 64,
      settings: { maxConcurrentStreams: 1000, maxHeaderListSize: 64 * 1024 },
    },
    (req, res) => {
      inFlight++;
      res.once("close", settle);
      req.headers["x-request-id"] = requestIdFrom(req.headers["x-request-id"] as string | undefined);
      nodeHandler(req, res);
    },
  );
  grpc.on("session", (session) => {
    sessions.add(session);
    session.setTimeout(config.idleTimeoutSeconds * 1000, () => session.close());
    session.once("close", () => sessions.delete(session));
  });
  await new Promise<void>((resolve, reject) => {
    grpc.once("error", reject);
    grpc.listen(config.grpcPort, config.host, () => resolve());
  });
  const grpcPort = (grpc.address() as AddressInfo).port;
  log.info("listening", { port: http.port, grpcPort });

  return {
    port: http.port as number,
    grpcPort,
    async shutdown() {
      // Stop accepting on both listeners; connections already open finish what they started.
      http.stop(false);
      grpc.close();
      for (const s of sessions) s.close();
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
      for (const s of sessions) s.destroy();
    },
  };
}
