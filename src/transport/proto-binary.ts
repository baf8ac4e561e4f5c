// The protobuf binary encoding of a message, compiled once per message type from its descriptor, for the
// answers of native gRPC. It writes exactly the bytes `toBinary` of @bufbuild/protobuf writes (fields by
// number, zero values of implicit fields left out, packed repeated scalars, unknown fields last), which
// test/proto-binary.test.ts checks on random messages of every type of the contract. What makes it cheaper:
// two passes over the message (sizes first, remembered in order, then one buffer of the exact size
// written front to back) instead of a chunked writer that forks and joins per nested message, and
// google.protobuf.Struct fields written straight from their JSON form instead of being turned into
// Struct messages first.

import { type DescField, type DescMessage, ScalarType } from "@bufbuild/protobuf";

type Msg = Record<string, unknown>;

/** The state of one encoding: the sizes of the first pass, read back in the same order by the second. */
interface Pass {
  /** Length prefixes (nested messages, strings, packed lists, map entries), in the order they are written. */
  lens: number[];
  /** UTF-8 of strings that are not plain ASCII, in the order they are written. */
  utf8: Uint8Array[];
  li: number;
  ui: number;
  buf: Buffer;
  pos: number;
}

/** Adds the size of a field's bytes (tag included) to `n`; fills `lens`/`utf8` in write order. */
type SizeFn = (m: Msg, p: Pass) => number;
type WriteFn = (m: Msg, p: Pass) => void;

interface Compiled {
  size: SizeFn;
  write: WriteFn;
}

const WIRE_VARINT = 0;
const WIRE_BIT64 = 1;
const WIRE_LEN = 2;
const WIRE_BIT32 = 5;

const textEncoder = new TextEncoder();
const scratch = new DataView(new ArrayBuffer(8));
const scratchBytes = new Uint8Array(scratch.buffer);

function varintSize(n: number): number {
  // n is a non-negative integer below 2^53.
  if (n < 0x80) return 1;
  if (n < 0x4000) return 2;
  if (n < 0x200000) return 3;
  if (n < 0x10000000) return 4;
  let size = 4;
  let v = Math.floor(n / 0x10000000);
  while (v > 0) {
    size++;
    v = Math.floor(v / 128);
  }
  return size;
}

