// Native gRPC on GRPC_PORT, on the streams of our own HTTP/2 server (h2-server.ts). A unary call with a binary message (nearly
// every call) is served here: the frame is read once within the size limit and the read deadline,
// inflated if gzip or br, decoded once, admitted by the same rules as every transport (call-rules.ts), run by
// the same service function, and answered with one frame and trailers carrying grpc-status, grpc-message
// and grpc-status-details-bin (google.rpc.Status holding our ErrorDetail). Everything else (streaming
// methods such as reflection, the JSON codec) goes through connect-es as before. A stream the client
// resets or destroys at any moment is dropped quietly: nothing here may throw out of a stream event.

import { brotliCompressSync, gzipSync } from "node:zlib";
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import type { UniversalHandler, UniversalServerRequest } from "@connectrpc/connect/protocol";
import { setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { AppError, toAppError, validationError } from "../errors.ts";
import { grpcStatusName } from "../request-log.ts";
import type { ApiKeyVerifier } from "../services/auth.ts";
import type { ServiceDeps } from "../services/context.ts";
import type { Probe } from "../services/health.ts";
import { checkText } from "../services/text.ts";
import { admit, type CallRule, ruleOf } from "./call-rules.ts";
import { handlerValuesOf, registerServices, toConnectError } from "./connect.ts";
import type { ConnectDispatcher } from "./connect-dispatch.ts";
import { grpcTimeoutMs, isUnreadable, MESSAGE_ENCODINGS, unaryMessageOf } from "./grpc-envelope.ts";
import { binaryEncoder } from "./proto-binary.ts";
import { binaryDecoder } from "./proto-binary-decode.ts";
import { Deadlines } from "./deadline-queue.ts";
import { H2_ERROR, type H2Stream, type HeaderFields } from "./h2-server.ts";
import { bodyWithin } from "./read-deadline.ts";
import { requestIdFrom } from "./request-id.ts";

type Impl = (req: unknown, ctx: { values: ReturnType<typeof handlerValuesOf> }) => Promise<unknown>;

interface UnaryMethod {
  service: DescService;
  method: DescMethod;
  impl: Impl;
  rule: CallRule;
  readMaxBytes: number;
  route: string;
  /** The request's binary decoding and the answer's encoding, compiled for their types. */
  decode: (bytes: Uint8Array) => unknown;
  /** The answer's message after five bytes left for its frame header. */
  encode: (message: unknown) => Buffer;
  /** Records a call's duration in seconds under the method's route. */
  observe: (seconds: number) => void;
}

const ENCODINGS = MESSAGE_ENCODINGS.join(",");

// The trailers every successful answer shares are made once. No `date` header: gRPC clients do not
// read it, and it costs a formatted clock per answer.
const OK_TRAILERS: HeaderFields = { "grpc-status": "0" };

/** The unary methods the services implement, by request path, from the same registration Connect uses. */
function unaryMethods(deps: ServiceDeps, probe: Probe): Map<string, UnaryMethod> {
  const methods = new Map<string, UnaryMethod>();
  const handlers: { service: DescService }[] = [];
  const recorder = {
    handlers,
    service(service: DescService, impl: Record<string, unknown>) {
      handlers.push({ service });
      for (const method of service.methods) {
        const fn = impl[method.localName];
        const rule = ruleOf(method);
        // A method without a rule is left to connect-es, whose interceptor refuses it as a wiring fault.
        if (method.methodKind !== "unary" || typeof fn !== "function" || !rule) continue;
        methods.set(`/${service.typeName}/${method.name}`, {
          service,
          method,
          impl: fn.bind(impl) as Impl,
          rule,
          readMaxBytes: rule.maxBytes(deps.config),
          route: `/${service.typeName}/${method.name}`,
          decode: binaryDecoder(method.input),
          encode: binaryEncoder(method.output, 5) as (message: unknown) => Buffer,
          observe: deps.metrics.requestDuration.labelled({ route: `/${service.typeName}/${method.name}`, transport: "grpc" }),
        });
      }
      return recorder;
    },
  };
  registerServices(deps, probe)(recorder as unknown as ConnectRouter);
  return methods;
}

/** The caller's deadline in ms, cut down to the ceiling; the ceiling when none is sent. */
function deadlineMs(value: string | undefined, maxMs: number): number {
  if (value === undefined) return maxMs;
  const ms = grpcTimeoutMs(value);
  if (ms === undefined) throw validationError([{ field: "grpc-timeout", message: `grpc-timeout ${value} is not a gRPC timeout` }]);
  return Math.min(ms, maxMs);
}

/** Reads the request body: at most one frame of at most `maxBytes`, within `ms`. */
function readFrame(stream: H2Stream, maxBytes: number, ms: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const chunks: Uint8Array[] = [];
    let size = 0;
    let settled = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const done = (err: Error | null) => {
      if (settled) return;
      settled = true;
      if (timer !== undefined) clearTimeout(timer);
      stream.stopReading();
      if (err) reject(err);
      else resolve(chunks.length === 1 ? (chunks[0] as Uint8Array) : Buffer.concat(chunks, size));
    };
    // The stream also closes after a normal answer, long after this read settled: no error is made then.
    stream.onClose(() => {
      if (!settled) done(new ConnectError("the caller closed the stream", Code.Canceled));
    });
    stream.read(
      (chunk) => {
        size += chunk.byteLength;
        if (size > maxBytes + 5) done(new AppError("PAYLOAD_TOO_LARGE", `Request message exceeds ${maxBytes} bytes`));
        else chunks.push(chunk);
      },
      () => done(null),
    );
    // The body nearly always comes in the same socket read as the headers, and is parsed right after them,
    // before this microtask runs: the timer is only armed for a body still on its way.
    queueMicrotask(() => {
      if (settled) return;
      timer = setTimeout(
        () => done(new ConnectError(`The request was not received within ${ms} ms (REQUEST_READ_TIMEOUT_MS)`, Code.Canceled)),
        ms,
      );
    });
  });
}

