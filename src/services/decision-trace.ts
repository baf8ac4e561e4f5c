// GetDecisionTrace: read back a recorded decision, stage by stage.

import { create, fromJson } from "@bufbuild/protobuf";
import {
  DecisionTraceSchema,
  type GetDecisionTraceRequest,
  type GetDecisionTraceResponse,
  GetDecisionTraceResponseSchema,
} from "../../gen/kaireon/v1/decision_trace_pb.ts";
import { notFound, validationError } from "../errors.ts";
import { readTrace } from "../store/traces.ts";
import type { CallContext, ServiceDeps } from "./context.ts";
import { MAX_ID_LENGTH, Violations } from "./validate.ts";

export async function getDecisionTrace(
  deps: ServiceDeps,
  ctx: CallContext,
  req: GetDecisionTraceRequest,
): Promise<GetDecisionTraceResponse> {
  const v = new Violations();
  v.requireString("traceId", req.traceId, MAX_ID_LENGTH);
  if (v.list.length > 0) throw validationError(v.list);
  const tenantId = ctx.auth.tenantId;
  // A replica may not have a trace written a moment ago: what it lacks is read from the primary.
  const now = deps.clock.now();
  const body =
    deps.traces.peek(tenantId, req.traceId)?.body ??
    (await readTrace(deps.readDb, tenantId, req.traceId, now)) ??
    (deps.readDb !== deps.db ? await readTrace(deps.db, tenantId, req.traceId, now) : null);
  if (!body) throw notFound("Decision trace");
  return create(GetDecisionTraceResponseSchema, {
    trace: fromJson(DecisionTraceSchema, body as never, { ignoreUnknownFields: true }),
  });
}
