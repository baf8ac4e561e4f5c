// Experiments: create and update them (validated in full before anything changes), and compute their
// results per phase from the Respond interactions of their creatives.

import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  type CreateExperimentRequest,
  type CreateExperimentResponse,
  CreateExperimentResponseSchema,
  type Experiment,
  ExperimentSchema,
  type ExperimentVariant,
  type GetExperimentResultsRequest,
  type GetExperimentResultsResponse,
  GetExperimentResultsResponseSchema,
  type UpdateExperimentRequest,
  type UpdateExperimentResponse,
  UpdateExperimentResponseSchema,
} from "../../gen/kaireon/v1/experiment_pb.ts";
import type { CompiledCatalog } from "../decisioning/catalog.ts";
import { analyseExperiment } from "../decisioning/experiment-stats.ts";
import type { Variant } from "../decisioning/experiment.ts";
import { AppError, notFound, validationError } from "../errors.ts";
import {
  countByCreative,
  type ExperimentRecord,
  type ExperimentStatus,
  getExperiment,
  getPhase,
  insertExperiment,
  updateExperiment as storeUpdateExperiment,
} from "../store/experiments.ts";
import { notifyCatalogChanged } from "../store/flows.ts";
import { CATALOG_RECHECK_MS, type CallContext, type ServiceDeps } from "./context.ts";
import { MAX_ID_LENGTH, Violations } from "./validate.ts";

const STATUSES: ExperimentStatus[] = ["draft", "running", "stopped"];
const ID_PATTERN = /^[A-Za-z0-9_.-]{1,128}$/;

/** Checks a split: a control and at least one variant, distinct names and creatives, integer weights summing to 100. */
function checkVariants(v: Violations, variants: ExperimentVariant[], catalog: CompiledCatalog, offerId: string, channelId: string): void {
  if (variants.length < 2) {
    v.add("variants", "variants needs a control and at least one variant");
    return;
  }
  const names = new Set<string>();
  const creatives = new Set<string>();
  let sum = 0;
  variants.forEach((variant, i) => {
    const at = `variants[${i}]`;
    if (!variant.variant) v.add(`${at}.variant`, `${at}.variant is required`);
    else if (names.has(variant.variant)) v.add(`${at}.variant`, `variant name ${variant.variant} is used twice`);
    names.add(variant.variant);
    if (!Number.isInteger(variant.weight) || variant.weight < 0 || variant.weight > 100) {
      v.add(`${at}.weight`, `${at}.weight must be a whole number from 0 to 100`);
    }
    sum += variant.weight;
    if (!variant.creativeId) v.add(`${at}.creativeId`, `${at}.creativeId is required`);
    else if (creatives.has(variant.creativeId)) v.add(`${at}.creativeId`, `creative ${variant.creativeId} is used twice`);
    else {
      const list = catalog.creatives.get(`${offerId}\u0000${channelId}`) ?? [];
      if (!list.some((c) => c.def.id === variant.creativeId)) {
        v.add(`${at}.creativeId`, `creative ${variant.creativeId} is not an active creative of ${offerId} on ${channelId}`);
      }
    }
    creatives.add(variant.creativeId);
  });
  if (sum !== 100) v.add("variants", `variant weights must sum to 100, not ${sum}`);
}

function toVariants(variants: ExperimentVariant[]): Variant[] {
  return variants.map((v) => ({ variant: v.variant, creativeId: v.creativeId, weight: v.weight }));
}

function toMessage(e: ExperimentRecord, phase: number): Experiment {
  return create(ExperimentSchema, {
    experimentId: e.id,
    offerId: e.offerId,
    channelId: e.channelId,
    status: e.status,
    goal: e.goal,
    variants: e.variants,
    phase,
  });
}

