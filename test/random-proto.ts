// Random messages of every message type of the contract (and the well-known types it uses), for the
// tests of the compiled binary encoder and decoder against @bufbuild/protobuf: zero values, negative
// numbers, 64-bit extremes, non-ASCII and broken UTF-16 strings, lengths over one varint byte, Struct
// fields in their JSON form, wrappers, maps, oneofs and unknown fields.

import { readdirSync } from "node:fs";
import { join } from "node:path";
import { create, type DescField, type DescFile, type DescMessage, ScalarType } from "@bufbuild/protobuf";
import { ListValueSchema, StructSchema, TimestampSchema, ValueSchema } from "@bufbuild/protobuf/wkt";

const GEN = join(import.meta.dir, "..", "gen", "kaireon", "v1");

export async function contractMessages(): Promise<DescMessage[]> {
  const out: DescMessage[] = [StructSchema, ValueSchema, ListValueSchema, TimestampSchema];
  const walk = (m: DescMessage) => {
    out.push(m);
    for (const n of m.nestedMessages) walk(n);
  };
  for (const name of readdirSync(GEN).filter((f) => f.endsWith("_pb.ts"))) {
    const mod = (await import(join(GEN, name))) as Record<string, unknown>;
    for (const v of Object.values(mod)) {
      if (v && typeof v === "object" && (v as { kind?: string }).kind === "file") for (const m of (v as DescFile).messages) walk(m);
    }
  }
  return out;
}

const WRAPPERS = /^google\.protobuf\.(Double|Float|Int64|UInt64|Int32|UInt32|Bool|String|Bytes)Value$/;
const STRINGS = ["", "a", "act_platinum_cc", "https://example.com/apply/platinum?channel=1", "é", "Grüße 😀", "\ud800 lone", "x".repeat(130), "ü".repeat(70), "中文"];

export function gen(rand: () => number) {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));

  function scalar(type: ScalarType): unknown {
    switch (type) {
      case ScalarType.STRING:
        return pick(STRINGS);
      case ScalarType.BYTES:
        return pick([new Uint8Array(0), Uint8Array.of(1, 2, 255), new Uint8Array(200).fill(7)]);
      case ScalarType.BOOL:
        return rand() < 0.5;
      case ScalarType.DOUBLE:
        return pick([0, -0, 1.5, -2.25, 1e300, Number.NaN, 0.89, 17.49]);
      case ScalarType.FLOAT:
        return pick([0, 1.5, -3, 0.25]);
      case ScalarType.INT32:
      case ScalarType.SINT32:
      case ScalarType.SFIXED32:
        return pick([0, 1, -1, 127, 128, 300, -2147483648, 2147483647, int(-1e6, 1e6)]);
      case ScalarType.UINT32:
      case ScalarType.FIXED32:
        return pick([0, 1, 127, 128, 4294967295, int(0, 1e9)]);
      case ScalarType.INT64:
      case ScalarType.SINT64:
      case ScalarType.SFIXED64:
        return pick([0n, 1n, -1n, 1741617000n, 9007199254740993n, -9223372036854775808n, 9223372036854775807n]);
      case ScalarType.UINT64:
      case ScalarType.FIXED64:
        return pick([0n, 1n, 128n, 9007199254740993n, 18446744073709551615n]);
    }
  }

  function json(depth: number): unknown {
    const r = rand();
    if (depth > 2 || r < 0.5) return pick([null, true, false, 0, -0, 3.5, 1e21, "", "text", "ünï", "\udc00"]);
    if (r < 0.75) return Array.from({ length: int(0, 3) }, () => json(depth + 1));
    return jsonObject(depth + 1);
  }
  function jsonObject(depth: number): Record<string, unknown> {
    const o: Record<string, unknown> = {};
    for (let i = int(0, 4); i > 0; i--) o[pick(["k", "personalized_rate", "é", "", `key${int(0, 300)}`])] = json(depth);
    return o;
  }

  function messageValue(field: DescField, desc: DescMessage, singular: boolean, depth: number): unknown {
    if (desc.typeName === "google.protobuf.Struct" && field.parent.typeName !== "google.protobuf.Value") return jsonObject(depth);
    if (singular && !field.oneof && WRAPPERS.test(desc.typeName)) {
      const inner = desc.fields[0] as DescField & { scalar: ScalarType };
      return scalar(inner.scalar);
    }
    return message(desc, depth + 1);
  }

  function mapKey(type: ScalarType): string {
    const v = scalar(type);
    return String(v);
  }

  function message(desc: DescMessage, depth: number): Record<string, unknown> {
    const m = create(desc) as unknown as Record<string, unknown>;
    const oneofsDone = new Set<string>();
    for (const field of desc.fields) {
      if (rand() < 0.3) continue;
      if (field.oneof) {
        if (oneofsDone.has(field.oneof.localName) || rand() < 0.5) continue;
        oneofsDone.add(field.oneof.localName);
      }
      let value: unknown;
      switch (field.fieldKind) {
        case "scalar":
          value = scalar(field.scalar);
          break;
        case "enum":
          value = rand() < 0.15 ? pick([-1, 99]) : pick(field.enum.values).number;
          break;
        case "message":
          if (depth > 3) continue;
          value = messageValue(field, field.message, true, depth);
          break;
        case "list": {
          const n = depth > 3 && field.listKind === "message" ? 0 : int(0, 3);
          value = Array.from({ length: n }, () =>
            field.listKind === "message"
              ? messageValue(field, field.message, false, depth)
              : field.listKind === "enum"
                ? pick(field.enum.values).number
                : scalar(field.scalar),
          );
          break;
        }
        case "map": {
          const record: Record<string, unknown> = {};
          const n = depth > 3 && field.mapKind === "message" ? 0 : int(0, 3);
          for (let i = 0; i < n; i++) {
            record[mapKey(field.mapKey)] =
              field.mapKind === "message"
                ? messageValue(field, field.message, false, depth)
                : field.mapKind === "enum"
                  ? pick(field.enum.values).number
                  : scalar(field.scalar);
          }
          value = record;
          break;
        }
      }
      if (field.oneof) m[field.oneof.localName] = { case: field.localName, value };
      else m[field.localName] = value;
    }
    if (rand() < 0.1) m.$unknown = [{ no: 1000 + int(0, 5), wireType: 0, data: Uint8Array.of(int(0, 127)) }];
    return m;
  }
  return message;
}
