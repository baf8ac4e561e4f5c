// The protobuf binary decoding of a request message, compiled once per message type from its descriptor,
// for the calls of native gRPC. It gives the message `fromBinary` of @bufbuild/protobuf gives (zero values
// of implicit fields, later scalars winning, repeated message fields merged, packed and unpacked repeated
// scalars, map entries with missing keys or values, wrappers unboxed, google.protobuf.Struct fields in their
// JSON form, unknown fields kept in `$unknown`, strings checked as UTF-8), which
// test/proto-binary-decode.test.ts checks on random messages of every type of the contract. What makes it
// cheaper: Struct fields read straight into their JSON form instead of through Struct and Value messages,
// strings read by the runtime's own UTF-8 decoder, and no reader object or tag array per field.
//
// It is stricter on malformed input: a known field sent with another wire type, or a field running past
// the end of the message holding it, is refused rather than read as garbage. Types outside what it
// compiles (anything not proto3) are decoded by fromBinary.

import { type DescField, type DescMessage, fromBinary, ScalarType } from "@bufbuild/protobuf";
import { WRAPPERS } from "./proto-binary.ts";

type Msg = Record<string, unknown>;

interface Reader {
  /** The bytes as given: bytes fields and unknown fields are views of it, as in fromBinary. */
  src: Uint8Array;
  buf: Buffer;
  /** Made on the first fixed-width value: most requests have none. */
  view: DataView | undefined;
  pos: number;
  depth: number;
}

/** Reads one field's value into the message; `wire` is the wire type its tag carried. */
type FieldReader = (m: Msg, r: Reader, wire: number) => void;

interface CompiledMessage {
  create(): Msg;
  /** Reads the message's fields from `r.pos` to `end` into `m`. */
  read(m: Msg, r: Reader, end: number): void;
}

interface UnknownField {
  no: number;
  wireType: number;
  data: Uint8Array;
}

const WIRE_VARINT = 0;
const WIRE_BIT64 = 1;
const WIRE_LEN = 2;
const WIRE_START_GROUP = 3;
const WIRE_END_GROUP = 4;
const WIRE_BIT32 = 5;
const RECURSION_LIMIT = 100;
const EDITION_PROTO3 = 999;
const PRESENCE_IMPLICIT = 2;

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function eof(): never {
  throw new RangeError("premature EOF");
}

/** An unsigned 32-bit varint (longer ones are cut to their low 32 bits, as protobuf readers do). */
function readUint32(r: Reader): number {
  const buf = r.buf;
  let pos = r.pos;
  let b = buf[pos++] as number;
  if (b < 0x80) {
    if (pos > buf.length) eof();
    r.pos = pos;
    return b;
  }
  let result = b & 0x7f;
  for (let shift = 7; shift < 28; shift += 7) {
    b = buf[pos++] as number;
    result |= (b & 0x7f) << shift;
    if (b < 0x80) {
      if (pos > buf.length) eof();
      r.pos = pos;
      return result;
    }
  }
  b = buf[pos++] as number;
  result |= (b & 0x0f) << 28;
  for (let n = 5; b >= 0x80 && n < 10; n++) b = buf[pos++] as number;
  if (b >= 0x80) throw new Error("invalid varint");
  if (pos > buf.length) eof();
  r.pos = pos;
  return result >>> 0;
}

/** A 64-bit varint as its two 32-bit halves, written to `r64`. */
const r64 = new DataView(new ArrayBuffer(8));
function readVarint64(r: Reader): void {
  const buf = r.buf;
  let pos = r.pos;
  let lo = 0;
  let hi = 0;
  for (let shift = 0; shift < 28; shift += 7) {
    const b = buf[pos++] as number;
    lo |= (b & 0x7f) << shift;
    if (b < 0x80) {
      done64(r, pos, lo, hi);
      return;
    }
  }
  const middle = buf[pos++] as number;
  lo |= (middle & 0x0f) << 28;
  hi = (middle & 0x70) >> 4;
  if (middle < 0x80) {
    done64(r, pos, lo, hi);
    return;
  }
  for (let shift = 3; shift <= 31; shift += 7) {
    const b = buf[pos++] as number;
    hi |= (b & 0x7f) << shift;
    if (b < 0x80) {
      done64(r, pos, lo, hi);
      return;
    }
  }
  throw new Error("invalid varint");
}

