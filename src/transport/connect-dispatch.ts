// One entry point for Connect, gRPC and gRPC-Web calls from either listener: it finds the handler for a
// path, fixes the request id on the way in and out, and screens binary messages so that a malformed one
// is reported as the caller's mistake (invalid_argument) rather than the protocol layer's internal error.

import { fromBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createConnectRouter } from "@connectrpc/connect";
import { compressionBrotli, compressionGzip } from "@connectrpc/connect-node";
import type { UniversalHandler, UniversalServerRequest, UniversalServerResponse } from "@connectrpc/connect/protocol";
import type { ApiKeyVerifier } from "../services/auth.ts";
import type { ServiceDeps } from "../services/context.ts";
import type { Probe } from "../services/health.ts";
import { maxBytesOf } from "./call-rules.ts";
import { declaredLength, grpcTimeoutMs, inflate, isUnreadable, messageOf, type Unreadable, unaryMessageOf } from "./grpc-envelope.ts";
import { INVALID_MESSAGE_HEADER, registerServices, routerOptions } from "./connect.ts";

const EMPTY_ENVELOPE = new Uint8Array(5);
const EMPTY_JSON = new TextEncoder().encode("{}");
const EMPTY_JSON_ENVELOPE = new Uint8Array([0, 0, 0, 0, 2, 0x7b, 0x7d]);

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

// biome-ignore lint/correctness/useYield: a body that fails on its first read
async function* failing(err: unknown): AsyncIterable<Uint8Array> {
  throw err;
}

type Wire = "grpc" | "grpc-json" | "connect-proto" | "connect-json";

function wireOf(handler: UniversalHandler, req: UniversalServerRequest): Wire | null {
  // A server-streaming call also starts with exactly one message.
  const single = handler.method.methodKind === "unary" || handler.method.methodKind === "server_streaming";
  if (!single || !req.body || !(Symbol.asyncIterator in Object(req.body))) return null;
  const type = req.header.get("content-type") ?? "";
  if (isBinaryGrpc(type)) return "grpc";
  // gRPC with the JSON codec: the envelope and its compression are checked here, the JSON by the protocol layer.
  if (/^application\/grpc(-web)?\+json(;|$)/.test(type)) return "grpc-json";
  if (/^application\/proto(;|$)/.test(type)) return "connect-proto";
  // A JSON body is judged by the protocol layer, which answers invalid_argument; only its compression is checked here.
  if (/^application\/json(;|$)/.test(type) && req.header.has("content-encoding")) return "connect-json";
  return null;
}

/**
 * What is wrong with a message as read from its envelope, or null when the protocol layer can take it:
 * a binary message must decode (a JSON one is judged by the protocol layer). One too large once inflated,
 * or of an encoding this layer does not know, is left for the protocol layer to refuse.
 */
function readProblem(handler: UniversalHandler, read: Uint8Array | Unreadable, json: boolean): string | null {
  if (isUnreadable(read)) return "problem" in read ? read.problem : null;
  return json ? null : decodeProblem(handler, read);
}

function decodeProblem(handler: UniversalHandler, message: Uint8Array): string | null {
  try {
    fromBinary(handler.method.input, message);
    return null;
  } catch (err) {
    return err instanceof Error ? err.message : "undecodable message";
  }
}

/** What is wrong with a whole unary body of this wire, or null when the protocol layer can take it. */
function problemOf(handler: UniversalHandler, req: UniversalServerRequest, wire: Wire, bytes: Uint8Array, maxBytes: number): string | null {
  if (wire === "grpc" || wire === "grpc-json") {
    const encoding = req.header.get("grpc-encoding") ?? "identity";
    return readProblem(handler, unaryMessageOf(bytes, encoding, maxBytes), wire === "grpc-json");
  }
  const encoding = req.header.get("content-encoding") ?? "identity";
  return readProblem(handler, encoding === "identity" ? bytes : inflate(bytes, encoding, maxBytes), wire === "connect-json");
}

/**
 * The messages of a client-streaming or bidi gRPC call, each checked as it completes (as a unary one is
 * below): the first bad one ends the call with invalid_argument, in the call's own protocol, instead of
 * the protocol layer's internal error. A message over the size limit is passed on for it to refuse.
 */
