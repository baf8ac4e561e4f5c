// REST writes the message of a oneof case beside the fields of the message that holds it, where protobuf
// JSON nests it under the case's name: a trace stage's findings sit beside its name and duration, as the
// tutorial shows a stage. Only oneofs whose every case is one of the contract's messages are written so.

import type { DescField, DescMessage, DescOneof } from "@bufbuild/protobuf";

/** A oneof REST writes inline: every case a message of the contract (not a well-known type). */
export function isInlineOneof(oneof: DescOneof): boolean {
  return oneof.fields.length > 0 && oneof.fields.every((f) => f.fieldKind === "message" && !isWellKnown(f.message));
}

const isWellKnown = (m: DescMessage) => m.typeName.startsWith("google.");

/** The contract message a field holds (singly, in a list or as map values), if any. */
function messageOf(f: DescField): DescMessage | undefined {
  const m = f.fieldKind === "message" ? f.message : f.fieldKind === "list" || f.fieldKind === "map" ? f.message : undefined;
  return m && !isWellKnown(m) ? m : undefined;
}

const reaches = new Map<string, boolean>();

/** Whether a message holds an inline oneof, itself or in a message it holds (remembered per message). */
function holdsInlineOneof(m: DescMessage): boolean {
  let found = reaches.get(m.typeName);
  if (found === undefined) {
    found = walk(m, new Set());
    reaches.set(m.typeName, found);
  }
  return found;
}

/** A message seen before on this walk answers false: whatever it holds is walked where it was first met. */
function walk(m: DescMessage, seen: Set<string>): boolean {
  if (reaches.get(m.typeName) === true) return true;
  if (seen.has(m.typeName)) return false;
  seen.add(m.typeName);
  return (
    m.oneofs.some(isInlineOneof) ||
    m.fields.some((f) => {
      const inner = messageOf(f);
      return inner !== undefined && walk(inner, seen);
    })
  );
}

type Json = Record<string, unknown>;

/** The REST form of a message's protobuf JSON (modified in place and returned). */
export function inlineOneofs<T>(schema: DescMessage, json: T): T {
  if (json === null || typeof json !== "object" || !holdsInlineOneof(schema)) return json;
  const obj = json as Json;
  for (const f of schema.fields) {
    const inner = messageOf(f);
    const value = obj[f.jsonName];
    if (!inner || value === undefined || value === null || !holdsInlineOneof(inner)) continue;
    if (f.fieldKind === "list") for (const item of value as unknown[]) inlineOneofs(inner, item);
    else if (f.fieldKind === "map") for (const item of Object.values(value as Json)) inlineOneofs(inner, item);
    else if (f.oneof === undefined || !isInlineOneof(f.oneof)) inlineOneofs(inner, value);
  }
  for (const oneof of schema.oneofs) {
    if (!isInlineOneof(oneof)) continue;
    for (const f of oneof.fields) {
      const value = obj[f.jsonName];
      if (value === undefined) continue;
      delete obj[f.jsonName];
      if (value !== null && typeof value === "object") Object.assign(obj, inlineOneofs(f.message as DescMessage, value));
    }
  }
  return json;
}
