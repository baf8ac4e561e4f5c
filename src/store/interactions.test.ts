import { describe, expect, test } from "bun:test";
import { create, type JsonObject, toJson } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { InteractionRecordedV1Schema } from "../../gen/kaireon/v1/events_pb.ts";
import { type NewInteraction, recordedEvent } from "./interactions.ts";

const base: NewInteraction = {
  id: "int_a",
  tenantId: "t",
  customerId: "c",
  offerId: "o",
  channelId: "ch",
  creativeId: null,
  outcomeType: "click",
  traceId: null,
  recommendationId: null,
  metadata: {},
  recordedAt: new Date("2026-03-10T14:30:00Z"),
  outcomeClass: "positive",
};

describe("interaction.recorded.v1", () => {
  test("its data is the JSON mapping of InteractionRecordedV1, whatever is set", () => {
    for (const i of [
      base,
      { ...base, creativeId: "cr", recommendationId: "rec_x", traceId: "trace_y", metadata: { a: 1, b: [true, null] } },
      { ...base, recordedAt: new Date("2026-03-10T14:30:00.123Z") },
    ]) {
      const expected = toJson(
        InteractionRecordedV1Schema,
        create(InteractionRecordedV1Schema, {
          interactionId: i.id,
          customerId: i.customerId,
          offerId: i.offerId,
          channelId: i.channelId,
          outcomeType: i.outcomeType,
          creativeId: i.creativeId ?? "",
          recommendationId: i.recommendationId ?? "",
          traceId: i.traceId ?? "",
          metadata: i.metadata as JsonObject,
          recordedAt: timestampFromDate(i.recordedAt),
        }),
      );
      const event = recordedEvent(i);
      expect(event.data).toEqual(expected as Record<string, unknown>);
      expect(JSON.stringify(event.data)).toBe(JSON.stringify(expected));
      expect(event).toMatchObject({ type: "interaction.recorded.v1", tenantId: "t", customerId: "c" });
      expect(event.id).toMatch(/^evt_[0-9A-Za-z]{20}$/);
    }
  });
});
