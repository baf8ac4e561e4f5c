// Experiments as a resource: a split of one offer's creatives on a channel. Each write keeps the
// experiment's phases in step (store/experiments.ts); results are in services/experiments.ts.

import { create } from "@bufbuild/protobuf";
import { ExperimentSchema, ExperimentService, type ExperimentVariant } from "../../../gen/kaireon/v1/experiment_pb.ts";
import type { Variant } from "../../decisioning/experiment.ts";
import { AppError } from "../../errors.ts";
import { currentPhases, endPhase, type ExperimentStatus, recordPhaseChange } from "../../store/experiments.ts";
import type { CatalogRefs } from "../refs.ts";
import type { Resource, ResourceKind } from "../resources.ts";
import { OUTCOME_TYPES } from "../respond.ts";
import type { Violations } from "../validate.ts";
import { oneOf } from "./checks.ts";

export const EXPERIMENT_STATUSES: ExperimentStatus[] = ["draft", "running", "stopped"];

/** A control and at least one variant, distinct names and creatives of the offer on the channel, integer weights summing to 100. */
async function checkVariants(v: Violations, refs: CatalogRefs, variants: ExperimentVariant[], offerId: string, channelId: string) {
  if (variants.length < 2) {
    v.add("variants", "variants needs a control and at least one variant");
    return;
  }
  const names = new Set<string>();
  const creatives = new Set<string>();
  let sum = 0;
  for (const [i, variant] of variants.entries()) {
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
      const c = await refs.creative(variant.creativeId);
      if (c?.status !== "active" || c.offerId !== offerId || c.channelId !== channelId) {
        v.add(`${at}.creativeId`, `creative ${variant.creativeId} is not an active creative of ${offerId} on ${channelId}`);
      }
    }
    creatives.add(variant.creativeId);
  }
  if (sum !== 100) v.add("variants", `variant weights must sum to 100, not ${sum}`);
}

const toVariants = (r: Resource): Variant[] =>
  (r.variants as ExperimentVariant[]).map((x) => ({ variant: x.variant, creativeId: x.creativeId, weight: x.weight }));

export const experimentKind: ResourceKind = {
  noun: "experiment",
  label: "Experiment",
  schema: ExperimentSchema,
  service: ExperimentService,
  table: { table: "experiments", keys: ["id"], columns: ["offer_id", "channel_id", "status", "goal", "variants"] },
  keyFields: ["experimentId"],
  readOnly: ["phase"],
  normalize(r) {
    r.status ||= "draft";
    r.goal ||= "conversion";
  },
  async validate(r, v, refs, { tenantId, prev, tx }) {
    if (prev === null && r.status === "stopped") v.add("status", "status of a new experiment must be draft or running");
    else oneOf(v, "status", r.status, EXPERIMENT_STATUSES);
    if (!/^[a-z][a-z0-9_]{0,63}$/.test(r.goal)) v.add("goal", "goal must be an outcome type");
    else if (!(r.goal in OUTCOME_TYPES) && (await refs.missing("outcome_types", [r.goal])).length > 0) {
      v.add("goal", `outcome type ${r.goal} does not exist`);
    }
    const before = v.list.length;
    if (!r.offerId) v.add("offerId", "offerId is required");
    else if (!(await refs.offer(r.offerId))) v.add("offerId", `offer ${r.offerId} does not exist`);
    if (!r.channelId) v.add("channelId", "channelId is required");
    else if (!(await refs.channel(r.channelId))) v.add("channelId", `channel ${r.channelId} does not exist`);
    // The variants are judged against the offer's creatives on the channel, so only once both exist.
    if (v.list.length === before) await checkVariants(v, refs, r.variants, r.offerId, r.channelId);
    if (v.list.length > 0 || r.status !== "running") return;
    // One running experiment per offer and channel: two would compete for the same impressions.
    const others = await tx.query<{ id: string }>(
      `select id from experiments where tenant_id = $1 and offer_id = $2 and channel_id = $3 and status = 'running'
          and deleted_at is null and id <> $4 for update`,
      [tenantId, r.offerId, r.channelId, r.experimentId],
    );
    if (others[0]) throw new AppError("CONFLICT", `experiment ${others[0].id} is already running on ${r.offerId} / ${r.channelId}`);
  },
  toRow: (r) => ({
    id: r.experimentId,
    offer_id: r.offerId,
    channel_id: r.channelId,
    status: r.status,
    goal: r.goal,
    variants: toVariants(r),
  }),
  fromRowFields: (row) =>
    create(ExperimentSchema, {
      experimentId: row.id as string,
      offerId: row.offer_id as string,
      channelId: row.channel_id as string,
      status: row.status as string,
      goal: row.goal as string,
      variants: row.variants as Variant[],
    }),
  async decorate(db, tenantId, items) {
    const phases = await currentPhases(
      db,
      tenantId,
      items.map((e) => e.experimentId),
    );
    for (const e of items) e.phase = phases.get(e.experimentId) ?? 1;
  },
  async afterWrite(tx, tenantId, next, prev) {
    await recordPhaseChange(
      tx,
      tenantId,
      { id: next.experimentId, status: next.status, variants: toVariants(next) },
      prev ? { status: prev.status, variants: toVariants(prev) } : null,
    );
  },
  async beforeDelete(tx, tenantId, current) {
    await endPhase(tx, tenantId, current.experimentId);
    return undefined;
  },
};