/** The call's answer, or DEADLINE_EXCEEDED once `ms` have passed; a late failure of the call is dropped. */
function withinDeadline<T>(deadlines: Deadlines, call: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const deadline = deadlines.start(ms, () => reject(new ConnectError("the call's deadline passed", Code.DeadlineExceeded)));
    call.then(
      (value) => {
        deadlines.end(deadline);
        resolve(value);
      },
      (err) => {
        deadlines.end(deadline);
        reject(err);
      },
    );
  });
}

function invalidMessage(problem: string): AppError {
  return validationError([{ field: "", message: `request message is not valid protobuf: ${problem}` }]);
}

/** The request message of one frame, read as the screen in front of connect-es reads it. */
function decodeFrame(bytes: Uint8Array, m: UnaryMethod, encoding: string): unknown {
  const read = unaryMessageOf(bytes, encoding, m.readMaxBytes);
  if (isUnreadable(read)) {
    if ("tooLarge" in read) throw new AppError("PAYLOAD_TOO_LARGE", `Request message exceeds ${m.readMaxBytes} bytes`);
    if ("unknownEncoding" in read) {
      throw new ConnectError(`grpc-encoding ${read.unknownEncoding} is not supported; use one of ${ENCODINGS}`, Code.Unimplemented);
    }
    throw invalidMessage(read.problem);
  }
  try {
    return m.decode(read);
  } catch (err) {
    throw invalidMessage(err instanceof Error ? err.message : "undecodable message");
  }
}

/** A message frame from a buffer whose first five bytes are left for its header. */
function framed(buf: Buffer, compressed: boolean): Buffer {
  buf[0] = compressed ? 1 : 0;
  buf.writeUInt32BE(buf.byteLength - 5, 1);
  return buf;
}

function compressedFrame(payload: Uint8Array, encoding: string): Buffer {
  const packed = encoding === "gzip" ? gzipSync(payload) : brotliCompressSync(payload);
  const out = Buffer.allocUnsafe(5 + packed.byteLength);
  out.set(packed, 5);
  return framed(out, true);
}

export interface NativeGrpc {
  /** Serves one HTTP/2 stream; never throws. */
  onStream(stream: H2Stream): void;
  /** Streams being served now. */
  readonly open: number;
  /** Calls whose deadline is still being watched. */
  readonly pendingDeadlines: number;
}

