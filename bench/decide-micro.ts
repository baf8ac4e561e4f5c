// In-process microbenchmark of the pure decision engine: `decide(input)` (src/decisioning/engine.ts) over a
// catalog compiled by `compileCatalog(def)` (src/decisioning/catalog.ts), without HTTP, database or JSON.
// The catalog has the same shape as the service tenants of bench/catalog-scale.sh (bench/catalog-build.ts:
// 10 categories with the `personalized_rate` formula, 30% of the offers with a segment and/or a customer
// condition, one tenant rule on a category, one creative per offer on ch_web), the propensity model has
// statistics rows for 30% of the offers, and the random source is seeded (src/random.ts).
//
//   bun bench/decide-micro.ts
//   MICRO_SIZES="1000 10000 50000" BATCHES=15 bun bench/decide-micro.ts
//
// Scenarios, per size:
//   mean       PRIE, mean propensity, no fit rules: the common case, where the engine exits early (the
//              scores are known per statistics snapshot, so offers are visited best first)
//   thompson   full scan: PRIE with Thompson sampling (`score: {propensity: "thompson"}`), a Beta draw per
//              candidate, so every candidate has to be scored
//   mean_fit   full scan: mean propensity, and a fit rule on every offer
//              (`qualification.fit: [{when: 'customer.tier == "gold"', relevance: 0.5}]`)
//
// Each scenario warms up for WARMUP_MS, sizes a batch to about BATCH_MS, then times BATCHES batches;
// it reports the median (and the fastest and slowest batch) of µs per decision, and ns per candidate =
// decision time / offers eligible on the channel (active, with a creative there).
//
// Environment (defaults): MICRO_SIZES ("1000 10000"), BATCHES (9), BATCH_MS (200), WARMUP_MS (1000),
// MAX_OFFERS (3). Only the engine's public API is used: compileCatalog(def) and decide(input).

import { availableParallelism, cpus } from "node:os";
import { type CompiledCatalog, compileCatalog } from "../src/decisioning/catalog.ts";
import { type CatalogDefinition, type OfferDef, offerWithDefaults } from "../src/decisioning/definitions.ts";
import { type DecisionInput, decide } from "../src/decisioning/engine.ts";
import { PropensityModel, type StatsRow } from "../src/decisioning/propensity.ts";
import { seededRandom } from "../src/random.ts";
import {
  CATEGORIES,
  CHANNEL,
  CUSTOMER,
  offerId,
  PERSONALIZED_RATE,
  PLACEMENT,
  priorityOf,
  qualificationOf,
  REQUEST,
  qualifyingOffers,
} from "./catalog-build.ts";

