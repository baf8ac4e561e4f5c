// What a failed database call means for the caller: the database refused the data, the database could not
// be reached (or went away), or something else went wrong. The services turn these into error codes.

/**
 * The database cannot be used now: the connection was lost or refused, the server is starting, shutting
 * down or out of connections, or this process already has as many calls waiting as it allows. Nothing of a
 * call that fails with it was committed unless the failure came while COMMIT was in flight.
 */
export class DatabaseUnavailableError extends Error {
  override readonly name = "DatabaseUnavailableError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export type DbFailure = "refused-data" | "unavailable" | "retryable" | "other";

const SQLSTATE = /^[0-9A-Z]{5}$/;

/** The SQLSTATE of an error raised by the server (Bun.SQL PostgresError, PGlite DatabaseError), if any. */
export function sqlStateOf(err: unknown): string | null {
  if (typeof err !== "object" || err === null) return null;
  const { code, errno, severity } = err as { code?: unknown; errno?: unknown; severity?: unknown };
  // Bun.SQL keeps the SQLSTATE in errno (its code is ERR_POSTGRES_SERVER_ERROR); PGlite in code.
  if (typeof errno === "string" && SQLSTATE.test(errno)) return errno;
  // Client-side errors carry codes too (ERR_POSTGRES_CONNECTION_CLOSED); only server errors have a severity.
  return typeof code === "string" && typeof severity === "string" && SQLSTATE.test(code) ? code : null;
}

export function classifyDbFailure(err: unknown): DbFailure {
  // The database layer wraps every failure to reach the database in DatabaseUnavailableError; any other
  // error without a SQLSTATE is this process's own, and not the database's.
  if (err instanceof DatabaseUnavailableError) return "unavailable";
  const state = sqlStateOf(err);
  if (state === null) return "other";
  const cls = state.slice(0, 2);
  // 22 data exception (e.g. a NUL character), 23 integrity violation: this data, not the database.
  if (cls === "22" || cls === "23") return "refused-data";
  // 40 serialization failure or deadlock: nothing was committed and trying again may succeed.
  if (cls === "40") return "retryable";
  // 08 connection, 53 insufficient resources, 57 operator intervention (shutdown, terminated), 58 system.
  if (cls === "08" || cls === "53" || cls === "57" || cls === "58") return "unavailable";
  return "other";
}
