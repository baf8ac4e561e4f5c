// The decision trace writer against the real PostgreSQL: batching, bounded buffering, retries.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { openPostgres } from "../src/store/db.ts";
import { migrate } from "../src/store/migrate.ts";
import { readTrace, type StoredTrace, TraceWriter } from "../src/store/traces.ts";
import { createTestDatabase, type TestDatabase } from "./harness.ts";

let db: TestDatabase;
let store: ReturnType<typeof openPostgres>;
beforeAll(async () => {
  db = await createTestDatabase();
  store = openPostgres({ url: db.url, poolSize: 4 });
  await migrate(store);
});
afterAll(async () => {
  await store.close();
  await db.drop();
});

let n = 0;
function trace(): StoredTrace {
  n++;
  const now = new Date();
  return {
    tenantId: "t1",
    traceId: `trace_${n}`,
    customerId: "c",
    decisionFlowId: "f",
    body: { traceId: `trace_${n}`, stages: [] },
    createdAt: now,
    expiresAt: new Date(now.getTime() + 60_000),
  };
}

const count = async () => Number((await db.sql`select count(*)::int as n from decision_traces`)[0]?.n);

describe("TraceWriter", () => {
  test("writes every trace added while inserts run, once each, and serves them from memory meanwhile", async () => {
    const errors: unknown[] = [];
    const writer = new TraceWriter(store, {
      flushMs: 10,
      maxBatch: 50,
      maxBuffered: 100_000,
      maxAttempts: 3,
      concurrency: 2,
      onError: (e) => errors.push(e),
    });
    const before = await count();
    const added: StoredTrace[] = [];
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 150; i++) {
        const t = trace();
        expect(writer.add(t)).toBe(true);
        added.push(t);
      }
      const last = added[added.length - 1] as StoredTrace;
      expect(writer.peek("t1", last.traceId)?.traceId).toBe(last.traceId);
      await Bun.sleep(1);
    }
    await writer.flush();
    expect(errors).toEqual([]);
    expect(writer.buffered).toBe(0);
    expect((await count()) - before).toBe(added.length);
    const sample = added[1234] as StoredTrace;
    expect(await readTrace(store, "t1", sample.traceId, new Date())).toEqual(sample.body);
  });

  test("refuses traces beyond its buffer instead of growing without bound", async () => {
    const writer = new TraceWriter(store, {
      flushMs: 1000,
      maxBatch: 1000,
      maxBuffered: 5,
      maxAttempts: 3,
      concurrency: 2,
      onError: () => {},
    });
    const results = Array.from({ length: 8 }, () => writer.add(trace()));
    expect(results).toEqual([true, true, true, true, true, false, false, false]);
    await writer.flush();
    expect(writer.add(trace())).toBe(true);
    await writer.flush();
  });

  test("keeps traces through a failed write and writes them on the next attempt", async () => {
    const failures: boolean[] = [];
    const writer = new TraceWriter(store, {
      flushMs: 20,
      maxBatch: 100,
      maxBuffered: 1000,
      maxAttempts: 1000,
      concurrency: 2,
      onError: (_e, _n, givenUp) => failures.push(givenUp),
    });
    await db.sql`alter table decision_traces rename to decision_traces_away`;
    const t = trace();
    try {
      writer.add(t);
      await Bun.sleep(60);
      expect(failures.length).toBeGreaterThanOrEqual(1);
      expect(failures.every((g) => g === false)).toBe(true);
      expect(writer.peek("t1", t.traceId)).toBeDefined();
    } finally {
      await db.sql`alter table decision_traces_away rename to decision_traces`;
    }
    await writer.flush();
    expect(await readTrace(store, "t1", t.traceId, new Date())).toEqual(t.body);
  });
});
