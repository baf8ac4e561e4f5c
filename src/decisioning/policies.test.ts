// Contact policies on their own (compile, count, refuse) and inside decide(): reasons in the filter stage,
// shared cap budgets at rank, and fail closed when the history is missing.

import { describe, expect, test } from "bun:test";
import { compileCatalog } from "./catalog.ts";
import { type OfferDef, offerWithDefaults } from "./definitions.ts";
import { decide } from "./engine.ts";
import { compileContactPolicies, type ContactEvent, type ContactHistory, prepareContactPolicies } from "./policies.ts";
import { PropensityModel } from "./propensity.ts";

const NOW = new Date("2026-06-10T12:00:00Z");
const H = 3_600_000;
const D = 24 * H;
const CATEGORY: Record<string, string> = { a1: "cat_a", a2: "cat_a", b1: "cat_b" };
const categoryOf = (id: string) => CATEGORY[id];

function event(offerId: string, agoMs: number, outcomeType = "impression", channelId = "web"): ContactEvent {
  return { offerId, channelId, outcomeType, at: NOW.getTime() - agoMs };
}

function history(events: ContactEvent[], optedOut: string[] = []): ContactHistory {
  return { events, optedOutChannels: new Set(optedOut) };
}

function gate(policies: unknown[], h: ContactHistory | null, channelId = "web") {
  const compiled = compileContactPolicies(policies);
  expect(compiled.issues).toEqual([]);
  return prepareContactPolicies(compiled, h, channelId, NOW, categoryOf);
}

describe("compileContactPolicies", () => {
  test("compiles every kind and derives what the history read needs", () => {
    const c = compileContactPolicies([
      { type: "frequency_cap", scope: "offer", max: 3, window: "week" },
      { type: "cooldown", hours: 48 },
      { type: "outcome_suppression", days: 14, outcomes: ["dismiss", "complaint"] },
      { type: "opt_out", channelIds: ["email"] },
    ]);
    expect(c.issues).toEqual([]);
    expect(c.policies.map((p) => p.type)).toEqual(["frequency_cap", "cooldown", "outcome_suppression", "opt_out"]);
    expect(c.lookbackMs).toBe(14 * D);
    expect(c.outcomeTypes).toEqual(["complaint", "dismiss", "impression"]);
    expect(c.needsOptOuts).toBe(true);
  });

  test("no policies need nothing; opt-outs alone need no interactions", () => {
    expect(compileContactPolicies(undefined)).toEqual({
      policies: [],
      issues: [],
      lookbackMs: 0,
      outcomeTypes: [],
      needsOptOuts: false,
      needsHistory: false,
      countsImpressions: false,
      hasVolumeCaps: false,
    });
    const c = compileContactPolicies([{ type: "opt_out" }]);
    expect(c.lookbackMs).toBe(0);
    expect(c.outcomeTypes).toEqual([]);
    expect(c.needsOptOuts).toBe(true);
  });

  test("skips malformed policies with the reason, keeping the good ones", () => {
    const c = compileContactPolicies([
      { type: "frequency_cap", scope: "offer", max: 3, window: "day" },
      "cap",
      { type: "frequency_cap", scope: "planet", max: 3, window: "day" },
      { type: "frequency_cap", scope: "offer", max: 0, window: "day" },
      { type: "frequency_cap", scope: "offer", max: 2, window: "fortnight" },
      { type: "cooldown", hours: -1 },
      { type: "cooldown", hours: 5, scope: "category" },
      { type: "outcome_suppression", days: 10_000 },
      { type: "outcome_suppression", days: 3, outcomes: [] },
      { type: "opt_out", channelIds: "ch_email" },
      { type: "snooze" },
    ]);
    expect(c.policies.length).toBe(1);
    expect(c.issues).toEqual([
      "policies[1]: not an object; skipped",
      "policies[2]: scope must be one of offer, category, channel, global; skipped",
      "policies[3]: max must be a whole number of at least 1; skipped",
      "policies[4]: window must be day, week or 30d; skipped",
      "policies[5]: hours must be a number above 0, at most 8760; skipped",
      'policies[6]: scope must be "offer"; skipped',
      "policies[7]: days must be a number above 0, at most 365; skipped",
      "policies[8]: outcomes must be a non-empty list of outcome types; skipped",
      "policies[9]: channelIds must be a list of ids; skipped",
      'policies[10]: unknown type "snooze"; skipped',
    ]);
    expect(compileContactPolicies({ type: "opt_out" }).issues).toEqual(["policies must be a list"]);
  });
});

