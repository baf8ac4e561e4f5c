// Decoding JSON request bodies into the contract's request messages, with errors that name the field.
// A type check against the message's own descriptor runs first, so "maxOffers must be a number" beats
// a generic decoder message.

import { type DescField, type DescMessage, fromJson, type MessageShape, ScalarType } from "@bufbuild/protobuf";
import { AppError, type FieldViolation, validationError } from "../errors.ts";

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
  switch (field.scalar) {
    case ScalarType.STRING:
    case ScalarType.BYTES:
      return "a string";
    case ScalarType.BOOL:
      return "a boolean";
    default:
      return "a number";
  }
}

function typeMatches(f: DescField, value: unknown): boolean {
  const field = jsonField(f);
  if (field.fieldKind === "list") return Array.isArray(value);
  if (field.fieldKind === "map") return typeof value === "object" && !Array.isArray(value);
  if (field.fieldKind === "message") {
    if (field.message.typeName === "google.protobuf.Timestamp") return typeof value === "string";
    if (field.message.typeName === "google.protobuf.Value") return true;
    return typeof value === "object" && !Array.isArray(value);
  }
  if (field.fieldKind === "enum") return typeof value === "string" || typeof value === "number";
  switch (field.scalar) {
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

export function decodeJsonMessage<Desc extends DescMessage>(schema: Desc, text: string): MessageShape<Desc> {
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
  const obj = json as Record<string, unknown>;
  const violations: FieldViolation[] = [];
  for (const field of schema.fields) {
    const value = obj[field.jsonName] ?? obj[field.name];
    if (value === undefined || value === null) continue;
    if (!typeMatches(field, value)) violations.push({ field: field.jsonName, message: `${field.jsonName} must be ${describeType(field)}` });
  }
  if (violations.length > 0) throw validationError(violations);
  try {
    return fromJson(schema, json as never, { ignoreUnknownFields: true });
  } catch (err) {
    const message = err instanceof Error ? err.message.replace(/^cannot decode [^:]*: /, "") : "invalid value";
    throw new AppError("VALIDATION_ERROR", `Invalid request: ${message}`, [{ field: "", message }]);
  }
}