function writeVarint(p: Pass, n: number): void {
  const buf = p.buf;
  let pos = p.pos;
  while (n >= 0x80) {
    buf[pos++] = (n % 128) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[pos++] = n;
  p.pos = pos;
}

const TWO_64 = 1n << 64n;

/** A 64-bit varint of a bigint-like value as two's complement: its bytes. */
function bigVarint(value: bigint): Uint8Array {
  let v = value < 0n ? value + TWO_64 : value;
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return Uint8Array.from(out);
}

function tagBytes(no: number, wire: number): Uint8Array {
  const n = no * 8 + wire;
  const out: number[] = [];
  let v = n;
  while (v >= 0x80) {
    out.push((v % 128) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Uint8Array.from(out);
}

function writeRaw(p: Pass, bytes: Uint8Array): void {
  if (bytes.length === 1) p.buf[p.pos++] = bytes[0] as number;
  else {
    p.buf.set(bytes, p.pos);
    p.pos += bytes.length;
  }
}

// Strings: plain ASCII is measured by its length and copied by char code; anything else is encoded once in
// the first pass (TextEncoder, as toBinary does, so lone surrogates become U+FFFD the same way). Short
// strings, most of an answer, are checked and copied in JavaScript: cheaper than a call into the runtime.
const SHORT_STRING = 64;

function isAscii(s: string): boolean {
  const n = s.length;
  if (n > SHORT_STRING) return Buffer.byteLength(s, "utf8") === n;
  for (let i = 0; i < n; i++) if (s.charCodeAt(i) >= 0x80) return false;
  return true;
}

function stringSize(s: string, p: Pass): number {
  const n = s.length;
  if (!isAscii(s)) {
    const bytes = textEncoder.encode(s);
    p.utf8.push(bytes);
    p.lens.push(bytes.length);
    return varintSize(bytes.length) + bytes.length;
  }
  p.lens.push(-1 - n);
  return varintSize(n) + n;
}

function writeString(p: Pass, s: string): void {
  const len = p.lens[p.li++] as number;
  if (len < 0) {
    const n = -1 - len;
    writeVarint(p, n);
    if (n > SHORT_STRING) {
      // Plain ASCII: latin1 is byte for byte the same.
      p.buf.write(s, p.pos, n, "latin1");
      p.pos += n;
      return;
    }
    const buf = p.buf;
    let pos = p.pos;
    for (let i = 0; i < n; i++) buf[pos++] = s.charCodeAt(i);
    p.pos = pos;
    return;
  }
  writeVarint(p, len);
  writeRaw(p, p.utf8[p.ui++] as Uint8Array);
}

function toBig(v: unknown): bigint {
  return typeof v === "bigint" ? v : BigInt(v as string | number);
}

/** Size and writer of one scalar value (no tag). */
interface ScalarCodec {
  wire: number;
  size(v: unknown, p: Pass): number;
  write(p: Pass, v: unknown): void;
}

function int64Codec(zigzag: boolean, unsigned: boolean): ScalarCodec {
  const asBig = (v: unknown) => {
    let b = toBig(v);
    if (unsigned) b = BigInt.asUintN(64, b);
    else b = BigInt.asIntN(64, b);
    if (zigzag) b = b >= 0n ? b << 1n : (-b << 1n) - 1n;
    return b;
  };
  return {
    wire: WIRE_VARINT,
    size(v, p) {
      const b = asBig(v);
      if (b >= 0n && b < 0x20000000000000n) {
        const n = Number(b);
        p.lens.push(n);
        return varintSize(n);
      }
      const bytes = bigVarint(b);
      p.lens.push(-1);
      p.utf8.push(bytes);
      return bytes.length;
    },
    write(p) {
      const n = p.lens[p.li++] as number;
      if (n >= 0) writeVarint(p, n);
      else writeRaw(p, p.utf8[p.ui++] as Uint8Array);
    },
  };
}

function fixed64Codec(signed: boolean): ScalarCodec {
  return {
    wire: WIRE_BIT64,
    size: () => 8,
    write(p, v) {
      if (signed) scratch.setBigInt64(0, BigInt.asIntN(64, toBig(v)), true);
      else scratch.setBigUint64(0, BigInt.asUintN(64, toBig(v)), true);
      p.buf.set(scratchBytes, p.pos);
      p.pos += 8;
    },
  };
}

function checkInt(v: unknown, type: string, min: number, max: number): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) throw new Error(`invalid ${type}: ${String(v)}`);
  return v;
}

const INT32_MIN = -0x80000000;
const INT32_MAX = 0x7fffffff;
const UINT32_MAX = 0xffffffff;

function fixed32Codec(signed: boolean): ScalarCodec {
  const [type, min, max] = signed ? ["int32", INT32_MIN, INT32_MAX] : ["uint32", 0, UINT32_MAX];
  return {
    wire: WIRE_BIT32,
    size: (v) => {
      checkInt(v, type, min, max);
      return 4;
    },
    write(p, v) {
      if (signed) scratch.setInt32(0, v as number, true);
      else scratch.setUint32(0, v as number, true);
      p.buf.set(scratchBytes.subarray(0, 4), p.pos);
      p.pos += 4;
    },
  };
}

function scalarCodec(type: ScalarType): ScalarCodec {
  switch (type) {
    case ScalarType.STRING:
      return { wire: WIRE_LEN, size: (v, p) => stringSize(v as string, p), write: (p, v) => writeString(p, v as string) };
    case ScalarType.BYTES:
      return {
        wire: WIRE_LEN,
        size: (v) => varintSize((v as Uint8Array).length) + (v as Uint8Array).length,
        write(p, v) {
          writeVarint(p, (v as Uint8Array).length);
          p.buf.set(v as Uint8Array, p.pos);
          p.pos += (v as Uint8Array).length;
        },
      };
    case ScalarType.BOOL:
      return {
        wire: WIRE_VARINT,
        size: () => 1,
        write(p, v) {
          p.buf[p.pos++] = v ? 1 : 0;
        },
      };
    case ScalarType.DOUBLE:
      return {
        wire: WIRE_BIT64,
        size: () => 8,
        write(p, v) {
          scratch.setFloat64(0, v as number, true);
          p.buf.set(scratchBytes, p.pos);
          p.pos += 8;
        },
      };
    case ScalarType.FLOAT:
      return {
        wire: WIRE_BIT32,
        size: () => 4,
        write(p, v) {
          scratch.setFloat32(0, v as number, true);
          p.buf.set(scratchBytes.subarray(0, 4), p.pos);
          p.pos += 4;
        },
      };
    case ScalarType.FIXED32:
      return fixed32Codec(false);
    case ScalarType.SFIXED32:
      return fixed32Codec(true);
    case ScalarType.UINT32:
      return {
        wire: WIRE_VARINT,
        size: (v) => varintSize(checkInt(v, "uint32", 0, UINT32_MAX)),
        write: (p, v) => writeVarint(p, v as number),
      };
    case ScalarType.SINT32:
      return {
        wire: WIRE_VARINT,
        size: (v) => {
          const n = checkInt(v, "int32", INT32_MIN, INT32_MAX);
          return varintSize(((n << 1) ^ (n >> 31)) >>> 0);
        },
        write: (p, v) => writeVarint(p, (((v as number) << 1) ^ ((v as number) >> 31)) >>> 0),
      };
    case ScalarType.INT32:
      // A negative int32 is sign-extended to ten bytes.
      return {
        wire: WIRE_VARINT,
        size: (v) => {
          const n = checkInt(v, "int32", INT32_MIN, INT32_MAX);
          return n < 0 ? 10 : varintSize(n);
        },
        write(p, v) {
          const n = v as number;
          if (n >= 0) writeVarint(p, n);
          else writeRaw(p, bigVarint(BigInt(n)));
        },
      };
    case ScalarType.INT64:
      return int64Codec(false, false);
    case ScalarType.UINT64:
      return int64Codec(false, true);
    case ScalarType.SINT64:
      return int64Codec(true, false);
    case ScalarType.FIXED64:
      return fixed64Codec(false);
    case ScalarType.SFIXED64:
      return fixed64Codec(true);
  }
}

/** Whether a value of an implicit-presence field is its zero value, as toBinary judges it. */
function zeroTest(field: DescField & { fieldKind: "scalar" | "enum" }): (v: unknown) => boolean {
  if (field.fieldKind === "enum") {
    const zero = field.enum.values[0]?.number ?? 0;
    return (v) => v === zero || v === undefined;
  }
  switch (field.scalar) {
    case ScalarType.BOOL:
      return (v) => v === false || v === undefined;
    case ScalarType.STRING:
      return (v) => v === "" || v === undefined;
    case ScalarType.BYTES:
      return (v) => v === undefined || (v instanceof Uint8Array && v.byteLength === 0);
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return (v) => v === undefined || Object.is(v, 0);
    default:
      // biome-ignore lint/suspicious/noDoubleEquals: matches 0n, 0 and "0", as toBinary does
      return (v) => v === undefined || v == 0;
  }
}

const compiledMessages = new WeakMap<DescMessage, Compiled>();

// google.protobuf.Struct, Value and ListValue in their JSON form (a Struct field holds a JsonObject).
const STRUCT_ENTRY_TAG = tagBytes(1, WIRE_LEN); // Struct.fields entries; also ListValue.values
const KEY_TAG = tagBytes(1, WIRE_LEN);
const VALUE_TAG = tagBytes(2, WIRE_LEN);

function jsonValueSize(v: unknown, p: Pass): number {
  switch (typeof v) {
    case "number":
      return 9;
    case "string":
      return 1 + stringSize(v, p);
    case "boolean":
      return 2;
    case "object": {
      if (v === null) return 2;
      const slot = p.lens.length;
      p.lens.push(0);
      const n = Array.isArray(v) ? jsonListSize(v, p) : jsonStructSize(v as Msg, p);
      p.lens[slot] = n;
      return 1 + varintSize(n) + n;
    }
    default:
      // undefined: a Value with no kind set, as toBinary writes it.
      return 0;
  }
}

function writeJsonValue(p: Pass, v: unknown): void {
  const buf = p.buf;
  switch (typeof v) {
    case "number":
      buf[p.pos++] = 0x11; // number_value = 2, 64-bit
      scratch.setFloat64(0, v, true);
      buf.set(scratchBytes, p.pos);
      p.pos += 8;
      return;
    case "string":
      buf[p.pos++] = 0x1a; // string_value = 3
      writeString(p, v);
      return;
    case "boolean":
      buf[p.pos++] = 0x20; // bool_value = 4
      buf[p.pos++] = v ? 1 : 0;
      return;
    case "object": {
      if (v === null) {
        buf[p.pos++] = 0x08; // null_value = 1
        buf[p.pos++] = 0;
        return;
      }
      buf[p.pos++] = Array.isArray(v) ? 0x32 : 0x2a; // list_value = 6, struct_value = 5
      writeVarint(p, p.lens[p.li++] as number);
      if (Array.isArray(v)) writeJsonList(p, v);
      else writeJsonStruct(p, v as Msg);
      return;
    }
    default:
      return;
  }
}

function jsonListSize(list: unknown[], p: Pass): number {
  let n = 0;
  for (const item of list) {
    const slot = p.lens.length;
    p.lens.push(0);
    const s = jsonValueSize(item, p);
    p.lens[slot] = s;
    n += 1 + varintSize(s) + s;
  }
  return n;
}

function writeJsonList(p: Pass, list: unknown[]): void {
  for (const item of list) {
    writeRaw(p, STRUCT_ENTRY_TAG);
    writeVarint(p, p.lens[p.li++] as number);
    writeJsonValue(p, item);
  }
}

function jsonStructSize(obj: Msg, p: Pass): number {
  let n = 0;
  for (const key of Object.keys(obj)) {
    const slot = p.lens.length;
    p.lens.push(0);
    const keySize = 1 + stringSize(key, p);
    const valueSlot = p.lens.length;
    p.lens.push(0);
    const valueSize = jsonValueSize(obj[key], p);
    p.lens[valueSlot] = valueSize;
    const entry = keySize + 1 + varintSize(valueSize) + valueSize;
    p.lens[slot] = entry;
    n += 1 + varintSize(entry) + entry;
  }
  return n;
}

function writeJsonStruct(p: Pass, obj: Msg): void {
  for (const key of Object.keys(obj)) {
    writeRaw(p, STRUCT_ENTRY_TAG);
    writeVarint(p, p.lens[p.li++] as number);
    writeRaw(p, KEY_TAG);
    writeString(p, key);
    writeRaw(p, VALUE_TAG);
    writeVarint(p, p.lens[p.li++] as number);
    writeJsonValue(p, obj[key]);
  }
}

/** How a message-typed value of a field is held: as the message, unboxed (wrappers) or as JSON (Struct). */
function messageValueCodec(
  field: DescField,
  desc: DescMessage,
  singular: boolean,
): { size: (v: unknown, p: Pass) => number; write: (p: Pass, v: unknown) => void } {
  if (desc.typeName === "google.protobuf.Struct" && field.parent.typeName !== "google.protobuf.Value") {
    return { size: (v, p) => jsonStructSize(v as Msg, p), write: (p, v) => writeJsonStruct(p, v as Msg) };
  }
  const wrapped = desc.fields[0];
  if (singular && !field.oneof && isWrapperType(desc) && wrapped) {
    // A wrapper outside a oneof holds its value unboxed: the message is its one field, left out when zero.
    const codec = scalarCodec((wrapped as DescField & { scalar: ScalarType }).scalar);
    const tag = tagBytes(1, codec.wire);
    const isZero = zeroTest(wrapped as DescField & { fieldKind: "scalar" });
    return {
      size: (v, p) => (isZero(v) ? 0 : tag.length + codec.size(v, p)),
      write(p, v) {
        if (isZero(v)) return;
        writeRaw(p, tag);
        codec.write(p, v);
      },
    };
  }
  const child = compiled(desc);
  return {
    size: (v, p) => child.size(v as Msg, p),
    write: (p, v) => child.write(v as Msg, p),
  };
}

/** The wrapper types of google/protobuf/wrappers.proto, held unboxed in a singular field outside a oneof. */
export const WRAPPERS: ReadonlySet<string> = new Set([
  "google.protobuf.DoubleValue",
  "google.protobuf.FloatValue",
  "google.protobuf.Int64Value",
  "google.protobuf.UInt64Value",
  "google.protobuf.Int32Value",
  "google.protobuf.UInt32Value",
  "google.protobuf.BoolValue",
  "google.protobuf.StringValue",
  "google.protobuf.BytesValue",
]);

function isWrapperType(desc: DescMessage): boolean {
  return WRAPPERS.has(desc.typeName);
}

/** A length-delimited child: its size is remembered before its contents, then written as a prefix. */
function sizeDelimited(p: Pass, inner: () => number, tagLength: number): number {
  const slot = p.lens.length;
  p.lens.push(0);
  const n = inner();
  p.lens[slot] = n;
  return tagLength + varintSize(n) + n;
}

function compileField(field: DescField): Compiled {
  const name = field.localName;
  const oneof = field.oneof?.localName;
  const fieldValue = oneof
    ? (m: Msg) => {
        const o = m[oneof] as { case?: string; value?: unknown } | undefined;
        return o?.case === name ? o.value : undefined;
      }
    : (m: Msg) => m[name];
  switch (field.fieldKind) {
    case "scalar":
    case "enum": {
      const codec = scalarCodec(field.fieldKind === "enum" ? ScalarType.INT32 : field.scalar);
      const tag = tagBytes(field.number, codec.wire);
      // A oneof member or a field with explicit presence is written whenever it is set; others unless zero.
      const skip = oneof || field.presence !== 2 ? (v: unknown) => v === undefined : zeroTest(field);
      return {
        size(m, p) {
          const v = fieldValue(m);
          return skip(v) ? 0 : tag.length + codec.size(v, p);
        },
        write(m, p) {
          const v = fieldValue(m);
          if (skip(v)) return;
          writeRaw(p, tag);
          codec.write(p, v);
        },
      };
    }
    case "message": {
      const value = messageValueCodec(field, field.message, true);
      const tag = tagBytes(field.number, WIRE_LEN);
      return {
        size(m, p) {
          const v = fieldValue(m);
          if (v === undefined) return 0;
          const slot = p.lens.length;
          p.lens.push(0);
          const n = value.size(v, p);
          p.lens[slot] = n;
          return tag.length + varintSize(n) + n;
        },
        write(m, p) {
          const v = fieldValue(m);
          if (v === undefined) return;
          writeRaw(p, tag);
          writeVarint(p, p.lens[p.li++] as number);
          value.write(p, v);
        },
      };
    }
    case "list": {
      if (field.listKind === "message") {
        const value = messageValueCodec(field, field.message, false);
        const tag = tagBytes(field.number, WIRE_LEN);
        return {
          size(m, p) {
            const items = m[name] as unknown[] | undefined;
            if (!items) return 0;
            let n = 0;
            const lens = p.lens;
            for (let i = 0; i < items.length; i++) {
              const slot = lens.length;
              lens.push(0);
              const s = value.size(items[i], p);
              lens[slot] = s;
              n += tag.length + varintSize(s) + s;
            }
            return n;
          },
          write(m, p) {
            const items = m[name] as unknown[] | undefined;
            if (!items) return;
            for (let i = 0; i < items.length; i++) {
              writeRaw(p, tag);
              writeVarint(p, p.lens[p.li++] as number);
              value.write(p, items[i]);
            }
          },
        };
      }
      const codec = scalarCodec(field.listKind === "enum" ? ScalarType.INT32 : field.scalar);
      if (field.packed) {
        const tag = tagBytes(field.number, WIRE_LEN);
        return {
          size(m, p) {
            const items = m[name] as unknown[] | undefined;
            if (!items || items.length === 0) return 0;
            return sizeDelimited(
              p,
              () => {
                let n = 0;
                for (let i = 0; i < items.length; i++) n += codec.size(items[i], p);
                return n;
              },
              tag.length,
            );
          },
          write(m, p) {
            const items = m[name] as unknown[] | undefined;
            if (!items || items.length === 0) return;
            writeRaw(p, tag);
            writeVarint(p, p.lens[p.li++] as number);
            for (let i = 0; i < items.length; i++) codec.write(p, items[i]);
          },
        };
      }
      const tag = tagBytes(field.number, codec.wire);
      return {
        size(m, p) {
          const items = m[name] as unknown[] | undefined;
          if (!items) return 0;
          let n = 0;
          for (let i = 0; i < items.length; i++) n += tag.length + codec.size(items[i], p);
          return n;
        },
        write(m, p) {
          const items = m[name] as unknown[] | undefined;
          if (!items) return;
          for (let i = 0; i < items.length; i++) {
            writeRaw(p, tag);
            codec.write(p, items[i]);
          }
        },
      };
    }
    case "map": {
      const keyCodec = scalarCodec(field.mapKey);
      const keyTag = tagBytes(1, keyCodec.wire);
      const keyOf = mapKeyConverter(field.mapKey);
      const tag = tagBytes(field.number, WIRE_LEN);
      let valueSize: (v: unknown, p: Pass) => number;
      let valueWrite: (p: Pass, v: unknown) => void;
      if (field.mapKind === "message") {
        const value = messageValueCodec(field, field.message, false);
        valueSize = (v, p) => sizeDelimited(p, () => value.size(v, p), VALUE_TAG.length);
        valueWrite = (p, v) => {
          writeRaw(p, VALUE_TAG);
          writeVarint(p, p.lens[p.li++] as number);
          value.write(p, v);
        };
      } else {
        const codec = scalarCodec(field.mapKind === "enum" ? ScalarType.INT32 : field.scalar);
        const valueTag = tagBytes(2, codec.wire);
        valueSize = (v, p) => valueTag.length + codec.size(v, p);
        valueWrite = (p, v) => {
          writeRaw(p, valueTag);
          codec.write(p, v);
        };
      }
      return {
        size(m, p) {
          const record = m[name] as Msg | undefined;
          if (!record) return 0;
          let n = 0;
          for (const key of Object.keys(record)) {
            n += sizeDelimited(p, () => keyTag.length + keyCodec.size(keyOf(key), p) + valueSize(record[key], p), tag.length);
          }
          return n;
        },
        write(m, p) {
          const record = m[name] as Msg | undefined;
          if (!record) return;
          for (const key of Object.keys(record)) {
            writeRaw(p, tag);
            writeVarint(p, p.lens[p.li++] as number);
            writeRaw(p, keyTag);
            keyCodec.write(p, keyOf(key));
            valueWrite(p, record[key]);
          }
        },
      };
    }
  }
}

/** Map keys are held as strings: back to their scalar type, as toBinary converts them. */
function mapKeyConverter(type: ScalarType): (key: string) => unknown {
  switch (type) {
    case ScalarType.STRING:
      return (k) => k;
    case ScalarType.BOOL:
      return (k) => k === "true";
    case ScalarType.INT64:
    case ScalarType.UINT64:
    case ScalarType.SINT64:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return (k) => BigInt(k);
    default:
      return (k) => Number.parseInt(k, 10);
  }
}

interface UnknownField {
  no: number;
  wireType: number;
  data: Uint8Array;
}

function compiled(desc: DescMessage): Compiled {
  const known = compiledMessages.get(desc);
  if (known) return known;
  const fields: Compiled[] = [];
  const self: Compiled = {
    size(m, p) {
      let n = 0;
      for (let i = 0; i < fields.length; i++) n += (fields[i] as Compiled).size(m, p);
      const unknown = m.$unknown as UnknownField[] | undefined;
      if (unknown) for (const u of unknown) n += tagBytes(u.no, u.wireType).length + u.data.length;
      return n;
    },
    write(m, p) {
      for (let i = 0; i < fields.length; i++) (fields[i] as Compiled).write(m, p);
      const unknown = m.$unknown as UnknownField[] | undefined;
      if (unknown) {
        for (const u of unknown) {
          writeRaw(p, tagBytes(u.no, u.wireType));
          writeRaw(p, u.data);
        }
      }
    },
  };
  // Registered before its fields are compiled, so that a recursive type finds itself.
  compiledMessages.set(desc, self);
  for (const field of [...desc.fields].sort((a, b) => a.number - b.number)) {
    if ((field as { delimitedEncoding?: boolean }).delimitedEncoding)
      throw new Error(`${field} uses group encoding, which proto-binary does not write`);
    fields.push(compileField(field));
  }
  return self;
}

/**
 * The binary encoder of a message type: the bytes toBinary(desc, message) would give, after `reserve`
 * bytes left unwritten at the front of the same buffer (room for a frame header the caller fills).
 */
export function binaryEncoder<T>(desc: DescMessage, reserve = 0): (message: T) => Buffer {
  const c = compiled(desc);
  return (message) => {
    const p: Pass = { lens: [], utf8: [], li: 0, ui: 0, buf: EMPTY, pos: reserve };
    const size = c.size(message as Msg, p);
    p.buf = Buffer.allocUnsafe(reserve + size);
    c.write(message as Msg, p);
    if (p.pos !== reserve + size) throw new Error(`proto-binary wrote ${p.pos - reserve} bytes of ${size} for ${desc.typeName}`);
    return p.buf;
  };
}

const EMPTY = Buffer.alloc(0);
