import { describe, expect, test } from "bun:test";
import { compileCatalog } from "./catalog.ts";
import { type CatalogDefinition, type OfferDef, offerWithDefaults } from "./definitions.ts";
import { decide, type DecisionInput } from "./engine.ts";
import { PropensityModel } from "./propensity.ts";

function offer(o: Partial<OfferDef> & Pick<OfferDef, "id">): OfferDef {
  return offerWithDefaults({ categoryId: "cat_a", name: o.id, ...o });
}

function catalogOf(offers: OfferDef[], extra: Partial<CatalogDefinition> = {}) {
  return compileCatalog({
    categories: [
      { id: "cat_a", name: "A", fields: { base: 10 }, computed: { doubled: "base * 2" } },
      { id: "cat_b", name: "B", fields: {}, computed: {} },
    ],
    offers,
    channels: [{ id: "web", name: "Web", type: "web", implicitImpressions: false }],
    placements: [{ channelId: "web", id: "hero", name: "Hero" }],
    creatives: offers.map((o) => ({
      id: `cr_${o.id}`,
      offerId: o.id,
      channelId: "web",
      placementId: null,
      name: o.id,
      status: "active" as const,
      content: { text: 'Hi {{customer.name | "there"}}, {{offer.name}} at {{doubled}}' },
    })),
    experiments: [],
    flows: [{ id: "f", name: "f", isDefault: true, version: 1, definition: {} }],
    ...extra,
  });
}

function input(catalog: ReturnType<typeof compileCatalog>, over: Partial<DecisionInput> = {}): DecisionInput {
  return {
    catalog,
    flow: catalog.flows.get("f") as NonNullable<ReturnType<typeof catalog.flows.get>>,
    customerId: "c1",
    channelId: "web",
    placement: "",
    maxOffers: 5,
    attributes: {},
    profile: { attributes: { name: "Ana" }, segments: [] },
    propensity: new PropensityModel([]),
    now: new Date("2026-06-01T00:00:00Z"),
    random: Math.random,
    explain: true,
    ...over,
  };
}

const ids = (d: ReturnType<typeof decide>) => d.recommendations.map((r) => r.offer.def.id);

