// The compiled binary decoder of native gRPC requests against fromBinary of @bufbuild/protobuf: the same
// message for random messages of every message type of the contract, for two of them sent back to back
// (which protobuf reads as one merged message), for hand-made wire forms encoders seldom write (unpacked
// lists, map entries without key or value, unknown groups, overlong varints), and for every truncation of
// a real request; and refusals where the input is not protobuf at all.

import { describe, expect, test } from "bun:test";
import { create, type DescMessage, fromBinary, toBinary } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { StructSchema, ValueSchema } from "@bufbuild/protobuf/wkt";
import { RecommendRequestSchema } from "../gen/kaireon/v1/recommend_pb.ts";
import { seededRandom } from "../src/random.ts";
import { binaryDecoder } from "../src/transport/proto-binary-decode.ts";
import { contractMessages, gen } from "./random-proto.ts";

const show = (v: unknown) => JSON.stringify(v, (_, x) => (typeof x === "bigint" ? `${x}n` : x instanceof Uint8Array ? [...x] : x));

function same(desc: DescMessage, bytes: Uint8Array): void {
  let want: unknown;
  try {
    want = fromBinary(desc, bytes);
  } catch (err) {
    // What fromBinary refuses is refused too.
    expect(() => binaryDecoder(desc)(bytes), `${desc.typeName}: ${Buffer.from(bytes).toString("hex")}`).toThrow();
    return;
  }
  const got = binaryDecoder(desc)(bytes);
  if (!Bun.deepEquals(got, want, true)) {
    throw new Error(`${desc.typeName}: ${Buffer.from(bytes).toString("hex")}\n got ${show(got)}\nwant ${show(want)}`);
  }
}

const concat = (...parts: Uint8Array[]) => Buffer.concat(parts);

