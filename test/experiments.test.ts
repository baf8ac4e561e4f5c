// Experiments end to end: sticky assignment on REST and gRPC, the demo experiment's results, phases when
// weights change, validation, tenancy and scopes, and the sample-ratio-mismatch flag.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { ExperimentService } from "../gen/kaireon/v1/experiment_pb.ts";
import { RecommendService } from "../gen/kaireon/v1/recommend_pb.ts";
import { authHeaders, createTenantWithKey, DEMO_KEY, postJson, startTestService, type TestService } from "./harness.ts";

let svc: TestService;
let acmeKey: string;
let decideOnlyKey: string;
beforeAll(async () => {
  svc = await startTestService();
  acmeKey = await createTenantWithKey(svc, "acme");
  decideOnlyKey = await createTenantWithKey(svc, "demo-decide", ["decide"]);
  // A decide-only key of the demo tenant itself.
  await svc.db.sql`update api_keys set tenant_id = 'demo' where tenant_id = 'demo-decide'`;
});
afterAll(async () => {
  await svc.stop();
});

const getJson = async (path: string, headers = authHeaders()) => {
  const res = await fetch(`${svc.http}${path}`, { headers });
  return { status: res.status, json: (await res.json()) as any };
};
const patchJson = async (path: string, body: unknown, headers = authHeaders()) => {
  const res = await fetch(`${svc.http}${path}`, { method: "PATCH", headers, body: JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as any };
};

describe("assignment", () => {
  test("each customer keeps one variant, the same on REST and gRPC, and the trace records it", async () => {
    const grpc = createClient(RecommendService, createGrpcTransport({ baseUrl: svc.grpc }));
    const seen = new Map<string, number>();
    for (let i = 0; i < 120; i++) {
      const request = { customerId: `cust_ab_${i}`, channelId: "ch_email", placement: "hero_offer", maxOffers: 1 };
      const a = (await postJson(svc.http, "/api/v1/recommend", request)).json.recommendations[0];
      const b = (await postJson(svc.http, "/api/v1/recommend", request)).json.recommendations[0];
      const c = (await grpc.recommend(request, { headers: { "x-tenant-id": "demo", "x-api-key": DEMO_KEY } })).recommendations[0];
      expect(a.offerId).toBe("act_platinum_cc");
      expect(a.experiment.experimentId).toBe("exp_cc_cta_test");
      expect(b.experiment).toEqual(a.experiment);
      expect(b.creativeId).toBe(a.creativeId);
      expect(c?.experiment?.variant).toBe(a.experiment.variant);
      expect(c?.creativeId).toBe(a.creativeId);
      expect(a.experiment.weight).toBe(a.experiment.variant === "control" ? 70 : 30);
      seen.set(a.experiment.variant, (seen.get(a.experiment.variant) ?? 0) + 1);
    }
    expect([...seen.keys()].sort()).toEqual(["control", "variant_a"]);

    const traced = await postJson(svc.http, "/api/v1/recommend", {
      customerId: "cust_ab_1",
      channelId: "ch_email",
      placement: "hero_offer",
      trace: true,
    });
    const trace = await getJson(`/api/v1/decision-traces/${traced.json.traceId}`);
    const rank = trace.json.stages.find((s: { name: string }) => s.name === "rank");
    expect(rank.experiments.act_platinum_cc).toEqual({
      ...traced.json.recommendations[0].experiment,
      creativeId: traced.json.recommendations[0].creativeId,
    });
  });
});

describe("results", () => {
  test("the demo experiment reports its synthetic history with rates, intervals, uplift and tests", async () => {
    const { status, json } = await getJson("/api/v1/experiments/exp_cc_cta_test/results");
    expect(status).toBe(200);
    expect(json).toMatchObject({
      experimentId: "exp_cc_cta_test",
      offerId: "act_platinum_cc",
      channelId: "ch_email",
      status: "running",
      phase: 1,
      goal: "conversion",
    });
    const counts = await svc.db.sql`
      select creative_id, count(*) filter (where outcome_type = 'impression')::int as i, count(*) filter (where outcome_type = 'conversion')::int as c
        from interactions where tenant_id = 'demo' and offer_id = 'act_platinum_cc' group by creative_id`;
    const byCreative = new Map(counts.map((r) => [r.creative_id as string, r]));
    const [control, variant] = json.variants;
    expect(control.variant).toBe("control");
    expect(control.impressions).toBe(byCreative.get("treat_platinum_email")?.i);
    expect(control.conversions).toBe(byCreative.get("treat_platinum_email")?.c);
    expect(variant.impressions).toBe(byCreative.get("treat_platinum_email_variant_a")?.i);
    expect(control.impressions + variant.impressions).toBe(2000);
    expect(variant.conversionRate).toBeCloseTo(variant.conversions / variant.impressions, 12);
    expect(variant.confidenceInterval.low).toBeLessThan(variant.conversionRate);
    expect(variant.confidenceInterval.high).toBeGreaterThan(variant.conversionRate);
    expect(variant.uplift).toBeCloseTo((variant.conversionRate / control.conversionRate - 1) * 100, 9);
    expect(typeof variant.zScore).toBe("number");
    expect(typeof variant.pValue).toBe("number");
    expect(control).not.toHaveProperty("uplift");
    expect(json.sampleRatio.degreesOfFreedom).toBe(1);
    expect(json.sampleRatio.mismatch).toBe(false);
  });

  test("the same results over gRPC", async () => {
    const client = createClient(ExperimentService, createGrpcTransport({ baseUrl: svc.grpc }));
    const res = await client.getExperimentResults(
      { experimentId: "exp_cc_cta_test" },
      { headers: { "x-tenant-id": "demo", "x-api-key": DEMO_KEY } },
    );
    const rest = (await getJson("/api/v1/experiments/exp_cc_cta_test/results")).json;
    expect(res.variants.map((v) => [v.variant, v.impressions, v.conversions, v.pValue])).toEqual(
      rest.variants.map((v: { variant: string; impressions: number; conversions: number; pValue: number }) => [
        v.variant,
        v.impressions,
        v.conversions,
        v.pValue,
      ]),
    );
    expect(res.sampleRatio?.pValue).toBe(rest.sampleRatio.pValue);
    const denied = await client
      .getExperimentResults({ experimentId: "exp_cc_cta_test" }, { headers: { "x-tenant-id": "demo", "x-api-key": decideOnlyKey } })
      .then(
        () => null,
        (e: unknown) => ConnectError.from(e).code,
      );
    expect(denied).toBe(Code.PermissionDenied);
  });

  test("another tenant's experiment is 404, a decide-only key is 403, a bad phase is 400", async () => {
    expect((await getJson("/api/v1/experiments/exp_cc_cta_test/results", authHeaders(acmeKey, "acme"))).status).toBe(404);
    expect((await getJson("/api/v1/experiments/nope/results")).status).toBe(404);
    expect((await getJson("/api/v1/experiments/exp_cc_cta_test/results", authHeaders(decideOnlyKey, "demo"))).status).toBe(403);
    const bad = await getJson("/api/v1/experiments/exp_cc_cta_test/results?phase=zero");
    expect(bad.status).toBe(400);
    expect(bad.json.details[0].field).toBe("phase");
    expect((await getJson("/api/v1/experiments/exp_cc_cta_test/results?phase=9")).status).toBe(404);
  });
});

describe("lifecycle", () => {
  test("invalid weights are a 400 naming the field; nothing is created", async () => {
    const res = await postJson(svc.http, "/api/v1/experiments", {
      experimentId: "exp_bad",
      offerId: "act_cashback",
      channelId: "ch_web",
      variants: [
        { variant: "control", creativeId: "treat_cashback_web", weight: 60 },
        { variant: "b", creativeId: "treat_cashback_web", weight: 60.5 },
      ],
    });
    expect(res.status).toBe(400);
    expect(res.json.details).toEqual([{ field: "variants[1].weight", message: "variants[1].weight must be a whole number" }]);
    const twice = await postJson(svc.http, "/api/v1/experiments", {
      experimentId: "exp_bad",
      offerId: "act_cashback",
      channelId: "ch_web",
      variants: [
        { variant: "control", creativeId: "treat_cashback_web", weight: 60 },
        { variant: "b", creativeId: "treat_cashback_web", weight: 140 },
      ],
    });
    expect(twice.status).toBe(400);
    expect(twice.json.details.map((d: { field: string }) => d.field).sort()).toEqual([
      "variants",
      "variants[1].creativeId",
      "variants[1].weight",
    ]);
    expect((await svc.db.sql`select 1 from experiments where id = 'exp_bad'`).length).toBe(0);
    const sum = await postJson(svc.http, "/api/v1/experiments", {
      experimentId: "exp_bad",
      offerId: "act_cashback",
      channelId: "ch_web",
      variants: [
        { variant: "control", creativeId: "treat_cashback_web", weight: 60 },
        { variant: "b", creativeId: "treat_cashback_web_b", weight: 30 },
      ],
    });
    expect(sum.status).toBe(400);
    expect(sum.json.details).toContainEqual({ field: "variants", message: "variant weights must sum to 100, not 90" });
  });

  test("counts come from Respond; changing the weights of a running experiment starts a new phase", async () => {
    await svc.db.sql`insert into creatives (tenant_id, id, offer_id, channel_id, name, content)
      values ('demo', 'treat_cashback_web_b', 'act_cashback', 'ch_web', 'b', ${svc.db.sql.json({ headline: "B {{offer.name}}" })})`;
    svc.app.deps.catalogs.invalidate("demo");
    const created = await postJson(svc.http, "/api/v1/experiments", {
      experimentId: "exp_web_cashback",
      offerId: "act_cashback",
      channelId: "ch_web",
      status: "running",
      variants: [
        { variant: "control", creativeId: "treat_cashback_web", weight: 50 },
        { variant: "headline_b", creativeId: "treat_cashback_web_b", weight: 50 },
      ],
    });
    expect(created.status).toBe(200);
    expect(created.json).toMatchObject({ experimentId: "exp_web_cashback", status: "running", phase: 1 });

    const respond = (creativeId: string, outcomeType: string, i: number) =>
      postJson(svc.http, "/api/v1/respond", {
        customerId: `cust_w_${i}`,
        offerId: "act_cashback",
        channelId: "ch_web",
        creativeId,
        outcomeType,
      });
    for (let i = 0; i < 10; i++) expect((await respond("treat_cashback_web", "impression", i)).status).toBe(200);
    for (let i = 0; i < 8; i++) expect((await respond("treat_cashback_web_b", "impression", i)).status).toBe(200);
    for (let i = 0; i < 2; i++) await respond("treat_cashback_web", "conversion", i);
    for (let i = 0; i < 4; i++) await respond("treat_cashback_web_b", "conversion", i);
    await respond("treat_cashback_web_b", "click", 99);

    const phase1 = await getJson("/api/v1/experiments/exp_web_cashback/results");
    expect(phase1.json.variants.map((v: { impressions: number; conversions: number }) => [v.impressions, v.conversions])).toEqual([
      [10, 2],
      [8, 4],
    ]);
    expect(phase1.json.variants[1].uplift).toBeCloseTo(150, 9);

    // A change names the version it was made against; an old one is refused.
    const stale = await patchJson("/api/v1/experiments/exp_web_cashback", { status: "stopped", version: created.json.version + 1 });
    expect(stale.status).toBe(409);
    const reweighted = await patchJson("/api/v1/experiments/exp_web_cashback", {
      version: created.json.version,
      variants: [
        { variant: "control", creativeId: "treat_cashback_web", weight: 20 },
        { variant: "headline_b", creativeId: "treat_cashback_web_b", weight: 80 },
      ],
    });
    expect(reweighted.status).toBe(200);
    expect(reweighted.json.phase).toBe(2);
    const phase2 = await getJson("/api/v1/experiments/exp_web_cashback/results");
    expect(phase2.json.phase).toBe(2);
    expect(phase2.json.variants.map((v: { impressions: number }) => v.impressions)).toEqual([0, 0]);
    expect(phase2.json.variants[0].conversionRate).toBeUndefined();
    expect(phase2.json).not.toHaveProperty("sampleRatio");
    const again = await getJson("/api/v1/experiments/exp_web_cashback/results?phase=1");
    expect(again.json.variants.map((v: { impressions: number }) => v.impressions)).toEqual([10, 8]);

    // The new split is what Recommend uses.
    const rec = await postJson(svc.http, "/api/v1/recommend", { customerId: "cust_w_1", channelId: "ch_web", maxOffers: 50 });
    const cashback = rec.json.recommendations.find((r: { offerId: string }) => r.offerId === "act_cashback");
    expect(cashback.experiment.experimentId).toBe("exp_web_cashback");
    expect([20, 80]).toContain(cashback.experiment.weight);

    const stopped = await patchJson("/api/v1/experiments/exp_web_cashback", { status: "stopped", version: reweighted.json.version });
    expect(stopped.json.status).toBe("stopped");
    expect(stopped.json.phase).toBe(2);
    const bogus = await patchJson("/api/v1/experiments/exp_web_cashback", { status: "paused", version: stopped.json.version });
    expect(bogus.status).toBe(400);
    expect(bogus.json.details[0].field).toBe("status");
  });

  test("a 50/50 split observed as 5,000 vs 4,600 impressions is flagged as a sample ratio mismatch", async () => {
    await svc.db.sql`insert into creatives (tenant_id, id, offer_id, channel_id, name, content)
      values ('demo', 'treat_savings_web_b', 'act_hy_savings', 'ch_web', 'b', ${svc.db.sql.json({ headline: "B" })})`;
    svc.app.deps.catalogs.invalidate("demo");
    const created = await postJson(svc.http, "/api/v1/experiments", {
      experimentId: "exp_srm",
      offerId: "act_hy_savings",
      channelId: "ch_web",
      status: "running",
      variants: [
        { variant: "control", creativeId: "treat_hy_savings_web", weight: 50 },
        { variant: "b", creativeId: "treat_savings_web_b", weight: 50 },
      ],
    });
    expect(created.status).toBe(200);
    await svc.db.sql`
      insert into interactions (tenant_id, id, customer_id, offer_id, channel_id, creative_id, outcome_type, recorded_at)
      select 'demo', 'srm_' || g, 'c' || g, 'act_hy_savings', 'ch_web',
             case when g <= 5000 then 'treat_hy_savings_web' else 'treat_savings_web_b' end, 'impression', now()
        from generate_series(1, 9600) g`;
    const { json } = await getJson("/api/v1/experiments/exp_srm/results");
    expect(json.variants.map((v: { impressions: number }) => v.impressions)).toEqual([5000, 4600]);
    expect(json.sampleRatio.mismatch).toBe(true);
    expect(json.sampleRatio.pValue).toBeLessThan(0.001);
    // A second running experiment on the same offer and channel is refused.
    const clash = await postJson(svc.http, "/api/v1/experiments", {
      experimentId: "exp_srm_2",
      offerId: "act_hy_savings",
      channelId: "ch_web",
      status: "running",
      variants: [
        { variant: "control", creativeId: "treat_hy_savings_web", weight: 50 },
        { variant: "b", creativeId: "treat_savings_web_b", weight: 50 },
      ],
    });
    expect(clash.status).toBe(409);
  });
});