describe("frequency_cap", () => {
  test("offer scope counts the offer's impressions on every channel within the rolling window", () => {
    const cap = [{ type: "frequency_cap", scope: "offer", max: 3, window: "day" }];
    const two = [event("a1", 1 * H), event("a1", 2 * H, "impression", "email"), event("a2", 3 * H)];
    expect(gate(cap, history(two)).check("a1", "cat_a", false)).toBeNull();
    const three = [...two, event("a1", 23 * H)];
    expect(gate(cap, history(three)).check("a1", "cat_a", false)).toBe("frequency_cap exceeded: 3/day at scope=offer");
    expect(gate(cap, history(three)).check("a2", "cat_a", false)).toBeNull();
    // 24 hours after an impression it no longer counts.
    const aged = [...two, event("a1", 24 * H)];
    expect(gate(cap, history(aged)).check("a1", "cat_a", false)).toBeNull();
  });

  test("only impressions count", () => {
    const cap = [{ type: "frequency_cap", scope: "offer", max: 1, window: "week" }];
    expect(gate(cap, history([event("a1", H, "click"), event("a1", H, "dismiss")])).check("a1", "cat_a", false)).toBeNull();
  });

  test("category, channel and global scopes", () => {
    const events = [event("a1", H), event("a2", H, "impression", "email"), event("b1", 6 * D)];
    const category = [{ type: "frequency_cap", scope: "category", max: 2, window: "week" }];
    expect(gate(category, history(events)).check("a2", "cat_a", false)).toBe("frequency_cap exceeded: 2/week at scope=category");
    expect(gate(category, history(events)).check("b1", "cat_b", false)).toBeNull();

    const channel = [{ type: "frequency_cap", scope: "channel", max: 2, window: "week" }];
    expect(gate(channel, history(events), "web").check("a2", "cat_a", false)).toBe("frequency_cap exceeded: 2/week at scope=channel");
    expect(gate(channel, history(events), "email").check("a2", "cat_a", false)).toBeNull();

    const global = [{ type: "frequency_cap", scope: "global", max: 3, window: "30d" }];
    expect(gate(global, history(events)).check("zz", "cat_z", false)).toBe("frequency_cap exceeded: 3/30d at scope=global");
    expect(gate([{ ...global[0], window: "day" }], history(events)).check("zz", "cat_z", false)).toBeNull();
  });

  test("a targeted cap applies to, and counts, only its offers and channels", () => {
    const events = [event("a1", H), event("a2", H), event("b1", H), event("b1", H, "impression", "email")];
    const cards = [{ type: "frequency_cap", scope: "global", max: 2, window: "day", categoryIds: ["cat_a"] }];
    expect(gate(cards, history(events)).check("a1", "cat_a", false)).toBe("frequency_cap exceeded: 2/day at scope=global");
    expect(gate(cards, history(events)).check("b1", "cat_b", false)).toBeNull();

    const emailOnly = [{ type: "frequency_cap", scope: "offer", max: 1, window: "day", channelIds: ["email"] }];
    expect(gate(emailOnly, history(events), "email").check("b1", "cat_b", false)).toBe("frequency_cap exceeded: 1/day at scope=offer");
    expect(gate(emailOnly, history(events), "email").check("a1", "cat_a", false)).toBeNull();
    expect(gate(emailOnly, history(events), "web").check("b1", "cat_b", false)).toBeNull();

    const one = [{ type: "frequency_cap", scope: "offer", max: 1, window: "day", offerIds: ["a2"] }];
    expect(gate(one, history(events)).check("a2", "cat_a", false)).not.toBeNull();
    expect(gate(one, history(events)).check("a1", "cat_a", false)).toBeNull();
  });

  test("shared caps leave room for only as many offers as impressions remain", () => {
    const g = gate([{ type: "frequency_cap", scope: "category", max: 3, window: "day" }], history([event("a1", H)]));
    expect(g.check("a2", "cat_a", false)).toBeNull();
    expect(g.fits("a2", "cat_a")).toBe(true);
    g.take("a2", "cat_a");
    expect(g.fits("a1", "cat_a")).toBe(true);
    g.take("a1", "cat_a");
    expect(g.fits("a3", "cat_a")).toBe(false);
    expect(g.fits("b1", "cat_b")).toBe(true);
  });
});

