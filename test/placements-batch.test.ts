// Several placements in one Recommend (no offer twice unless allowed), excluded offers, and batch
// decisions: NDJSON in and out over REST (20,000 lines answered in order, bad lines in place, the quota
// spent per line) and server streaming RecommendBatch over gRPC.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { RecommendService } from "../gen/kaireon/v1/recommend_pb.ts";
import { authHeaders, DEMO_KEY, postJson, startTestService, type TestService } from "./harness.ts";

let svc: TestService;
beforeAll(async () => {
  svc = await startTestService();
});
afterAll(async () => {
  await svc.stop();
});

type Rec = { offerId: string; rank: number; placement?: string; recommendationId: string };

describe("multiple placements in one call", () => {
  test("each placement is answered in order, ranks start at 1 in each, and no offer appears twice", async () => {
    for (let i = 0; i < 40; i++) {
      const res = await postJson(svc.http, "/api/v1/recommend", {
        customerId: i === 0 ? "cust_12345" : `cust_${10000 + i}`,
        channelId: "ch_web",
        placements: [
          { placement: "hero_offer", maxOffers: 1 },
          { placement: "sidebar", maxOffers: 3 },
        ],
      });
      expect(res.status).toBe(200);
      const placements = res.json.placements as { placement: string; recommendations: Rec[] }[];
      expect(placements.map((p) => p.placement)).toEqual(["hero_offer", "sidebar"]);
      expect(placements[0]?.recommendations.length).toBeLessThanOrEqual(1);
      expect(placements[1]?.recommendations.length).toBeLessThanOrEqual(3);
      for (const p of placements) {
        expect(p.recommendations.map((r) => r.rank)).toEqual(p.recommendations.map((_, k) => k + 1));
        for (const r of p.recommendations) expect(r.placement).toBe(p.placement);
      }
      const all = res.json.recommendations as Rec[];
      expect(all.map((r) => r.offerId)).toEqual(placements.flatMap((p) => p.recommendations.map((r) => r.offerId)));
      expect(new Set(all.map((r) => r.offerId)).size).toBe(all.length);
      expect(new Set(all.map((r) => r.recommendationId)).size).toBe(all.length);
    }
  });

  test("allowRepeats lets an offer appear in several placements; a recommendation id from any placement is accepted by Respond", async () => {
    const res = await postJson(svc.http, "/api/v1/recommend", {
      customerId: "cust_12345",
      channelId: "ch_web",
      allowRepeats: true,
      placements: [
        { placement: "hero_offer", maxOffers: 2 },
        { placement: "sidebar", maxOffers: 2 },
      ],
    });
    expect(res.status).toBe(200);
    const [hero, side] = res.json.placements as { recommendations: Rec[] }[];
    const overlap = hero?.recommendations.filter((r) => side?.recommendations.some((s) => s.offerId === r.offerId)) ?? [];
    expect(overlap.length).toBeGreaterThan(0);
    const last = side?.recommendations.at(-1) as Rec;
    const responded = await postJson(svc.http, "/api/v1/respond", {
      customerId: "cust_12345",
      offerId: last.offerId,
      channelId: "ch_web",
      outcomeType: "click",
      recommendationId: last.recommendationId,
    });
    expect(responded.status).toBe(200);
  });

  test("bad placements are refused with the field named", async () => {
    const cases = [
      [{ placements: [{ placement: "hero_offer" }, { placement: "hero_offer" }] }, "placements[1].placement"],
      [{ placements: [{ placement: "hero_offer", maxOffers: 0 }] }, "placements[0].maxOffers"],
      [
        {
          placements: [
            { placement: "hero_offer", maxOffers: 30 },
            { placement: "sidebar", maxOffers: 30 },
          ],
        },
        "placements",
      ],
      [{ excludeOffers: Array.from({ length: 101 }, (_, i) => `o${i}`) }, "excludeOffers"],
    ] as const;
    for (const [extra, field] of cases) {
      const res = await postJson(svc.http, "/api/v1/recommend", { customerId: "c", channelId: "ch_web", ...extra });
      expect(res.status).toBe(400);
      expect(res.json.details.map((d: { field: string }) => d.field)).toContain(field);
    }
    const unknown = await postJson(svc.http, "/api/v1/recommend", {
      customerId: "c",
      channelId: "ch_web",
      placements: [{ placement: "nowhere" }],
    });
    expect(unknown.status).toBe(404);
  });

  test("excludeOffers keeps offers out of the answer", async () => {
    const base = { customerId: "cust_12345", channelId: "ch_email", decisionFlowId: "df_credit_cards" };
    const first = await postJson(svc.http, "/api/v1/recommend", base);
    expect(first.json.recommendations[0].offerId).toBe("act_platinum_cc");
    const without = await postJson(svc.http, "/api/v1/recommend", { ...base, excludeOffers: ["act_platinum_cc"] });
    const offers = without.json.recommendations.map((r: Rec) => r.offerId);
    expect(offers).not.toContain("act_platinum_cc");
    expect(offers[0]).toBe("act_cashback");
  });
});

