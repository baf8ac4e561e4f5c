// Structured JSON logs, one object per line on stdout, so any collector can parse them.

type Level = "debug" | "info" | "warn" | "error";
const rank: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
  /** The fields every line of this logger carries (a request's transport and route, for its metrics). */
  readonly fields?: Readonly<Record<string, unknown>>;
}

// A logger per request is made on every call: a child holds its own fields and its parent, and merges them
// only when it writes a line or is asked for its fields.
class JsonLogger implements Logger {
  private merged: Record<string, unknown> | undefined;

  constructor(
    private readonly min: number,
    private readonly parent: JsonLogger | null,
    private readonly own: Record<string, unknown>,
  ) {}

  get fields(): Record<string, unknown> {
    if (this.merged === undefined) {
      const inherited = this.parent?.fields;
      this.merged = inherited && Object.keys(inherited).length > 0 ? { ...inherited, ...this.own } : this.own;
    }
    return this.merged;
  }

  private write(lvl: Level, msg: string, fields?: Record<string, unknown>): void {
    if (rank[lvl] < this.min) return;
    const entry: Record<string, unknown> = { time: new Date().toISOString(), level: lvl, msg, ...this.fields, ...fields };
    const err = entry.err;
    if (err instanceof Error) entry.err = { name: err.name, message: err.message, stack: err.stack };
    process.stdout.write(`${JSON.stringify(entry)}\n`);
  }

  debug(msg: string, fields?: Record<string, unknown>): void {
    this.write("debug", msg, fields);
  }
  info(msg: string, fields?: Record<string, unknown>): void {
    this.write("info", msg, fields);
  }
  warn(msg: string, fields?: Record<string, unknown>): void {
    this.write("warn", msg, fields);
  }
  error(msg: string, fields?: Record<string, unknown>): void {
    this.write("error", msg, fields);
  }
  child(fields: Record<string, unknown>): Logger {
    return new JsonLogger(this.min, this, fields);
  }
}

export function createLogger(level: Level = "info", base: Record<string, unknown> = {}): Logger {
  return new JsonLogger(rank[level], null, { ...base });
}

/**
 * At most `perSecond` lines a second of one kind, so that a flood of bad requests cannot flood the log;
 * what is held back is counted into the next line that passes.
 */
export class Throttle {
  private windowStart = Number.NEGATIVE_INFINITY;
  private passed = 0;
  private held = 0;

  constructor(
    private readonly perSecond: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** null: hold this line back; else how many were held back since the last that passed. */
  pass(): number | null {
    const t = this.now();
    if (t - this.windowStart >= 1000) {
      this.windowStart = t;
      this.passed = 0;
    }
    if (this.passed >= this.perSecond) {
      this.held++;
      return null;
    }
    this.passed++;
    const held = this.held;
    this.held = 0;
    return held;
  }
}
