// GetDecisionTrace: read back a recorded decision, stage by stage; ListDecisionTraces: a customer's, newest first.

import { create, fromJson } from "@bufbuild/protobuf";
import {
  type DecisionTrace,
  DecisionTraceSchema,
  type GetDecisionTraceRequest,
  type GetDecisionTraceResponse,
  GetDecisionTraceResponseSchema,
  type ListDecisionTracesRequest,
  type ListDecisionTracesResponse,
  ListDecisionTracesResponseSchema,
  TraceStageSchema,
} from "../../gen/kaireon/v1/decision_trace_pb.ts";
import { notFound, validationError } from "../errors.ts";
import { listTraces, readTrace } from "../store/traces.ts";
import type { CallContext, ServiceDeps } from "./context.ts";
import { decodeCursor, encodeCursor } from "./resources.ts";
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
    trace: storedTrace(body),
  });
}

/**
 * The fields each stage kind had when all stages shared one message, by the kind that holds them now:
 * each case of TraceStage.detail is named as its stage and holds those same fields.
 */
const FLAT_STAGE_FIELDS: Record<string, string[]> = Object.fromEntries(
  TraceStageSchema.fields
    .filter((f) => f.oneof?.name === "detail" && f.message)
    .map((f) => [f.jsonName, (f.message?.fields ?? []).map((inner) => inner.jsonName)]),
);

/**
 * A stored trace as the message reads it. Traces stored before stages had messages of their own (kept for
 * the trace retention) hold each stage's fields beside its name: they are moved into the stage's message.
 */
export function storedTrace(body: Record<string, unknown>): DecisionTrace {
  const stages = body.stages;
  if (Array.isArray(stages)) {
    body = {
      ...body,
      stages: stages.map((stage: Record<string, unknown>) => {
        const kind = String(stage.name ?? "");
        const fields = FLAT_STAGE_FIELDS[kind];
        if (!fields || kind in stage) return stage;
        const flat = Object.fromEntries(fields.filter((f) => stage[f] !== undefined).map((f) => [f, stage[f]]));
        const rest = Object.fromEntries(Object.entries(stage).filter(([k]) => !(k in flat)));
        return { ...rest, [kind]: flat };
      }),
    };
  }
  return fromJson(DecisionTraceSchema, body as never, { ignoreUnknownFields: true });
}

const DEFAULT_TRACE_PAGE = 20;
const MAX_TRACE_PAGE = 100;

/**
 * A customer's unexpired traces, newest first. A trace is listed once it is written (within
 * TRACE_FLUSH_MS of its decision); with DATABASE_READ_URL, once the replica has it.
 */
export async function listDecisionTraces(
  deps: ServiceDeps,
  ctx: CallContext,
  req: ListDecisionTracesRequest,
): Promise<ListDecisionTracesResponse> {
  const v = new Violations();
  v.requireString("customerId", req.customerId, MAX_ID_LENGTH);
  if (req.limit !== 0 && (!Number.isInteger(req.limit) || req.limit < 1 || req.limit > MAX_TRACE_PAGE)) {
    v.add("limit", `limit must be between 1 and ${MAX_TRACE_PAGE}`);
  }
  if (v.list.length > 0) throw validationError(v.list);
  const limit = req.limit || DEFAULT_TRACE_PAGE;
  const after = decodeCursor(req.cursor, 2);
  if (after && Number.isNaN(Date.parse(after[0] as string))) {
    throw validationError([{ field: "cursor", message: "cursor is not one this service returned" }]);
  }
  const rows = await listTraces(deps.readDb, {
    tenantId: ctx.auth.tenantId,
    customerId: req.customerId,
    now: deps.clock.now(),
    limit: limit + 1,
    after: after ? { createdAt: after[0] as string, traceId: after[1] as string } : null,
  });
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return create(ListDecisionTracesResponseSchema, {
    traces: page.map((r) => storedTrace(r.body)),
    nextCursor: rows.length > limit && last ? encodeCursor([last.createdAt.toISOString(), last.traceId]) : "",
  });
}
