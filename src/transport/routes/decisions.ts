// The decision routes: Recommend, Respond and the trace of a decision.

import { create, toJson } from "@bufbuild/protobuf";
import {
  DecisionTraceSchema,
  DecisionTraceService,
  GetDecisionTraceRequestSchema,
  ListDecisionTracesRequestSchema,
  ListDecisionTracesResponseSchema,
} from "../../../gen/kaireon/v1/decision_trace_pb.ts";
import {
  BatchErrorSchema,
  RecommendRequestSchema,
  RecommendResponseSchema,
  RecommendService,
} from "../../../gen/kaireon/v1/recommend_pb.ts";
import {
  RespondBulkRequestSchema,
  RespondBulkResponseSchema,
  RespondRequestSchema,
  RespondResponseSchema,
  RespondService,
} from "../../../gen/kaireon/v1/respond_pb.ts";
import type { ServiceDeps } from "../../services/context.ts";
import { getDecisionTrace, listDecisionTraces } from "../../services/decision-trace.ts";
import { recommend } from "../../services/recommend.ts";
import { type BatchItem, recommendBatch } from "../../services/recommend-batch.ts";
import { validationError } from "../../errors.ts";
import { ndjsonLines } from "../ndjson.ts";
import { requireNdjson } from "./customers.ts";
import { respond, respondBulk } from "../../services/respond.ts";
import { decodeJsonMessage } from "../json.ts";
import { recommendResponseJson } from "../recommend-json.ts";
import { fromQuery, json, listQuery, type RestRoute } from "./binding.ts";

/** The request lines of a batch body, one item per line (a blank line is a bad request in its place). */
async function* batchItems(request: Request, maxLineBytes: number): AsyncGenerator<BatchItem> {
  for await (const l of ndjsonLines(request.body, maxLineBytes)) {
    if ("error" in l) {
      yield { error: validationError([{ field: `line ${l.line}`, message: l.error }]) };
      continue;
    }
    try {
      if (l.text.trim() === "")
        throw validationError([{ field: `line ${l.line}`, message: "line is empty; expected a Recommend request" }]);
      yield { request: decodeJsonMessage(RecommendRequestSchema, l.text) };
    } catch (error) {
      yield { error };
    }
  }
}

/** Recommend, Respond and decision traces: the calls a decide key makes. */
export function decisionRoutes(deps: ServiceDeps): RestRoute[] {
  const v1 = "/api/v1";
  return [
    {
      method: "POST",
      path: `${v1}/recommend`,
      operationId: "recommend",
      rpc: RecommendService.method.recommend,
      summary: "Ranked, personalized offers for a customer on a channel",
      tag: "Decisions",
      body: RecommendRequestSchema,
      response: RecommendResponseSchema,
      run: async (ctx, { body }) => recommendResponseJson(await recommend(deps, ctx, decodeJsonMessage(RecommendRequestSchema, body))),
    },
    {
      method: "POST",
      path: `${v1}/recommend/batch`,
      operationId: "recommendBatch",
      rpc: RecommendService.method.recommendBatch,
      restOnly: true,
      summary:
        "Recommend for many customers: NDJSON of Recommend requests in, NDJSON of answers out, one per line in order (an error object for a bad line), streamed",
      tag: "Decisions",
      body: "ndjson",
      ndjsonLine: RecommendRequestSchema,
      response: RecommendResponseSchema,
      ndjsonAnswer: true,
      run: async (ctx, { request }) => {
        requireNdjson(request);
        const answers = recommendBatch(deps, ctx, batchItems(request, deps.config.importMaxLineBytes));
        const encoder = new TextEncoder();
        let line = 0;
        const stream = new ReadableStream<Uint8Array>({
          async pull(controller) {
            const next = await answers.next();
            if (next.done) {
              controller.close();
              return;
            }
            // A run of answers is written as one chunk.
            let text = "";
            for (const a of next.value) {
              line++;
              const out = "response" in a ? recommendResponseJson(a.response) : { line, error: toJson(BatchErrorSchema, a.error) };
              text += `${JSON.stringify(out)}\n`;
            }
            controller.enqueue(encoder.encode(text));
          },
          async cancel() {
            await answers.return(undefined);
          },
        });
        return new Response(stream, { status: 200, headers: { "content-type": "application/x-ndjson" } });
      },
    },
    {
      method: "POST",
      path: `${v1}/respond`,
      operationId: "respond",
      rpc: RespondService.method.respond,
      summary: "Record how the customer reacted (answered once committed; Idempotency-Key header for safe retries)",
      tag: "Decisions",
      body: RespondRequestSchema,
      response: RespondResponseSchema,
      run: async (ctx, { body }) => {
        const out = json(RespondResponseSchema, await respond(deps, ctx, decodeJsonMessage(RespondRequestSchema, body))) as Record<
          string,
          unknown
        >;
        // The ids the request did not name are left out, not echoed as "".
        for (const field of ["creativeId", "traceId", "recommendationId"]) if (out[field] === "") delete out[field];
        return out;
      },
    },
    {
      method: "POST",
      path: `${v1}/respond/bulk`,
      operationId: "respondBulk",
      rpc: RespondService.method.respondBulk,
      summary: "Record 1 to 1,000 interactions in one commit, each checked on its own (idempotencyKey per item)",
      tag: "Decisions",
      body: RespondBulkRequestSchema,
      response: RespondBulkResponseSchema,
      run: async (ctx, { body }) =>
        json(RespondBulkResponseSchema, await respondBulk(deps, ctx, decodeJsonMessage(RespondBulkRequestSchema, body))),
    },
    {
      method: "GET",
      path: `${v1}/decision-traces`,
      operationId: "listDecisionTraces",
      rpc: DecisionTraceService.method.listDecisionTraces,
      summary: "A customer's decision traces, newest first (customerId required; limit, cursor)",
      tag: "Decisions",
      query: listQuery(ListDecisionTracesRequestSchema, []),
      response: ListDecisionTracesResponseSchema,
      run: async (ctx, { query }) => {
        const res = await listDecisionTraces(
          deps,
          ctx,
          create(ListDecisionTracesRequestSchema, fromQuery(ListDecisionTracesRequestSchema, query, {})),
        );
        const out = json(ListDecisionTracesResponseSchema, res) as { nextCursor?: string };
        // The last page has no cursor to name.
        if (!out.nextCursor) delete out.nextCursor;
        return out;
      },
    },
    {
      method: "GET",
      path: `${v1}/decision-traces/:traceId`,
      operationId: "getDecisionTrace",
      rpc: DecisionTraceService.method.getDecisionTrace,
      summary: "How a decision was made, stage by stage",
      tag: "Decisions",
      response: DecisionTraceSchema,
      run: async (ctx, { params }) => {
        const res = await getDecisionTrace(deps, ctx, create(GetDecisionTraceRequestSchema, { traceId: params.traceId ?? "" }));
        return json(DecisionTraceSchema, res.trace);
      },
    },
  ];
}
