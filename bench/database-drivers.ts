// The two PostgreSQL clients side by side, on one private PostgreSQL: postgres.js 3.4.9 (the service's
// client until it ended the process on a lost connection) and Bun.SQL (its client now). Each runs the same
// work for the same time: 40 loops, half of them a transaction of two inserts, half an indexed read; then
// the same with the server killed (`-m immediate`) and started again three times.
//
//   bun bench/database-drivers.ts            # about 40 s
//
// Prints, per client and phase: calls done, failed, slower than 2 s, and calls done in the 3 s after the last
// restart (0 means it did not recover). A client that ends the process ends the run: that is the result.

import postgres from "postgres";
import { startPrivatePostgres } from "../test/fault/servers.ts";

type Query = (text: string, params?: unknown[]) => Promise<unknown>;
interface Client {
  query: Query;
  transaction(fn: (q: Query) => Promise<void>): Promise<void>;
  close(): Promise<void>;
}

function postgresJs(url: string): Client {
  const sql = postgres(url, { max: 10, connect_timeout: 10, onnotice: () => {} });
  const q =
    (s: postgres.Sql | postgres.TransactionSql): Query =>
    (text, params = []) =>
      s.unsafe(text, params as postgres.ParameterOrJSON<never>[], { prepare: true });
  return {
    query: q(sql),
    transaction: async (fn) => {
      await sql.begin((tx) => fn(q(tx)));
    },
    close: () => sql.end({ timeout: 1 }),
  };
}

function bunSql(url: string): Client {
  const sql = new Bun.SQL(url, { max: 10, connectionTimeout: 10 });
  const q =
    (s: Bun.SQL): Query =>
    (text, params = []) =>
      s.unsafe(text, params);
  return {
    query: q(sql),
    transaction: async (fn) => {
      await sql.begin((tx) => fn(q(tx)));
    },
    close: () => sql.close({ timeout: 1 }),
  };
}

interface Phase {
  done: number;
  failed: number;
  slow: number;
  afterLastRestart: number | null;
}

async function run(name: string, make: (url: string) => Client, kills: number): Promise<Phase> {
  const pg = await startPrivatePostgres();
  const client = make(pg.url);
  try {
    await client.query("create table t (id bigserial primary key, v text not null)");
    await client.query("create index on t (v)");
    let stop = false;
    const phase: Phase = { done: 0, failed: 0, slow: 0, afterLastRestart: null };
    const loops = Array.from({ length: 40 }, async (_, i) => {
      while (!stop) {
        const started = performance.now();
        try {
          if (i % 2) {
            await client.transaction(async (q) => {
              await q("insert into t (v) values ($1)", [`a${i}`]);
              await q("insert into t (v) values ($1)", [`b${i}`]);
            });
          } else {
            await client.query("select count(*) from t where v = $1", [`a${i}`]);
          }
          phase.done++;
        } catch {
          phase.failed++;
          await Bun.sleep(20);
        }
        if (performance.now() - started > 2_000) phase.slow++;
      }
    });
    if (kills === 0) await Bun.sleep(10_000);
    for (let k = 0; k < kills; k++) {
      await Bun.sleep(1_500);
      await pg.kill();
      await Bun.sleep(1_000);
      await pg.start();
    }
    if (kills > 0) {
      const before = phase.done;
      await Bun.sleep(3_000);
      phase.afterLastRestart = phase.done - before;
    }
    stop = true;
    await Promise.race([Promise.all(loops), Bun.sleep(15_000)]);
    console.log(`${name.padEnd(12)} ${kills === 0 ? "steady 10 s" : `${kills} kills`}`.padEnd(28), JSON.stringify(phase));
    return phase;
  } finally {
    await client.close().catch(() => {});
    await pg.destroy();
  }
}

for (const [name, make] of [
  ["Bun.SQL", bunSql],
  ["postgres.js", postgresJs],
] as const) {
  await run(name, make, 0);
  await run(name, make, 3);
}
process.exit(0);