export function createNativeGrpc(
  deps: ServiceDeps,
  verifier: ApiKeyVerifier,
  probe: Probe,
  connect: ConnectDispatcher,
  track: { start(): void; end(): void },
): NativeGrpc {
  const { config, metrics } = deps;
  const methods = unaryMethods(deps, probe);
  const deadlines = new Deadlines();
  let open = 0;
  const closed = () => {
    open--;
  };

  /** Answers with status and headers only (gRPC "trailers-only"): every error, and a few refusals. */
  // Answered before the caller finished sending (too large, too slow), the stream is ended with
  // RST_STREAM(NO_ERROR), as gRPC servers do, instead of waiting on a body nobody will read.
  function respondStatus(stream: H2Stream, error: ConnectError) {
    if (stream.closed || stream.headersSent) return;
    const out = new Headers({ "content-type": "application/grpc+proto", "grpc-accept-encoding": ENCODINGS });
    setTrailerStatus(out, error);
    const fields: HeaderFields = { ":status": 200 };
    out.forEach((v, k) => {
      fields[k] = v;
    });
    stream.respond(fields, true);
  }

  async function serveUnary(stream: H2Stream, m: UnaryMethod) {
    const headers = stream.headers;
    const started = performance.now();
    const requestId = requestIdFrom(headers["x-request-id"]);
    const log = deps.log.child({ requestId, transport: "grpc", route: m.route });
    let limitHeaders: Record<string, string> = {};
    let tenantId: string | undefined;
    track.start();
    try {
      const ms = deadlineMs(headers["grpc-timeout"], config.maxDeadlineMs);
      const encoding = headers["grpc-encoding"]?.trim() || "identity";
      const bytes = await readFrame(stream, m.readMaxBytes, Math.min(config.requestReadTimeoutMs, ms));
      const message = decodeFrame(bytes, m, encoding);
      checkText(message);
      const admitted = await admit(deps, verifier, m.rule, (name) => headers[name], requestId, log);
      limitHeaders = admitted.limitHeaders;
      tenantId = admitted.ctx.auth.tenantId || undefined;
      const res = await withinDeadline(deadlines, m.impl(message, { values: handlerValuesOf(admitted.ctx) }), ms);
      // An answer after the caller's deadline is one it no longer waits for.
      if (performance.now() - started > ms) throw new ConnectError("the call's deadline passed", Code.DeadlineExceeded);
      const encoded = m.encode(res);
      // A compressed request is answered in kind when the caller accepts it.
      const compress =
        encoding !== "identity" &&
        encoded.byteLength - 5 >= 1024 &&
        (headers["grpc-accept-encoding"] ?? "")
          .split(",")
          .map((e) => e.trim())
          .includes(encoding);
      const body = compress ? compressedFrame(encoded.subarray(5), encoding) : framed(encoded, false);
      if (stream.closed) return;
      const out: HeaderFields = {
        ":status": 200,
        "content-type": "application/grpc+proto",
        "grpc-accept-encoding": ENCODINGS,
        "x-request-id": requestId,
      };
      if (compress) out["grpc-encoding"] = encoding;
      for (const name in limitHeaders) out[name] = limitHeaders[name];
      stream.respond(out);
      stream.end(body, OK_TRAILERS);
      deps.requestLog.answered(log, { status: "OK", startedAt: started, tenantId });
    } catch (err) {
      let error: ConnectError;
      if (err instanceof ConnectError) {
        error = err;
        error.metadata.set("x-request-id", requestId);
        deps.requestLog.ended(log, { status: grpcStatusName(err.code), startedAt: started, tenantId }, err.rawMessage);
      } else {
        let appError = toAppError(err);
        if (Object.keys(limitHeaders).length > 0) {
          appError = new AppError(
            appError.code,
            appError.message,
            appError.details,
            { ...limitHeaders, ...appError.headers },
            appError.conflict,
          );
        }
        metrics.errors.inc({ code: appError.code, transport: "grpc" });
        error = toConnectError(appError, requestId);
        deps.requestLog.refused(log, { status: grpcStatusName(error.code), startedAt: started, tenantId }, appError, err);
      }
      respondStatus(stream, error);
    } finally {
      track.end();
      m.observe((performance.now() - started) / 1000);
    }
  }

  /** Any other call, through connect-es on a universal request made from the stream. */
  async function serveUniversal(stream: H2Stream, handler: UniversalHandler) {
    const headers = stream.headers;
    track.start();
    const abort = new AbortController();
    stream.onClose(() => abort.abort());
    try {
      const header = new Headers();
      for (const name in headers) {
        if (!name.startsWith(":")) header.append(name, headers[name] as string);
      }
      const req: UniversalServerRequest = {
        httpVersion: "2.0",
        method: headers[":method"] ?? "POST",
        url: `http://${headers[":authority"] ?? "localhost"}${headers[":path"] ?? "/"}`,
        header,
        body: bodyWithin(stream.chunks(), config.requestReadTimeoutMs),
        signal: abort.signal,
      };
      const res = await connect.handle(handler, req, requestIdFrom(header.get("x-request-id")));
      if (stream.closed) return;
      const out: HeaderFields = { ":status": res.status };
      res.header?.forEach((v, k) => {
        out[k] = v;
      });
      const body = res.body;
      const trailer = res.trailer;
      if (!body && !trailer) {
        stream.respond(out, true);
        return;
      }
      stream.respond(out);
      if (body instanceof Uint8Array) stream.write(body);
      else if (body && typeof body === "object" && Symbol.asyncIterator in body) {
        for await (const chunk of body as AsyncIterable<Uint8Array>) {
          if (stream.closed) return;
          if (!stream.write(chunk)) await new Promise<void>((resolve) => stream.onDrain(resolve));
        }
      }
      let trailers: HeaderFields | undefined;
      if (trailer) {
        trailers = {};
        for (const [k, v] of trailer) trailers[k] = v;
      }
      stream.end(undefined, trailers);
    } catch (err) {
      deps.log.warn("grpc stream failed", { err: err instanceof Error ? err.message : String(err) });
      stream.reset(H2_ERROR.INTERNAL_ERROR);
    } finally {
      track.end();
    }
  }

  return {
    get open() {
      return open;
    },
    get pendingDeadlines() {
      return deadlines.pending.calls;
    },
    onStream(stream) {
      open++;
      stream.onClose(closed);
      const headers = stream.headers;
      const path = (headers[":path"] ?? "").split("?", 1)[0] ?? "";
      const type = headers["content-type"] ?? "";
      const m = methods.get(path);
      if (m && (type === "application/grpc" || type === "application/grpc+proto")) {
        void serveUnary(stream, m);
        return;
      }
      const handler = connect.match(path);
      if (handler) {
        void serveUniversal(stream, handler);
        return;
      }
      if (!type.startsWith("application/grpc")) {
        stream.respond({ ":status": 404 }, true);
        return;
      }
      respondStatus(stream, new ConnectError(`unknown method ${path}`, Code.Unimplemented));
    },
  };
}
