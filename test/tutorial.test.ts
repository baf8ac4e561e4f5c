// The API tutorial's three calls, verbatim, against the demo tenant on the real PostgreSQL.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { toJson } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { DecisionTraceService, FilterReason, TraceStageSchema } from "../gen/kaireon/v1/decision_trace_pb.ts";
import { maintainPartitions } from "../src/store/partitions.ts";
import {
  authHeaders,
  createTenantWithKey,
  postJson,
  startTestService,
  type TestService,
  TUTORIAL_RECOMMEND,
  TUTORIAL_RESPOND,
} from "./harness.ts";

let svc: TestService;
beforeAll(async () => {
  svc = await startTestService();
});
afterAll(async () => {
  await svc.stop();
});

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

async function getTrace(traceId: string, headers = authHeaders()) {
  const res = await fetch(`${svc.http}/api/v1/decision-traces/${traceId}`, { headers });
  return { status: res.status, json: (await res.json()) as any };
}

describe("Recommend", () => {
  test("the tutorial body answers with the Platinum card, then Cash Back, addressed to Sarah", async () => {
    const res = await postJson(svc.http, "/api/v1/recommend", TUTORIAL_RECOMMEND);
    expect(res.status).toBe(200);
    expect(res.headers.get("x-request-id")).toBeTruthy();
    const body = res.json;
    expect(body.customerId).toBe("cust_12345");
    expect(body.decisionFlowId).toBe("df_credit_cards");
    expect(body.traceId).toMatch(/^trace_[0-9A-Za-z]{20}$/);
    expect(body.processedAt).toMatch(RFC3339);
    expect(Math.abs(Date.parse(body.processedAt) - Date.now())).toBeLessThan(60_000);

    const [first, second, ...rest] = body.recommendations;
    expect(rest).toEqual([]);
    expect(first.offerId).toBe("act_platinum_cc");
    expect(first.offerName).toBe("Platinum Rewards Card");
    expect(first.categoryId).toBe("cat_credit_cards");
    expect(first.rank).toBe(1);
    expect(first.channelId).toBe("ch_email");
    expect(first.creativeId).toBe("treat_platinum_email");
    expect(first.content).toEqual({
      subject: "You're invited, Sarah - Earn 3x Rewards",
      headline: "Platinum Rewards Card",
      body: "Start earning 3x points with a personalized rate of 17.49% APR.",
      ctaText: "Apply Now",
      ctaUrl: "https://example.com/apply/platinum",
    });
    expect(first.personalization).toEqual({ personalized_rate: 17.49, annual_fee_waiver: true });

    expect(second.offerId).toBe("act_cashback");
    expect(second.rank).toBe(2);
    expect(second.creativeId).toBe("treat_cashback_email");
    expect(second.content.subject).toBe("Sarah, get 2% cash back on everything");
    expect(second.personalization).toEqual({ personalized_rate: 18.24 });
    expect(first.score).toBeGreaterThan(second.score);
    expect(second.score).toBeGreaterThan(0);
    expect(first.score).toBeLessThanOrEqual(1);
  });

  test("every field of the answer is present even when empty", async () => {
    const res = await postJson(svc.http, "/api/v1/recommend", { customerId: "nobody", channelId: "ch_sms", placement: "", attributes: {} });
    expect(res.status).toBe(200);
    for (const r of res.json.recommendations) {
      for (const k of ["offerId", "offerName", "categoryId", "rank", "score", "channelId", "creativeId", "content", "personalization"]) {
        expect(r).toHaveProperty(k);
      }
    }
    expect(res.json).not.toHaveProperty("traceId");
  });

  test("an unknown customer is decided on request attributes alone", async () => {
    const res = await postJson(svc.http, "/api/v1/recommend", {
      customerId: "cust_unknown_1",
      channelId: "ch_email",
      placement: "hero_offer",
    });
    expect(res.status).toBe(200);
    const ids = res.json.recommendations.map((r: any) => r.offerId);
    expect(ids).toEqual(["act_platinum_cc", "act_cashback"]);
    // No profile: the template fallback greets, and no loyalty discount applies.
    expect(res.json.recommendations[1].content.subject).toBe("Hi, get 2% cash back on everything");
    expect(res.json.recommendations[1].personalization.personalized_rate).toBe(20.74);
  });

  test("a channel without eligible offers answers an empty list, not an error", async () => {
    await svc.db.sql`insert into channels (tenant_id, id, name) values ('demo', 'ch_push', 'Push')`;
    svc.app.deps.catalogs.invalidate("demo");
    const res = await postJson(svc.http, "/api/v1/recommend", { customerId: "cust_12345", channelId: "ch_push" });
    expect(res.status).toBe(200);
    expect(res.json.recommendations).toEqual([]);
    const footer = await postJson(svc.http, "/api/v1/recommend", { customerId: "cust_12345", channelId: "ch_email", placement: "footer" });
    expect(footer.json.recommendations.map((r: any) => r.offerId)).toEqual(["act_hy_savings"]);
    expect(footer.json.recommendations[0].content.body).toBe("Earn 4.1% APY.");
  });
});