describe("cooldown, outcome_suppression, opt_out", () => {
  test("cooldown holds an offer back for H hours after its last impression", () => {
    const cooldown = [{ type: "cooldown", hours: 24 }];
    const h = history([event("a1", 30 * H), event("a1", 2 * H), event("a2", 25 * H)]);
    expect(gate(cooldown, h).check("a1", "cat_a", false)).toBe("cooldown: last impression 2.0 h ago, 24 h required");
    expect(gate(cooldown, h).check("a2", "cat_a", false)).toBeNull();
  });

  test("outcome suppression after dismiss or not_interested, for D days", () => {
    const suppress = [{ type: "outcome_suppression", days: 7 }];
    const h = history([event("a1", 1.5 * D, "dismiss"), event("a2", 3 * H, "not_interested"), event("b1", 7 * D + 1, "dismiss")]);
    expect(gate(suppress, h).check("a1", "cat_a", false)).toBe("outcome_suppression: dismiss 1 d ago");
    expect(gate(suppress, h).check("a2", "cat_a", false)).toBe("outcome_suppression: not_interested 3.0 h ago");
    expect(gate(suppress, h).check("b1", "cat_b", false)).toBeNull();
    const clicks = [{ type: "outcome_suppression", days: 7, outcomes: ["click"] }];
    expect(gate(clicks, h).check("a1", "cat_a", false)).toBeNull();
  });

  test("an opt-out refuses every offer on that channel and none on others", () => {
    const optOut = [{ type: "opt_out" }];
    const h = history([], ["email"]);
    expect(gate(optOut, h, "email").check("a1", "cat_a", false)).toBe("opt_out on email");
    expect(gate(optOut, h, "email").check("b1", "cat_b", false)).toBe("opt_out on email");
    expect(gate(optOut, h, "web").check("a1", "cat_a", false)).toBeNull();
  });

  test("mandatory offers skip every policy but frequency caps", () => {
    const policies = [
      { type: "opt_out" },
      { type: "cooldown", hours: 24 },
      { type: "outcome_suppression", days: 7 },
      { type: "frequency_cap", scope: "offer", max: 2, window: "day" },
    ];
    const one = history([event("a1", H), event("a1", H, "dismiss")], ["web"]);
    expect(gate(policies, one).check("a1", "cat_a", true)).toBeNull();
    expect(gate(policies, one).check("a1", "cat_a", false)).toBe("opt_out on web");
    const two = history([event("a1", H), event("a1", 2 * H)], ["web"]);
    expect(gate(policies, two).check("a1", "cat_a", true)).toBe("frequency_cap exceeded: 2/day at scope=offer");
  });
});

