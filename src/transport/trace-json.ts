// The REST shape of a decision trace: each stage carries only the fields of its kind, as the tutorial
// shows them (the message has one field set for all stages).

import { type MessageShape, toJson } from "@bufbuild/protobuf";
import { DecisionTraceSchema } from "../../gen/kaireon/v1/decision_trace_pb.ts";

const STAGE_FIELDS: Record<string, string[]> = {
  enrich: ["input", "output"],
  compute: ["computed"],
  filter: ["candidatesIn", "candidatesOut", "filtered", "drops"],
  score: ["scores", "factors"],
  rank: ["finalOrder", "experiments"],
};
const ALL_STAGE_FIELDS = new Set(Object.values(STAGE_FIELDS).flat());

export function traceJson(trace: MessageShape<typeof DecisionTraceSchema>): unknown {
  const json = toJson(DecisionTraceSchema, trace, { alwaysEmitImplicit: true }) as Record<string, unknown>;
  const stages = (json.stages ?? []) as Record<string, unknown>[];
  json.stages = stages.map((stage) => {
    const keep = new Set(STAGE_FIELDS[stage.name as string] ?? []);
    return Object.fromEntries(Object.entries(stage).filter(([k]) => !ALL_STAGE_FIELDS.has(k) || keep.has(k)));
  });
  return json;
}
