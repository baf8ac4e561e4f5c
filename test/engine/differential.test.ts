// The engine against its plain reference (reference-engine.ts over reference-catalog.ts, both written for
// clarity and independent of the engine's compile) over randomised catalogs, customers and requests: the
// same offers in the same order with the same scores, creatives, content, experiments and, for traced
// decisions, the same stages and reasons. Thompson sampling runs with the same seed on both.

import { FilterReason } from "../../gen/kaireon/v1/decision_trace_pb.ts";
import { dropOf } from "../../src/services/trace-drops.ts";
import { describe, expect, test } from "bun:test";
import { type CompiledCatalog, compileCatalog } from "../../src/decisioning/catalog.ts";
import type { CatalogDefinition, CreativeDef, ExperimentDef, FlowDefinition, OfferDef } from "../../src/decisioning/definitions.ts";
import { offerWithDefaults } from "../../src/decisioning/definitions.ts";
import { fnv1a32 } from "../../src/decisioning/experiment.ts";
import { type DecisionInput, decide, prepareCandidateLists, type StageRecord } from "../../src/decisioning/engine.ts";
import type { ContactEvent, ContactHistory, ContactPolicyDef } from "../../src/decisioning/policies.ts";
import { PropensityModel, type StatsRow } from "../../src/decisioning/propensity.ts";
import { seededRandom } from "../../src/random.ts";
import { referenceCompile } from "./reference-catalog.ts";
import { referenceDecide } from "./reference-engine.ts";

const CASES = 1200;
const NOW = new Date("2026-06-15T12:00:00Z");
const DAY = 86_400_000;

type Rand = () => number;
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
const chance = (r: Rand, p: number) => r() < p;
const int = (r: Rand, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));

const COMPUTED = [
  "base * 2",
  "round(base - (customer.loyalty >= 50 ? 1.5 : 0), 2)",
  "customer.loyalty / 0",
  "missing_field + 1",
  "coalesce(attributes.boost, 1) * base",
  "customer.loyalty * 2",
  "concat(offer.name, '-', customer.tier)",
];
const CONDITIONS = [
  "customer.score >= 600",
  "base > 5",
  "doubled > 12",
  "attributes.tier == 'gold'",
  "coalesce(customer.age, 99) < 30",
  "customer.loyalty / 0 > 1",
  "offer.priority >= 40",
];
const FITS = ["customer.tier == 'gold'", "base >= 10", "attributes.device == 'mobile'"];
const SEGMENTS = ["premium", "young", "mortgage"];
const CHANNELS = ["web", "email"];
const PLACEMENTS: Record<string, string[]> = { web: ["hero", "side"], email: ["top"] };