async function* screenedStream(
  body: AsyncIterable<Uint8Array>,
  handler: UniversalHandler,
  encoding: string,
  json: boolean,
  maxBytes: number,
): AsyncIterable<Uint8Array> {
  const refuse = (problem: string) => new ConnectError(`request message is not valid protobuf: ${problem}`, Code.InvalidArgument);
  let buffer: Uint8Array = new Uint8Array(0);
  let passThrough = false;
  for await (const chunk of body) {
    if (passThrough) {
      yield chunk;
      continue;
    }
    buffer = buffer.byteLength === 0 ? chunk : Buffer.concat([buffer, chunk]);
    while (buffer.byteLength >= 5) {
      const length = declaredLength(buffer);
      if (length > maxBytes) {
        passThrough = true;
        break;
      }
      if (buffer.byteLength < 5 + length) break;
      const problem = readProblem(handler, messageOf(buffer[0] as number, buffer.subarray(5, 5 + length), encoding, maxBytes), json);
      if (problem) throw refuse(problem);
      yield buffer.subarray(0, 5 + length);
      buffer = buffer.subarray(5 + length);
    }
    if (passThrough && buffer.byteLength > 0) {
      yield buffer;
      buffer = new Uint8Array(0);
    }
  }
  if (buffer.byteLength > 0) throw refuse("the last message is shorter than its declared length");
}

/**
 * Reads the one message of a unary or server-streaming call (gRPC, gRPC-Web or Connect binary, up to the size limit) and checks what the
 * protocol layer would otherwise report as its own internal error: the envelope (one message, of its
 * declared length, flags it knows), the compression (a compressed flag with an encoding, data that
 * inflates) and the message (it decodes). A body that fails is replaced by an empty message, with the
 * complaint in a header the interceptor turns into VALIDATION_ERROR. An oversized body, or an encoding
 * this layer does not know, is passed on untouched for the protocol layer to refuse.
 */
async function screenBinaryMessage(
  handler: UniversalHandler,
  req: UniversalServerRequest,
  maxBytes: number,
): Promise<UniversalServerRequest> {
  req.header.delete(INVALID_MESSAGE_HEADER);
  // An empty encoding header names no encoding.
  for (const name of ["grpc-encoding", "content-encoding"]) if (req.header.get(name)?.trim() === "") req.header.delete(name);
  const kind = handler.method.methodKind;
  if ((kind === "client_streaming" || kind === "bidi_streaming") && req.body && Symbol.asyncIterator in Object(req.body)) {
    const type = req.header.get("content-type") ?? "";
    const json = /^application\/grpc(-web)?\+json(;|$)/.test(type);
    if (!json && !isBinaryGrpc(type)) return req;
    const encoding = req.header.get("grpc-encoding") ?? "identity";
    return { ...req, body: screenedStream(req.body as AsyncIterable<Uint8Array>, handler, encoding, json, maxBytes) };
  }
  const wire = wireOf(handler, req);
  if (!wire) return req;
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
  const problem = problemOf(handler, req, wire, bytes, maxBytes);
  if (problem === null) return { ...req, body: replay([bytes], null) };
  req.header.set(INVALID_MESSAGE_HEADER, problem);
  req.header.delete("grpc-encoding");
  req.header.delete("content-encoding");
  const empty =
    wire === "grpc"
      ? EMPTY_ENVELOPE
      : wire === "grpc-json"
        ? EMPTY_JSON_ENVELOPE
        : wire === "connect-json"
          ? EMPTY_JSON
          : new Uint8Array(0);
  return { ...req, body: replay([empty], null) };
}

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
  const grpcMs = grpc ? grpcTimeoutMs(grpc) : undefined;
  if (grpcMs !== undefined && grpcMs > maxMs) header.set("grpc-timeout", `${maxMs}m`);
  const connect = header.get("connect-timeout-ms");
  if (connect && /^\d{1,10}$/.test(connect) && Number(connect) > maxMs) header.set("connect-timeout-ms", String(maxMs));
}

export interface ConnectDispatcher {
  /** The handler for a request path, if it is one of the contract's procedures. */
  match(path: string): UniversalHandler | undefined;
  /** The same, for HTTP/1.1: only procedures whose requests do not stream. */
  matchHttp1(path: string): UniversalHandler | undefined;
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
    // A call that streams its requests needs HTTP/2: over HTTP/1.1 it is not a route at all.
    matchHttp1: (path) => {
      const h = handlers.get(path);
      return h && (h.method.methodKind === "unary" || h.method.methodKind === "server_streaming") ? h : undefined;
    },
    async handle(handler, req, requestId) {
      req.header.set("x-request-id", requestId);
      capDeadline(req.header, deps.config.maxDeadlineMs);
      const res = await handler(await screenBinaryMessage(handler, req, maxBytesOf(handler.method, deps)));
      const header = new Headers(res.header);
      header.set("x-request-id", requestId);
      return { ...res, header };
    },
  };
}
