// Experiments, their phases and the interaction counts their results are computed from.

import type { Variant } from "../decisioning/experiment.ts";
import type { Db, Queryable } from "./db.ts";
import { notifyCatalogChanged } from "./flows.ts";

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

export async function insertExperiment(tx: Queryable, tenantId: string, e: ExperimentRecord): Promise<void> {
  await tx.query(
    "insert into experiments (tenant_id, id, offer_id, channel_id, status, goal, variants) values ($1, $2, $3, $4, $5, $6, $7)",
    [tenantId, e.id, e.offerId, e.channelId, e.status, e.goal, e.variants],
  );
  await tx.query("insert into experiment_phases (tenant_id, experiment_id, phase, variants) values ($1, $2, 1, $3)", [
    tenantId,
    e.id,
    e.variants,
  ]);
}

function sameSplit(a: Variant[], b: Variant[]): boolean {
  return (
    a.length === b.length &&
    a.every((v, i) => v.creativeId === b[i]?.creativeId && v.weight === b[i]?.weight && v.variant === b[i]?.variant)
  );
}

/**
 * Updates status and variants. A changed split of an experiment that has run starts a new phase, so each
 * phase's results come from one split only. Returns the updated record, or null when it does not exist.
 */
export async function updateExperiment(
  db: Db,
  tenantId: string,
  id: string,
  change: { status?: ExperimentStatus; variants?: Variant[] },
): Promise<ExperimentRecord | null> {
  return db.transaction(async (tx) => {
    const rows = await tx.query<Record<string, unknown>>(
      "select id, offer_id, channel_id, status, goal, variants from experiments where tenant_id = $1 and id = $2 for update",
      [tenantId, id],
    );
    if (!rows[0]) return null;
    const current = toExperiment(rows[0]);
    const variants = change.variants ?? current.variants;
    const status = change.status ?? current.status;
    if (!sameSplit(variants, current.variants)) {
      const ran = current.status !== "draft";
      if (ran) {
        await tx.query("update experiment_phases set ended_at = now() where tenant_id = $1 and experiment_id = $2 and ended_at is null", [
          tenantId,
          id,
        ]);
        await tx.query(
          `insert into experiment_phases (tenant_id, experiment_id, phase, variants)
           select $1, $2, max(phase) + 1, $3 from experiment_phases where tenant_id = $1 and experiment_id = $2`,
          [tenantId, id, variants],
        );
      } else {
        // Nothing was shown yet: the first phase simply takes the new split.
        await tx.query("update experiment_phases set variants = $3, started_at = now() where tenant_id = $1 and experiment_id = $2", [
          tenantId,
          id,
          variants,
        ]);
      }
    }
    if (status === "running" && current.status === "draft") {
      await tx.query("update experiment_phases set started_at = now() where tenant_id = $1 and experiment_id = $2 and phase = 1", [
        tenantId,
        id,
      ]);
    }
    await tx.query("update experiments set status = $3, variants = $4, updated_at = now() where tenant_id = $1 and id = $2", [
      tenantId,
      id,
      status,
      variants,
    ]);
    await notifyCatalogChanged(tx, tenantId);
    return { ...current, status, variants };
  });
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
