// The compiled binary encoder of native gRPC answers against toBinary of @bufbuild/protobuf: the same
// bytes for random messages of every message type of the contract (and the well-known types it uses),
// with zero values, negative numbers, 64-bit extremes, non-ASCII and broken UTF-16 strings, lengths over
// one varint byte, Struct fields in their JSON form, wrappers, maps, oneofs and unknown fields.

import { describe, expect, test } from "bun:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { RecommendResponseSchema } from "../gen/kaireon/v1/recommend_pb.ts";
import { seededRandom } from "../src/random.ts";
import { binaryEncoder } from "../src/transport/proto-binary.ts";
import { contractMessages, gen } from "./random-proto.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

describe("binaryEncoder", () => {
  test("writes the bytes toBinary writes, for random messages of every contract type", async () => {
    const messages = await contractMessages();
    expect(messages.length).toBeGreaterThan(100);
    const rand = seededRandom(20261203);
    const random = gen(rand);
    let checked = 0;
    for (const desc of messages) {
      const encode = binaryEncoder(desc);
      for (let i = 0; i < 40; i++) {
        const m = random(desc, 0);
        const want = toBinary(desc, m as never);
        const got = encode(m);
        if (hex(got) !== hex(want))
          throw new Error(
            `${desc.typeName}: ${hex(got)} != ${hex(want)} for ${JSON.stringify(m, (_, v) => (typeof v === "bigint" ? `${v}n` : v))}`,
          );
        checked++;
      }
      // An empty message too.
      expect(hex(encode(create(desc)))).toBe(hex(toBinary(desc, create(desc))));
    }
    expect(checked).toBeGreaterThan(4000);
  });

  test("a Recommend answer as the service builds it reads back as the same message", () => {
    const res = create(RecommendResponseSchema, {
      decisionFlowId: "df_credit_cards",
      traceId: "trace_abc",
      processedAt: { seconds: 1741617000n, nanos: 5_000_000 },
      recommendations: [
        {
          offerId: "act_platinum_cc",
          rank: 1,
          score: 0.89,
          content: { headline: "Platinum Rewards Card", list: [1, "two", { three: null }] },
          personalization: { personalized_rate: 17.49 },
        },
      ],
    });
    const bytes = binaryEncoder(RecommendResponseSchema)(res);
    expect(hex(bytes)).toBe(hex(toBinary(RecommendResponseSchema, res)));
    expect(fromBinary(RecommendResponseSchema, bytes)).toEqual(res);
  });

  test("bytes reserved in front of the message are left for the caller, the message after them", () => {
    const res = create(RecommendResponseSchema, { decisionFlowId: "df_credit_cards", recommendations: [{ offerId: "act_a", rank: 1 }] });
    const bytes = binaryEncoder(RecommendResponseSchema, 5)(res);
    expect(bytes.byteLength).toBe(toBinary(RecommendResponseSchema, res).byteLength + 5);
    expect(hex(bytes.subarray(5))).toBe(hex(toBinary(RecommendResponseSchema, res)));
  });

  test("a value toBinary refuses is refused too, not written wrong", () => {
    const bad = create(RecommendResponseSchema, { recommendations: [{ offerId: "x", rank: 1.5 }] });
    expect(() => toBinary(RecommendResponseSchema, bad)).toThrow();
    expect(() => binaryEncoder(RecommendResponseSchema)(bad)).toThrow();
  });
});
