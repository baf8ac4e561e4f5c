// Decoding JSON request bodies into the contract's request messages, with errors that name the field.
// A type check against the message's own descriptor runs first, so "maxOffers must be a number" beats
// a generic decoder message.

import { type DescField, type DescMessage, fromJson, type MessageShape, ScalarType } from "@bufbuild/protobuf";
import { AppError, type FieldViolation, validationError } from "../errors.ts";
import { checkText } from "../services/text.ts";

const WRAPPERS = new Set(
  ["Int32Value", "UInt32Value", "Int64Value", "UInt64Value", "DoubleValue", "FloatValue", "BoolValue", "StringValue", "BytesValue"].map(
    (n) => `google.protobuf.${n}`,
  ),
);

/** The field a value is judged by: wrapper messages stand for their single scalar in JSON. */
function jsonField(field: DescField): DescField {
  if (field.fieldKind === "message" && WRAPPERS.has(field.message.typeName)) return field.message.fields[0] as DescField;
  return field;
}

function describeType(f: DescField): string {
  const field = jsonField(f);
  if (field.fieldKind === "list") return "an array";
  if (field.fieldKind === "map") return "an object";
  if (field.fieldKind === "message") {
    return field.message.typeName === "google.protobuf.Timestamp" ? "an RFC 3339 timestamp string" : "an object";
  }
  if (field.fieldKind === "enum") return "a string";
  return scalarName(field.scalar);
}

function matchesScalar(scalar: ScalarType, value: unknown): boolean {
  switch (scalar) {
    case ScalarType.STRING:
    case ScalarType.BYTES:
      return typeof value === "string";
    case ScalarType.BOOL:
      return typeof value === "boolean";
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return typeof value === "number";
    default:
      return (typeof value === "number" && Number.isInteger(value)) || (typeof value === "string" && /^-?\d+$/.test(value));
  }
}

function scalarName(scalar: ScalarType): string {
  if (scalar === ScalarType.STRING || scalar === ScalarType.BYTES) return "a string";
  if (scalar === ScalarType.BOOL) return "a boolean";
  if (scalar === ScalarType.DOUBLE || scalar === ScalarType.FLOAT) return "a number";
  return "a whole number";
}

function scalarMatches(field: DescField, value: unknown): boolean {
  if (field.fieldKind === "message") {
    if (field.message.typeName === "google.protobuf.Timestamp") return typeof value === "string";
    if (field.message.typeName === "google.protobuf.Value") return true;
    return typeof value === "object" && value !== null && !Array.isArray(value);
  }
  if (field.fieldKind === "enum") return typeof value === "string" || typeof value === "number";
  if (field.fieldKind === "scalar") return matchesScalar(field.scalar, value);
  return true;
}

/** A message of our own contract (not a well-known type) whose fields are checked one by one. */
function nestedMessage(field: DescField): DescMessage | null {
  if (field.fieldKind !== "message" && !(field.fieldKind === "list" && field.listKind === "message")) return null;
  const message = field.message as DescMessage;
  return message.typeName.startsWith("google.protobuf.") ? null : message;
}

/** Collects type mismatches of a JSON object against a message, with JSON paths like `variants[1].weight`. */
function checkShape(schema: DescMessage, obj: Record<string, unknown>, prefix: string, out: FieldViolation[], depth: number): void {
  if (depth > 32) return;
  for (const f of schema.fields) {
    const value = obj[f.jsonName] ?? obj[f.name];
    if (value === undefined || value === null) continue;
    const path = `${prefix}${f.jsonName}`;
    const field = jsonField(f);
    const nested = nestedMessage(field);
    if (field.fieldKind === "list") {
      if (!Array.isArray(value)) {
        out.push({ field: path, message: `${path} must be an array` });
        continue;
      }
      value.forEach((item, i) => {
        const at = `${path}[${i}]`;
        if (nested) {
          if (typeof item !== "object" || item === null || Array.isArray(item)) out.push({ field: at, message: `${at} must be an object` });
          else checkShape(nested, item as Record<string, unknown>, `${at}.`, out, depth + 1);
        } else if (field.listKind === "scalar" && !matchesScalar(field.scalar, item)) {
          out.push({ field: at, message: `${at} must be ${scalarName(field.scalar)}` });
        }
      });
      continue;
    }
    if (field.fieldKind === "map") {
      if (typeof value !== "object" || Array.isArray(value)) out.push({ field: path, message: `${path} must be an object` });
      continue;
    }
    if (!scalarMatches(field, value)) {
      out.push({ field: path, message: `${path} must be ${describeType(f)}` });
      continue;
    }
    if (nested) checkShape(nested, value as Record<string, unknown>, `${path}.`, out, depth + 1);
  }
}

/** Parses a request body that must be a JSON object (an empty body is an empty object). */
export function parseJsonObject(text: string): Record<string, unknown> {
  let json: unknown;
  try {
    json = text.trim() === "" ? {} : JSON.parse(text);
  } catch {
    throw new AppError("VALIDATION_ERROR", "Request body is not valid JSON", [{ field: "", message: "Request body is not valid JSON" }]);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new AppError("VALIDATION_ERROR", "Request body must be a JSON object", [
      { field: "", message: "Request body must be a JSON object" },
    ]);
  }
  checkText(json);
  return json as Record<string, unknown>;
}

export function decodeJsonMessage<Desc extends DescMessage>(schema: Desc, text: string): MessageShape<Desc> {
  const obj = parseJsonObject(text);
  const json: unknown = obj;
  const violations: FieldViolation[] = [];
  checkShape(schema, obj, "", violations, 0);
  if (violations.length > 0) throw validationError(violations);
  try {
    return fromJson(schema, json as never, { ignoreUnknownFields: true });
  } catch (err) {
    const message = err instanceof Error ? err.message.replace(/^cannot decode [^:]*: /, "") : "invalid value";
    throw new AppError("VALIDATION_ERROR", `Invalid request: ${message}`, [{ field: "", message }]);
  }
}