function whole(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${name} must be a whole number above 0, got '${raw}'`);
  return n;
}

const SIZES = (process.env.MICRO_SIZES || "1000 10000")
  .split(/[\s,]+/)
  .filter(Boolean)
  .map((s) => {
    const n = Number(s);
    if (!Number.isSafeInteger(n) || n < 1) throw new Error(`MICRO_SIZES: '${s}' is not a whole number above 0`);
    return n;
  });
const BATCHES = whole("BATCHES", 9);
const BATCH_MS = whole("BATCH_MS", 200);
const WARMUP_MS = whole("WARMUP_MS", 1000);
const MAX_OFFERS = whole("MAX_OFFERS", REQUEST.maxOffers);
const NOW = new Date("2026-06-01T12:00:00Z");
const cat = (c: number) => `cat_${String(c).padStart(2, "0")}`;

function definition(offers: number, fitOnEvery: boolean): CatalogDefinition {
  const offerDefs: OfferDef[] = Array.from({ length: offers }, (_, i) => {
    const q = (qualificationOf(i) ?? {}) as OfferDef["qualification"];
    return offerWithDefaults({
      id: offerId(i),
      categoryId: cat(i % CATEGORIES),
      name: `Offer ${i}`,
      description: `Generated offer ${i} of ${offers}`,
      priority: priorityOf(i),
      businessValue: 20 + ((i * 7919) % 980),
      fields: i % 3 === 0 ? { base_rate: 5 + (i % 20) * 0.75 } : {},
      qualification: fitOnEvery ? { ...q, fit: [{ when: 'customer.tier == "gold"', relevance: 0.5 }] } : q,
    });
  });
  return {
    categories: Array.from({ length: CATEGORIES }, (_, c) => ({
      id: cat(c),
      name: `Category ${c}`,
      fields: { base_rate: 8 + c * 1.5 },
      computed: { personalized_rate: PERSONALIZED_RATE },
    })),
    qualificationRules: [{ id: "rule_loyal", categoryIds: [cat(CATEGORIES - 1)], condition: "coalesce(customer.loyalty_score, 0) >= 50" }],
    offers: offerDefs,
    channels: [{ id: CHANNEL, name: "Web", type: "web", implicitImpressions: false }],
    placements: [{ channelId: CHANNEL, id: PLACEMENT, name: "Hero banner" }],
    creatives: offerDefs.map((o) => ({
      id: `cr_${o.id}_web`,
      offerId: o.id,
      channelId: CHANNEL,
      placementId: null,
      name: `Web creative of ${o.id}`,
      status: "active" as const,
      content: {
        headline: "{{offer.name}}",
        body: '{{customer.first_name | "Hello"}}, yours at {{personalized_rate}}% APR',
        ctaUrl: "https://example.com/offers/{{offer.id}}",
      },
    })),
    experiments: [],
    flows: [
      {
        id: "df_mean",
        name: "mean",
        isDefault: true,
        version: 1,
        definition: { score: { method: "prie", propensity: "mean", priorWeight: 10 } },
      },
      {
        id: "df_thompson",
        name: "thompson",
        isDefault: false,
        version: 1,
        definition: { score: { method: "prie", propensity: "thompson", priorWeight: 10 } },
      },
    ],
  };
}

/** Statistics for 30% of the offers: 50–2,000 impressions each, click rates of 1–15%. */
function statsRows(offers: number): StatsRow[] {
  const rand = seededRandom(20261201);
  const rows: StatsRow[] = [];
  for (let i = 0; i < offers; i++) {
    if (rand() >= 0.3) continue;
    const impressions = 50 + Math.floor(rand() * 1950);
    rows.push({
      offerId: offerId(i),
      categoryId: cat(i % CATEGORIES),
      channelId: CHANNEL,
      impressions,
      positives: Math.round(impressions * (0.01 + rand() * 0.14)),
    });
  }
  return rows;
}

/** Offers that can be shown on the channel and placement now: active, in schedule, with a creative there. */
function eligibleOn(def: CatalogDefinition): number {
  const withCreative = new Set(
    def.creatives
      .filter((c) => c.status === "active" && c.channelId === CHANNEL && (c.placementId === null || c.placementId === PLACEMENT))
      .map((c) => c.offerId),
  );
  return def.offers.filter(
    (o) => o.status === "active" && (!o.startsAt || o.startsAt <= NOW) && (!o.endsAt || o.endsAt > NOW) && withCreative.has(o.id),
  ).length;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

let sink = 0;

interface Row {
  scenario: string;
  offers: number;
  eligible: number;
  compileMs: number;
  perDecision: number[]; // µs per decision of each batch
  batchSize: number;
}

function timeScenario(
  scenario: string,
  offers: number,
  def: CatalogDefinition,
  catalog: CompiledCatalog,
  flowId: string,
  compileMs: number,
): Row {
  const flow = catalog.flows.get(flowId);
  if (!flow) throw new Error(`flow ${flowId} missing from the compiled catalog`);
  const input: DecisionInput = {
    catalog,
    flow,
    customerId: CUSTOMER.customerId,
    channelId: CHANNEL,
    placement: PLACEMENT,
    maxOffers: MAX_OFFERS,
    attributes: { ...REQUEST.attributes },
    profile: { attributes: { ...CUSTOMER.attributes }, segments: [...CUSTOMER.segments] },
    propensity: new PropensityModel(statsRows(offers)),
    now: NOW,
    random: seededRandom(42),
    explain: false,
  };
  const first = decide(input);
  if (first.recommendations.length !== MAX_OFFERS) {
    throw new Error(`${scenario}/${offers}: ${first.recommendations.length} recommendations, expected ${MAX_OFFERS}`);
  }
  // Warm-up: let the JIT settle, and count how many decisions fit in BATCH_MS.
  let n = 0;
  const w0 = performance.now();
  while (performance.now() - w0 < WARMUP_MS || n < 5) {
    sink += decide(input).recommendations.length;
    n++;
  }
  const perMs = n / (performance.now() - w0);
  const batchSize = Math.max(3, Math.round(perMs * BATCH_MS));
  const perDecision: number[] = [];
  for (let b = 0; b < BATCHES; b++) {
    const t0 = performance.now();
    for (let k = 0; k < batchSize; k++) sink += decide(input).recommendations.length;
    perDecision.push(((performance.now() - t0) * 1000) / batchSize);
  }
  return { scenario, offers, eligible: eligibleOn(def), compileMs, perDecision, batchSize };
}

function compileTimed(def: CatalogDefinition): { catalog: CompiledCatalog; ms: number } {
  const times: number[] = [];
  let catalog: CompiledCatalog | null = null;
  for (let k = 0; k < 3; k++) {
    const t0 = performance.now();
    catalog = compileCatalog(def);
    times.push(performance.now() - t0);
  }
  return { catalog: catalog as CompiledCatalog, ms: median(times) };
}

const rows: Row[] = [];
for (const offers of SIZES) {
  const base = definition(offers, false);
  const withFit = definition(offers, true);
  const a = compileTimed(base);
  const c = compileTimed(withFit);
  Bun.gc(true);
  rows.push(timeScenario("mean", offers, base, a.catalog, "df_mean", a.ms));
  Bun.gc(true);
  rows.push(timeScenario("thompson", offers, base, a.catalog, "df_thompson", a.ms));
  Bun.gc(true);
  rows.push(timeScenario("mean_fit", offers, withFit, c.catalog, "df_mean", c.ms));
}

const fmt = (x: number, d = 0) => x.toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d });
const lines: string[] = [];
const load = (
  await Bun.file("/proc/loadavg")
    .text()
    .catch(() => "?")
)
  .split(" ")
  .slice(0, 3)
  .join(" ");
lines.push(
  `decide() microbenchmark — ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC; bun ${Bun.version}; ` +
    `${availableParallelism()} of ${cpus().length} cores usable (taskset), load ${load}; ${BATCHES} batches of ~${BATCH_MS} ms after ${WARMUP_MS} ms warm-up; maxOffers ${MAX_OFFERS}`,
);
const header = [
  "scenario",
  "offers",
  "eligible",
  "qualify",
  "µs/decision",
  "ns/candidate",
  "fastest µs",
  "slowest µs",
  "decisions/s",
  "batch",
  "compile ms",
];
const table = rows.map((r) => {
  const med = median(r.perDecision);
  return [
    r.scenario,
    fmt(r.offers),
    fmt(r.eligible),
    fmt(qualifyingOffers(r.offers)),
    fmt(med, 1),
    fmt((med * 1000) / r.eligible, 1),
    fmt(Math.min(...r.perDecision), 1),
    fmt(Math.max(...r.perDecision), 1),
    fmt(1e6 / med),
    fmt(r.batchSize),
    fmt(r.compileMs, 1),
  ];
});
const widths = header.map((h, i) => Math.max(h.length, ...table.map((t) => (t[i] as string).length)));
const row = (cells: string[]) =>
  cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join("  ");
lines.push(row(header), ...table.map(row));
lines.push(
  "µs/decision: median over the batches; ns/candidate: that / eligible offers; qualify: offers left after the segment and condition rules",
  "for the bench customer; compile ms: compileCatalog(def) of that catalog (median of 3).",
);
process.stdout.write(`${lines.join("\n")}\n`);
if (sink < 0) process.stdout.write("unreachable\n");
