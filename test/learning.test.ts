// Adaptive propensity end to end: synthetic customers respond to three offers at their true click rates
// through the API, and Thompson sampling learns to show the best one.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { offerWithDefaults } from "../src/decisioning/definitions.ts";
import { toJson } from "@bufbuild/protobuf";
import { CatalogDocumentSchema } from "../gen/kaireon/v1/catalog_pb.ts";
import { catalogDocumentOf } from "../src/services/catalog-document.ts";
import { authHeaders, createTenantWithKey, postJson, runCli, startTestService, type TestService, waitFor } from "./harness.ts";
import { seededRandom } from "../src/random.ts";

let svc: TestService;
let headers: Record<string, string>;
const TRUE_RATES: Record<string, number> = { offer_low: 0.02, offer_mid: 0.05, offer_high: 0.1 };

beforeAll(async () => {
  svc = await startTestService();
  const key = await createTenantWithKey(svc, "sim");
  headers = authHeaders(key, "sim");
  const offers = Object.keys(TRUE_RATES).map((id) =>
    offerWithDefaults({ id, categoryId: "cat_sim", name: id, priority: 50, businessValue: 100 }),
  );
  const document = catalogDocumentOf({
    categories: [{ id: "cat_sim", name: "Simulated", fields: {}, computed: {} }],
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
      content: { text: "{{offer.name}}" },
    })),
    experiments: [],
    flows: [{ id: "df_sim", name: "Simulation", isDefault: true, definition: { score: { propensity: "thompson", priorWeight: 10 } } }],
  });
  const imported = await postJson(svc.http, "/api/v1/catalog/import", toJson(CatalogDocumentSchema, document) as object, headers);
  expect(imported.status).toBe(200);
});
afterAll(async () => {
  await svc.stop();
});

describe("Thompson sampling", () => {
  test("after 5,000 decisions the 10% offer is shown in at least 70% of the last 1,000", async () => {
    const customers = seededRandom(7);
    const shown: string[] = new Array(5000);
    let next = 0;
    // Eight customers at a time, like a small live channel.
    const worker = async () => {
      for (let i = next++; i < 5000; i = next++) {
        const customerId = `sim_${i}`;
        const rec = await postJson(svc.http, "/api/v1/recommend", { customerId, channelId: "web", maxOffers: 1 }, headers);
        expect(rec.status).toBe(200);
        const offerId = rec.json.recommendations[0].offerId as string;
        shown[i] = offerId;
        const base = { customerId, offerId, channelId: "web" };
        expect((await postJson(svc.http, "/api/v1/respond", { ...base, outcomeType: "impression" }, headers)).status).toBe(200);
        if (customers() < (TRUE_RATES[offerId] as number)) {
          expect((await postJson(svc.http, "/api/v1/respond", { ...base, outcomeType: "click" }, headers)).status).toBe(200);
        }
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    const last = shown.slice(4000);
    const high = last.filter((o) => o === "offer_high").length;
    if (high < 700) {
      // Seen once in CI (4 of 1,000) and not since: what was shown per thousand, and what was learned.
      const perThousand = [0, 1, 2, 3, 4].map((k) =>
        Object.fromEntries(Object.keys(TRUE_RATES).map((id) => [id, shown.slice(k * 1000, k * 1000 + 1000).filter((o) => o === id).length])),
      );
      const learned = await svc.db.sql`select offer_id, impressions, clicks from offer_channel_stats where tenant_id = 'sim'`;
      console.log("shown per thousand decisions:", JSON.stringify(perThousand), "learned:", JSON.stringify(learned));
    }
    expect(high).toBeGreaterThanOrEqual(700);
    // Every offer was explored early on.
    expect(new Set(shown.slice(0, 500)).size).toBe(3);
    const stats = await svc.db.sql`select sum(impressions)::int as n from offer_channel_stats where tenant_id = 'sim'`;
    expect(stats[0]?.n).toBe(5000);
  }, 120_000);
});

describe("tenant outcome types", () => {
  test("a registered positive outcome is accepted by Respond and raises propensity like a click", async () => {
    const body = { customerId: "sim_x", offerId: "offer_low", channelId: "web", outcomeType: "purchase" };
    const refused = await postJson(svc.http, "/api/v1/respond", body, headers);
    expect(refused.status).toBe(400);
    expect(refused.json.details[0].field).toBe("outcomeType");

    const added = await runCli(svc, "outcomes", "add", "sim", "purchase", "--class", "positive");
    expect(added.code).toBe(0);
    expect((await runCli(svc, "outcomes", "add", "sim", "click", "--class", "negative")).code).toBe(2);
    const before = svc.app.deps.propensity.peek("sim")?.posterior("offer_low", "cat_sim", "web", 10).mean ?? 0;
    const accepted = await waitFor(async () => {
      const res = await postJson(svc.http, "/api/v1/respond", body, headers);
      return res.status === 200 ? res : null;
    }, 2000);
    expect(accepted.json.outcomeType).toBe("purchase");
    const after = svc.app.deps.propensity.peek("sim")?.posterior("offer_low", "cat_sim", "web", 10).mean ?? 0;
    expect(after).toBeGreaterThan(before);
    const listed = await runCli(svc, "outcomes", "list", "sim");
    expect(listed.stdout).toContain("purchase\tpositive\tregistered");
  }, 60_000);
});