describe("binaryDecoder", () => {
  test("reads what fromBinary reads, for random messages of every contract type, alone and merged in pairs", async () => {
    const messages = await contractMessages();
    expect(messages.length).toBeGreaterThan(100);
    const random = gen(seededRandom(20261204));
    let checked = 0;
    for (const desc of messages) {
      same(desc, new Uint8Array(0));
      for (let i = 0; i < 30; i++) {
        const a = toBinary(desc, random(desc, 0) as never);
        const b = toBinary(desc, random(desc, 0) as never);
        same(desc, a);
        same(desc, concat(a, b));
        checked += 2;
      }
    }
    expect(checked).toBeGreaterThan(6000);
  });

  test("a real request, and every truncation of it, read as fromBinary reads them", () => {
    const bytes = toBinary(
      RecommendRequestSchema,
      create(RecommendRequestSchema, {
        customerId: "cust_12345",
        channelId: "ch_email",
        maxOffers: 3,
        attributes: { segment: "gold", score: 0.75, tags: ["a", { b: null }], nested: { ok: true } },
        excludeOffers: ["act_a", "act_é"],
        placements: [{ placement: "hero", maxOffers: 2 }],
      }),
    );
    expect(binaryDecoder(RecommendRequestSchema)(bytes)).toEqual(fromBinary(RecommendRequestSchema, bytes));
    for (let n = 0; n < bytes.length; n++) same(RecommendRequestSchema, bytes.subarray(0, n));
  });

  test("wire forms encoders seldom write", () => {
    const w = () => new BinaryWriter();
    // exclude_offers (8) and a packed-capable list sent unpacked are covered by the random types; here:
    // scalars sent twice (the last wins), a wrapper twice and with a foreign field, an empty wrapper.
    same(RecommendRequestSchema, w().tag(1, WireType.LengthDelimited).string("a").tag(1, WireType.LengthDelimited).string("b").finish());
    same(
      RecommendRequestSchema,
      w()
        .tag(4, WireType.LengthDelimited)
        .bytes(w().tag(1, WireType.Varint).int32(7).tag(9, WireType.Varint).int32(1).finish())
        .tag(4, WireType.LengthDelimited)
        .bytes(new Uint8Array(0))
        .finish(),
    );
    // A Struct field twice merges its keys; a map entry with no key, one with no value, one whose value
    // comes twice; a Value with struct_value twice and with a list after a number.
    const entry = (key: string | undefined, ...values: Uint8Array[]) => {
      const e = w();
      if (key !== undefined) e.tag(1, WireType.LengthDelimited).string(key);
      for (const v of values) e.tag(2, WireType.LengthDelimited).bytes(v);
      return e.finish();
    };
    const struct = (...entries: Uint8Array[]) => {
      const s = w();
      for (const e of entries) s.tag(1, WireType.LengthDelimited).bytes(e);
      return s.finish();
    };
    const num = w().tag(2, WireType.Bit64).double(1.5).finish();
    const str = w().tag(3, WireType.LengthDelimited).string("ü-text-longer-than-sixteen").finish();
    const inner = w()
      .tag(5, WireType.LengthDelimited)
      .bytes(struct(entry("x", num)))
      .finish();
    const inner2 = w()
      .tag(5, WireType.LengthDelimited)
      .bytes(struct(entry("y", str)))
      .finish();
    const list = w().tag(6, WireType.LengthDelimited).bytes(w().tag(1, WireType.LengthDelimited).bytes(num).finish()).finish();
    same(
      RecommendRequestSchema,
      concat(
        w()
          .tag(6, WireType.LengthDelimited)
          .bytes(struct(entry("a", num), entry(undefined, str), entry("b")))
          .finish(),
        w()
          .tag(6, WireType.LengthDelimited)
          .bytes(
            struct(
              entry("a", str),
              entry("c", inner, inner2),
              entry("d", num, list),
              entry("e", concat(list, list)),
              entry("f", concat(inner, inner2)),
              entry("__proto__", num),
            ),
          )
          .finish(),
      ),
    );
    same(StructSchema, struct(entry("k", concat(inner, inner2)), entry("l", concat(list, list))));
    same(ValueSchema, concat(inner, inner2, num, list, list));
    // Unknown fields of every wire type, a group among them, kept in order.
    same(
      RecommendRequestSchema,
      w()
        .tag(900, WireType.Varint)
        .uint64(18446744073709551615n)
        .tag(901, WireType.Bit32)
        .fixed32(5)
        .tag(902, WireType.Bit64)
        .fixed64(6n)
        .tag(903, WireType.LengthDelimited)
        .string("z")
        .tag(904, WireType.StartGroup)
        .tag(1, WireType.Varint)
        .int32(1)
        .tag(904, WireType.EndGroup)
        .tag(1, WireType.LengthDelimited)
        .string("after")
        .finish(),
    );
    // A bool sent as a long varint, a negative int32 in ten bytes, overlong varints.
    same(RecommendRequestSchema, w().tag(7, WireType.Varint).uint64(256n).finish());
    same(RecommendRequestSchema, Uint8Array.of(0x38, 0x81, 0x80, 0x80, 0x80, 0x00));
    same(RecommendRequestSchema, w().tag(4, WireType.LengthDelimited).bytes(w().tag(1, WireType.Varint).int32(-5).finish()).finish());
    // A string with a byte order mark keeps it.
    same(RecommendRequestSchema, w().tag(1, WireType.LengthDelimited).string("\ufeffcust").finish());
  });

  test("input that is not protobuf is refused", () => {
    const decode = binaryDecoder(RecommendRequestSchema);
    // Invalid UTF-8, short and long.
    expect(() => decode(Uint8Array.of(0x0a, 0x02, 0xc3, 0x28))).toThrow();
    expect(() => decode(concat(Uint8Array.of(0x0a, 0x20), Buffer.alloc(31, 0x61), Uint8Array.of(0xff)))).toThrow();
    // A length beyond the message, a field number of 0, wire types 6 and 7, a lone end-group tag.
    expect(() => decode(Uint8Array.of(0x0a, 0x05, 0x61))).toThrow(/premature EOF/);
    expect(() => decode(Uint8Array.of(0x00, 0x01))).toThrow(/illegal tag/);
    expect(() => decode(Uint8Array.of(0x0e))).toThrow(/illegal tag/);
    expect(() => decode(Uint8Array.of(0x0c))).toThrow(/wire type 4/);
    // A known field with another wire type: customer_id (a string) as a varint.
    expect(() => decode(Uint8Array.of(0x08, 0x01))).toThrow(/wire type/);
    // A nested message whose field runs past the message's own end.
    expect(() => decode(Uint8Array.of(0x4a, 0x02, 0x0a, 0x03, 0x61, 0x62, 0x63))).toThrow();
    // Nesting beyond the recursion limit: Value { list_value { values { list_value { ... } } } }.
    let v: Uint8Array = new Uint8Array(0);
    for (let i = 0; i < 120; i++) {
      const list = new BinaryWriter().tag(1, WireType.LengthDelimited).bytes(v).finish();
      v = new BinaryWriter().tag(6, WireType.LengthDelimited).bytes(list).finish();
    }
    const deep = new BinaryWriter()
      .tag(6, WireType.LengthDelimited)
      .bytes(
        new BinaryWriter()
          .tag(1, WireType.LengthDelimited)
          .bytes(new BinaryWriter().tag(1, WireType.LengthDelimited).string("k").tag(2, WireType.LengthDelimited).bytes(v).finish())
          .finish(),
      )
      .finish();
    expect(() => fromBinary(RecommendRequestSchema, deep)).toThrow(/recursion/);
    expect(() => decode(deep)).toThrow(/recursion/);
  });
});
