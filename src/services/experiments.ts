// Experiments: the create and update requests of the contract mapped onto the experiment resource
// (services/kinds/experiment.ts), and results per phase from the Respond interactions of their creatives.

import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  type CreateExperimentRequest,
  type CreateExperimentResponse,
  CreateExperimentResponseSchema,
  type Experiment,
  type GetExperimentResultsRequest,
  type GetExperimentResultsResponse,
  GetExperimentResultsResponseSchema,
  type UpdateExperimentRequest,
  type UpdateExperimentResponse,
  UpdateExperimentResponseSchema,
} from "../../gen/kaireon/v1/experiment_pb.ts";
import { analyseExperiment } from "../decisioning/experiment-stats.ts";
import { notFound, validationError } from "../errors.ts";
import { countByCreative, type ExperimentStatus, getExperiment, getPhase } from "../store/experiments.ts";
import type { CallContext, ServiceDeps } from "./context.ts";
import { EXPERIMENT_STATUSES, experimentKind } from "./kinds/experiment.ts";
import { createResource, updateResource } from "./resources.ts";
import { MAX_ID_LENGTH, Violations } from "./validate.ts";

/** The experiment as the resource functions handle it, from the create request's flat fields. */
export async function createExperiment(
  deps: ServiceDeps,
  ctx: CallContext,
  req: CreateExperimentRequest,
): Promise<CreateExperimentResponse> {
  const experiment = await createResource(deps, ctx, experimentKind, {
    experimentId: req.experimentId,
    offerId: req.offerId,
    channelId: req.channelId,
    status: req.status,
    goal: req.goal,
    variants: req.variants,
  });
  return create(CreateExperimentResponseSchema, { experiment: experiment as Experiment });
}

/** Changes what the request sets: the status, the variants, or both. */
export async function updateExperiment(
  deps: ServiceDeps,
  ctx: CallContext,
  req: UpdateExperimentRequest,
): Promise<UpdateExperimentResponse> {
  const mask = [...(req.status ? ["status"] : []), ...(req.variants.length > 0 ? ["variants"] : [])];
  const v = new Violations();
  if (req.status && !EXPERIMENT_STATUSES.includes(req.status as ExperimentStatus)) {
    v.add("status", `status must be one of ${EXPERIMENT_STATUSES.join(", ")}`);
  }
  if (v.list.length > 0) throw validationError(v.list);
  const experiment = await updateResource(
    deps,
    ctx,
    experimentKind,
    { experimentId: req.experimentId, status: req.status, variants: req.variants, version: req.version },
    // Nothing to change still checks the version and answers the experiment as it is.
    mask.length > 0 ? mask : ["status"],
  );
  return create(UpdateExperimentResponseSchema, { experiment: experiment as Experiment });
}

export async function getExperimentResults(
  deps: ServiceDeps,
  ctx: CallContext,
  req: GetExperimentResultsRequest,
): Promise<GetExperimentResultsResponse> {
  const tenantId = ctx.auth.tenantId;
  const v = new Violations();
  v.requireString("experimentId", req.experimentId, MAX_ID_LENGTH);
  if (req.phase !== undefined && req.phase < 1) v.add("phase", "phase must be 1 or more");
  if (v.list.length > 0) throw validationError(v.list);
  const experiment = await getExperiment(deps.db, tenantId, req.experimentId);
  if (!experiment) throw notFound("Experiment");
  const phase = await getPhase(deps.db, tenantId, experiment.id, req.phase ?? null);
  if (!phase) throw notFound("Experiment phase");

  const counts = await countByCreative(deps.db, tenantId, {
    offerId: experiment.offerId,
    channelId: experiment.channelId,
    creativeIds: phase.variants.map((p) => p.creativeId),
    goal: experiment.goal,
    from: phase.startedAt,
    to: phase.endedAt,
  });
  const byCreative = new Map(counts.map((c) => [c.creativeId, c]));
  const results = analyseExperiment(
    phase.variants.map((p) => ({
      variant: p.variant,
      weight: p.weight,
      impressions: byCreative.get(p.creativeId)?.impressions ?? 0,
      conversions: byCreative.get(p.creativeId)?.conversions ?? 0,
    })),
  );
  return create(GetExperimentResultsResponseSchema, {
    experimentId: experiment.id,
    offerId: experiment.offerId,
    channelId: experiment.channelId,
    status: experiment.status,
    phase: phase.phase,
    phaseStartedAt: timestampFromDate(phase.startedAt),
    goal: experiment.goal,
    variants: results.variants.map((r, i) => ({
      variant: r.variant,
      creativeId: phase.variants[i]?.creativeId ?? "",
      weight: r.weight,
      impressions: r.impressions,
      conversions: r.conversions,
      conversionRate: r.conversionRate ?? undefined,
      confidenceInterval: r.confidenceInterval ?? undefined,
      uplift: r.uplift ?? undefined,
      zScore: r.zScore ?? undefined,
      pValue: r.pValue ?? undefined,
      significant: r.significant,
    })),
    sampleRatio: results.sampleRatio ?? undefined,
  });
}
