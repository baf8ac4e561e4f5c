// The two listeners of one process. PORT is Bun.serve over HTTP/1.1: Connect and gRPC-Web calls go to
// the Connect dispatcher, everything else to the REST app. GRPC_PORT is node:http2 in cleartext (h2c)
// for native gRPC, which needs HTTP trailers that Bun.serve cannot send.

import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { universalServerRequestFromFetch, universalServerResponseToFetch } from "@connectrpc/connect/protocol";
import type { ApiKeyVerifier } from "../services/auth.ts";
import type { ServiceDeps } from "../services/context.ts";
import type { Probe } from "../services/health.ts";
import { createConnectDispatcher } from "./connect-dispatch.ts";
import { createNativeGrpc } from "./grpc-native.ts";
import { createRestApp } from "./rest.ts";
import { bodyWithin } from "./read-deadline.ts";
import { requestIdFrom } from "./request-id.ts";

export interface Listeners {
  port: number;
  grpcPort: number;
  /** Native gRPC streams open now (a call the client abandoned included, until it is closed). */
  readonly openGrpcStreams: number;
  /** Stops accepting, waits for in-flight requests (up to the shutdown timeout), then closes. */
  shutdown(): Promise<void>;
}

export async function startListeners(deps: ServiceDeps, verifier: ApiKeyVerifier, probe: Probe): Promise<Listeners> {
  const { config, log } = deps;
  const shutdownController = new AbortController();
  const connect = createConnectDispatcher(deps, verifier, probe, shutdownController.signal);
  const rest = createRestApp(deps, verifier, probe);

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

  async function dispatch(request: Request): Promise<Response> {
    const url = new URL(request.url);
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

  const sessions = new Set<http2.ServerHttp2Session>();
  const grpc = http2.createServer({
    maxSessionMemory: 64,
    settings: { maxConcurrentStreams: config.grpcMaxConcurrentStreams, maxHeaderListSize: 64 * 1024 },
  });
  // Connections beyond the cap are closed as they arrive.
  grpc.maxConnections = config.grpcMaxConnections;
  const native = createNativeGrpc(deps, verifier, probe, connect, { start: () => inFlight++, end: settle });
  grpc.on("stream", (stream, headers) => native.onStream(stream as http2.ServerHttp2Stream, headers));
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
    get openGrpcStreams() {
      return native.open;
    },
    async shutdown() {
      // Stop accepting on both listeners; requests already accepted run to completion.
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
