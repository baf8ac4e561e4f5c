// The decision routes: Recommend, Respond and the trace of a decision.

import { create } from "@bufbuild/protobuf";
import {
  DecisionTraceSchema,
  DecisionTraceService,
  GetDecisionTraceRequestSchema,
  ListDecisionTracesRequestSchema,
  ListDecisionTracesResponseSchema,
} from "../../../gen/kaireon/v1/decision_trace_pb.ts";
import { RecommendRequestSchema, RecommendResponseSchema, RecommendService } from "../../../gen/kaireon/v1/recommend_pb.ts";
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
import { respond, respondBulk } from "../../services/respond.ts";
import { decodeJsonMessage } from "../json.ts";
import { traceJson } from "../trace-json.ts";
import { fromQuery, json, listQuery, type RestRoute } from "./binding.ts";

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
      run: async (ctx, { body }) =>
        json(RecommendResponseSchema, await recommend(deps, ctx, decodeJsonMessage(RecommendRequestSchema, body))),
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
        return { traces: res.traces.map(traceJson), ...(res.nextCursor ? { nextCursor: res.nextCursor } : {}) };
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
        return res.trace ? traceJson(res.trace) : null;
      },
    },
  ];
}
