// The range partitions the service keeps, and their lifecycle: interactions by month of `recorded_at`,
// decision traces by day of `expires_at`. Partitions are created ahead of the rows that need them; a row
// outside every partition lands in the table's default partition and is moved into the partition for
// its range when that partition is created, so a late or early row never blocks creating one. Old
// interaction months are dropped after the retention; trace days are dropped once everything in them
// has expired. Each step is small and runs in its own transaction; maintenance as a whole runs on one
// instance at a time, the one holding its lease.

import type { Db, Queryable } from "./db.ts";

/** Rows removed from a default partition per statement. */
const DELETE_CHUNK = 5_000;
/** Trace partitions are created at most this many days ahead; later expiries wait in the default. */
export const TRACE_DAYS_AHEAD_MAX = 400;

interface Partitioned {
  table: string;
  column: string;
  defaultPartition: string;
}

const INTERACTIONS: Partitioned = { table: "interactions", column: "recorded_at", defaultPartition: "interactions_default" };
const TRACES: Partitioned = { table: "decision_traces", column: "expires_at", defaultPartition: "decision_traces_default" };

export interface Range {
  name: string;
  from: Date;
  to: Date;
}

const pad = (n: number) => String(n).padStart(2, "0");

/** The interaction partition of the month `offset` months from `now`'s (UTC). */
export function interactionMonth(now: Date, offset: number): Range {
  const from = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + offset, 1));
  const to = new Date(Date.UTC(from.getUTCFullYear(), from.getUTCMonth() + 1, 1));
  return { name: `interactions_${from.getUTCFullYear()}_${pad(from.getUTCMonth() + 1)}`, from, to };
}

/** The trace partition of the day `offset` days from `now`'s (UTC). */
export function traceDay(now: Date, offset: number): Range {
  const from = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + offset));
  const to = new Date(Date.UTC(from.getUTCFullYear(), from.getUTCMonth(), from.getUTCDate() + 1));
  return { name: `decision_traces_${from.getUTCFullYear()}${pad(from.getUTCMonth() + 1)}${pad(from.getUTCDate())}`, from, to };
}

/** The range a partition's name stands for, or null for a name this module did not make. */
export function rangeOfName(name: string): Range | null {
  const month = /^interactions_(\d{4})_(\d{2})$/.exec(name);
  if (month) return interactionMonth(new Date(Date.UTC(Number(month[1]), Number(month[2]) - 1, 1)), 0);
  const day = /^decision_traces_(\d{4})(\d{2})(\d{2})$/.exec(name);
  if (day) return traceDay(new Date(Date.UTC(Number(day[1]), Number(day[2]) - 1, Number(day[3]))), 0);
  return null;
}

/** The partitions of `table` that this module made, oldest first. */
async function partitionsOf(db: Queryable, table: string): Promise<Range[]> {
  const rows = await db.query<{ name: string }>(
    `select c.relname as name from pg_inherits i join pg_class c on c.oid = i.inhrelid
      where i.inhparent = $1::regclass`,
    [table],
  );
  return rows
    .map((r) => rangeOfName(r.name))
    .filter((r): r is Range => r !== null)
    .sort((a, b) => a.from.getTime() - b.from.getTime());
}

/**
 * Creates the partition for `range` unless it exists. Rows of that range already in the default
 * partition are moved into it first: a partition cannot be attached over rows the default holds.
 * Answers whether it created the partition, and how many rows it moved.
 */
export async function createPartition(tx: Queryable, p: Partitioned, range: Range): Promise<{ created: boolean; moved: number }> {
  const exists = await tx.query("select 1 from pg_class where relname = $1", [range.name]);
  if (exists.length > 0) return { created: false, moved: 0 };
  const bounds = `for values from ('${range.from.toISOString()}') to ('${range.to.toISOString()}')`;
  const waiting = await tx.query(`select 1 from ${p.defaultPartition} where ${p.column} >= $1 and ${p.column} < $2 limit 1`, [
    range.from,
    range.to,
  ]);
  if (waiting.length === 0) {
    await tx.query(`create table ${range.name} partition of ${p.table} ${bounds}`);
    return { created: true, moved: 0 };
  }
  await tx.query(`create table ${range.name} (like ${p.table} including defaults including constraints)`);
  const moved = await tx.query<{ n: number }>(
    `with gone as (delete from ${p.defaultPartition} where ${p.column} >= $1 and ${p.column} < $2 returning *),
          kept as (insert into ${range.name} select * from gone returning 1)
     select count(*)::int as n from kept`,
    [range.from, range.to],
  );
  await tx.query(`alter table ${p.table} attach partition ${range.name} ${bounds}`);
  return { created: true, moved: moved[0]?.n ?? 0 };
}