function done64(r: Reader, pos: number, lo: number, hi: number): void {
  if (pos > r.buf.length) eof();
  r.pos = pos;
  r64.setInt32(0, lo, true);
  r64.setInt32(4, hi, true);
}

function viewOf(r: Reader): DataView {
  if (r.view === undefined) r.view = new DataView(r.buf.buffer, r.buf.byteOffset, r.buf.byteLength);
  return r.view;
}

function need(r: Reader, n: number): number {
  const at = r.pos;
  if (at + n > r.buf.length) eof();
  r.pos = at + n;
  return at;
}

/** The end of a length-delimited value starting at `r.pos`, checked against the buffer. */
function delimited(r: Reader): number {
  const len = readUint32(r);
  const end = r.pos + len;
  if (end > r.buf.length) eof();
  return end;
}

function readString(r: Reader): string {
  const end = delimited(r);
  const start = r.pos;
  r.pos = end;
  return utf8(r.buf, start, end);
}

/** UTF-8 text; invalid UTF-8 is refused, as fromBinary refuses it for proto3 strings. */
function utf8(buf: Buffer, start: number, end: number): string {
  const s = buf.toString("utf8", start, end);
  // The lenient decoder marks what it could not read with U+FFFD; only then is the strict one asked.
  return s.includes("\ufffd") ? strictUtf8.decode(buf.subarray(start, end)) : s;
}

function readTag(r: Reader): number {
  const start = r.pos;
  const tag = readUint32(r);
  const n = r.pos - start;
  if (n > 5 || (n === 5 && (r.buf[r.pos - 1] as number) > 0x0f)) throw new Error("illegal tag: varint overflows uint32");
  const no = tag >>> 3;
  const wire = tag & 7;
  if (no <= 0 || wire > 5) throw new Error(`illegal tag: field no ${no} wire type ${wire}`);
  return tag;
}

/** Steps over one value of an unknown field. */
function skip(r: Reader, wire: number, no: number, depth: number): void {
  switch (wire) {
    case WIRE_VARINT:
      readVarint64(r);
      return;
    case WIRE_BIT64:
      need(r, 8);
      return;
    case WIRE_BIT32:
      need(r, 4);
      return;
    case WIRE_LEN:
      r.pos = delimited(r);
      return;
    case WIRE_START_GROUP:
      if (depth >= RECURSION_LIMIT) throw new Error("maximum recursion depth reached");
      for (;;) {
        const tag = readTag(r);
        if ((tag & 7) === WIRE_END_GROUP) {
          if (tag >>> 3 !== no) throw new Error("invalid end group tag");
          return;
        }
        skip(r, tag & 7, tag >>> 3, depth + 1);
      }
    default:
      throw new Error(`cannot skip wire type ${wire}`);
  }
}

function wrongWire(no: number, wire: number, want: number): never {
  throw new Error(`field ${no} has wire type ${wire}, its type is read with wire type ${want}`);
}

interface ScalarReader {
  wire: number;
  read(r: Reader): unknown;
}