describe("batch decisions", () => {
  async function batch(body: string, headers: Record<string, string> = authHeaders()) {
    return fetch(`${svc.http}/api/v1/recommend/batch`, {
      method: "POST",
      headers: { ...headers, "content-type": "application/x-ndjson" },
      body,
    });
  }

  test("20,000 lines answer 20,000 lines in order, bad lines reported in place", async () => {
    const lines: string[] = [];
    const bad = new Map<number, string>([
      [7, "{not json"],
      [5_000, JSON.stringify({ customerId: "", channelId: "ch_email" })],
      [12_345, JSON.stringify({ customerId: "x", channelId: "ch_nowhere" })],
      [19_999, ""],
    ]);
    for (let i = 0; i < 20_000; i++)
      lines.push(bad.get(i) ?? JSON.stringify({ customerId: `batch_${i}`, channelId: "ch_email", maxOffers: 2 }));
    const res = await batch(`${lines.join("\n")}\n`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("application/x-ndjson");
    // Read as it streams, line by line.
    const out: Record<string, unknown>[] = [];
    let rest = "";
    const decoder = new TextDecoder();
    for await (const chunk of res.body as ReadableStream<Uint8Array>) {
      rest += decoder.decode(chunk, { stream: true });
      const parts = rest.split("\n");
      rest = parts.pop() ?? "";
      for (const p of parts) out.push(JSON.parse(p));
    }
    expect(rest).toBe("");
    expect(out).toHaveLength(20_000);
    for (let i = 0; i < 20_000; i++) {
      const a = out[i] as { customerId?: string; line?: number; error?: { code: string } };
      if (bad.has(i)) {
        expect(a.line).toBe(i + 1);
        expect(a.error?.code).toBe(i === 12_345 ? "NOT_FOUND" : "VALIDATION_ERROR");
      } else expect(a.customerId).toBe(`batch_${i}`);
    }
    const decided = out.filter((a) => Array.isArray(a.recommendations) && (a.recommendations as unknown[]).length > 0);
    expect(decided.length).toBe(20_000 - bad.size);
  }, 180_000);

  test("a batch spends the quota line by line: past it, lines are refused in place", async () => {
    const { createTenantWithKey } = await import("./harness.ts");
    const tenant = "batch_quota";
    const key = await createTenantWithKey(svc, tenant, ["decide", "admin"]);
    await svc.db.sql`update tenants set settings = settings || '{"monthlyDecisionQuota": 5}'::jsonb where id = ${tenant}`;
    // A channel and one offer with a creative, so that answers are not empty.
    const h = authHeaders(key, tenant);
    for (const [path, body] of [
      ["/api/v1/categories", { categoryId: "cat_q", name: "Q" }],
      ["/api/v1/offers", { offerId: "off_q", categoryId: "cat_q", name: "Q" }],
      ["/api/v1/channels", { channelId: "ch_q", name: "Q", type: "email" }],
      ["/api/v1/creatives", { creativeId: "cr_q", offerId: "off_q", channelId: "ch_q", name: "Q", content: { subject: "hi" } }],
      ["/api/v1/decision-flows", { decisionFlowId: "df_q", name: "Q", isDefault: true }],
    ] as const) {
      const r = await postJson(svc.http, path, body, h);
      expect(r.status).toBe(200);
    }
    const flow = await fetch(`${svc.http}/api/v1/decision-flows/df_q`, { headers: h });
    const { version } = (await flow.json()) as { version: number };
    const published = await postJson(svc.http, "/api/v1/decision-flows/df_q/publish", { version }, h);
    expect(published.status).toBe(200);
    const lines = Array.from({ length: 12 }, (_, i) => JSON.stringify({ customerId: `q_${i}`, channelId: "ch_q" }));
    const res = await batch(lines.join("\n"), h);
    const out = (await res.text())
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { recommendations?: unknown[]; error?: { code: string } });
    expect(out).toHaveLength(12);
    // Exactly the quota is answered, the first five lines; the rest are refused in place.
    expect(out.slice(0, 5).every((a) => (a.recommendations?.length ?? 0) > 0)).toBe(true);
    expect(out.slice(5).every((a) => a.error?.code === "QUOTA_EXCEEDED")).toBe(true);
  });

  test("a body that is not NDJSON is refused", async () => {
    const res = await fetch(`${svc.http}/api/v1/recommend/batch`, { method: "POST", headers: authHeaders(), body: "{}" });
    expect(res.status).toBe(400);
  });

  test("gRPC RecommendBatch streams one answer per request, in order, errors in place", async () => {
    const client = createClient(RecommendService, createGrpcTransport({ baseUrl: svc.grpc }));
    const requests = Array.from({ length: 300 }, (_, i) =>
      i === 100 ? { customerId: "", channelId: "ch_email" } : { customerId: `grpc_batch_${i}`, channelId: "ch_email" },
    );
    const seen: number[] = [];
    for await (const a of client.recommendBatch({ requests }, { headers: { "x-tenant-id": "demo", "x-api-key": DEMO_KEY } })) {
      seen.push(a.index);
      if (a.index === 100) expect(a.error?.code).toBe("VALIDATION_ERROR");
      else expect(a.response?.customerId).toBe(`grpc_batch_${a.index}`);
    }
    expect(seen).toEqual(requests.map((_, i) => i));
  });
});

describe("a batch and the recording of its decisions", () => {
  test("a batch larger than the decision buffer waits for the writer: every decision is recorded", async () => {
    const small = await startTestService({ DECISION_BUFFER_SIZE: "100", EVENT_RELAY: "false" });
    try {
      const body = Array.from({ length: 3_000 }, (_, i) =>
        JSON.stringify({ customerId: `rec_${i}`, channelId: "ch_email", maxOffers: 2 }),
      ).join("\n");
      const res = await fetch(`${small.http}/api/v1/recommend/batch`, {
        method: "POST",
        headers: { ...authHeaders(), "content-type": "application/x-ndjson" },
        body,
      });
      const lines = (await res.text())
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l));
      expect(lines).toHaveLength(3_000);
      // Every answer names its recommendations: none was refused by a full buffer.
      const answered = lines.filter((l) => (l.recommendations ?? []).length > 0);
      expect(answered.length).toBe(3_000);
      expect(answered.every((l) => l.recommendations.every((r: Rec) => r.recommendationId))).toBe(true);
      await small.app.deps.decisions.flush();
      const [row] = await small.db.sql`select count(*)::int as n from decisions`;
      expect(row?.n).toBe(3_000);
    } finally {
      await small.stop();
    }
  }, 120_000);
});
