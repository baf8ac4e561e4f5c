// What a failed database call means for the caller: the database refused the data, the database could not
// be reached (or went away), or something else went wrong. The services turn these into error codes.

export type DbFailure = "refused-data" | "unavailable" | "retryable" | "other";

/** The SQLSTATE of an error raised by the server (postgres.js PostgresError, PGlite DatabaseError), if any. */
export function sqlStateOf(err: unknown): string | null {
  if (typeof err !== "object" || err === null) return null;
  const { code, severity } = err as { code?: unknown; severity?: unknown };
  // Client-side errors carry codes too (ECONNREFUSED, CONNECTION_CLOSED); only server errors have a severity.
  return typeof code === "string" && typeof severity === "string" && /^[0-9A-Z]{5}$/.test(code) ? code : null;
}

export function classifyDbFailure(err: unknown): DbFailure {
  const state = sqlStateOf(err);
  // No SQLSTATE: the driver lost or could not open the connection.
  if (state === null) return "unavailable";
  const cls = state.slice(0, 2);
  // 22 data exception (e.g. a NUL character), 23 integrity violation: this data, not the database.
  if (cls === "22" || cls === "23") return "refused-data";
  // 40 serialization failure or deadlock: nothing was committed and trying again may succeed.
  if (cls === "40") return "retryable";
  // 08 connection, 53 insufficient resources, 57 operator intervention (shutdown, terminated), 58 system.
  if (cls === "08" || cls === "53" || cls === "57" || cls === "58") return "unavailable";
  return "other";
}
