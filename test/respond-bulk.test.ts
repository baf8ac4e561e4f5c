// Bulk respond: items checked one by one, one commit, idempotent per item, durable before the answer.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { RespondBulkItemSchema, RespondRequestSchema, RespondService } from "../gen/kaireon/v1/respond_pb.ts";
import { DEMO_KEY, postJson, startTestService, type TestService } from "./harness.ts";

let svc: TestService;
beforeAll(async () => {
  svc = await startTestService();
}, 60_000);
afterAll(async () => {
  await svc?.stop();
});

const item = (n: number, extra: Record<string, unknown> = {}) => ({
  customerId: `cust_bulk_${n}`,
  offerId: "act_platinum_cc",
  channelId: "ch_email",
  outcomeType: "click",
  creativeId: "treat_platinum_email",
  ...extra,
});

const stored = async (ids: string[]) =>
  Number(
    (await svc.app.deps.db.query<{ n: number }>("select count(*)::int as n from interactions where id = any($1::text[])", [ids]))[0]?.n,
  );

describe("POST /api/v1/respond/bulk", () => {
  test("1,000 items in one commit, the bad ones reported by position and field, the good ones durable when answered", async () => {
    const commitsBefore = svc.app.deps.interactions.stats.commits;
    const items = Array.from({ length: 1_000 }, (_, n) => item(n, { idempotencyKey: `bulk-${n}` }));
    items[3] = item(3, { offerId: "act_missing" });
    items[10] = item(10, { outcomeType: "" });
    items[500] = item(500, { creativeId: "treat_cashback_web" });
    items[999] = item(999, { channelId: "ch_missing" });
    items[700] = item(700, { idempotencyKey: "k".repeat(300) });
    const res = await postJson(svc.http, "/api/v1/respond/bulk", { items });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ processed: 1_000, succeeded: 995, failed: 5 });
    expect(res.json.errors.map((e: { index: number; field: string }) => [e.index, e.field])).toEqual([
      [3, "offerId"],
      [10, "outcomeType"],
      [500, "creativeId"],
      [700, "idempotencyKey"],
      [999, "channelId"],
    ]);
    expect(res.json.errors[3].message).toContain("idempotencyKey must be at most 255 characters");
    const ids = res.json.results.map((r: { id: string }) => r.id);
    expect(new Set(ids).size).toBe(995);
    // Committed before the answer, in one transaction (the writer may add concurrent callers' to it).
    expect(await stored(ids)).toBe(995);
    expect(svc.app.deps.interactions.stats.commits - commitsBefore).toBe(1);

    // The same items again: nothing new, the same ids; a key reused with other content is refused alone.
    const again = items.slice(0, 20).map((x, n) => (n === 5 ? { ...x, outcomeType: "dismiss" } : x));
    const retry = await postJson(svc.http, "/api/v1/respond/bulk", { items: again });
    expect(retry.json).toMatchObject({ processed: 20, succeeded: 17, failed: 3 });
    expect(retry.json.errors.map((e: { index: number; field: string }) => [e.index, e.field])).toEqual([
      [3, "offerId"],
      [5, "idempotencyKey"],
      [10, "outcomeType"],
    ]);
    for (const r of retry.json.results) {
      expect(r.duplicate).toBe(true);
      expect(r.id).toBe(res.json.results.find((x: { index: number }) => x.index === r.index).id);
    }
    const rows = await svc.app.deps.db.query<{ n: number }>(
      "select count(*)::int as n from interactions where tenant_id = 'demo' and customer_id like 'cust_bulk_%'",
    );
    expect(rows[0]?.n).toBe(995);
    // Every committed item has its interaction.recorded.v1 event, written with it.
    const events = await svc.app.deps.db.query<{ n: number }>(
      "select count(*)::int as n from outbox_events where type = 'interaction.recorded.v1' and customer_id like 'cust_bulk_%'",
    );
    expect(events[0]?.n).toBe(995);
  }, 60_000);

  test("an empty or oversized list is a 400 naming items; gRPC RespondBulk answers the same way", async () => {
    for (const items of [[], Array.from({ length: 1_001 }, (_, n) => item(n))]) {
      const res = await postJson(svc.http, "/api/v1/respond/bulk", { items });
      expect(res.status).toBe(400);
      expect(res.json.details[0].field).toBe("items");
    }
    const client = createClient(RespondService, createGrpcTransport({ baseUrl: svc.grpc }));
    const rec = await postJson(svc.http, "/api/v1/recommend", { customerId: "cust_bulk_rec", channelId: "ch_email" });
    const shown = rec.json.recommendations[0];
    const named = { customerId: "cust_bulk_rec", offerId: shown.offerId, channelId: "ch_email", outcomeType: "impression" };
    const answer = await client.respondBulk(
      {
        items: [
          item(2_000),
          item(2_001, { offerId: "act_missing" }),
          { ...named, recommendationId: shown.recommendationId },
          { ...named, recommendationId: "rec_0000000000000000000001" },
        ],
      },
      { headers: { "x-api-key": DEMO_KEY, "x-tenant-id": "demo" } },
    );
    expect(answer.processed).toBe(4);
    expect(answer.succeeded).toBe(2);
    expect(answer.errors.map((e) => [e.index, e.field])).toEqual([
      [1, "offerId"],
      [3, "recommendationId"],
    ]);
    expect(await stored(answer.results.map((r) => r.id))).toBe(2);
    const row = await svc.app.deps.db.query<{ recommendation_id: string; creative_id: string }>(
      "select recommendation_id, creative_id from interactions where id = $1",
      [answer.results.find((r) => r.index === 2)?.id],
    );
    expect(row[0]).toEqual({ recommendation_id: shown.recommendationId, creative_id: shown.creativeId });
  }, 60_000);

  test("an item is recorded as a single Respond of the same fields is: the row and its event", async () => {
    // An item is a RespondRequest and its key: respondBulk copies each field, so a field added to one
    // message and not the other fails here.
    expect(RespondBulkItemSchema.fields.map((f) => f.jsonName).sort()).toEqual(
      [...RespondRequestSchema.fields.map((f) => f.jsonName), "idempotencyKey"].sort(),
    );
    const traced = await postJson(svc.http, "/api/v1/recommend", { customerId: "cust_bulk_same", channelId: "ch_email", trace: true });
    const first = traced.json.recommendations[0];
    const request = (n: number) => ({
      customerId: "cust_bulk_same",
      offerId: first.offerId,
      channelId: "ch_email",
      outcomeType: "impression",
      creativeId: first.creativeId,
      traceId: traced.json.traceId,
      metadata: { campaign: `spring-${n}`, nested: { a: [1, "two", null, true] } },
    });
    const single = await postJson(svc.http, "/api/v1/respond", request(1));
    expect(single.status).toBe(200);
    const bulk = await postJson(svc.http, "/api/v1/respond/bulk", {
      items: [{ ...request(1), idempotencyKey: "same-as-single" }],
    });
    expect(bulk.json).toMatchObject({ processed: 1, succeeded: 1, failed: 0 });
    const ids = [single.json.id, bulk.json.results[0].id];
    const rows = await svc.app.deps.db.query<Record<string, unknown>>(
      `select customer_id, offer_id, channel_id, creative_id, outcome_type, trace_id, recommendation_id, metadata, propensity, score
         from interactions where id = any($1::text[])`,
      [ids],
    );
    expect(rows).toHaveLength(2);
    expect(rows[1]).toEqual(rows[0] as Record<string, unknown>);
    expect(rows[0]).toMatchObject({ trace_id: traced.json.traceId, creative_id: first.creativeId, metadata: request(1).metadata });
    expect(typeof rows[0]?.score).toBe("number");
    const events = await svc.app.deps.db.query<{ body: string }>(
      "select body::text as body from outbox_events where type = 'interaction.recorded.v1' and customer_id = 'cust_bulk_same' order by seq",
    );
    expect(events).toHaveLength(2);
    const data = events.map((e) => {
      const { interactionId, recordedAt, ...rest } = JSON.parse(e.body);
      expect(ids).toContain(interactionId);
      expect(typeof recordedAt).toBe("string");
      return rest;
    });
    expect(data[1]).toEqual(data[0]);
    expect(data[0]).toMatchObject({ traceId: traced.json.traceId, metadata: request(1).metadata });
  }, 60_000);
});