describe("fail closed", () => {
  test("without a history every offer a policy covers is refused, and only those", () => {
    const g = gate([{ type: "cooldown", hours: 1, categoryIds: ["cat_a"] }], null);
    expect(g.check("a1", "cat_a", false)).toBe("history unavailable");
    expect(g.check("b1", "cat_b", false)).toBeNull();
    // A mandatory offer is refused only when a cap covers it.
    expect(g.check("a1", "cat_a", true)).toBeNull();
    const capped = gate([{ type: "frequency_cap", scope: "offer", max: 9, window: "day" }], null);
    expect(capped.check("a1", "cat_a", true)).toBe("history unavailable");
    // A policy of another channel does not concern this request.
    expect(gate([{ type: "opt_out", channelIds: ["sms"] }], null).check("a1", "cat_a", false)).toBeNull();
  });
});

describe("decide with contact policies", () => {
  function catalog(policies: unknown[], offers: OfferDef[]) {
    return compileCatalog({
      categories: [{ id: "cat_a", name: "A", fields: {}, computed: {} }],
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
      flows: [{ id: "f", name: "f", isDefault: true, version: 1, definition: { policies: policies as never } }],
    });
  }
  const offer = (id: string, over: Partial<OfferDef> = {}) => offerWithDefaults({ id, categoryId: "cat_a", name: id, ...over });
  const run = (c: ReturnType<typeof catalog>, h: ContactHistory | null | undefined) => {
    const d = decide({
      catalog: c,
      flow: c.flows.get("f") as NonNullable<ReturnType<typeof c.flows.get>>,
      customerId: "c1",
      channelId: "web",
      placement: "",
      maxOffers: 5,
      attributes: {},
      profile: { attributes: {}, segments: ["vip"] },
      propensity: new PropensityModel([]),
      now: NOW,
      random: () => 0.5,
      explain: true,
      history: h,
    });
    return { ids: d.recommendations.map((r) => r.offer.def.id), filtered: d.stages.find((s) => s.name === "filter")?.filtered };
  };

  test("a refused offer is listed in the filter stage with its reason; a mandatory one still ranks first", () => {
    const c = catalog(
      [{ type: "frequency_cap", scope: "offer", max: 1, window: "day" }],
      [offer("a1", { priority: 90 }), offer("a2", { priority: 80 }), offer("m", { priority: 10, mandatory: true })],
    );
    expect(run(c, history([])).ids).toEqual(["m", "a1", "a2"]);
    const r = run(c, history([event("a1", H)]));
    expect(r.ids).toEqual(["m", "a2"]);
    expect(r.filtered).toEqual(["a1 (frequency_cap exceeded: 1/day at scope=offer)"]);
    expect(run(c, history([event("m", H)])).ids).toEqual(["a1", "a2"]);
  });

  test("a global cap with one impression left admits one offer of the answer, the best", () => {
    const c = catalog([{ type: "frequency_cap", scope: "global", max: 2, window: "day" }], [offer("a1", { priority: 90 }), offer("a2")]);
    expect(run(c, history([])).ids).toEqual(["a1", "a2"]);
    expect(run(c, history([event("zz", H)])).ids).toEqual(["a1"]);
  });

  test("a flow with policies but no history fails closed, whether the history is null or missing", () => {
    const c = catalog([{ type: "cooldown", hours: 1, offerIds: ["a1"] }], [offer("a1"), offer("a2")]);
    for (const h of [null, undefined]) {
      const r = run(c, h);
      expect(r.ids).toEqual(["a2"]);
      expect(r.filtered).toEqual(["a1 (history unavailable)"]);
    }
  });

  test("a malformed policy is skipped; the flow still decides", () => {
    const c = catalog([{ type: "frequency_cap", scope: "offer", max: "three", window: "day" }], [offer("a1")]);
    expect(c.flows.get("f")?.policies.issues).toEqual(["policies[0]: max must be a whole number of at least 1; skipped"]);
    expect(run(c, undefined).ids).toEqual(["a1"]);
  });
});