function scalarReader(type: ScalarType): ScalarReader {
  switch (type) {
    case ScalarType.STRING:
      return { wire: WIRE_LEN, read: readString };
    case ScalarType.BYTES:
      return {
        wire: WIRE_LEN,
        read(r) {
          const end = delimited(r);
          const start = r.pos;
          r.pos = end;
          return r.src.subarray(start, end);
        },
      };
    case ScalarType.BOOL:
      return {
        wire: WIRE_VARINT,
        read(r) {
          const b = r.buf[r.pos];
          if (b !== undefined && b < 0x80) {
            r.pos++;
            return b !== 0;
          }
          readVarint64(r);
          return r64.getInt32(0, true) !== 0 || r64.getInt32(4, true) !== 0;
        },
      };
    case ScalarType.DOUBLE:
      return { wire: WIRE_BIT64, read: (r) => viewOf(r).getFloat64(need(r, 8), true) };
    case ScalarType.FLOAT:
      return { wire: WIRE_BIT32, read: (r) => viewOf(r).getFloat32(need(r, 4), true) };
    case ScalarType.FIXED32:
      return { wire: WIRE_BIT32, read: (r) => viewOf(r).getUint32(need(r, 4), true) };
    case ScalarType.SFIXED32:
      return { wire: WIRE_BIT32, read: (r) => viewOf(r).getInt32(need(r, 4), true) };
    case ScalarType.FIXED64:
      return { wire: WIRE_BIT64, read: (r) => viewOf(r).getBigUint64(need(r, 8), true) };
    case ScalarType.SFIXED64:
      return { wire: WIRE_BIT64, read: (r) => viewOf(r).getBigInt64(need(r, 8), true) };
    case ScalarType.INT32:
      return { wire: WIRE_VARINT, read: (r) => readUint32(r) | 0 };
    case ScalarType.UINT32:
      return { wire: WIRE_VARINT, read: readUint32 };
    case ScalarType.SINT32:
      return {
        wire: WIRE_VARINT,
        read(r) {
          const z = readUint32(r);
          return (z >>> 1) ^ -(z & 1);
        },
      };
    case ScalarType.INT64:
      return {
        wire: WIRE_VARINT,
        read(r) {
          readVarint64(r);
          return r64.getBigInt64(0, true);
        },
      };
    case ScalarType.UINT64:
      return {
        wire: WIRE_VARINT,
        read(r) {
          readVarint64(r);
          return r64.getBigUint64(0, true);
        },
      };
    case ScalarType.SINT64:
      return {
        wire: WIRE_VARINT,
        read(r) {
          readVarint64(r);
          const z = r64.getBigUint64(0, true);
          return (z & 1n) === 0n ? z >> 1n : -(z >> 1n) - 1n;
        },
      };
  }
}

function zeroOf(type: ScalarType): unknown {
  switch (type) {
    case ScalarType.STRING:
      return "";
    case ScalarType.BOOL:
      return false;
    case ScalarType.BYTES:
      return new Uint8Array(0);
    case ScalarType.INT64:
    case ScalarType.UINT64:
    case ScalarType.SINT64:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return 0n;
    default:
      return 0;
  }
}

/** Sets a property, `__proto__` included, as an own property (map keys and Struct keys are the caller's). */
function setOwn(obj: Msg, key: string, value: unknown): void {
  if (key === "__proto__") Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true });
  else obj[key] = value;
}

// google.protobuf.Struct straight into its JSON form: Struct { map<string, Value> fields = 1 },
// Value { oneof kind: null_value 1, number_value 2, string_value 3, bool_value 4, struct_value 5,
// list_value 6 }, ListValue { repeated Value values = 1 }. A Value with no kind is null, as in fromBinary.

function enter(r: Reader): void {
  if (++r.depth > RECURSION_LIMIT)
    throw new Error(`cannot decode message from binary: maximum recursion depth of ${RECURSION_LIMIT} reached`);
}

function readStructJson(r: Reader, end: number, obj: Msg): void {
  enter(r);
  while (r.pos < end) {
    const tag = readTag(r);
    if (tag !== 0x0a) {
      skip(r, tag & 7, tag >>> 3, r.depth);
      continue;
    }
    const entryEnd = delimited(r);
    let key = "";
    let value: unknown;
    while (r.pos < entryEnd) {
      const t = readTag(r);
      if (t === 0x0a) key = readString(r);
      else if (t === 0x12) {
        const valueEnd = delimited(r);
        value = readValueJson(r, valueEnd, value);
      } else skip(r, t & 7, t >>> 3, r.depth);
    }
    if (r.pos !== entryEnd) eof();
    setOwn(obj, key, value === undefined ? null : value);
  }
  if (r.pos !== end) eof();
  r.depth--;
}

