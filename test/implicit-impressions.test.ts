// Channels whose clients cannot report impressions: every recommended offer is recorded as an impression,
// with the propensity and score it was shown with, before the answer leaves.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { publishDraft, saveDraft } from "../src/store/flows.ts";
import { postJson, startTestService, type TestService } from "./harness.ts";

let svc: TestService;
beforeAll(async () => {
  svc = await startTestService();
  await svc.db.sql`update channels set implicit_impressions = true where tenant_id = 'demo' and id = 'ch_sms'`;
  const db = svc.app.deps.db;
  await db.transaction((tx) =>
    saveDraft(tx, "demo", "df_credit_cards", {
      policies: [{ type: "frequency_cap", scope: "offer", max: 1, window: "day", channelIds: ["ch_sms"] }],
    }),
  );
  await publishDraft(db, "demo", "df_credit_cards");
  svc.app.deps.catalogs.invalidate("demo");
});
afterAll(async () => {
  await svc.stop();
});

describe("implicit impressions", () => {
  test("are committed with the score they were shown with, and count towards caps at once", async () => {
    const first = await postJson(svc.http, "/api/v1/recommend", { customerId: "cust_10042", channelId: "ch_sms", trace: true });
    expect(first.status).toBe(200);
    const shown = first.json.recommendations.map((r: { offerId: string }) => r.offerId);
    expect(shown.length).toBeGreaterThan(0);
    const rows = await svc.db.sql`
      select offer_id, creative_id, trace_id, propensity, score, metadata from interactions
       where tenant_id = 'demo' and customer_id = 'cust_10042' and outcome_type = 'impression' order by (metadata->>'rank')::int`;
    expect(rows.map((r) => r.offer_id)).toEqual(shown);
    first.json.recommendations.forEach((rec: { creativeId: string; score: number; rank: number }, i: number) => {
      expect(rows[i]?.creative_id).toBe(rec.creativeId);
      expect(rows[i]?.score).toBe(rec.score);
      expect(rows[i]?.propensity).toBeGreaterThan(0);
      expect(rows[i]?.trace_id).toBe(first.json.traceId);
      expect(rows[i]?.metadata).toEqual({ implicit: true, rank: rec.rank });
    });

    // The cap of one per day on SMS now holds those offers back.
    const second = await postJson(svc.http, "/api/v1/recommend", { customerId: "cust_10042", channelId: "ch_sms" });
    for (const r of second.json.recommendations) expect(shown).not.toContain(r.offerId);

    // Channels without the setting record nothing at Recommend time.
    await postJson(svc.http, "/api/v1/recommend", { customerId: "cust_10043", channelId: "ch_email" });
    expect((await svc.db.sql`select 1 from interactions where tenant_id = 'demo' and customer_id = 'cust_10043'`).length).toBe(0);
  });
});
