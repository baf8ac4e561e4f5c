import { describe, expect, test } from "bun:test";
import { create, type JsonObject, toJson } from "@bufbuild/protobuf";
import { type RespondRequest, RespondRequestSchema } from "../../gen/kaireon/v1/respond_pb.ts";
import { seededRandom } from "../random.ts";
import { randomJson } from "../../test/random-json.ts";
import { requestHash, respondRequestHash } from "./idempotency.ts";

/** The hash as Respond computed it before respondRequestHash: the JSON mapping, every field, sorted keys. */
function viaJsonMapping(req: RespondRequest): string {
  const json = toJson(RespondRequestSchema, req, { alwaysEmitImplicit: true }) as JsonObject;
  json.metadata ??= {};
  return requestHash(json);
}

const random = seededRandom(2026);
const { text, object } = randomJson(random);

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
