// Decision flows: the resource, and publishing, versions and rollback.

import { create } from "@bufbuild/protobuf";
import {
  DecisionFlowSchema,
  DecisionFlowService,
  EvaluateDecisionFlowRequestSchema,
  EvaluateDecisionFlowResponseSchema,
  GetUpliftReportRequestSchema,
  GetUpliftReportResponseSchema,
  ListDecisionFlowVersionsRequestSchema,
  ListDecisionFlowVersionsResponseSchema,
  PublishDecisionFlowRequestSchema,
  RollBackDecisionFlowRequestSchema,
} from "../../../gen/kaireon/v1/decision_flow_pb.ts";
import type { ServiceDeps } from "../../services/context.ts";
import { listDecisionFlowVersions, publishDecisionFlow, rollBackDecisionFlow } from "../../services/decision-flows.ts";
import { evaluateDecisionFlow, getUpliftReport } from "../../services/flow-reports.ts";
import { decisionFlowKind } from "../../services/kinds/index.ts";
import { decodeJsonMessage } from "../json.ts";
import { json, type RestRoute, timestampParam } from "./binding.ts";
import { resourceRoutes } from "./resources.ts";

/** A decision flow's draft, its publication, its versions and its rollback. */
export function decisionFlowRoutes(deps: ServiceDeps): RestRoute[] {
  const v1 = "/api/v1";
  return [
    ...resourceRoutes(deps, {
      kind: decisionFlowKind,
      collection: `${v1}/decision-flows`,
      tag: "Decision flows",
      plural: "decision flows",
    }),
    {
      method: "POST",
      path: `${v1}/decision-flows/:decisionFlowId/publish`,
      operationId: "publishDecisionFlow",
      rpc: DecisionFlowService.method.publishDecisionFlow,
      summary: "Publish the draft as the newest version (body: the version you read)",
      tag: "Decision flows",
      body: PublishDecisionFlowRequestSchema,
      response: DecisionFlowSchema,
      run: async (ctx, { body, params }) => {
        const req = { ...decodeJsonMessage(PublishDecisionFlowRequestSchema, body), decisionFlowId: params.decisionFlowId ?? "" };
        return json(DecisionFlowSchema, (await publishDecisionFlow(deps, ctx, req)).decisionFlow);
      },
    },
    {
      method: "GET",
      path: `${v1}/decision-flows/:decisionFlowId/versions`,
      operationId: "listDecisionFlowVersions",
      rpc: DecisionFlowService.method.listDecisionFlowVersions,
      summary: "Every version of a flow, oldest first",
      tag: "Decision flows",
      response: ListDecisionFlowVersionsResponseSchema,
      run: async (ctx, { params }) =>
        json(
          ListDecisionFlowVersionsResponseSchema,
          await listDecisionFlowVersions(
            deps,
            ctx,
            create(ListDecisionFlowVersionsRequestSchema, { decisionFlowId: params.decisionFlowId ?? "" }),
          ),
        ),
    },
    {
      method: "POST",
      path: `${v1}/decision-flows/:decisionFlowId/rollback`,
      operationId: "rollBackDecisionFlow",
      rpc: DecisionFlowService.method.rollBackDecisionFlow,
      summary: "Publish an earlier version's definition anew (body: toVersion and the version you read)",
      tag: "Decision flows",
      body: RollBackDecisionFlowRequestSchema,
      response: DecisionFlowSchema,
      run: async (ctx, { body, params }) => {
        const req = { ...decodeJsonMessage(RollBackDecisionFlowRequestSchema, body), decisionFlowId: params.decisionFlowId ?? "" };
        return json(DecisionFlowSchema, (await rollBackDecisionFlow(deps, ctx, req)).decisionFlow);
      },
    },
    {
      method: "GET",
      path: `${v1}/decision-flows/:decisionFlowId/uplift`,
      operationId: "getUpliftReport",
      rpc: DecisionFlowService.method.getUpliftReport,
      summary: "Decisioned customers against the holdout group over a period: conversion rates, their difference and a z-test",
      tag: "Decision flows",
      query: [
        { name: "from", type: "string", description: "start of the period, RFC 3339 (30 days before its end when absent)" },
        { name: "to", type: "string", description: "end of the period, RFC 3339, exclusive (now when absent)" },
        { name: "goal", type: "string", description: "the outcome type that counts as converting (conversion when absent)" },
      ],
      response: GetUpliftReportResponseSchema,
      run: async (ctx, { params, query }) =>
        json(
          GetUpliftReportResponseSchema,
          await getUpliftReport(
            deps,
            ctx,
            create(GetUpliftReportRequestSchema, {
              decisionFlowId: params.decisionFlowId ?? "",
              from: timestampParam(query, "from"),
              to: timestampParam(query, "to"),
              goal: query.goal ?? "",
            }),
          ),
        ),
    },
    {
      method: "POST",
      path: `${v1}/decision-flows/:decisionFlowId/evaluate`,
      operationId: "evaluateDecisionFlow",
      rpc: DecisionFlowService.method.evaluateDecisionFlow,
      summary: "Estimate the draft's click and conversion rates on the decisions logged over a period (IPS and SNIPS)",
      tag: "Decision flows",
      body: EvaluateDecisionFlowRequestSchema,
      response: EvaluateDecisionFlowResponseSchema,
      run: async (ctx, { body, params }) => {
        const req = { ...decodeJsonMessage(EvaluateDecisionFlowRequestSchema, body), decisionFlowId: params.decisionFlowId ?? "" };
        return json(EvaluateDecisionFlowResponseSchema, await evaluateDecisionFlow(deps, ctx, req));
      },
    },
  ];
}
