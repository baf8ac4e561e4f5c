// One log line per request, written by every transport when its call ends: `request` at info for an
// answered call (a sample of them, REQUEST_LOG_SAMPLE_RATE), `request refused` at info for a call
// refused with a client's or a dependency's error (its code, message and fields; at most ten a second,
// those held back counted in the next), `request failed` at error for an unexpected failure, with the
// cause. Each carries the transport, route, status, duration, request id and tenant. The same call counts
// the request in the metrics (kaireon_rpc_requests_total and its latency), whether it is logged or not.

import { Code } from "@connectrpc/connect";
import type { AppError } from "./errors.ts";
import { httpStatusOf } from "./errors.ts";
import { type Logger, Throttle } from "./log.ts";
import type { Metrics } from "./metrics.ts";

/** A gRPC status by its canonical name (INVALID_ARGUMENT), from connect-es's code. */
export function grpcStatusName(code: Code): string {
  return Code[code].replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}

export interface RequestSummary {
  /** The HTTP status on REST, the gRPC status name (OK, INVALID_ARGUMENT…) on Connect and gRPC. */
  status: number | string;
  startedAt: number;
  /** The tenant the call was admitted for, once it was. */
  tenantId?: string;
  /** The HTTP method, on REST. */
  method?: string;
}

export class RequestLog {
  // Ten refusals a second: enough to see what callers get wrong, too few to matter under a flood.
  private readonly refusals = new Throttle(10);

  constructor(
    private readonly sampleRate: number,
    private readonly random: () => number = Math.random,
    private readonly metrics: Metrics | null = null,
  ) {}

  /** Counts the call under the transport and route its logger carries; returns its duration in ms. */
  private count(log: Logger, s: RequestSummary): number {
    const ms = performance.now() - s.startedAt;
    if (this.metrics) {
      const bound = log.fields;
      const transport = bound?.transport;
      const route = bound?.route;
      this.metrics.rpcs.record(
        typeof transport === "string" ? transport : "unknown",
        typeof route === "string" ? route : "unknown",
        s.method ?? "",
        s.status,
        ms / 1000,
      );
    }
    return ms;
  }

  private fields(s: RequestSummary, ms: number, held?: number): Record<string, unknown> {
    return {
      ...(s.method ? { method: s.method } : {}),
      status: s.status,
      durationMs: Math.round(ms * 1000) / 1000,
      ...(s.tenantId ? { tenantId: s.tenantId } : {}),
      ...(held ? { refusalsNotLogged: held } : {}),
    };
  }

  /** An answered call: logged for a sample of them. */
  answered(log: Logger, s: RequestSummary): void {
    const ms = this.count(log, s);
    if (this.sampleRate <= 0 || (this.sampleRate < 1 && this.random() >= this.sampleRate)) return;
    log.info("request", this.fields(s, ms));
  }

  /** A call that ended with an error: a refusal (throttled) or, for INTERNAL_ERROR, a failure with its cause. */
  refused(log: Logger, s: RequestSummary, err: AppError, cause?: unknown): void {
    const ms = this.count(log, s);
    if (err.code === "INTERNAL_ERROR") {
      log.error("request failed", { ...this.fields(s, ms), code: err.code, err: cause });
      return;
    }
    const held = this.refusals.pass();
    if (held === null) return;
    log.info("request refused", {
      ...this.fields(s, ms, held),
      code: err.code,
      httpStatus: httpStatusOf[err.code],
      error: err.message,
      ...(err.details.length > 0 ? { fields: err.details.map((d) => d.field) } : {}),
    });
  }

  /** A call the protocol layer ended (deadline passed, caller gone): throttled like a refusal. */
  ended(log: Logger, s: RequestSummary, message: string): void {
    const ms = this.count(log, s);
    const held = this.refusals.pass();
    if (held === null) return;
    log.info("request refused", { ...this.fields(s, ms, held), error: message });
  }
}