/** One Value, merged into what an earlier occurrence in the same place gave (`current`). */
function readValueJson(r: Reader, end: number, current: unknown): unknown {
  enter(r);
  let v = current;
  while (r.pos < end) {
    const tag = readTag(r);
    switch (tag) {
      case 0x08: // null_value
        readVarint64(r);
        v = null;
        break;
      case 0x11: // number_value
        v = viewOf(r).getFloat64(need(r, 8), true);
        break;
      case 0x1a: // string_value
        v = readString(r);
        break;
      case 0x20: // bool_value
        v = scalarBool.read(r);
        break;
      case 0x2a: {
        // struct_value: a second one in the same Value merges into the first
        const inner = delimited(r);
        const target = v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Msg) : {};
        readStructJson(r, inner, target);
        v = target;
        break;
      }
      case 0x32: {
        // list_value: likewise, its values appended
        const inner = delimited(r);
        const target = Array.isArray(v) ? v : [];
        readListJson(r, inner, target);
        v = target;
        break;
      }
      default:
        // A known field with another wire type is refused; unknown fields of a Value are dropped.
        if (tag >>> 3 <= 6) wrongWire(tag >>> 3, tag & 7, VALUE_WIRES[tag >>> 3] as number);
        skip(r, tag & 7, tag >>> 3, r.depth);
    }
  }
  if (r.pos !== end) eof();
  r.depth--;
  return v === undefined ? null : v;
}

const VALUE_WIRES = [0, WIRE_VARINT, WIRE_BIT64, WIRE_LEN, WIRE_VARINT, WIRE_LEN, WIRE_LEN];
const scalarBool = scalarReader(ScalarType.BOOL);

function readListJson(r: Reader, end: number, list: unknown[]): void {
  enter(r);
  while (r.pos < end) {
    const tag = readTag(r);
    if (tag === 0x0a) {
      const inner = delimited(r);
      list.push(readValueJson(r, inner, undefined));
    } else if (tag >>> 3 === 1) wrongWire(1, tag & 7, WIRE_LEN);
    else skip(r, tag & 7, tag >>> 3, r.depth);
  }
  if (r.pos !== end) eof();
  r.depth--;
}

/**
 * How one message-typed value is read where it is held: `current` is what an earlier occurrence left
 * (merged into), undefined for a new value.
 */
type ValueReader = (r: Reader, current: unknown) => unknown;

function messageValueReader(field: DescField, desc: DescMessage, singular: boolean): { read: ValueReader; zero: () => unknown } {
  if (desc.typeName === "google.protobuf.Struct" && field.parent.typeName !== "google.protobuf.Value") {
    return {
      read(r, current) {
        const end = delimited(r);
        const obj = (current as Msg | undefined) ?? {};
        readStructJson(r, end, obj);
        return obj;
      },
      zero: () => ({}),
    };
  }
  const inner = desc.fields[0];
  if (singular && !field.oneof && WRAPPERS.has(desc.typeName) && inner?.fieldKind === "scalar") {
    // A wrapper outside a oneof is held as its value; whatever else its message holds is dropped.
    const scalar = scalarReader(inner.scalar);
    const zero = zeroOf(inner.scalar);
    return {
      read(r, current) {
        const end = delimited(r);
        enter(r);
        let v = current === undefined ? zero : current;
        while (r.pos < end) {
          const tag = readTag(r);
          if (tag >>> 3 === 1) {
            if ((tag & 7) !== scalar.wire) wrongWire(1, tag & 7, scalar.wire);
            v = scalar.read(r);
          } else skip(r, tag & 7, tag >>> 3, r.depth);
        }
        if (r.pos !== end) eof();
        r.depth--;
        return v;
      },
      zero: () => zero,
    };
  }
  const child = compiled(desc);
  return {
    read(r, current) {
      const end = delimited(r);
      const m = (current as Msg | undefined) ?? child.create();
      child.read(m, r, end);
      return m;
    },
    zero: () => child.create(),
  };
}

