import { describe, expect, test } from "bun:test";
import { create, type JsonObject, type JsonValue, toJson } from "@bufbuild/protobuf";
import { type RespondRequest, RespondRequestSchema } from "../../gen/kaireon/v1/respond_pb.ts";
import { seededRandom } from "../random.ts";
import { requestHash, respondRequestHash } from "./idempotency.ts";

/** The hash as Respond computed it before respondRequestHash: the JSON mapping, every field, sorted keys. */
function viaJsonMapping(req: RespondRequest): string {
  const json = toJson(RespondRequestSchema, req, { alwaysEmitImplicit: true }) as JsonObject;
  json.metadata ??= {};
  return requestHash(json);
}

const random = seededRandom(2026);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
const ALPHABET = ["a", "Z", "0", "_", "-", " ", '"', "\\", "/", "\n", "\t", "é", "ß", "中", "😀", "\u2028", "\u0001"];
const text = (max: number) => Array.from({ length: Math.floor(random() * max) }, () => pick(ALPHABET)).join("");

function value(depth: number): JsonValue {
  switch (Math.floor(random() * (depth > 2 ? 4 : 6))) {
    case 0:
      return text(8);
    case 1:
      return pick([0, 1, -1, 0.5, 1e21, -3.25e-7, 123456789.123]);
    case 2:
      return random() < 0.5;
    case 3:
      return null;
    case 4:
      return Array.from({ length: Math.floor(random() * 4) }, () => value(depth + 1));
    default:
      return object(depth + 1);
  }
}

function object(depth: number): JsonObject {
  const out: JsonObject = {};
  for (let i = Math.floor(random() * 5); i > 0; i--) out[text(6) || "k"] = value(depth);
  return out;
}

/** The hash the code before respondRequestHash stored for the request of the last test. */
const PINNED = "953b42f914ad47e1fbed6f0809798a83313e5a843804b6cda8671c4877159b24";

describe("respondRequestHash", () => {
  test("RespondRequest has exactly the fields it writes", () => {
    expect(RespondRequestSchema.fields.map((f) => f.jsonName).sort()).toEqual([
      "channelId",
      "creativeId",
      "customerId",
      "metadata",
      "offerId",
      "outcomeType",
      "recommendationId",
      "traceId",
    ]);
  });

  test("equals the hash of the request's JSON mapping for 2,000 random requests", () => {
    for (let i = 0; i < 2_000; i++) {
      const shape = random();
      const req = create(RespondRequestSchema, {
        customerId: text(12),
        offerId: text(12),
        channelId: text(6),
        outcomeType: text(10),
        creativeId: random() < 0.5 ? "" : text(12),
        traceId: random() < 0.7 ? "" : text(12),
        recommendationId: random() < 0.5 ? "" : text(24),
        ...(shape < 0.3 ? {} : { metadata: shape < 0.4 ? {} : object(0) }),
      });
      expect(respondRequestHash(req)).toBe(viaJsonMapping(req));
    }
  });

  test("absent and empty metadata, and metadata keys in any order, hash the same; a hash stored earlier still matches", () => {
    const base = { customerId: "cust_12345", offerId: "act_cashback", channelId: "ch_email", outcomeType: "click" };
    const absent = respondRequestHash(create(RespondRequestSchema, base));
    expect(respondRequestHash(create(RespondRequestSchema, { ...base, metadata: {} }))).toBe(absent);
    expect(respondRequestHash(create(RespondRequestSchema, { ...base, metadata: { b: 1, a: { y: 2, x: [3] } } }))).toBe(
      respondRequestHash(create(RespondRequestSchema, { ...base, metadata: { a: { x: [3], y: 2 }, b: 1 } })),
    );
    // What the earlier code stored for this request: a retry across the upgrade is still a retry.
    expect(absent).toBe(viaJsonMapping(create(RespondRequestSchema, base)));
    expect(absent).toBe(PINNED);
  });
});
