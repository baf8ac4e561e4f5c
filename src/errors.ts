// The one error type of the service. Every failure a caller can see carries a code from the closed set
// below; each transport maps it once (REST in transport/rest.ts, Connect and gRPC in transport/connect.ts).

import { DatabaseUnavailableError } from "./store/db-errors.ts";

export type ErrorCode =
  | "VALIDATION_ERROR"
  | "UNAUTHORIZED"
  | "FORBIDDEN"
  | "NOT_FOUND"
  | "METHOD_NOT_ALLOWED"
  | "CONFLICT"
  | "PAYLOAD_TOO_LARGE"
  | "UNSUPPORTED_MEDIA_TYPE"
  | "REQUEST_TIMEOUT"
  | "RATE_LIMITED"
  | "QUOTA_EXCEEDED"
  | "INTERNAL_ERROR"
  | "UNAVAILABLE";

export interface FieldViolation {
  field: string;
  message: string;
}

export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: FieldViolation[] = [],
    /** Extra response headers (Retry-After and the like), sent as gRPC metadata on gRPC. */
    readonly headers: Record<string, string> = {},
    /**
     * A CONFLICT from a concurrent change (a stale version) rather than an existing resource: gRPC says
     * `aborted` (re-read and retry) instead of `already_exists`.
     */
    readonly conflict: "exists" | "aborted" = "exists",
  ) {
    super(message);
    this.name = "AppError";
  }
}

export const httpStatusOf: Record<ErrorCode, number> = {
  VALIDATION_ERROR: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  REQUEST_TIMEOUT: 408,
  RATE_LIMITED: 429,
  QUOTA_EXCEEDED: 429,
  INTERNAL_ERROR: 500,
  UNAVAILABLE: 503,
};

export function validationError(details: FieldViolation[]): AppError {
  const first = details[0];
  const message = details.length === 1 && first ? first.message : "Validation failed";
  return new AppError("VALIDATION_ERROR", message, details);
}

export function unauthorized(): AppError {
  // One message for every cause, so a caller cannot tell a missing key from a revoked one.
  return new AppError("UNAUTHORIZED", "Missing or invalid API key");
}

/** A tenant's call without x-tenant-id: said plainly, since it tells nothing about any key. */
export function tenantMissing(): AppError {
  const message = "x-tenant-id is required: the tenant the API key belongs to";
  return new AppError("UNAUTHORIZED", message, [{ field: "x-tenant-id", message }]);
}

export function notFound(what: string): AppError {
  return new AppError("NOT_FOUND", `${what} not found`);
}

/** Turns anything thrown into an AppError; unknown failures become INTERNAL_ERROR without internals. */
export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  if (err instanceof DatabaseUnavailableError) return new AppError("UNAVAILABLE", "The database is unavailable; retry later");
  return new AppError("INTERNAL_ERROR", "Internal server error");
}