function compileField(field: DescField): FieldReader {
  const name = field.localName;
  const no = field.number;
  switch (field.fieldKind) {
    case "scalar":
    case "enum": {
      const scalar = scalarReader(field.fieldKind === "enum" ? ScalarType.INT32 : field.scalar);
      const wire = scalar.wire;
      const read = scalar.read;
      const oneof = field.oneof?.localName;
      if (oneof) {
        return (m, r, w) => {
          if (w !== wire) wrongWire(no, w, wire);
          m[oneof] = { case: name, value: read(r) };
        };
      }
      return (m, r, w) => {
        if (w !== wire) wrongWire(no, w, wire);
        m[name] = read(r);
      };
    }
    case "message": {
      const value = messageValueReader(field, field.message, true);
      const read = value.read;
      const oneof = field.oneof?.localName;
      if (oneof) {
        return (m, r, w) => {
          if (w !== WIRE_LEN) wrongWire(no, w, WIRE_LEN);
          const o = m[oneof] as { case?: string; value?: unknown };
          m[oneof] = { case: name, value: read(r, o.case === name ? o.value : undefined) };
        };
      }
      return (m, r, w) => {
        if (w !== WIRE_LEN) wrongWire(no, w, WIRE_LEN);
        m[name] = read(r, m[name]);
      };
    }
    case "list": {
      if (field.listKind === "message") {
        const read = messageValueReader(field, field.message, false).read;
        return (m, r, w) => {
          if (w !== WIRE_LEN) wrongWire(no, w, WIRE_LEN);
          (m[name] as unknown[]).push(read(r, undefined));
        };
      }
      const scalar = scalarReader(field.listKind === "enum" ? ScalarType.INT32 : field.scalar);
      const wire = scalar.wire;
      const read = scalar.read;
      const packable = wire !== WIRE_LEN;
      return (m, r, w) => {
        const items = m[name] as unknown[];
        if (w === WIRE_LEN && packable) {
          const end = delimited(r);
          while (r.pos < end) items.push(read(r));
          if (r.pos !== end) eof();
          return;
        }
        if (w !== wire) wrongWire(no, w, wire);
        items.push(read(r));
      };
    }
    case "map": {
      const key = scalarReader(field.mapKey);
      const keyZero = String(zeroOf(field.mapKey));
      let valueWire: number;
      let readValue: (r: Reader, current: unknown) => unknown;
      let valueZero: () => unknown;
      if (field.mapKind === "message") {
        const value = messageValueReader(field, field.message, false);
        valueWire = WIRE_LEN;
        readValue = value.read;
        valueZero = value.zero;
      } else {
        const scalar = scalarReader(field.mapKind === "enum" ? ScalarType.INT32 : field.scalar);
        valueWire = scalar.wire;
        readValue = scalar.read;
        if (field.mapKind === "enum") {
          const zero = field.enum.values[0]?.number ?? 0;
          valueZero = () => zero;
        } else {
          const scalarType = field.scalar;
          valueZero = () => zeroOf(scalarType);
        }
      }
      return (m, r, w) => {
        if (w !== WIRE_LEN) wrongWire(no, w, WIRE_LEN);
        const end = delimited(r);
        let k: string | undefined;
        let v: unknown;
        while (r.pos < end) {
          const tag = readTag(r);
          const entryField = tag >>> 3;
          if (entryField === 1) {
            if ((tag & 7) !== key.wire) wrongWire(1, tag & 7, key.wire);
            k = String(key.read(r));
          } else if (entryField === 2) {
            if ((tag & 7) !== valueWire) wrongWire(2, tag & 7, valueWire);
            v = readValue(r, v);
          } else skip(r, tag & 7, entryField, r.depth);
        }
        if (r.pos !== end) eof();
        setOwn(m[name] as Msg, k ?? keyZero, v === undefined ? valueZero() : v);
      };
    }
  }
}