function generateCatalog(r: Rand, size: number): CatalogDefinition {
  const categories = Array.from({ length: int(r, 1, 4) }, (_, i) => ({
    id: `cat_${i}`,
    name: `Category ${i}`,
    fields: { base: int(r, 1, 20) },
    computed: chance(r, 0.7) ? { doubled: "base * 2", ...(chance(r, 0.4) ? { rate: pick(r, COMPUTED) } : {}) } : {},
  }));
  const offers: OfferDef[] = [];
  for (let i = 0; i < size; i++) {
    const fit = chance(r, 0.15) ? [{ when: pick(r, FITS), relevance: pick(r, [0.2, 0.5, 0.8]) }] : undefined;
    offers.push(
      offerWithDefaults({
        id: `off_${String(int(r, 0, size * 3)).padStart(4, "0")}_${i}`,
        categoryId: pick(r, categories).id,
        name: `Offer ${i}`,
        status: chance(r, 0.08) ? "inactive" : "active",
        startsAt: chance(r, 0.06) ? new Date(NOW.getTime() + pick(r, [-1, 1]) * DAY) : null,
        endsAt: chance(r, 0.06) ? new Date(NOW.getTime() + pick(r, [-1, 0, 1]) * DAY) : null,
        // Few distinct values, so that ties (broken by id) are common.
        priority: pick(r, [10, 40, 50, 50, 80, 100]),
        businessValue: pick(r, [0, 50, 100, 100, 400]),
        weight: pick(r, [50, 100]),
        mandatory: chance(r, 0.04),
        fields: chance(r, 0.3) ? { base: int(r, 1, 20) } : {},
        computed: chance(r, 0.15) ? { own_rate: pick(r, COMPUTED) } : {},
        qualification: {
          ...(chance(r, 0.15) ? { segment: pick(r, SEGMENTS) } : {}),
          ...(chance(r, 0.2) ? { condition: pick(r, CONDITIONS) } : {}),
          ...(chance(r, 0.1) ? { minPropensity: pick(r, [0.05, 0.3, 0.5]) } : {}),
          ...(fit ? { fit } : {}),
        },
      }),
    );
  }
  const creatives: CreativeDef[] = [];
  for (const o of offers) {
    for (const ch of CHANNELS) {
      if (chance(r, 0.15)) continue;
      const n = chance(r, 0.2) ? 2 : 1;
      for (let k = 0; k < n; k++) {
        creatives.push({
          id: `cr_${o.id}_${ch}_${k}`,
          offerId: o.id,
          channelId: ch,
          placementId: chance(r, 0.3) ? pick(r, PLACEMENTS[ch] as string[]) : null,
          name: `${o.name} on ${ch}`,
          status: chance(r, 0.05) ? "inactive" : "active",
          content: { title: 'Hi {{customer.name | "there"}}, {{offer.name}}', body: "{{doubled}} / {{own_rate}} / {{rate}}", cta: 7 },
        });
      }
    }
  }
  const experiments: ExperimentDef[] = [];
  for (const o of offers) {
    if (!chance(r, 0.05)) continue;
    const ch = pick(r, CHANNELS);
    const ids = [`cr_${o.id}_${ch}_0`, `cr_${o.id}_${ch}_x`];
    creatives.push({
      ...(creatives.find((c) => c.id === ids[0]) ?? {
        offerId: o.id,
        channelId: ch,
        placementId: null,
        name: "x",
        status: "active",
        content: {},
      }),
      id: ids[1] as string,
    } as CreativeDef);
    experiments.push({
      id: `exp_${o.id}`,
      offerId: o.id,
      channelId: ch,
      status: chance(r, 0.8) ? "running" : "stopped",
      variants: [
        { variant: "control", creativeId: ids[0] as string, weight: 60 },
        { variant: "b", creativeId: ids[1] as string, weight: 40 },
      ],
    });
  }
  const policyPool: ContactPolicyDef[] = [
    { type: "frequency_cap", scope: "offer", max: 2, window: "week" },
    { type: "frequency_cap", scope: "category", max: 3, window: "day" },
    { type: "frequency_cap", scope: "channel", max: 4, window: "30d" },
    { type: "frequency_cap", scope: "global", max: 5, window: "week" },
    { type: "cooldown", hours: 12 },
    { type: "outcome_suppression", days: 7 },
    { type: "opt_out" },
    { type: "frequency_cap", scope: "offer", max: 1, window: "day", channelIds: ["email"] },
    { type: "volume_cap", scope: "offer", max: 2, window: "day" },
    { type: "volume_cap", scope: "category", budget: 150, window: "week", timeZone: "Europe/Paris" },
  ];
  const flows = Array.from({ length: 2 }, (_, i) => {
    const definition: FlowDefinition = {
      score: {
        method: chance(r, 0.2) ? "priority_weighted" : "prie",
        propensity: chance(r, 0.3) ? "thompson" : "mean",
        priorWeight: pick(r, [2, 10, 50]),
        ...(chance(r, 0.3) ? { weights: { propensity: r(), relevance: r(), impact: r(), emphasis: r() } } : {}),
      },
      ...(chance(r, 0.25) ? { rank: { perCategoryCap: int(r, 1, 2) } } : {}),
      ...(chance(r, 0.2) ? { candidates: { categoryIds: [pick(r, categories).id] } } : {}),
      ...(chance(r, 0.4) ? { policies: policyPool.filter(() => chance(r, 0.35)) } : {}),
    };
    return { id: `flow_${i}`, name: `Flow ${i}`, isDefault: i === 0, version: 1, definition };
  });
  return {
    contactPolicies: chance(r, 0.2) ? [{ id: "tp_1", policy: pick(r, policyPool) }] : [],
    qualificationRules: chance(r, 0.25)
      ? [
          { id: "rule_1", categoryIds: [pick(r, categories).id], condition: pick(r, CONDITIONS) },
          { id: "rule_0", segment: pick(r, SEGMENTS), offerIds: offers.filter(() => chance(r, 0.1)).map((o) => o.id) },
        ]
      : [],
    categories,
    offers,
    channels: CHANNELS.map((id) => ({ id, name: id, type: id, implicitImpressions: false })),
    placements: Object.entries(PLACEMENTS).flatMap(([channelId, ids]) => ids.map((id) => ({ channelId, id, name: id }))),
    creatives,
    experiments,
    flows,
  };
}

