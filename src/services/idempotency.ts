// Idempotency-Key of a request: its limits, and the request hash that tells a retry (same key, same
// request) from a reuse of the key for another request.

import { createHash } from "node:crypto";
import type { Violations } from "./validate.ts";

/** The name callers know the key by (REST header; gRPC metadata uses it in lower case). */
export const IDEMPOTENCY_KEY_FIELD = "Idempotency-Key";
export const MAX_IDEMPOTENCY_KEY_LENGTH = 255;

export function checkIdempotencyKey(v: Violations, key: string | undefined): void {
  if (key === undefined) return;
  // An empty header is more likely a client bug than a wish for no idempotency: say so.
  if (key === "") v.add(IDEMPOTENCY_KEY_FIELD, `${IDEMPOTENCY_KEY_FIELD} must not be empty`);
  else if (key.length > MAX_IDEMPOTENCY_KEY_LENGTH) {
    v.add(IDEMPOTENCY_KEY_FIELD, `${IDEMPOTENCY_KEY_FIELD} must be at most ${MAX_IDEMPOTENCY_KEY_LENGTH} characters`);
  }
}

/** JSON with object keys sorted at every level, so equal values always give the same text. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

/**
 * SHA-256 (hex) of the canonical JSON of a request message. JSON rather than protobuf binary because the
 * binary encoding of a map (metadata) follows insertion order: the same request over REST and gRPC, or
 * with its metadata keys in another order, must hash the same.
 */
export function requestHash(requestJson: unknown): string {
  return createHash("sha256").update(canonicalJson(requestJson)).digest("hex");
}
