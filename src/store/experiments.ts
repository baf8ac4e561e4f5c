// Experiments, their phases and the interaction counts their results are computed from.

import type { Variant } from "../decisioning/experiment.ts";
import type { Queryable } from "./db.ts";

export type ExperimentStatus = "draft" | "running" | "stopped";

export interface ExperimentRecord {
  id: string;
  offerId: string;
  channelId: string;
  status: ExperimentStatus;
  goal: string;
  variants: Variant[];
}

export interface PhaseRecord {
  phase: number;
  variants: Variant[];
  startedAt: Date;
  endedAt: Date | null;
}

function toExperiment(r: Record<string, unknown>): ExperimentRecord {
  return {
    id: r.id as string,
    offerId: r.offer_id as string,
    channelId: r.channel_id as string,
    status: r.status as ExperimentStatus,
    goal: r.goal as string,
    variants: r.variants as Variant[],
  };
}

export async function getExperiment(db: Queryable, tenantId: string, id: string): Promise<ExperimentRecord | null> {
  const rows = await db.query<Record<string, unknown>>(
    "select id, offer_id, channel_id, status, goal, variants from experiments where tenant_id = $1 and id = $2",
    [tenantId, id],
  );
  return rows[0] ? toExperiment(rows[0]) : null;
}

/** The given phase, or the latest when `phase` is null. */
export async function getPhase(db: Queryable, tenantId: string, experimentId: string, phase: number | null): Promise<PhaseRecord | null> {
  const rows = await db.query<Record<string, unknown>>(
    `select phase, variants, started_at, ended_at from experiment_phases
      where tenant_id = $1 and experiment_id = $2 and ($3::int is null or phase = $3)
      order by phase desc limit 1`,
    [tenantId, experimentId, phase],
  );
  const r = rows[0];
  return r
    ? {
        phase: Number(r.phase),
        variants: r.variants as Variant[],
        startedAt: r.started_at as Date,
        endedAt: (r.ended_at as Date | null) ?? null,
      }
    : null;
}

function sameSplit(a: Variant[], b: Variant[]): boolean {
  return (
    a.length === b.length &&
    a.every((v, i) => v.creativeId === b[i]?.creativeId && v.weight === b[i]?.weight && v.variant === b[i]?.variant)
  );
}

/**
 * Keeps the phases in step with a write of the experiment (prev null: created, or brought back after a
 * delete). A changed split of an experiment that has run starts a new phase, so each phase's results
 * come from one split only; before it runs, the first phase simply takes the new split.
 */
export async function recordPhaseChange(
  tx: Queryable,
  tenantId: string,
  next: { id: string; status: ExperimentStatus; variants: Variant[] },
  prev: { status: ExperimentStatus; variants: Variant[] } | null,
): Promise<void> {
  const id = next.id;
  const endOpen = () =>
    tx.query("update experiment_phases set ended_at = now() where tenant_id = $1 and experiment_id = $2 and ended_at is null", [
      tenantId,
      id,
    ]);
  const startNew = () =>
    tx.query(
      `insert into experiment_phases (tenant_id, experiment_id, phase, variants)
       select $1, $2, coalesce(max(phase), 0) + 1, $3 from experiment_phases where tenant_id = $1 and experiment_id = $2`,
      [tenantId, id, next.variants],
    );
  if (!prev) {
    await endOpen();
    await startNew();
    return;
  }
  if (!sameSplit(next.variants, prev.variants)) {
    if (prev.status !== "draft") {
      await endOpen();
      await startNew();
    } else {
      await tx.query(
        "update experiment_phases set variants = $3, started_at = now() where tenant_id = $1 and experiment_id = $2 and ended_at is null",
        [tenantId, id, next.variants],
      );
    }
  }
  if (next.status === "running" && prev.status === "draft") {
    await tx.query("update experiment_phases set started_at = now() where tenant_id = $1 and experiment_id = $2 and ended_at is null", [
      tenantId,
      id,
    ]);
  }
}

/** Ends the experiment's open phase (the experiment is being deleted). */
export async function endPhase(tx: Queryable, tenantId: string, id: string): Promise<void> {
  await tx.query("update experiment_phases set ended_at = now() where tenant_id = $1 and experiment_id = $2 and ended_at is null", [
    tenantId,
    id,
  ]);
}

/** The current phase number of each experiment. */
export async function currentPhases(db: Queryable, tenantId: string, ids: string[]): Promise<Map<string, number>> {
  const rows = await db.query<{ experiment_id: string; phase: number }>(
    "select experiment_id, max(phase)::int as phase from experiment_phases where tenant_id = $1 and experiment_id = any($2::text[]) group by experiment_id",
    [tenantId, ids],
  );
  return new Map(rows.map((r) => [r.experiment_id, Number(r.phase)]));
}

export interface CreativeCounts {
  creativeId: string;
  impressions: number;
  conversions: number;
}

/** Impressions and goal outcomes per creative of one offer on one channel within a time range. */
export async function countByCreative(
  db: Queryable,
  tenantId: string,
  q: { offerId: string; channelId: string; creativeIds: string[]; goal: string; from: Date; to: Date | null },
): Promise<CreativeCounts[]> {
  const rows = await db.query<Record<string, unknown>>(
    `select creative_id,
            count(*) filter (where outcome_type = 'impression')::int as impressions,
            count(*) filter (where outcome_type = $5)::int as conversions
       from interactions
      where tenant_id = $1 and offer_id = $2 and channel_id = $3 and creative_id = any($4::text[])
        and recorded_at >= $6 and ($7::timestamptz is null or recorded_at < $7)
      group by creative_id`,
    [tenantId, q.offerId, q.channelId, q.creativeIds, q.goal, q.from, q.to],
  );
  return rows.map((r) => ({ creativeId: r.creative_id as string, impressions: Number(r.impressions), conversions: Number(r.conversions) }));
}
