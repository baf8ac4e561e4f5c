// One entry point for Connect, gRPC and gRPC-Web calls from either listener: it finds the handler for a
// path, fixes the request id on the way in and out, and screens binary messages so that a malformed one
// is reported as the caller's mistake (invalid_argument) rather than the protocol layer's internal error.

import { fromBinary } from "@bufbuild/protobuf";
import { createConnectRouter } from "@connectrpc/connect";
import { compressionBrotli, compressionGzip } from "@connectrpc/connect-node";
import type { UniversalHandler, UniversalServerRequest, UniversalServerResponse } from "@connectrpc/connect/protocol";
import type { ApiKeyVerifier } from "../services/auth.ts";
import type { ServiceDeps } from "../services/context.ts";
import type { Probe } from "../services/health.ts";
import { INVALID_MESSAGE_HEADER, registerServices, routerOptions } from "./connect.ts";

const EMPTY_ENVELOPE = new Uint8Array(5);

function isBinaryGrpc(contentType: string | null): boolean {
  if (!contentType) return false;
  return /^application\/grpc(-web)?(\+proto)?(;|$)/.test(contentType);
}

async function* replay(chunks: Uint8Array[], rest: AsyncIterator<Uint8Array> | null): AsyncIterable<Uint8Array> {
  yield* chunks;
  if (!rest) return;
  for (;;) {
    const next = await rest.next();
    if (next.done) return;
    yield next.value;
  }
}

/**
 * Reads a unary binary gRPC message (up to the size limit) and checks that it decodes. A message that
 * does not decode is replaced by an empty one, with the decoder's complaint in a header the interceptor
 * turns into VALIDATION_ERROR. Anything unusual (compressed, oversized, several envelopes) is passed on
 * untouched for the protocol layer to judge.
 */
// biome-ignore lint/correctness/useYield: a body that fails on its first read
async function* failing(err: unknown): AsyncIterable<Uint8Array> {
  throw err;
}

async function screenBinaryMessage(
  handler: UniversalHandler,
  req: UniversalServerRequest,
  maxBytes: number,
): Promise<UniversalServerRequest> {
  req.header.delete(INVALID_MESSAGE_HEADER);
  if (
    handler.method.methodKind !== "unary" ||
    !isBinaryGrpc(req.header.get("content-type")) ||
    !req.body ||
    !(Symbol.asyncIterator in Object(req.body))
  ) {
    return req;
  }
  const iterator = (req.body as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let done = false;
  try {
    while (size <= maxBytes + 5) {
      const next = await iterator.next();
      if (next.done) {
        done = true;
        break;
      }
      chunks.push(next.value);
      size += next.value.byteLength;
    }
  } catch (err) {
    // The body could not be read (the caller too slow, the stream gone): the handler reads the same
    // failure and answers it in the call's own protocol.
    return { ...req, body: failing(err) };
  }
  if (!done) return { ...req, body: replay(chunks, iterator) };
  const bytes = chunks.length === 1 ? (chunks[0] as Uint8Array) : Buffer.concat(chunks);
  if (bytes.byteLength >= 5 && bytes[0] === 0) {
    const length = new DataView(bytes.buffer, bytes.byteOffset + 1, 4).getUint32(0);
    if (5 + length === bytes.byteLength) {
      try {
        fromBinary(handler.method.input, bytes.subarray(5));
      } catch (err) {
        req.header.set(INVALID_MESSAGE_HEADER, err instanceof Error ? err.message : "undecodable message");
        return { ...req, body: replay([EMPTY_ENVELOPE], null) };
      }
    }
  }
  return { ...req, body: replay([bytes], null) };
}

/** Milliseconds per unit of a gRPC timeout (`grpc-timeout: 250m`). */
const GRPC_TIMEOUT_UNITS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 1e-3, n: 1e-6 };

/**
 * A caller's deadline longer than MAX_DEADLINE_MS is cut down to it rather than refused: the caller asked
 * for at most that long, and gets at most our ceiling. A call without one gets the ceiling, so that no call
 * runs unbounded. A malformed value is left for the protocol to refuse.
 */
export function capDeadline(header: Headers, maxMs: number): void {
  if (!header.has("grpc-timeout") && !header.has("connect-timeout-ms")) {
    const grpcFamily = (header.get("content-type") ?? "").startsWith("application/grpc");
    header.set(grpcFamily ? "grpc-timeout" : "connect-timeout-ms", grpcFamily ? `${maxMs}m` : String(maxMs));
    return;
  }
  const grpc = header.get("grpc-timeout");
  const match = grpc ? /^(\d{1,8})([HMSmun])$/.exec(grpc) : null;
  if (match && Number(match[1]) * (GRPC_TIMEOUT_UNITS[match[2] as string] as number) > maxMs) header.set("grpc-timeout", `${maxMs}m`);
  const connect = header.get("connect-timeout-ms");
  if (connect && /^\d{1,10}$/.test(connect) && Number(connect) > maxMs) header.set("connect-timeout-ms", String(maxMs));
}

export interface ConnectDispatcher {
  /** The handler for a request path, if it is one of the contract's procedures. */
  match(path: string): UniversalHandler | undefined;
  handle(handler: UniversalHandler, req: UniversalServerRequest, requestId: string): Promise<UniversalServerResponse>;
}

export function createConnectDispatcher(
  deps: ServiceDeps,
  verifier: ApiKeyVerifier,
  probe: Probe,
  shutdownSignal: AbortSignal,
): ConnectDispatcher {
  const router = createConnectRouter({
    ...routerOptions(deps, verifier, shutdownSignal),
    acceptCompression: [compressionGzip, compressionBrotli],
  });
  registerServices(deps, probe)(router);
  const handlers = new Map(router.handlers.map((h) => [h.requestPath, h]));
  return {
    match: (path) => handlers.get(path),
    async handle(handler, req, requestId) {
      req.header.set("x-request-id", requestId);
      capDeadline(req.header, deps.config.maxDeadlineMs);
      const res = await handler(await screenBinaryMessage(handler, req, deps.config.maxBodyBytes));
      const header = new Headers(res.header);
      header.set("x-request-id", requestId);
      return { ...res, header };
    },
  };
}
