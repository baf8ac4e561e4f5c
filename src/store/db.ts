// One small query interface over both databases the service can run on: PostgreSQL through Bun.SQL (the
// runtime's own client), or the embedded PGlite when no DATABASE_URL is given. Every SQL statement is written once, with $n
// parameters, and runs unchanged on either.

import { lockDataDir } from "./data-dir-lock.ts";
import { DatabaseUnavailableError } from "./db-errors.ts";

export { DatabaseUnavailableError };

export type Row = Record<string, unknown>;

export interface Queryable {
  query<T = Row>(text: string, params?: unknown[]): Promise<T[]>;
  /** Runs a script of several statements without parameters (migrations). */
  exec(script: string): Promise<void>;
}

/** What the pool holds now: its size, connections open (not the one kept for LISTEN), calls on one, calls waiting. */
export interface PoolFigures {
  max: number;
  open: number;
  inUse: number;
  waiting: number;
}

export type CallKind = "query" | "exec" | "transaction";

export interface Db extends Queryable {
  readonly kind: "postgres" | "embedded";
  /** The pool's figures, for the metrics; absent on the embedded database (one connection, no pool). */
  pool?(): PoolFigures;
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /** Calls `onNotify` with the payload of every NOTIFY on the channel; resolves once listening. */
  listen(channel: string, onNotify: (payload: string) => void): Promise<void>;
  close(): Promise<void>;
}

export interface PostgresOptions {
  url: string;
  poolSize: number;
  /**
   * False for a transaction-mode pooler in front of the database: no named prepared statements, which
   * live on one server connection and a pooler hands each transaction another.
   */
  prepare?: boolean;
  /** A direct connection for LISTEN (a transaction-mode pooler cannot keep a session's LISTEN). */
  listenUrl?: string;
  connectTimeoutSeconds?: number;
  /** Calls waiting for a connection at most, beyond those running; more are refused as unavailable. */
  maxQueued?: number;
  /** How often an open breaker asks the database whether it is back. */
  probeIntervalMs?: number;
  /** Told when the breaker opens (with the failure that opened it) and when it closes again. */
  onAvailability?: (available: boolean, cause?: unknown) => void;
  /** Told when the database refuses a call for want of resources (connections, memory, disk). */
  onBusy?: (cause: unknown) => void;
  /** Told about an error thrown by a LISTEN handler (which would otherwise end the process). */
  onListenerError?: (err: unknown) => void;
  /** Told how long each call took, from asking for a connection to the answer, and whether it failed. */
  onCall?: (kind: CallKind, seconds: number, ok: boolean) => void;
}

/**
 * Whether a connection Bun.SQL reports closed had been open: Bun reports a failed connection attempt to
 * the same callback, with the error of the attempt (refused, timed out, authentication, TLS, or the
 * server's refusal while starting the session: too many clients, no such database).
 */
function wasOpen(err: unknown): boolean {
  const { code, errno } = (err ?? {}) as { code?: unknown; errno?: unknown };
  if (typeof code !== "string") return true;
  if (
    /^ERR_POSTGRES_(CONNECTION_(REFUSED|TIMEOUT|FAILED)|TLS_|SASL_|AUTHENTICATION_|UNSUPPORTED_AUTH|UNKNOWN_AUTH|CHANNEL_BINDING|INVALID_SERVER)/.test(
      code,
    )
  )
    return false;
  return !(code === "ERR_POSTGRES_SERVER_ERROR" && typeof errno === "string" && /^(28|3D|53300)/.test(errno));
}

/**
 * What a driver error says about the database: "lost" when it is out of reach (the connection failed or
 * was refused, the server is shutting down or starting up): the breaker opens; "busy" when it cannot take
 * this call now (out of connections, memory or disk, statement canceled): this call is unavailable, the
 * next may pass; null when the call itself was refused (bad data, constraint, syntax).
 */
function unavailability(err: unknown): "lost" | "busy" | null {
  if (!(err instanceof Bun.SQL.SQLError)) return null;
  const { code, errno } = err as { code?: unknown; errno?: unknown };
  if (typeof errno === "string" && /^[0-9A-Z]{5}$/.test(errno)) {
    if (errno.startsWith("08") || errno === "57P01" || errno === "57P02" || errno === "57P03") return "lost";
    return errno.startsWith("53") || errno.startsWith("57") || errno.startsWith("58") ? "busy" : null;
  }
  if (typeof code !== "string") return null;
  return /^ERR_POSTGRES_(CONNECTION_|SERVER_CLOSED|TLS|IDLE_TIMEOUT|LIFETIME_TIMEOUT)/.test(code) ? "lost" : null;
}

/**
 * A circuit breaker in front of the pool. Closed, every call goes to the database. The first call that
 * fails because the database is out of reach opens it: from then on calls fail at once with
 * DatabaseUnavailableError (the services answer 503), and calls already waiting are released with the
 * same error instead of hanging on a connection that will not answer. While open, a connection of its own
 * asks `select 1` every probe interval; the first answer closes the breaker again.
 */
class Breaker {
  private openedBy: unknown = null;
  private probing: ReturnType<typeof setTimeout> | null = null;
  private readonly waiters = new Set<(err: DatabaseUnavailableError) => void>();
  private closed = false;

  constructor(
    private readonly probe: () => Promise<unknown>,
    private readonly intervalMs: number,
    private readonly notify: (available: boolean, cause?: unknown) => void,
    private readonly busy: (cause: unknown) => void,
  ) {}

  get isOpen(): boolean {
    return this.openedBy !== null;
  }