describe("decide", () => {
  test("ranks by PRIE score, breaks ties by offer id, and stops at maxOffers", () => {
    const catalog = catalogOf([
      offer({ id: "b", priority: 80 }),
      offer({ id: "a", priority: 80 }),
      offer({ id: "c", priority: 90 }),
      offer({ id: "d", priority: 10 }),
    ]);
    const d = decide(input(catalog, { maxOffers: 3 }));
    expect(ids(d)).toEqual(["c", "a", "b"]);
    expect(d.recommendations.map((r) => r.rank)).toEqual([1, 2, 3]);
    // P=0.5 (no evidence), R=1, I=1, E=0.9 with the default weights 0.4/0.2/0.3/0.1.
    expect(d.recommendations[0]?.score).toBeCloseTo(0.5 ** 0.4 * 0.9 ** 0.1, 4);
  });

  test("computes category formulas per offer and renders content with them", () => {
    const catalog = catalogOf([offer({ id: "a", fields: { base: 21 } })]);
    const [rec] = decide(input(catalog)).recommendations;
    expect(rec?.personalization).toEqual({ doubled: 42 });
    expect(rec?.content).toEqual({ text: "Hi Ana, a at 42" });
    const anonymous = decide(input(catalog, { profile: { attributes: {}, segments: [] } })).recommendations[0];
    expect(anonymous?.content.text).toBe("Hi there, a at 42");
  });

  test("filters on schedule, status, segment, condition and propensity threshold, with reasons", () => {
    const catalog = catalogOf([
      offer({ id: "expired", endsAt: new Date("2026-01-01T00:00:00Z") }),
      offer({ id: "future", startsAt: new Date("2027-01-01T00:00:00Z") }),
      offer({ id: "off", status: "inactive" }),
      offer({ id: "seg", qualification: { segment: "vip" } }),
      offer({ id: "cond", qualification: { condition: "customer.age >= 18" } }),
      offer({ id: "prop", qualification: { minPropensity: 0.6 } }),
      offer({ id: "ok" }),
    ]);
    const d = decide(input(catalog));
    expect(ids(d)).toEqual(["ok"]);
    const filter = d.stages.find((s) => s.name === "filter");
    expect(filter?.candidatesIn).toBe(7);
    expect(filter?.candidatesOut).toBe(1);
    expect(filter?.filtered).toEqual([
      "expired (expired)",
      "future (not_started)",
      "off (inactive)",
      "cond (condition_failed: missing name customer.age)",
      "prop (propensity < 0.6)",
      "seg (segment_required)",
    ]);
  });

  test("an external propensity in attributes.propensityScores wins over the learned one", () => {
    const catalog = catalogOf([offer({ id: "a" }), offer({ id: "b" })]);
    const d = decide(input(catalog, { attributes: { propensityScores: { b: 0.9, a: 0.1 } } }));
    expect(ids(d)).toEqual(["b", "a"]);
    const zero = decide(input(catalog, { attributes: { propensityScores: { a: 0 } } }));
    expect(zero.recommendations.find((r) => r.offer.def.id === "a")?.score).toBe(0);
  });

  test("mandatory offers skip qualification and rank first", () => {
    const catalog = catalogOf([
      offer({ id: "a", priority: 100 }),
      offer({ id: "m", priority: 1, mandatory: true, qualification: { segment: "vip" } }),
    ]);
    expect(ids(decide(input(catalog)))).toEqual(["m", "a"]);
  });

  test("a per-category cap limits each category", () => {
    const catalog = compileCatalog({
      ...catalogDefinition([
        offer({ id: "a1", priority: 90 }),
        offer({ id: "a2", priority: 80 }),
        offer({ id: "b1", categoryId: "cat_b", priority: 10 }),
      ]),
      flows: [{ id: "f", name: "f", isDefault: true, version: 1, definition: { rank: { perCategoryCap: 1 } } }],
    });
    expect(ids(decide(input(catalog)))).toEqual(["a1", "b1"]);
  });

  test("fit rules lower relevance, and priority_weighted ignores propensity", () => {
    const catalog = compileCatalog({
      ...catalogDefinition([
        offer({ id: "a", priority: 90, qualification: { fit: [{ when: 'attributes.device == "mobile"', relevance: 0.1 }] } }),
        offer({ id: "b", priority: 60 }),
      ]),
      flows: [{ id: "f", name: "f", isDefault: true, version: 1, definition: { score: { method: "priority_weighted" } } }],
    });
    const desktop = decide(input(catalog, { attributes: { device: "desktop" } }));
    expect(ids(desktop)).toEqual(["b", "a"]);
    expect(desktop.recommendations[1]?.score).toBeCloseTo(0.09, 6);
    expect(ids(decide(input(catalog, { attributes: { device: "mobile" } })))).toEqual(["a", "b"]);
  });

  test("a placement keeps only creatives for it or for any placement", () => {
    const def = catalogDefinition([offer({ id: "a" }), offer({ id: "b" })]);
    def.placements = [
      { channelId: "web", id: "hero", name: "Hero" },
      { channelId: "web", id: "sidebar", name: "Sidebar" },
    ];
    def.creatives = [
      { id: "cr_a", offerId: "a", channelId: "web", placementId: "hero", name: "", status: "active", content: {} },
      { id: "cr_b", offerId: "b", channelId: "web", placementId: "sidebar", name: "", status: "active", content: {} },
    ];
    const d = decide(input(compileCatalog(def), { placement: "hero" }));
    expect(ids(d)).toEqual(["a"]);
    expect(d.stages.find((s) => s.name === "filter")?.filtered).toEqual(["b (no_creative)"]);
  });

  test("a running experiment picks the creative deterministically and says so", () => {
    const def = catalogDefinition([offer({ id: "a" })]);
    def.creatives = [
      { id: "control", offerId: "a", channelId: "web", placementId: null, name: "", status: "active", content: {} },
      { id: "variant", offerId: "a", channelId: "web", placementId: null, name: "", status: "active", content: {} },
    ];
    def.experiments = [
      {
        id: "exp",
        offerId: "a",
        channelId: "web",
        status: "running",
        variants: [
          { variant: "control", creativeId: "control", weight: 50 },
          { variant: "v1", creativeId: "variant", weight: 50 },
        ],
      },
    ];
    const catalog = compileCatalog(def);
    const seen = new Map<string, number>();
    for (let i = 0; i < 2000; i++) {
      const rec = decide(input(catalog, { customerId: `c${i}`, explain: false })).recommendations[0];
      const again = decide(input(catalog, { customerId: `c${i}`, explain: false })).recommendations[0];
      expect(again?.creative.def.id).toBe(rec?.creative.def.id as string);
      expect(rec?.experiment?.experimentId).toBe("exp");
      seen.set(rec?.creative.def.id ?? "", (seen.get(rec?.creative.def.id ?? "") ?? 0) + 1);
    }
    expect(Math.abs((seen.get("control") ?? 0) - 1000)).toBeLessThan(100);
    // Stopped: the variant creative is not shown outside its experiment.
    def.experiments[0] = { ...(def.experiments[0] as (typeof def.experiments)[number]), status: "stopped" };
    const stopped = compileCatalog(def);
    for (let i = 0; i < 50; i++) {
      const rec = decide(input(stopped, { customerId: `c${i}` })).recommendations[0];
      expect(rec?.creative.def.id).toBe("control");
      expect(rec?.experiment).toBeNull();
    }
  });

  test("rules may read computed values, with or without a trace", () => {
    const catalog = catalogOf([
      offer({ id: "low", fields: { base: 5 }, qualification: { condition: "doubled > 15" } }),
      offer({ id: "high", fields: { base: 10 }, qualification: { condition: "doubled > 15" } }),
      offer({ id: "plain", fields: { base: 1 } }),
    ]);
    for (const explain of [false, true]) {
      const d = decide(input(catalog, { explain }));
      expect(ids(d).sort()).toEqual(["high", "plain"]);
      expect(d.recommendations.find((r) => r.offer.def.id === "plain")?.personalization).toEqual({ doubled: 2 });
    }
  });

  test("a bad stored formula yields null with its reason instead of failing the decision", () => {
    const catalog = catalogOf([offer({ id: "a", computed: { broken: "1 +", ratio: "base / 0" } })]);
    const d = decide(input(catalog));
    expect(d.recommendations[0]?.personalization).toEqual({ doubled: 20, broken: null, ratio: null });
    const computed = d.stages.find((s) => s.name === "compute")?.computed?.a as Record<string, unknown>;
    expect(computed._issues).toEqual({ broken: expect.stringContaining("position"), ratio: "division by zero" });
  });

  test("tenant qualification rules apply to the offers they name, after the offer's own; mandatory offers are exempt", () => {
    const catalog = catalogOf(
      [
        offer({ id: "a1" }),
        offer({ id: "a2", qualification: { segment: "vip" } }),
        offer({ id: "b1", categoryId: "cat_b" }),
        offer({ id: "b2", categoryId: "cat_b", mandatory: true }),
      ],
      {
        qualificationRules: [
          { id: "adults", categoryIds: ["cat_b"], condition: "customer.age >= 18" },
          { id: "a2_floor", offerIds: ["a2"], minPropensity: 0.9 },
          { id: "reads_computed", offerIds: ["a1"], condition: "doubled > 15" },
        ],
      },
    );
    const young = decide(input(catalog, { profile: { attributes: { age: 16 }, segments: [] } }));
    expect(ids(young)).toEqual(["b2", "a1"]);
    const filtered = young.stages.find((s) => s.name === "filter")?.filtered;
    // The offer's own check is reported first; a rule's failure names the rule.
    expect(filtered).toEqual(["a2 (segment_required)", "b1 (condition_failed, rule adults)"]);
    const vip = decide(input(catalog, { profile: { attributes: { age: 30 }, segments: ["vip"] } }));
    expect(ids(vip)).toEqual(["b2", "a1", "b1"]);
    expect(vip.stages.find((s) => s.name === "filter")?.filtered).toEqual(["a2 (propensity < 0.9, rule a2_floor)"]);
    // A rule naming nothing applies to every offer.
    const all = catalogOf([offer({ id: "a1" }), offer({ id: "b1", categoryId: "cat_b" })], {
      qualificationRules: [{ id: "members", segment: "member" }],
    });
    expect(ids(decide(input(all)))).toEqual([]);
    expect(ids(decide(input(all, { profile: { attributes: {}, segments: ["member"] } })))).toEqual(["a1", "b1"]);
  });

  test("tenant contact policies apply beside each flow's own", () => {
    const catalog = catalogOf([offer({ id: "a1" }), offer({ id: "a2" })], {
      contactPolicies: [{ id: "quiet", policy: { type: "cooldown", hours: 24 } }],
      flows: [{ id: "f", name: "f", isDefault: true, version: 1, definition: { policies: [{ type: "opt_out" }] } }],
    });
    const flow = catalog.flows.get("f");
    expect(flow?.policies.policies.map((p) => p.type)).toEqual(["opt_out", "cooldown"]);
    expect(flow?.policies.needsOptOuts).toBe(true);
    const history = {
      events: [{ offerId: "a1", channelId: "web", outcomeType: "impression", at: Date.parse("2026-05-31T20:00:00Z") }],
      optedOutChannels: new Set<string>(),
    };
    expect(ids(decide(input(catalog, { history })))).toEqual(["a2"]);
    const broken = catalogOf([offer({ id: "a1" })], { contactPolicies: [{ id: "odd", policy: { type: "sometimes" } as never }] });
    expect(broken.flows.get("f")?.policies.issues).toEqual(['contact policy odd: unknown type "sometimes"; skipped']);
  });

  test("a formula that reads only the customer is evaluated once per decision, not once per offer", () => {
    const offers = Array.from({ length: 20 }, (_, i) =>
      offer({ id: `o${String(i).padStart(2, "0")}`, qualification: { condition: "customer.score >= 600" } }),
    );
    const catalog = catalogOf(offers);
    const base = { explain: false, profile: { attributes: { name: "Ana", score: 700 }, segments: [] } };
    const once = decide(input(catalog, base));
    expect(once.recommendations.length).toBe(5);
    // Three nodes (`customer.score`, `600`, `>=`), counted once (the winners' values are not metered).
    expect(once.evaluations).toBe(3);
  });

  test("past the evaluation budget formulas yield null: conditions fail and the decision says so", () => {
    // `base > 5` reads the offer, so it is evaluated per offer: 3 nodes each.
    const offers = Array.from({ length: 10 }, (_, i) => offer({ id: `o${i}`, qualification: { condition: "base > 5" } }));
    const catalog = catalogOf(offers);
    const within = decide(input(catalog, { evaluationBudget: 1_000 }));
    expect(within.budgetExhausted).toBe(false);
    expect(within.recommendations.length).toBe(5);
    const over = decide(input(catalog, { evaluationBudget: 9 }));
    expect(over.budgetExhausted).toBe(true);
    const filter = over.stages.find((st) => st.name === "filter");
    expect(filter?.filtered).toContain("o9 (condition_failed: evaluation budget exhausted)");
    // The trace's compute stage evaluates `doubled` (3 nodes) for every offer first: the budget is gone before any condition.
    expect(over.recommendations).toEqual([]);
  });

  test("the budget bounds the search, not the answer: winners' values are computed in full", () => {
    const offers = Array.from({ length: 10 }, (_, i) => offer({ id: `o${i}`, qualification: { condition: "base > 5" } }));
    const d = decide(input(catalogOf(offers), { explain: false, evaluationBudget: 9 }));
    // Three conditions of 3 nodes fit the budget; the fourth is refused, and so are the rest.
    expect(d.budgetExhausted).toBe(true);
    expect(ids(d)).toEqual(["o0", "o1", "o2"]);
    for (const r of d.recommendations) expect(r.personalization.doubled).toBe(20);
  });
});

function catalogDefinition(offers: OfferDef[]): CatalogDefinition {
  return {
    categories: [
      { id: "cat_a", name: "A", fields: {}, computed: {} },
      { id: "cat_b", name: "B", fields: {}, computed: {} },
    ],
    offers,
    channels: [{ id: "web", name: "Web", type: "web", implicitImpressions: false }],
    placements: [],
    creatives: offers.map((o) => ({
      id: `cr_${o.id}`,
      offerId: o.id,
      channelId: "web",
      placementId: null,
      name: o.id,
      status: "active" as const,
      content: {},
    })),
    experiments: [],
    flows: [{ id: "f", name: "f", isDefault: true, version: 1, definition: {} }],
  };
}
