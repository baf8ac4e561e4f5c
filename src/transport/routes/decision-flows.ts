// Decision flows: the resource, and publishing, versions and rollback.

import { create } from "@bufbuild/protobuf";
import {
  DecisionFlowSchema,
  DecisionFlowService,
  ListDecisionFlowVersionsRequestSchema,
  ListDecisionFlowVersionsResponseSchema,
  PublishDecisionFlowRequestSchema,
  RollBackDecisionFlowRequestSchema,
} from "../../../gen/kaireon/v1/decision_flow_pb.ts";
import type { ServiceDeps } from "../../services/context.ts";
import { listDecisionFlowVersions, publishDecisionFlow, rollBackDecisionFlow } from "../../services/decision-flows.ts";
import { decisionFlowKind } from "../../services/kinds/index.ts";
import { decodeJsonMessage } from "../json.ts";
import { json, type RestRoute } from "./binding.ts";
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
  ];
}
