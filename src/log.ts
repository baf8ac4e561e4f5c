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

export function createLogger(level: Level = "info", base: Record<string, unknown> = {}): Logger {
  const min = rank[level];
  const write = (lvl: Level, msg: string, fields?: Record<string, unknown>) => {
    if (rank[lvl] < min) return;
    const entry: Record<string, unknown> = { time: new Date().toISOString(), level: lvl, msg, ...base, ...fields };
    const err = entry.err;
    if (err instanceof Error) entry.err = { name: err.name, message: err.message, stack: err.stack };
    process.stdout.write(`${JSON.stringify(entry)}\n`);
  };
  return {
    debug: (m, f) => write("debug", m, f),
    info: (m, f) => write("info", m, f),
    warn: (m, f) => write("warn", m, f),
    error: (m, f) => write("error", m, f),
    child: (fields) => createLogger(level, { ...base, ...fields }),
    fields: base,
  };
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