export async function createExperiment(
  deps: ServiceDeps,
  ctx: CallContext,
  req: CreateExperimentRequest,
): Promise<CreateExperimentResponse> {
  const tenantId = ctx.auth.tenantId;
  const v = new Violations();
  if (!ID_PATTERN.test(req.experimentId)) v.add("experimentId", "experimentId must be 1-128 letters, digits, '_', '-' or '.'");
  v.requireString("offerId", req.offerId, MAX_ID_LENGTH);
  v.requireString("channelId", req.channelId, MAX_ID_LENGTH);
  const status = (req.status || "draft") as ExperimentStatus;
  if (status !== "draft" && status !== "running") v.add("status", "status of a new experiment must be draft or running");
  const goal = req.goal || "conversion";
  v.maxLength("goal", goal, 64);
  const catalog = await deps.catalogs.getFresh(tenantId, CATALOG_RECHECK_MS);
  if (req.offerId && !catalog.offerById.has(req.offerId)) v.add("offerId", `offer ${req.offerId} does not exist`);
  if (req.channelId && !catalog.channels.has(req.channelId)) v.add("channelId", `channel ${req.channelId} does not exist`);
  if (v.list.length === 0) checkVariants(v, req.variants, catalog, req.offerId, req.channelId);
  if (v.list.length > 0) throw validationError(v.list);

  const record: ExperimentRecord = {
    id: req.experimentId,
    offerId: req.offerId,
    channelId: req.channelId,
    status,
    goal,
    variants: toVariants(req.variants),
  };
  await deps.db.transaction(async (tx) => {
    const exists = await tx.query("select 1 from experiments where tenant_id = $1 and id = $2", [tenantId, req.experimentId]);
    if (exists.length > 0) throw new AppError("CONFLICT", `experiment ${req.experimentId} already exists`);
    if (status === "running") await assertNoOtherRunning(tx, tenantId, req.offerId, req.channelId, req.experimentId);
    await insertExperiment(tx, tenantId, record);
    await notifyCatalogChanged(tx, tenantId);
  });
  deps.catalogs.invalidate(tenantId);
  return create(CreateExperimentResponseSchema, { experiment: toMessage(record, 1) });
}

/** One running experiment per offer and channel: two would compete for the same impressions. */
async function assertNoOtherRunning(
  tx: { query: ServiceDeps["db"]["query"] },
  tenantId: string,
  offerId: string,
  channelId: string,
  id: string,
): Promise<void> {
  const rows = await tx.query<{ id: string }>(
    "select id from experiments where tenant_id = $1 and offer_id = $2 and channel_id = $3 and status = 'running' and id <> $4",
    [tenantId, offerId, channelId, id],
  );
  if (rows[0]) throw new AppError("CONFLICT", `experiment ${rows[0].id} is already running on ${offerId} / ${channelId}`);
}

export async function updateExperiment(
  deps: ServiceDeps,
  ctx: CallContext,
  req: UpdateExperimentRequest,
): Promise<UpdateExperimentResponse> {
  const tenantId = ctx.auth.tenantId;
  const current = await getExperiment(deps.db, tenantId, req.experimentId);
  if (!current) throw notFound("Experiment");
  const v = new Violations();
  if (req.status && !STATUSES.includes(req.status as ExperimentStatus)) v.add("status", `status must be one of ${STATUSES.join(", ")}`);
  const catalog = await deps.catalogs.getFresh(tenantId, CATALOG_RECHECK_MS);
  if (req.variants.length > 0) checkVariants(v, req.variants, catalog, current.offerId, current.channelId);
  if (v.list.length > 0) throw validationError(v.list);
  if (req.status === "running" && current.status !== "running") {
    await assertNoOtherRunning(deps.db, tenantId, current.offerId, current.channelId, current.id);
  }
  const updated = await storeUpdateExperiment(deps.db, tenantId, req.experimentId, {
    status: (req.status || undefined) as ExperimentStatus | undefined,
    variants: req.variants.length > 0 ? toVariants(req.variants) : undefined,
  });
  if (!updated) throw notFound("Experiment");
  deps.catalogs.invalidate(tenantId);
  const phase = await getPhase(deps.db, tenantId, updated.id, null);
  return create(UpdateExperimentResponseSchema, { experiment: toMessage(updated, phase?.phase ?? 1) });
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