const compiledMessages = new WeakMap<DescMessage, CompiledMessage>();

function compiled(desc: DescMessage): CompiledMessage {
  const known = compiledMessages.get(desc);
  if (known) return known;
  const typeName = desc.typeName;
  // The zero message: what create(desc) gives for a proto3 type.
  const inits: [string, () => unknown][] = [];
  for (const member of desc.members) {
    if (member.kind === "oneof") {
      inits.push([member.localName, () => ({ case: undefined })]);
      continue;
    }
    switch (member.fieldKind) {
      case "list":
        inits.push([member.localName, () => []]);
        break;
      case "map":
        inits.push([member.localName, () => ({})]);
        break;
      case "scalar":
      case "enum": {
        if (member.presence !== PRESENCE_IMPLICIT) break;
        const zero = member.fieldKind === "enum" ? (member.enum.values[0]?.number ?? 0) : zeroOf(member.scalar);
        inits.push([member.localName, () => zero]);
        break;
      }
      default:
        // Singular message fields are absent from a zero message.
        break;
    }
  }
  let readers: (FieldReader | undefined)[] = [];
  const byNumber = new Map<number, FieldReader>();
  const self: CompiledMessage = {
    create() {
      const m: Msg = { $typeName: typeName };
      for (let i = 0; i < inits.length; i++) {
        const init = inits[i] as [string, () => unknown];
        m[init[0]] = init[1]();
      }
      return m;
    },
    read(m, r, end) {
      enter(r);
      let unknown = m.$unknown as UnknownField[] | undefined;
      while (r.pos < end) {
        const tag = readTag(r);
        const no = tag >>> 3;
        const reader = no < readers.length ? readers[no] : byNumber.get(no);
        if (reader) {
          reader(m, r, tag & 7);
          continue;
        }
        const start = r.pos;
        skip(r, tag & 7, no, r.depth);
        if (unknown === undefined) unknown = [];
        unknown.push({ no, wireType: tag & 7, data: r.src.subarray(start, r.pos) });
      }
      if (r.pos !== end) eof();
      if (unknown !== undefined && unknown.length > 0) m.$unknown = unknown;
      r.depth--;
    },
  };
  // Registered before its fields are compiled, so that a recursive type finds itself.
  compiledMessages.set(desc, self);
  // Small field numbers are looked up in an array, large ones in a map.
  const small = desc.fields.filter((f) => f.number < 256);
  readers = new Array(small.reduce((max, f) => Math.max(max, f.number + 1), 0)).fill(undefined);
  for (const field of desc.fields) {
    const reader = compileField(field);
    if (field.number < 256) readers[field.number] = reader;
    else byNumber.set(field.number, reader);
  }
  return self;
}

/** Whether every message reachable from `desc` is one this decoder reads as fromBinary does. */
function compilable(desc: DescMessage, seen = new Set<DescMessage>()): boolean {
  if (seen.has(desc)) return true;
  seen.add(desc);
  if (desc.file.edition !== EDITION_PROTO3) return false;
  for (const field of desc.fields) {
    if ((field as { delimitedEncoding?: boolean }).delimitedEncoding) return false;
    if ((field as { longAsString?: boolean }).longAsString) return false;
    const child =
      field.fieldKind === "message"
        ? field.message
        : (field.fieldKind === "list" && field.listKind === "message") || (field.fieldKind === "map" && field.mapKind === "message")
          ? field.message
          : undefined;
    if (child && !compilable(child, seen)) return false;
  }
  return true;
}

/** The binary decoder of a message type: the message fromBinary(desc, bytes) would give. */
export function binaryDecoder<T>(desc: DescMessage): (bytes: Uint8Array) => T {
  if (!compilable(desc)) return (bytes) => fromBinary(desc, bytes) as T;
  const c = compiled(desc);
  return (bytes) => {
    const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const r: Reader = { src: bytes, buf, view: undefined, pos: 0, depth: 0 };
    const m = c.create();
    c.read(m, r, buf.length);
    return m as T;
  };
}