describe("Decision traces", () => {
  test("the trace of the tutorial call has the five stages with the tutorial's fields", async () => {
    const rec = await postJson(svc.http, "/api/v1/recommend", TUTORIAL_RECOMMEND);
    const { status, json: trace } = await getTrace(rec.json.traceId);
    expect(status).toBe(200);
    expect(trace.traceId).toBe(rec.json.traceId);
    expect(trace.customerId).toBe("cust_12345");
    expect(trace.decisionFlowId).toBe("df_credit_cards");
    expect(trace.processedAt).toBe(rec.json.processedAt);
    expect(typeof trace.totalDuration).toBe("number");
    expect(trace.stages.map((s: any) => s.name)).toEqual(["enrich", "compute", "filter", "score", "rank"]);
    const [enrich, compute, filter, score, rank] = trace.stages;
    for (const s of trace.stages) expect(typeof s.duration).toBe("number");
    expect(enrich.input).toEqual({ customerId: "cust_12345" });
    expect(enrich.output["customer.loyalty_score"]).toBe(85);
    expect(enrich.output["customer.credit_score"]).toBe(720);
    expect(compute.computed.act_platinum_cc.personalized_rate).toBe(17.49);
    expect(compute.computed.act_cashback.personalized_rate).toBe(18.24);
    expect(filter.candidatesIn).toBe(15);
    expect(filter.candidatesOut).toBe(2);
    expect(filter.filtered).toContain("act_home_loan (segment_required)");
    expect(filter.filtered).toContain("act_auto_loan (propensity < 0.55)");
    // The same drops, typed: one per entry, in the same order.
    expect(filter.drops.length).toBe(filter.filtered.length);
    expect(filter.drops).toContainEqual({
      offerId: "act_home_loan",
      reason: "FILTER_REASON_SEGMENT_REQUIRED",
      detail: "segment_required",
      ruleId: "",
    });
    expect(filter.drops).toContainEqual({
      offerId: "act_auto_loan",
      reason: "FILTER_REASON_PROPENSITY_BELOW_MINIMUM",
      detail: "propensity < 0.55",
      ruleId: "",
    });
    expect(Object.keys(score.scores).sort()).toEqual(["act_cashback", "act_platinum_cc"]);
    expect(score.scores.act_platinum_cc).toBe(rec.json.recommendations[0].score);
    expect(rank.finalOrder).toEqual(["act_platinum_cc", "act_cashback"]);
    // Each stage carries only its own fields.
    expect(enrich).not.toHaveProperty("filtered");
    expect(rank).not.toHaveProperty("scores");
  });

  test("over gRPC each stage is a message of its own kind; REST writes its fields beside name and duration", async () => {
    const rec = await postJson(svc.http, "/api/v1/recommend", TUTORIAL_RECOMMEND);
    const client = createClient(DecisionTraceService, createGrpcTransport({ baseUrl: svc.grpc }));
    const { trace } = await client.getDecisionTrace({ traceId: rec.json.traceId }, { headers: authHeaders() });
    const stages = trace?.stages ?? [];
    expect(stages.map((s) => s.detail.case)).toEqual(["enrich", "compute", "filter", "score", "rank"]);
    for (const s of stages) expect(s.detail.case).toBe(s.name as NonNullable<typeof s.detail.case>);
    const filter = stages.find((s) => s.detail.case === "filter")?.detail;
    if (filter?.case !== "filter") throw new Error("no filter stage");
    expect(filter.value.candidatesIn).toBe(15);
    expect(filter.value.drops.find((d) => d.offerId === "act_home_loan")?.reason).toBe(FilterReason.SEGMENT_REQUIRED);
    const rank = stages.find((s) => s.detail.case === "rank")?.detail;
    expect(rank?.case === "rank" && rank.value.finalOrder).toEqual(["act_platinum_cc", "act_cashback"]);

    // REST: the same stages, each with exactly the fields of its message beside name, duration and placement.
    const { json } = await getTrace(rec.json.traceId);
    const own = ["duration", "name", "placement"];
    expect(json.stages.map((s: Record<string, unknown>) => Object.keys(s).sort())).toEqual([
      [...own, "input", "output"].sort(),
      [...own, "computed"].sort(),
      [...own, "candidatesIn", "candidatesOut", "drops", "filtered"].sort(),
      [...own, "factors", "scores"].sort(),
      [...own, "experiments", "finalOrder"].sort(),
    ]);
    for (const [i, s] of stages.entries()) {
      const detail = toJson(TraceStageSchema, s, { alwaysEmitImplicit: true }) as Record<string, Record<string, unknown>>;
      expect(json.stages[i]).toMatchObject(detail[s.name] ?? { missing: s.name });
    }
  });

  test("a trace stored before stages had messages of their own reads back typed, over REST and gRPC", async () => {
    // The shape an earlier version stored: every stage's fields beside its name.
    const traceId = "trace_storedflat0000000000001";
    const body = {
      traceId,
      customerId: "cust_12345",
      decisionFlowId: "df_credit_cards",
      decisionFlowVersion: 1,
      channelId: "ch_email",
      totalDuration: 1.5,
      processedAt: "2026-11-30T10:00:00Z",
      stages: [
        { name: "enrich", duration: 0.2, input: { customerId: "cust_12345" }, output: { "customer.loyalty_score": 85 } },
        { name: "compute", duration: 0.1, computed: { act_cashback: { personalized_rate: 18.24 } } },
        {
          name: "filter",
          duration: 0.3,
          candidatesIn: 15,
          candidatesOut: 1,
          filtered: ["act_home_loan (segment_required)"],
          drops: [{ offerId: "act_home_loan", reason: "FILTER_REASON_SEGMENT_REQUIRED", detail: "segment_required" }],
        },
        { name: "score", duration: 0.1, scores: { act_cashback: 0.74 }, factors: { act_cashback: { propensity: 0.3 } } },
        { name: "rank", duration: 0.1, finalOrder: ["act_cashback"] },
      ],
    };
    await svc.db.sql`insert into decision_traces (tenant_id, trace_id, customer_id, decision_flow_id, body, expires_at)
                     values ('demo', ${traceId}, 'cust_12345', 'df_credit_cards', ${svc.db.sql.json(body)}, now() + interval '1 day')`;
    const client = createClient(DecisionTraceService, createGrpcTransport({ baseUrl: svc.grpc }));
    const { trace } = await client.getDecisionTrace({ traceId }, { headers: authHeaders() });
    const detail = Object.fromEntries((trace?.stages ?? []).map((s) => [s.name, s.detail]));
    expect(detail.enrich).toMatchObject({ case: "enrich", value: { input: { customerId: "cust_12345" } } });
    expect(detail.filter).toMatchObject({ case: "filter", value: { candidatesIn: 15, candidatesOut: 1 } });
    expect(detail.filter?.case === "filter" && detail.filter.value.drops[0]?.reason).toBe(FilterReason.SEGMENT_REQUIRED);
    expect(detail.score).toMatchObject({ case: "score", value: { scores: { act_cashback: 0.74 } } });
    expect(detail.rank).toMatchObject({ case: "rank", value: { finalOrder: ["act_cashback"] } });
    const { status, json } = await getTrace(traceId);
    expect(status).toBe(200);
    expect(json.stages[2]).toMatchObject({
      name: "filter",
      candidatesIn: 15,
      candidatesOut: 1,
      filtered: ["act_home_loan (segment_required)"],
    });
    expect(json.stages[4]).toMatchObject({ name: "rank", finalOrder: ["act_cashback"] });
  });

  test("another tenant's key gets 404 for the trace, like a missing one", async () => {
    const rec = await postJson(svc.http, "/api/v1/recommend", TUTORIAL_RECOMMEND);
    const otherKey = await createTenantWithKey(svc, "acme");
    const other = await getTrace(rec.json.traceId, authHeaders(otherKey, "acme"));
    expect(other.status).toBe(404);
    expect(other.json.code).toBe("NOT_FOUND");
    const missing = await getTrace("trace_doesnotexist00000000");
    expect(missing.status).toBe(404);
    expect(missing.json.error).toBe(other.json.error);
  });

  test("a returned trace id is readable from the database within one second", async () => {
    const rec = await postJson(svc.http, "/api/v1/recommend", TUTORIAL_RECOMMEND);
    await Bun.sleep(1000);
    const rows = await svc.db.sql`select body from decision_traces where tenant_id = 'demo' and trace_id = ${rec.json.traceId}`;
    expect(rows.length).toBe(1);
  });
});

