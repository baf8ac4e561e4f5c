// Batch decisions: many Recommends in one call, for outbound channels. Requests are pulled from their
// source as answers leave, a few decided at once, and answered in order, so a batch of any size needs the
// memory of that few. Each is a Recommend of its own (quota included); traces only at the sampling rate.

import { create } from "@bufbuild/protobuf";
import { type BatchError, BatchErrorSchema, type RecommendRequest, type RecommendResponse } from "../../gen/kaireon/v1/recommend_pb.ts";
import { FieldViolationSchema } from "../../gen/kaireon/v1/errors_pb.ts";
import { toAppError } from "../errors.ts";
import type { CallContext, ServiceDeps } from "./context.ts";
import { recommend } from "./recommend.ts";

/**
 * Requests decided at once: enough to overlap their reads and to read profile misses and write answers in
 * large runs (64 against 16: 2.0-2.1 times the per-core rate of single calls instead of 1.7-1.8, in
 * bench/recommend-batch.ts), few enough to keep a batch's memory flat.
 */
export const BATCH_CONCURRENCY = 64;
/**
 * A batch decides faster than one instance records decisions: while the decision buffer is over half
 * full it waits for the writer before the next line (up to this long per line, then goes on, and what the
 * full buffer refuses is counted and logged as for any Recommend), so a large batch does not crowd out
 * the recording of its own and other calls' decisions.
 */
export const BATCH_RECORDING_WAIT_MS = 5_000;
/** The most requests one gRPC RecommendBatch message may carry. */
export const MAX_BATCH_MESSAGE_REQUESTS = 10_000;

/** A request of a batch as its source read it: the request, or why it could not be read. */
export type BatchItem = { request: RecommendRequest } | { error: unknown };

export type BatchAnswer = { response: RecommendResponse } | { error: BatchError };

export function batchErrorOf(err: unknown): BatchError {
  const e = toAppError(err);
  return create(BatchErrorSchema, {
    code: e.code,
    message: e.message,
    details: e.details.map((d) => create(FieldViolationSchema, d)),
  });
}

/** A request being decided, and whether its answer is in. */
interface Deciding {
  answer: Promise<BatchAnswer>;
  settled: boolean;
}

/**
 * Decides each request of `items` in order and yields the answers in the same order, in runs: each run
 * is the next answer and those after it already decided (so a fast batch is written in large chunks,
 * and a slow line holds back none decided before it). A refused request (bad input, an unknown flow,
 * the quota) yields its error in place and the batch goes on.
 */
export async function* recommendBatch(deps: ServiceDeps, ctx: CallContext, items: AsyncIterable<BatchItem>): AsyncGenerator<BatchAnswer[]> {
  // The month's count as admission read it, plus what this batch has decided since.
  let decided = 0;
  const one = async (item: BatchItem): Promise<BatchAnswer> => {
    if ("error" in item) return { error: batchErrorOf(item.error) };
    try {
      // Traces follow the tenant's sampling rate: a batch asking for one per line would be a trace flood.
      item.request.trace = false;
      const lineCtx = ctx.decisionsUsed === undefined ? ctx : { ...ctx, decisionsUsed: ctx.decisionsUsed + decided };
      const response = await recommend(deps, lineCtx, item.request);
      if (response.recommendations.length > 0) decided++;
      return { response };
    } catch (err) {
      if (toAppError(err).code === "INTERNAL_ERROR") ctx.log.error("batch request failed", { err });
      return { error: batchErrorOf(err) };
    }
  };
  const start = (item: BatchItem): Deciding => {
    const d: Deciding = { answer: one(item), settled: false };
    const settle = () => {
      d.settled = true;
    };
    // A rejection is the batch's to see when it takes the answer; this only marks it in.
    d.answer.then(settle, settle);
    return d;
  };
  /** The head's answer, and the answers after it already in. */
  const run = async (): Promise<BatchAnswer[]> => {
    const out = [await (inFlight.shift() as Deciding).answer];
    while (inFlight[0]?.settled) out.push(await (inFlight.shift() as Deciding).answer);
    return out;
  };
  // Near the quota, requests are decided one at a time, so the batch stops at the quota exactly.
  const quota =
    ctx.decisionsUsed === undefined
      ? Number.POSITIVE_INFINITY
      : deps.limits.monthlyQuota((await deps.catalogs.get(ctx.auth.tenantId)).settings);
  const inFlight: Deciding[] = [];
  for await (const item of items) {
    if (deps.decisions.crowded) {
      const until = Date.now() + BATCH_RECORDING_WAIT_MS;
      while (deps.decisions.crowded && Date.now() < until) await Bun.sleep(5);
    }
    if (inFlight.length > 0 && (ctx.decisionsUsed ?? 0) + decided + inFlight.length >= quota) {
      while (inFlight.length > 0) yield await run();
    }
    inFlight.push(start(item));
    if (inFlight.length >= BATCH_CONCURRENCY) yield await run();
  }
  while (inFlight.length > 0) yield await run();
}
