// The database layer on its own, against a PostgreSQL of the test's own: the breaker opens on a lost
// database and closes by itself, a refused statement is not an outage, and the wait for a connection is
// bounded.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { DatabaseUnavailableError, sqlStateOf } from "../../src/store/db-errors.ts";
import { type Db, openPostgres } from "../../src/store/db.ts";
import { waitFor } from "../harness.ts";
import { type PrivatePostgres, startPrivatePostgres } from "./servers.ts";

let pg: PrivatePostgres;
beforeAll(async () => {
  pg = await startPrivatePostgres();
}, 60_000);
afterAll(async () => {
  await pg.destroy();
});

async function failure(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => {
      throw new Error("expected the call to fail");
    },
    (err: unknown) => err,
  );
}

describe("database breaker", () => {
  test("a refused statement is the statement's error and leaves the database in use", async () => {
    const events: boolean[] = [];
    const db = openPostgres({ url: pg.url, poolSize: 2, onAvailability: (up) => events.push(up) });
    try {
      const err = await failure(db.query("select 1 / 0"));
      expect(err).not.toBeInstanceOf(DatabaseUnavailableError);
      expect(sqlStateOf(err)).toBe("22012");
      // A statement canceled by the server (statement_timeout) is unavailable for this call only.
      const canceled = await failure(
        db.transaction(async (tx) => {
          await tx.query("set local statement_timeout = 50");
          await tx.query("select pg_sleep(1)");
        }),
      );
      expect(canceled).toBeInstanceOf(DatabaseUnavailableError);
      expect(await db.query("select 1 as one")).toEqual([{ one: 1 }]);
      expect(events).toEqual([]);
    } finally {
      await db.close();
    }
  });

  test("a killed server fails the calls in flight at once, later calls fail fast, and it closes again by itself", async () => {
    const events: boolean[] = [];
    let db: Db | null = openPostgres({ url: pg.url, poolSize: 4, probeIntervalMs: 100, onAvailability: (up) => events.push(up) });
    try {
      expect(await db.query("select 1 as one")).toEqual([{ one: 1 }]);
      const inFlight = failure(db.query("select pg_sleep(30)"));
      const inTransaction = failure(
        db.transaction(async (tx) => {
          await tx.query("select 1");
          await tx.query("select pg_sleep(30)");
        }),
      );
      await Bun.sleep(200);
      const killedAt = performance.now();
      await pg.kill();
      expect(await inFlight).toBeInstanceOf(DatabaseUnavailableError);
      expect(await inTransaction).toBeInstanceOf(DatabaseUnavailableError);
      expect(performance.now() - killedAt).toBeLessThan(5_000);
      expect(events).toEqual([false]);

      for (let i = 0; i < 20; i++) {
        const started = performance.now();
        expect(await failure(db.query("select 1"))).toBeInstanceOf(DatabaseUnavailableError);
        expect(performance.now() - started).toBeLessThan(100);
      }

      await pg.start();
      await waitFor(async () => events.length === 2, 10_000);
      expect(events).toEqual([false, true]);
      expect(await db.query("select 2 as two")).toEqual([{ two: 2 }]);
      await db.close();
      db = null;
    } finally {
      await db?.close();
    }
  }, 60_000);

  test("calls beyond the pool and its queue are refused at once", async () => {
    const db = openPostgres({ url: pg.url, poolSize: 1, maxQueued: 1 });
    try {
      const results = await Promise.allSettled([
        db.query("select pg_sleep(0.3)"),
        db.query("select pg_sleep(0.3)"),
        db.query("select pg_sleep(0.3)"),
      ]);
      expect(results.map((r) => r.status)).toEqual(["fulfilled", "fulfilled", "rejected"]);
      const refused = (results[2] as PromiseRejectedResult).reason as Error;
      expect(refused).toBeInstanceOf(DatabaseUnavailableError);
      expect(refused.message).toContain("saturated");
      // Once the queue drains, calls pass again.
      expect(await db.query("select 3 as three")).toEqual([{ three: 3 }]);
    } finally {
      await db.close();
    }
  });
});
