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

/**
 * The path of a value: the walk's base path and its keys and indexes, `a.b[2].c`. Made only for a
 * violation: a bulk request has thousands of values and nearly always none.
 */
function pathOf(base: string, steps: (string | number)[]): string {
  let path = base;
  for (const step of steps) path = typeof step === "number" ? `${path}[${step}]` : path === "" ? step : `${path}.${step}`;
  return path;
}

function walk(value: unknown, base: string, steps: (string | number)[], out: FieldViolation[]): void {
  if (out.length >= MAX_TEXT_VIOLATIONS || steps.length > MAX_DEPTH) return;
  if (typeof value === "string") {
    const problem = textProblem(value);
    if (problem) {
      const path = pathOf(base, steps);
      out.push({ field: path, message: `${path || "value"} ${problem}` });
    }
    return;
  }
  if (typeof value !== "object" || value === null || ArrayBuffer.isView(value)) return;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      steps.push(i);
      walk(value[i], base, steps, out);
      steps.pop();
    }
    return;
  }
  const obj = value as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    // Decoded protobuf messages name their type; it is not the caller's text.
    if (key === "$typeName") continue;
    const problem = textProblem(key);
    if (problem) {
      const path = pathOf(base, steps);
      out.push({ field: path, message: `${path || "request"}: a key ${problem}` });
      if (out.length >= MAX_TEXT_VIOLATIONS) return;
      continue;
    }
    steps.push(key);
    walk(obj[key], base, steps, out);
    steps.pop();
  }
}

/** The text violations of a decoded request (a JSON value or a protobuf message), with their paths. */
export function textViolations(value: unknown, path = ""): FieldViolation[] {
  const out: FieldViolation[] = [];
  walk(value, path, [], out);
  return out;
}

/** Throws VALIDATION_ERROR naming every field of `value` whose text is not acceptable. */
export function checkText(value: unknown, path = ""): void {
  const out = textViolations(value, path);
  if (out.length > 0) throw validationError(out);
}