/** Creates the interaction partitions from last month to three months ahead. */
export async function ensureInteractionPartitions(tx: Queryable, now: Date): Promise<number> {
  let created = 0;
  for (let offset = -1; offset <= 3; offset++) {
    if ((await createPartition(tx, INTERACTIONS, interactionMonth(now, offset))).created) created++;
  }
  return created;
}

/** Deletes rows matching `where` from a default partition, a chunk per statement. */
async function deleteInChunks(db: Queryable, table: string, where: string, params: unknown[]): Promise<number> {
  let total = 0;
  for (;;) {
    const rows = await db.query<{ n: number }>(
      `with gone as (delete from ${table} where ctid in (select ctid from ${table} where ${where} limit ${DELETE_CHUNK}) returning 1)
       select count(*)::int as n from gone`,
      params,
    );
    const n = rows[0]?.n ?? 0;
    total += n;
    if (n < DELETE_CHUNK) return total;
  }
}

export interface MaintenanceOptions {
  now: Date;
  /** Whole months of interactions kept before the current one; null keeps them all. */
  interactionRetentionMonths: number | null;
  /** The longest trace retention in use, in days: trace partitions are made that far ahead. */
  traceRetentionDays: number;
  /** This instance, as the holder of the maintenance lease. */
  holder: string;
}

export interface MaintenanceReport {
  /** False when another instance held the maintenance lease, and nothing was done here. */
  ran: boolean;
  partitionsCreated: number;
  partitionsDropped: number;
  rowsMoved: number;
  rowsDeleted: number;
}

/** How long a maintenance round may hold the lease before another instance may take it over. */
const LEASE_SECONDS = 600;

/** Takes the lease on `name` for `holder` if it is free, expired or already `holder`'s. */
export async function takeLease(db: Queryable, name: string, holder: string, seconds: number): Promise<boolean> {
  const rows = await db.query(
    `insert into maintenance_leases (name, holder, expires_at) values ($1, $2, now() + make_interval(secs => $3))
     on conflict (name) do update set holder = excluded.holder, expires_at = excluded.expires_at
       where maintenance_leases.expires_at < now() or maintenance_leases.holder = excluded.holder
     returning 1`,
    [name, holder, seconds],
  );
  return rows.length > 0;
}

export async function releaseLease(db: Queryable, name: string, holder: string): Promise<void> {
  await db.query("delete from maintenance_leases where name = $1 and holder = $2", [name, holder]);
}

/**
 * One round of partition maintenance: create what is due, drop interaction months past the retention
 * and trace days wholly expired, and empty the default partitions of what those would have held. Runs
 * only on the instance that takes the lease; one that finds it held skips the round. Each partition is
 * created or dropped in a transaction of its own, and the default partitions are emptied a chunk per
 * statement, so that no lock on a table is held for longer than one small step.
 */
export async function maintainPartitions(db: Db, opts: MaintenanceOptions): Promise<MaintenanceReport> {
  const report: MaintenanceReport = { ran: false, partitionsCreated: 0, partitionsDropped: 0, rowsMoved: 0, rowsDeleted: 0 };
  if (!(await takeLease(db, "partitions", opts.holder, LEASE_SECONDS))) return report;
  report.ran = true;
  try {
    const due: [Partitioned, Range][] = [];
    for (let offset = -1; offset <= 3; offset++) due.push([INTERACTIONS, interactionMonth(opts.now, offset)]);
    for (let offset = 0; offset <= Math.min(opts.traceRetentionDays, TRACE_DAYS_AHEAD_MAX); offset++) {
      due.push([TRACES, traceDay(opts.now, offset)]);
    }
    for (const [p, range] of due) {
      const done = await db.transaction((tx) => createPartition(tx, p, range));
      if (done.created) report.partitionsCreated++;
      report.rowsMoved += done.moved;
    }

    const expired: Range[] = [];
    if (opts.interactionRetentionMonths !== null) {
      // Kept: the current month and the retention's whole months before it.
      const cutoff = interactionMonth(opts.now, -opts.interactionRetentionMonths).from;
      expired.push(...(await partitionsOf(db, INTERACTIONS.table)).filter((r) => r.to.getTime() <= cutoff.getTime()));
      report.rowsDeleted += await deleteInChunks(db, INTERACTIONS.defaultPartition, `${INTERACTIONS.column} < $1`, [cutoff]);
    }
    expired.push(...(await partitionsOf(db, TRACES.table)).filter((r) => r.to.getTime() <= opts.now.getTime()));
    for (const part of expired) {
      await db.query(`drop table if exists ${part.name}`);
      report.partitionsDropped++;
    }
    report.rowsDeleted += await deleteInChunks(db, TRACES.defaultPartition, `${TRACES.column} <= $1`, [opts.now]);
    return report;
  } finally {
    await releaseLease(db, "partitions", opts.holder);
  }
}
