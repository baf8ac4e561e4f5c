// What a decision flow has beyond create, get, list, update and delete: publishing its draft, its
// versions, and rolling back to an earlier version. Each write checks the version the caller read and
// bumps it, so a publish cannot race an edit of the draft unnoticed.

import { create, type JsonObject } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  type DecisionFlow,
  type ListDecisionFlowVersionsRequest,
  type ListDecisionFlowVersionsResponse,
  ListDecisionFlowVersionsResponseSchema,
  type PublishDecisionFlowRequest,
  type PublishDecisionFlowResponse,
  PublishDecisionFlowResponseSchema,
  type RollBackDecisionFlowRequest,
  type RollBackDecisionFlowResponse,
  RollBackDecisionFlowResponseSchema,
} from "../../gen/kaireon/v1/decision_flow_pb.ts";
import { AppError, notFound, validationError } from "../errors.ts";
import { appendAudit } from "../store/audit.ts";
import type { Queryable } from "../store/db.ts";
import { listVersions, publishDraftIn, rollBackIn } from "../store/flows.ts";
import { getRow } from "../store/resources.ts";
import type { CallContext, ServiceDeps } from "./context.ts";
import { checkFlowDefinition, decisionFlowKind } from "./kinds/decision-flow.ts";
import { databaseRefs } from "./refs.ts";
import { actorOf, catalogWrite, checkVersion, fromRow, getResource, type Resource } from "./resources.ts";
import { Violations } from "./validate.ts";

/** Locks the flow, checks the caller's version, runs `change`, bumps the version and audits it. */
async function changeFlow(
  deps: ServiceDeps,
  ctx: CallContext,
  flowId: string,
  version: number,
  action: string,
  change: (tx: Queryable, flow: Resource) => Promise<Record<string, unknown>>,
): Promise<DecisionFlow> {
  if (!flowId) throw validationError([{ field: "decisionFlowId", message: "decisionFlowId is required" }]);
  const tenantId = ctx.auth.tenantId;
  await catalogWrite(deps, tenantId, async (tx) => {
    const row = await getRow(tx, decisionFlowKind.table, tenantId, [flowId], { lock: true });
    if (!row) throw notFound("Decision flow");
    const flow = fromRow(decisionFlowKind, row);
    checkVersion("Decision flow", version, flow.version);
    await decisionFlowKind.decorate?.(tx, tenantId, [flow]);
    const details = await change(tx, flow);
    await tx.query("update decision_flows set version = version + 1, updated_at = now() where tenant_id = $1 and id = $2", [
      tenantId,
      flowId,
    ]);
    await appendAudit(tx, actorOf(ctx), {
      action: `decision_flow.${action}`,
      resourceType: "decision_flow",
      resourceId: flowId,
      details: { version: flow.version + 1, ...details },
    });
  });
  return (await getResource(deps, ctx, decisionFlowKind, [flowId])) as DecisionFlow;
}

/** Publishes the draft, after checking it again: what it names may have been deleted since it was saved. */
export async function publishDecisionFlow(
  deps: ServiceDeps,
  ctx: CallContext,
  req: PublishDecisionFlowRequest,
): Promise<PublishDecisionFlowResponse> {
  const flow = await changeFlow(deps, ctx, req.decisionFlowId, req.version, "publish", async (tx, current) => {
    if (!current.draftVersion) throw new AppError("CONFLICT", `decision flow ${req.decisionFlowId} has no draft to publish`);
    const v = new Violations();
    await checkFlowDefinition(v, databaseRefs(tx, ctx.auth.tenantId), current.definition);
    if (v.list.length > 0) throw validationError(v.list);
    const published = await publishDraftIn(tx, ctx.auth.tenantId, req.decisionFlowId);
    return { publishedVersion: published };
  });
  return create(PublishDecisionFlowResponseSchema, { decisionFlow: flow });
}

export async function listDecisionFlowVersions(
  deps: ServiceDeps,
  ctx: CallContext,
  req: ListDecisionFlowVersionsRequest,
): Promise<ListDecisionFlowVersionsResponse> {
  await getResource(deps, ctx, decisionFlowKind, [req.decisionFlowId]);
  const versions = await listVersions(deps.db, ctx.auth.tenantId, req.decisionFlowId);
  return create(ListDecisionFlowVersionsResponseSchema, {
    versions: versions.map((x) => ({
      version: x.version,
      status: x.status,
      definition: x.definition as JsonObject,
      createdAt: timestampFromDate(x.createdAt),
      publishedAt: x.publishedAt ? timestampFromDate(x.publishedAt) : undefined,
    })),
  });
}

/** Publishes an earlier version's definition as the newest version; a draft in progress is discarded. */
export async function rollBackDecisionFlow(
  deps: ServiceDeps,
  ctx: CallContext,
  req: RollBackDecisionFlowRequest,
): Promise<RollBackDecisionFlowResponse> {
  if (!Number.isInteger(req.toVersion) || req.toVersion < 1) {
    throw validationError([{ field: "toVersion", message: "toVersion must be a published version number" }]);
  }
  const flow = await changeFlow(deps, ctx, req.decisionFlowId, req.version, "rollback", async (tx) => {
    const version = await rollBackIn(tx, ctx.auth.tenantId, req.decisionFlowId, req.toVersion);
    if (version === null) {
      throw validationError([
        { field: "toVersion", message: `decision flow ${req.decisionFlowId} has no published version ${req.toVersion}` },
      ]);
    }
    return { rolledBackTo: req.toVersion, publishedVersion: version };
  });
  return create(RollBackDecisionFlowResponseSchema, { decisionFlow: flow });
}