  /** Runs `call` unless the breaker is open; a connection failure opens it and fails every waiting call. */
  async run<T>(call: () => Promise<T>): Promise<T> {
    if (this.openedBy !== null) throw this.unavailable();
    let release!: (err: DatabaseUnavailableError) => void;
    const abandoned = new Promise<never>((_, reject) => {
      release = reject;
    });
    this.waiters.add(release);
    const running = call();
    try {
      return await Promise.race([running, abandoned]);
    } catch (err) {
      if (err instanceof DatabaseUnavailableError) {
        // The call may still settle; nobody waits for it any more.
        running.catch(() => {});
        throw err;
      }
      switch (unavailability(err)) {
        case "lost":
          this.open(err);
          throw new DatabaseUnavailableError("The database connection was lost", { cause: err });
        case "busy":
          this.busy(err);
          throw new DatabaseUnavailableError("The database cannot take the call now", { cause: err });
        default:
          throw err;
      }
    } finally {
      this.waiters.delete(release);
    }
  }

  private unavailable(): DatabaseUnavailableError {
    return new DatabaseUnavailableError("The database is unavailable", { cause: this.openedBy });
  }

  private open(cause: unknown): void {
    if (this.openedBy !== null || this.closed) return;
    this.openedBy = cause;
    this.notify(false, cause);
    const err = this.unavailable();
    for (const release of this.waiters) release(err);
    this.waiters.clear();
    this.scheduleProbe();
  }

  private scheduleProbe(): void {
    this.probing = setTimeout(async () => {
      this.probing = null;
      if (this.closed) return;
      try {
        await this.probe();
        this.openedBy = null;
        this.notify(true);
      } catch {
        this.scheduleProbe();
      }
    }, this.intervalMs);
  }

  stop(): void {
    this.closed = true;
    if (this.probing) clearTimeout(this.probing);
  }
}

/**
 * PostgreSQL through Bun's built-in client (Bun.SQL). Its connection state lives in the runtime, so a
 * connection the server drops fails the calls on it and is replaced on the next call; nothing is written
 * to a socket that is gone (postgres.js 3.4.9 could, from a timer, which ended the process).
 */
export function openPostgres(opts: PostgresOptions): Db {
  const connectionTimeout = opts.connectTimeoutSeconds ?? 5;
  // Connections open, counted from Bun's callbacks (it has no figure of its own), and the one kept for LISTEN.
  let open = 0;
  let listening = 0;
  const sql = new Bun.SQL(opts.url, {
    max: opts.poolSize,
    connectionTimeout,
    idleTimeout: 60,
    maxLifetime: 60 * 30,
    // Keep bigint columns exact instead of silently losing precision.
    bigint: true,
    prepare: opts.prepare ?? true,
    onconnect: () => {
      open++;
    },
    onclose: (err) => {
      if (open > 0 && wasOpen(err)) open--;
    },
  });
  // The probe has a connection of its own so that a pool busy with long calls never looks like an outage.
  const probeSql = new Bun.SQL(opts.url, { max: 1, connectionTimeout: 1, idleTimeout: 10 });
  const probe = () => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    return Promise.race([
      probeSql.unsafe("select 1"),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error("probe timed out")), 1000);
      }),
    ]).finally(() => clearTimeout(timer));
  };
  const breaker = new Breaker(probe, opts.probeIntervalMs ?? 250, opts.onAvailability ?? (() => {}), opts.onBusy ?? (() => {}));
  const maxPending = opts.poolSize + (opts.maxQueued ?? opts.poolSize * 50);
  let pending = 0;
  const onCall = opts.onCall;
  const guarded = <T>(kind: CallKind, call: () => Promise<T>): Promise<T> => {
    if (pending >= maxPending) {
      return Promise.reject(new DatabaseUnavailableError(`The database pool is saturated (${pending} calls waiting or running)`));
    }
    pending++;
    const started = performance.now();
    return breaker.run(call).then(
      (value) => {
        pending--;
        onCall?.(kind, (performance.now() - started) / 1000, true);
        return value;
      },
      (err: unknown) => {
        pending--;
        onCall?.(kind, (performance.now() - started) / 1000, false);
        throw err;
      },
    );
  };
  const wrap = (s: Bun.SQL | Bun.TransactionSQL): Queryable => ({
    async query<T>(text: string, params: unknown[] = []) {
      return (await s.unsafe(text, params)) as unknown as T[];
    },
    async exec(script: string) {
      await s.unsafe(script).simple();
    },
  });
  const root = wrap(sql);
  let listenSql: Bun.SQL | undefined;
  return {
    kind: "postgres",
    // Each call holds one connection while it runs; those beyond the pool's size wait in Bun's queue.
    pool: () => ({
      max: opts.poolSize,
      open: Math.max(0, open - listening),
      inUse: Math.min(pending, opts.poolSize),
      waiting: Math.max(0, pending - opts.poolSize),
    }),
    query: (text, params) => guarded("query", () => root.query(text, params)),
    exec: (script) => guarded("exec", () => root.exec(script)),
    transaction: <T>(fn: (tx: Queryable) => Promise<T>) => guarded("transaction", () => sql.begin((tx) => fn(wrap(tx))) as Promise<T>),
    // Bun.SQL keeps a connection for LISTEN and subscribes again after reconnecting.
    listen: async (channel, onNotify) => {
      listenSql ??= opts.listenUrl ? new Bun.SQL(opts.listenUrl, { max: 1, connectionTimeout, idleTimeout: 0 }) : sql;
      await listenSql.listen(channel, (payload) => {
        try {
          onNotify(payload);
        } catch (err) {
          opts.onListenerError?.(err);
        }
      });
      if (listenSql === sql) listening = 1;
    },
    close: async () => {
      breaker.stop();
      await Promise.all([sql.close({ timeout: 5 }), probeSql.close({ timeout: 1 }), listenSql !== sql && listenSql?.close({ timeout: 1 })]);
    },
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