function generateStats(r: Rand, def: CatalogDefinition): StatsRow[] {
  const rows: StatsRow[] = [];
  for (const o of def.offers) {
    for (const ch of CHANNELS) {
      if (!chance(r, 0.6)) continue;
      const impressions = int(r, 0, 400);
      rows.push({ offerId: o.id, categoryId: o.categoryId, channelId: ch, impressions, positives: Math.floor(impressions * r() * 0.3) });
    }
  }
  return rows;
}

function generateHistory(r: Rand, def: CatalogDefinition): ContactHistory | null {
  if (chance(r, 0.1)) return null;
  const events: ContactEvent[] = [];
  const n = int(r, 0, 30);
  for (let i = 0; i < n; i++) {
    events.push({
      offerId: pick(r, def.offers).id,
      channelId: pick(r, CHANNELS),
      outcomeType: pick(r, ["impression", "impression", "impression", "dismiss", "not_interested", "click"]),
      at: NOW.getTime() - Math.floor(r() * 20 * DAY),
    });
  }
  return { events, optedOutChannels: new Set(chance(r, 0.15) ? [pick(r, CHANNELS)] : []) };
}

function generateInput(
  r: Rand,
  def: CatalogDefinition,
  seed: number,
): Omit<DecisionInput, "catalog" | "flow" | "random" | "explain" | "propensity"> & { flowId: string } {
  const channelId = pick(r, CHANNELS);
  const attributes: Record<string, unknown> = {
    tier: pick(r, ["gold", "silver"]),
    device: pick(r, ["mobile", "desktop"]),
    ...(chance(r, 0.5) ? { boost: int(r, 1, 3) } : {}),
  };
  if (chance(r, 0.15)) {
    attributes.propensityScores = Object.fromEntries(
      def.offers.filter(() => chance(r, 0.3)).map((o) => [o.id, pick(r, [0, 0.2, 0.9, 1.5])]),
    );
  }
  return {
    flowId: pick(r, def.flows).id,
    customerId: `cust_${seed}`,
    channelId,
    placement: chance(r, 0.4) ? pick(r, PLACEMENTS[channelId] as string[]) : "",
    maxOffers: int(r, 1, 8),
    attributes,
    profile: {
      attributes: chance(r, 0.1)
        ? {}
        : { name: "Ana", loyalty: int(r, 0, 100), score: int(r, 400, 800), age: int(r, 18, 70), tier: pick(r, ["gold", "basic"]) },
      segments: SEGMENTS.filter(() => chance(r, 0.4)),
    },
    now: NOW,
    history: undefined,
    // What the shared counters have spent: a counter's fill follows from its name, so both engines see the same.
    volume: {
      used: (counter) => fnv1a32(`${seed}:${counter}`) % 3,
      unavailable: chance(r, 0.05),
    },
    exclude: chance(r, 0.2) ? new Set(def.offers.filter(() => chance(r, 0.15)).map((o) => o.id)) : undefined,
  };
}

interface Seen {
  recommendations: {
    offer: { def: { id: string } };
    creative: { def: { id: string } };
    rank: number;
    score: number;
    propensity: number;
    content: unknown;
    personalization: unknown;
    experiment: unknown;
  }[];
  stages: StageRecord[];
}

/** What a caller sees of a decision: everything but timings and object identity. */
function observable(d: Seen) {
  return {
    recommendations: d.recommendations.map((x) => ({
      offerId: x.offer.def.id,
      creativeId: x.creative.def.id,
      rank: x.rank,
      score: x.score,
      propensity: x.propensity,
      content: x.content,
      personalization: x.personalization,
      experiment: x.experiment,
    })),
    stages: d.stages.map(({ duration: _, ...rest }) => rest),
  };
}

type Request = ReturnType<typeof generateInput>;

/**
 * Decides one request with the engine over `catalog` and with the reference over its own compile of
 * `definition`, traced and not, each with its own model and the same seeded random source; fails naming
 * the case.
 */