describe("Trace retention", () => {
  test("an expired trace answers 404 and is removed by partition maintenance", async () => {
    const rec = await postJson(svc.http, "/api/v1/recommend", TUTORIAL_RECOMMEND);
    await svc.app.deps.traces.flush();
    // The round of maintenance the service started with may be moving rows out of the default partition;
    // an update racing that move would find its row gone.
    await svc.app.maintenanceIdle();
    expect((await getTrace(rec.json.traceId)).status).toBe(200);
    // Expired yesterday: reads stop at once; the row is gone once maintenance has run (a trace expiring
    // today goes with its whole day's partition tomorrow).
    const moved = await svc.db
      .sql`update decision_traces set expires_at = now() - interval '1 day' where trace_id = ${rec.json.traceId} returning 1`;
    expect(moved.length).toBe(1);
    expect((await getTrace(rec.json.traceId)).status).toBe(404);
    const report = await maintainPartitions(svc.app.deps.db, {
      now: new Date(),
      interactionRetentionMonths: null,
      traceRetentionDays: 30,
      holder: "tutorial-test",
    });
    expect(report.ran).toBe(true);
    expect(report.rowsDeleted + report.partitionsDropped).toBeGreaterThanOrEqual(1);
    const left = await svc.db.sql`select 1 from decision_traces where trace_id = ${rec.json.traceId}`;
    expect(left.length).toBe(0);
  });
});

