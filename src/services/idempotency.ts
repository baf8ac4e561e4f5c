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
  if (Array.isArray(value)) {
    let out = "[";
    for (let i = 0; i < value.length; i++) out += (i > 0 ? "," : "") + canonicalJson(value[i]);
    return `${out}]`;
  }
  if (value !== null && typeof value === "object") {
    const obj = value as Record<string, unknown>;
    // Keys in code-unit order, as a < b compares them.
    const keys = Object.keys(obj).sort();
    let out = "{";
    for (const k of keys) {
      const v = obj[k];
      if (v === undefined) continue;
      out += `${out.length > 1 ? "," : ""}${JSON.stringify(k)}:${canonicalJson(v)}`;
    }
    return `${out}}`;
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

/** The fields of a Respond request, as its JSON names them, in the order canonicalJson sorts them. */
interface RespondFields {
  channelId: string;
  creativeId: string;
  customerId: string;
  metadata?: Record<string, unknown>;
  offerId: string;
  outcomeType: string;
  recommendationId: string;
  traceId: string;
}

/** Printable ASCII but `"` and `\\`: the text JSON.stringify writes between quotes unchanged. */
const PLAIN_JSON_TEXT = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/** JSON.stringify of a string, without its call for the ids and names nearly every field holds. */
const str = (s: string): string => (PLAIN_JSON_TEXT.test(s) ? `"${s}"` : JSON.stringify(s));

/**
 * requestHash of a Respond request's JSON with every field written and absent metadata as `{}`, the same
 * hex digest (keys stored earlier keep matching their retries), written straight from the fields: a bulk
 * respond hashes a thousand, and the JSON mapping plus the generic sort cost several times the digest.
 * RespondRequest has these eight fields; `idempotency.test.ts` checks that, and that the two agree.
 */
export function respondRequestHash(r: RespondFields): string {
  const metadata = r.metadata && Object.keys(r.metadata).length > 0 ? canonicalJson(r.metadata) : "{}";
  const text =
    `{"channelId":${str(r.channelId)},"creativeId":${str(r.creativeId)},"customerId":${str(r.customerId)},"metadata":${metadata},` +
    `"offerId":${str(r.offerId)},"outcomeType":${str(r.outcomeType)},"recommendationId":${str(r.recommendationId)},"traceId":${str(r.traceId)}}`;
  return Bun.SHA256.hash(text, "hex") as string;
}
