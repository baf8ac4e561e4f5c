// A tenant whose formulas cost more than DECISION_EVALUATION_BUDGET per decision: its decisions still
// answer (formulas past the budget yield null, so conditions fail), and the tenant is named in the
// metrics and the log rather than slowing everyone silently.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { toJson } from "@bufbuild/protobuf";
import { CatalogDocumentSchema } from "../gen/kaireon/v1/catalog_pb.ts";
import { offerWithDefaults } from "../src/decisioning/definitions.ts";
import { catalogDocumentOf } from "../src/services/catalog-document.ts";
import { authHeaders, createTenantWithKey, postJson, startTestService, type TestService } from "./harness.ts";

let svc: TestService;
let headers: Record<string, string>;
// 39 nodes, read per offer (it names the offer's own field).
const CONDITION = Array.from({ length: 10 }, (_, i) => `base_rate > ${i}`).join(" && ");

beforeAll(async () => {
  svc = await startTestService({ DECISION_EVALUATION_BUDGET: "1000" });
  const key = await createTenantWithKey(svc, "heavy");
  headers = authHeaders(key, "heavy");
  const offers = Array.from({ length: 40 }, (_, i) =>
    offerWithDefaults({
      id: `off_${String(i).padStart(2, "0")}`,
      categoryId: "cat",
      name: `Offer ${i}`,
      qualification: { condition: CONDITION },
    }),
  );
  const document = catalogDocumentOf({
    categories: [{ id: "cat", name: "Category", fields: { base_rate: 20 }, computed: { rate: "base_rate * 2" } }],
    offers,
    channels: [{ id: "web", name: "Web", type: "web", implicitImpressions: false }],
    placements: [],
    creatives: offers.map((o) => ({
      id: `cr_${o.id}`,
      offerId: o.id,
      channelId: "web",
      placementId: null,
      name: o.id,
      status: "active",
      content: {},
    })),
    experiments: [],
    flows: [{ id: "df", name: "Flow", isDefault: true, definition: {} }],
  });
  expect((await postJson(svc.http, "/api/v1/catalog/import", toJson(CatalogDocumentSchema, document) as object, headers)).status).toBe(200);
});
afterAll(async () => {
  await svc.stop();
});

describe("the per-decision evaluation budget", () => {
  test("a decision past it still answers, from the offers examined within it, and the tenant is counted", async () => {
    const counted = () => svc.app.deps.metrics.budgetExhausted.get({ tenant: "heavy" });
    expect(counted()).toBe(0);
    const res = await postJson(svc.http, "/api/v1/recommend", { customerId: "c1", channelId: "web", maxOffers: 50, trace: true }, headers);
    expect(res.status).toBe(200);
    // A traced decision computes every offer's `rate` first (3 nodes each, 120), then the remaining 880
    // nodes pay for 22 conditions of 39: the first 22 offers qualify, the rest are refused.
    expect(res.json.recommendations.length).toBe(22);
    // What the customer is shown is complete: the budget bounds the search, not the answer.
    for (const r of res.json.recommendations) expect(r.personalization.rate).toBe(40);
    const trace = await fetch(`${svc.http}/api/v1/decision-traces/${res.json.traceId}`, { headers }).then((r) => r.json());
    const filter = (trace as { stages: { name: string; filtered: string[] }[] }).stages.find((s) => s.name === "filter");
    expect(filter?.filtered).toContain("off_39 (condition_failed: evaluation budget exhausted)");
    expect(counted()).toBe(1);
    expect(await fetch(`${svc.http}/metrics`).then((r) => r.text())).toContain('kaireon_decision_budget_exhausted_total{tenant="heavy"} 1');
    // A decision of another tenant is untouched.
    const demo = await postJson(svc.http, "/api/v1/recommend", { customerId: "cust_12345", channelId: "ch_email" });
    expect(demo.json.recommendations.length).toBeGreaterThan(0);
    expect(svc.app.deps.metrics.budgetExhausted.get({ tenant: "demo" })).toBe(0);
  });
});