describe("Respond", () => {
  test("the tutorial body answers 200 with an int_ id, and the row is committed when the answer arrives", async () => {
    const res = await postJson(svc.http, "/api/v1/respond", TUTORIAL_RESPOND);
    expect(res.status).toBe(200);
    expect(res.json.id).toMatch(/^int_[0-9A-Za-z]{20}$/);
    expect(res.json).toMatchObject({
      customerId: "cust_12345",
      offerId: "act_platinum_cc",
      channelId: "ch_email",
      outcomeType: "click",
      creativeId: "treat_platinum_email",
      traceId: "trace_abc123",
    });
    expect(res.json.recordedAt).toMatch(RFC3339);
    const rows = await svc.db
      .sql`select customer_id, offer_id, outcome_type, metadata from interactions where tenant_id = 'demo' and id = ${res.json.id}`;
    expect(rows.length).toBe(1);
    expect(rows[0]?.outcome_type).toBe("click");
    expect(rows[0]?.metadata).toEqual({ clickPosition: "hero_banner", deviceType: "mobile" });
  });

  test("an unknown offer or channel is 404, an unknown outcome type is 400", async () => {
    const body = JSON.parse(TUTORIAL_RESPOND);
    const offer = await postJson(svc.http, "/api/v1/respond", { ...body, offerId: "act_nope" });
    expect(offer.status).toBe(404);
    const channel = await postJson(svc.http, "/api/v1/respond", { ...body, channelId: "ch_fax" });
    expect(channel.status).toBe(404);
    const outcome = await postJson(svc.http, "/api/v1/respond", { ...body, outcomeType: "teleport" });
    expect(outcome.status).toBe(400);
    expect(outcome.json.details).toEqual([{ field: "outcomeType", message: expect.stringContaining("impression") }]);
  });

  test("after many clicks on an offer its score in later traces rises", async () => {
    const request = { customerId: "cust_10007", channelId: "ch_web", trace: true, maxOffers: 10 };
    const scoreOf = async () => {
      const rec = await postJson(svc.http, "/api/v1/recommend", request);
      const { json: trace } = await getTrace(rec.json.traceId);
      return trace.stages.find((s: any) => s.name === "score").scores.act_travel_insurance as number;
    };
    const before = await scoreOf();
    for (let i = 0; i < 30; i++) {
      const r = await postJson(svc.http, "/api/v1/respond", {
        customerId: `cust_${10100 + i}`,
        offerId: "act_travel_insurance",
        channelId: "ch_web",
        outcomeType: "click",
      });
      expect(r.status).toBe(200);
    }
    const after = await scoreOf();
    expect(after).toBeGreaterThan(before);
    const counters = await svc.db
      .sql`select clicks::int as clicks from offer_channel_stats where tenant_id = 'demo' and offer_id = 'act_travel_insurance' and channel_id = 'ch_web'`;
    expect(counters[0]?.clicks).toBe(30);
  });
});
