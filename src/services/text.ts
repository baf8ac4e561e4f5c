// Text a request may carry: every string and every object key of a decoded request, of any transport,
// must be well-formed Unicode without NUL characters. PostgreSQL refuses both, and a client's mistake is
// a 400 naming the field, never a 500 from deep inside a query.

import { type FieldViolation, validationError } from "../errors.ts";

/** Violations listed at most for one request; the rest are not looked for. */
const MAX_TEXT_VIOLATIONS = 20;
/** Nesting walked at most: deeper values are refused by the JSON shape checks or the message decoders. */
const MAX_DEPTH = 64;

/** String.prototype.isWellFormed (ES2024, in the runtime; not yet in the compiler's library). */
interface WellFormed {
  isWellFormed(): boolean;
}

/** What is wrong with a piece of text, or null. */
export function textProblem(s: string): string | null {
  if (s.includes("\u0000")) return "must not contain NUL characters";
  if (!(s as unknown as WellFormed).isWellFormed()) return "must be well-formed Unicode (no lone surrogates)";
  return null;
}

function join(path: string, key: string): string {
  return path === "" ? key : `${path}.${key}`;
}

function walk(value: unknown, path: string, out: FieldViolation[], depth: number): void {
  if (out.length >= MAX_TEXT_VIOLATIONS || depth > MAX_DEPTH) return;
  if (typeof value === "string") {
    const problem = textProblem(value);
    if (problem) out.push({ field: path, message: `${path || "value"} ${problem}` });
    return;
  }
  if (typeof value !== "object" || value === null || ArrayBuffer.isView(value)) return;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) walk(value[i], `${path}[${i}]`, out, depth + 1);
    return;
  }
  for (const [key, item] of Object.entries(value)) {
    // Decoded protobuf messages name their type; it is not the caller's text.
    if (key === "$typeName") continue;
    const problem = textProblem(key);
    if (problem) {
      out.push({ field: path, message: `${path || "request"}: a key ${problem}` });
      if (out.length >= MAX_TEXT_VIOLATIONS) return;
      continue;
    }
    walk(item, join(path, key), out, depth + 1);
  }
}

/** The text violations of a decoded request (a JSON value or a protobuf message), with their paths. */
export function textViolations(value: unknown, path = ""): FieldViolation[] {
  const out: FieldViolation[] = [];
  walk(value, path, out, 0);
  return out;
}

/** Throws VALIDATION_ERROR naming every field of `value` whose text is not acceptable. */
export function checkText(value: unknown, path = ""): void {
  const out = textViolations(value, path);
  if (out.length > 0) throw validationError(out);
}
