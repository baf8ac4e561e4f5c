// Partition lifecycle on a real PostgreSQL: interaction months and trace days created ahead, rows that
// fall outside every partition moved in when their partition comes, old months dropped after the
// retention, expired trace days dropped whole, and one instance at a time doing it.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { openPostgres } from "../src/store/db.ts";
import { migrate } from "../src/store/migrate.ts";
import { interactionMonth, maintainPartitions, rangeOfName, takeLease, traceDay } from "../src/store/partitions.ts";
import { readTrace } from "../src/store/traces.ts";
import { createTestDatabase, type TestDatabase } from "./harness.ts";

const T = new Date("2026-06-15T12:00:00Z");
const DAY = 86_400_000;

let db: TestDatabase;
let store: ReturnType<typeof openPostgres>;

beforeAll(async () => {
  db = await createTestDatabase();
  store = openPostgres({ url: db.url, poolSize: 4 });
  await migrate(store, T);
}, 60_000);
afterAll(async () => {
  await store.close();
  await db.drop();
}, 30_000);

async function partitions(table: string): Promise<string[]> {
  const rows = await db.sql`select c.relname as name from pg_inherits i join pg_class c on c.oid = i.inhrelid
    where i.inhparent = ${table}::regclass order by 1`;
  return rows.map((r) => r.name as string);
}

async function interaction(id: string, recordedAt: Date) {
  await db.sql`insert into interactions (tenant_id, id, customer_id, offer_id, channel_id, outcome_type, recorded_at)
    values ('t1', ${id}, 'c1', 'o1', 'ch', 'click', ${recordedAt})`;
}

async function trace(id: string, expiresAt: Date) {
  await db.sql`insert into decision_traces (tenant_id, trace_id, customer_id, decision_flow_id, body, created_at, expires_at)
    values ('t1', ${id}, 'c1', 'df', '{"traceId": "x"}', ${T}, ${expiresAt})`;
}

/** Which partition holds a row. */
async function home(table: string, column: string, id: string): Promise<string | undefined> {
  const rows = await store.query<{ part: string }>(`select tableoid::regclass::text as part from ${table} where ${column} = $1`, [id]);
  return rows[0]?.part;
}

const round = (now: Date, interactionRetentionMonths: number | null = null, holder = "instance-a") =>
  maintainPartitions(store, { now, interactionRetentionMonths, traceRetentionDays: 30, holder });

describe("partition names", () => {
  test("each name stands for its range, month and day boundaries in UTC", () => {
    expect(interactionMonth(T, -7)).toEqual({
      name: "interactions_2025_11",
      from: new Date("2025-11-01T00:00:00Z"),
      to: new Date("2025-12-01T00:00:00Z"),
    });
    expect(traceDay(T, 17).name).toBe("decision_traces_20260702");
    expect(rangeOfName("decision_traces_20261231")?.to).toEqual(new Date("2027-01-01T00:00:00Z"));
    expect(rangeOfName("interactions_default")).toBeNull();
  });
});

describe("partition maintenance", () => {
  test("creates interaction months from last month to three ahead and trace days to the retention", async () => {
    const report = await round(T);
    expect(report.ran).toBe(true);
    expect(await partitions("interactions")).toEqual([
      "interactions_2026_05",
      "interactions_2026_06",
      "interactions_2026_07",
      "interactions_2026_08",
      "interactions_2026_09",
      "interactions_default",
    ]);
    const days = await partitions("decision_traces");
    expect(days).toContain("decision_traces_20260615");
    expect(days).toContain("decision_traces_20260715");
    expect(days).not.toContain("decision_traces_20260716");
    expect(days.length).toBe(31 + 1);
    // A second round finds nothing to do.
    expect((await round(T)).partitionsCreated).toBe(0);
  }, 60_000);

  test("a row outside every partition waits in the default and moves in when its month comes", async () => {
    await interaction("int_early", new Date("2026-11-20T00:00:00Z"));
    await interaction("int_ancient", new Date("2020-01-05T00:00:00Z"));
    expect(await home("interactions", "id", "int_early")).toBe("interactions_default");
    expect(await home("interactions", "id", "int_ancient")).toBe("interactions_default");
    // Three months on, November is due: the partition is created over the row the default holds.
    const report = await round(new Date(T.getTime() + 92 * DAY));
    expect(report.rowsMoved).toBe(1);
    expect(await home("interactions", "id", "int_early")).toBe("interactions_2026_11");
    // The row older than every partition blocked nothing, and is still there without a retention.
    expect(await home("interactions", "id", "int_ancient")).toBe("interactions_default");
  }, 60_000);

  test("the retention drops whole months and clears the default of older rows", async () => {
    await interaction("int_june", new Date("2026-06-20T00:00:00Z"));
    await interaction("int_sept", new Date("2026-09-02T00:00:00Z"));
    // Now is mid-October with two months kept: August onward stays, July and before go.
    const report = await round(new Date("2026-10-14T00:00:00Z"), 2);
    const left = await partitions("interactions");
    expect(left.filter((p) => p < "interactions_2026_08")).toEqual([]);
    expect(left).toContain("interactions_2026_08");
    expect(left).toContain("interactions_2026_09");
    expect(report.partitionsDropped).toBeGreaterThanOrEqual(3);
    expect(await home("interactions", "id", "int_june")).toBeUndefined();
    expect(await home("interactions", "id", "int_ancient")).toBeUndefined();
    expect(await home("interactions", "id", "int_sept")).toBe("interactions_2026_09");
    expect(await home("interactions", "id", "int_early")).toBe("interactions_2026_11");
  }, 60_000);

  test("trace days are dropped once all they hold has expired; reads never see an expired trace", async () => {
    const now = new Date("2026-10-14T00:00:00Z");
    await trace("trace_soon", new Date(now.getTime() + 1.5 * DAY));
    await trace("trace_later", new Date(now.getTime() + 20 * DAY));
    await trace("trace_far", new Date(now.getTime() + 900 * DAY));
    expect(await home("decision_traces", "trace_id", "trace_soon")).toBe("decision_traces_20261015");
    expect(await home("decision_traces", "trace_id", "trace_far")).toBe("decision_traces_default");
    expect(await readTrace(store, "t1", "trace_soon", now)).toEqual({ traceId: "x" });

    const later = new Date(now.getTime() + 3 * DAY);
    expect(await readTrace(store, "t1", "trace_soon", later)).toBeNull();
    await round(later);
    expect(await partitions("decision_traces")).not.toContain("decision_traces_20261015");
    expect(await home("decision_traces", "trace_id", "trace_soon")).toBeUndefined();
    expect(await home("decision_traces", "trace_id", "trace_later")).toBe("decision_traces_20261103");
    expect(await home("decision_traces", "trace_id", "trace_far")).toBe("decision_traces_default");
  }, 60_000);

  test("one instance at a time: a round finds the lease held and does nothing; an expired lease is taken over", async () => {
    expect(await takeLease(store, "partitions", "instance-b", 60)).toBe(true);
    expect(await round(T, null, "instance-a")).toEqual({ ran: false, partitionsCreated: 0, partitionsDropped: 0, rowsMoved: 0, rowsDeleted: 0 });
    await db.sql`update maintenance_leases set expires_at = now() - interval '1 second' where name = 'partitions'`;
    expect((await round(T, null, "instance-a")).ran).toBe(true);
    // The round let the lease go when it finished.
    expect(await db.sql`select 1 from maintenance_leases`).toHaveLength(0);
  }, 60_000);
});
