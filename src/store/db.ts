// One small query interface over both databases the service can run on: PostgreSQL through postgres.js,
// or the embedded PGlite when no DATABASE_URL is given. Every SQL statement is written once, with $n
// parameters, and runs unchanged on either.

import postgres from "postgres";
import { lockDataDir } from "./data-dir-lock.ts";

export type Row = Record<string, unknown>;

export interface Queryable {
  query<T = Row>(text: string, params?: unknown[]): Promise<T[]>;
  /** Runs a script of several statements without parameters (migrations). */
  exec(script: string): Promise<void>;
}

export interface Db extends Queryable {
  readonly kind: "postgres" | "embedded";
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /** Calls `onNotify` with the payload of every NOTIFY on the channel; resolves once listening. */
  listen(channel: string, onNotify: (payload: string) => void): Promise<void>;
  close(): Promise<void>;
}

export interface PostgresOptions {
  url: string;
  poolSize: number;
  connectTimeoutSeconds?: number;
}

export function openPostgres(opts: PostgresOptions): Db {
  const sql = postgres(opts.url, {
    max: opts.poolSize,
    connect_timeout: opts.connectTimeoutSeconds ?? 10,
    idle_timeout: 60,
    max_lifetime: 60 * 30,
    onnotice: () => {},
    // Keep bigint columns exact instead of silently losing precision.
    types: { bigint: postgres.BigInt },
  });
  const wrap = (s: postgres.Sql | postgres.TransactionSql): Queryable => ({
    async query<T>(text: string, params: unknown[] = []) {
      return (await s.unsafe(text, params as postgres.ParameterOrJSON<never>[], { prepare: true })) as unknown as T[];
    },
    async exec(script: string) {
      await s.unsafe(script).simple();
    },
  });
  const root = wrap(sql);
  return {
    kind: "postgres",
    query: root.query,
    exec: root.exec,
    transaction: async <T>(fn: (tx: Queryable) => Promise<T>) => (await sql.begin((tx) => fn(wrap(tx)))) as T,
    // postgres.js keeps a dedicated connection for LISTEN and re-subscribes after reconnecting.
    listen: async (channel, onNotify) => {
      await sql.listen(channel, onNotify);
    },
    close: () => sql.end({ timeout: 5 }),
  };
}

export async function openEmbedded(dataDir: string): Promise<Db> {
  const { PGlite } = await import("@electric-sql/pglite");
  const { mkdirSync } = await import("node:fs");
  mkdirSync(dataDir, { recursive: true });
  const release = lockDataDir(dataDir);
  const pg = await PGlite.create(dataDir).catch((err: unknown) => {
    release();
    throw err;
  });
  type Tx = { query: typeof pg.query; exec: typeof pg.exec };
  const wrap = (s: Tx): Queryable => ({
    async query<T>(text: string, params: unknown[] = []) {
      return (await s.query<T>(text, params)).rows;
    },
    async exec(script: string) {
      await s.exec(script);
    },
  });
  const root = wrap(pg);
  return {
    kind: "embedded",
    query: root.query,
    exec: root.exec,
    transaction: <T>(fn: (tx: Queryable) => Promise<T>) => pg.transaction((tx) => fn(wrap(tx as unknown as Tx))),
    listen: async (channel, onNotify) => {
      await pg.listen(channel, onNotify);
    },
    close: async () => {
      try {
        await pg.close();
      } finally {
        release();
      }
    },
  };
}