function agree(
  label: Record<string, unknown>,
  request: Request,
  catalog: CompiledCatalog,
  definition: CatalogDefinition,
  history: ContactHistory | null | undefined,
  models: readonly [PropensityModel, PropensityModel],
  seed: number,
): void {
  const { flowId, ...input } = request;
  const flow = catalog.flows.get(flowId);
  const reference = referenceCompile(definition);
  const referenceFlow = reference.flows.get(flowId);
  if (!flow || !referenceFlow) throw new Error("no flow");
  for (const explain of [false, true]) {
    const base = { ...input, history, explain };
    const mine = decide({ ...base, catalog, flow, propensity: models[0], random: seededRandom(seed) });
    const theirs = referenceDecide({ ...base, catalog: reference, flow: referenceFlow, propensity: models[1], random: seededRandom(seed) });
    const got = observable(mine);
    const want = observable(theirs);
    if (!explain) want.stages = [];
    // Fail with the case's seed, so it can be replayed alone.
    if (!Bun.deepEquals(got, want)) expect({ ...label, explain, ...got }).toEqual({ ...label, explain, ...want });
    // Every reason the engine words is one the trace's typed drops know.
    for (const entry of mine.stages.flatMap((st) => st.filtered ?? [])) {
      if (dropOf(entry).reason === FilterReason.UNSPECIFIED) expect({ ...label, entry }).toEqual({ ...label, entry: "a known reason" });
      reasons.add(dropOf(entry).reason);
    }
  }
}

/** The kinds of drop the randomised cases produced. */
const reasons = new Set<FilterReason>();

function runCase(seed: number, size: number): { early: boolean } {
  const r = seededRandom(seed);
  const def = generateCatalog(r, size);
  const catalog = compileCatalog(def);
  const stats = generateStats(r, def);
  const request = generateInput(r, def, seed);
  const flow = catalog.flows.get(request.flowId);
  if (!flow) throw new Error("no flow");
  const history = flow.policies.policies.length > 0 ? generateHistory(r, def) : undefined;
  const early = flow.propensityMode === "mean" && !("propensityScores" in request.attributes);
  // One model per engine, both learning the same outcomes in place between the rounds, as Respond does.
  const models = [new PropensityModel(stats), new PropensityModel(stats)] as const;
  for (let round = 0; round < 3; round++) {
    // In the last round the candidate lists are prepared ahead for the model, as a reload does.
    if (round === 2) for (const _ of prepareCandidateLists(catalog, models[0], NOW));
    agree({ seed, round }, request, catalog, def, history, models, seed * 7 + round);
    for (let k = 0; k < 20; k++) {
      const o = pick(r, def.offers);
      const outcome = { impressions: chance(r, 0.7) ? 1 : 0, positives: chance(r, 0.3) ? 1 : 0 };
      for (const m of models) m.record(o.id, o.categoryId, request.channelId, outcome);
    }
  }
  // The same catalog with one offer changed and one added, compiled on top of the first (what an
  // instance does when only a few rows changed).
  const changed = pick(r, catalog.definition.offers);
  const edited = { ...changed, priority: pick(r, [5, 95]), computed: { own_rate: pick(r, COMPUTED), fresh: "customer.score / 100" } };
  const added = offerWithDefaults({ id: `zz_new_${seed}`, categoryId: changed.categoryId, name: "New offer", priority: 70 });
  const next = {
    ...catalog.definition,
    offers: [...catalog.definition.offers.map((o) => (o === changed ? edited : o)), added],
    creatives: [
      ...catalog.definition.creatives,
      { ...(catalog.definition.creatives[0] as CreativeDef), id: `cr_zz_new_${seed}`, offerId: added.id },
    ],
  };
  agree({ seed, incremental: true }, request, compileCatalog(next, { previous: catalog }), next, history, models, seed * 11);
  return { early };
}

describe("engine against the reference", () => {
  test(`${CASES} randomised catalogs, customers and requests give the same answers and traces`, () => {
    let early = 0;
    for (let seed = 1; seed <= CASES; seed++) {
      if (runCase(seed, seed % 10 === 0 ? 200 : 5 + (seed % 40)).early) early++;
    }
    // The cases reach most kinds of drop, so the check above covers their wording.
    console.log(`drops seen: ${[...reasons].map((r) => FilterReason[r]).join(", ")}`);
    expect(reasons.size).toBe(Object.keys(FilterReason).filter((k) => Number.isNaN(Number(k))).length - 1);
    console.log(
      `differential: ${CASES} cases (${early} eligible for the early exit), each untraced and traced, before and after learning in place, with lists prepared ahead, and recompiled on top of itself after a change; the reference compiles the catalog its own way`,
    );
    expect(early).toBeGreaterThan(CASES / 3);
  }, 120_000);

  test("large catalogs (2,000 offers) agree too", () => {
    for (let seed = 5001; seed <= 5010; seed++) runCase(seed, 2000);
  }, 120_000);
});
