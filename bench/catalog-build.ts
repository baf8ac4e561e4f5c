// Catalogs of a given size for the catalog-scale benchmark (bench/catalog-scale.sh), built through the
// service's own catalog import (POST /api/v1/catalog/import), and the offer changer of its `*_changing`
// scenarios. Talks to a running service over REST with an admin key of the tenant.
//
//   bun bench/catalog-build.ts document <offers>                      print the catalog document (JSON)
//   bun bench/catalog-build.ts request                                print the Recommend request body (JSON)
//   bun bench/catalog-build.ts count    <base-url> <tenant>           print the tenant's number of offers
//   bun bench/catalog-build.ts vacuum   <database-url>                VACUUM ANALYZE after the imports
//   bun bench/catalog-build.ts import   <base-url> <tenant> <offers>  import it, upsert the bench customer,
//                                                                     and check that Recommend answers
//   bun bench/catalog-build.ts change   <base-url> <tenant> <offers>  change one offer's priority every
//                                                                     INTERVAL_MS (1000) until SIGTERM/SIGINT
//                                                                     or SECONDS (600); prints a summary
//
// The API key comes from KAIREON_API_KEY (admin scope). Everything is deterministic: offer i has the same
// priority, value, fields and rules in every run.
//
// The catalog of N offers (what Recommend has to go through):
//   - 10 categories cat_00…cat_09 with `base_rate` and the demo's computed `personalized_rate` formula
//     (loyalty discount), which every offer inherits;
//   - N offers off_00000… (priority 10–100, business value 20–999; a third override `base_rate`), all
//     active, no schedule; qualification on 30% of them: i%10 == 1 segment `premium` (the bench customer
//     is not in it), i%10 == 2 condition `coalesce(customer.credit_score, 0) >= 650` (passes), i%10 == 3
//     segment `card_member` and condition `coalesce(customer.age, 99) < 30` (fails);
//   - one tenant-wide qualification rule on category cat_09: `coalesce(customer.loyalty_score, 0) >= 50`
//     (passes);
//   - channel ch_web with placement `hero`, and one creative per offer on ch_web for any placement
//     (templates: offer name, customer first name, personalized_rate): every offer is eligible there;
//   - the default flow df_scale, published, PRIE scoring with mean propensity, no contact policies; beside it
//     df_scale_policies (the same with a frequency cap and an outcome suppression) and df_scale_thompson.
// The bench customer cust_12345 (the demo's: loyalty 85, credit score 720, age 34, gold, card_member) then
// qualifies for 80% of the offers.

export const PERSONALIZED_RATE = "round(base_rate - (customer.loyalty_score >= 80 ? 2.5 : customer.loyalty_score >= 50 ? 1.25 : 0), 2)";
export const CHANNEL = "ch_web";
export const PLACEMENT = "hero";
export const CUSTOMER = {
  customerId: "cust_12345",
  attributes: { first_name: "Sarah", last_name: "Johnson", loyalty_score: 85, credit_score: 720, age: 34, tier: "gold" },
  segments: ["card_member"],
};
/** The request the benchmark sends to the generated tenants (the demo's tutorial request, on ch_web/hero). */
export const REQUEST = {
  customerId: CUSTOMER.customerId,
  channelId: CHANNEL,
  maxOffers: 3,
  placement: PLACEMENT,
  attributes: { tier: "gold", source: "campaign_q1", device: "mobile" },
};

export const CATEGORIES = 10;
export const offerId = (i: number) => `off_${String(i).padStart(5, "0")}`;

export function qualificationOf(i: number): Record<string, unknown> | undefined {
  switch (i % 10) {
    case 1:
      return { segment: "premium" };
    case 2:
      return { condition: "coalesce(customer.credit_score, 0) >= 650" };
    case 3:
      return { segment: "card_member", condition: "coalesce(customer.age, 99) < 30" };
    default:
      return undefined;
  }
}

export function priorityOf(i: number): number {
  return 10 + ((i * 37) % 91);
}

export function catalogDocument(offers: number): Record<string, unknown> {
  const categories = Array.from({ length: CATEGORIES }, (_, c) => ({
    categoryId: `cat_${String(c).padStart(2, "0")}`,
    name: `Category ${c}`,
    fields: { base_rate: 8 + c * 1.5 },
    computed: { personalized_rate: PERSONALIZED_RATE },
  }));
  const offerList = Array.from({ length: offers }, (_, i) => {
    const o: Record<string, unknown> = {
      offerId: offerId(i),
      categoryId: `cat_${String(i % CATEGORIES).padStart(2, "0")}`,
      name: `Offer ${i}`,
      description: `Generated offer ${i} of ${offers}`,
      priority: priorityOf(i),
      businessValue: 20 + ((i * 7919) % 980),
    };
    if (i % 3 === 0) o.fields = { base_rate: 5 + (i % 20) * 0.75 };
    const q = qualificationOf(i);
    if (q) o.qualification = q;
    return o;
  });
  const creatives = Array.from({ length: offers }, (_, i) => ({
    creativeId: `cr_${offerId(i)}_web`,
    offerId: offerId(i),
    channelId: CHANNEL,
    name: `Web creative of offer ${i}`,
    content: {
      headline: "{{offer.name}}",
      body: '{{customer.first_name | "Hello"}}, yours at {{personalized_rate}}% APR',
      ctaUrl: "https://example.com/offers/{{offer.id}}",
    },
  }));
  return {
    categories,
    offers: offerList,
    channels: [{ channelId: CHANNEL, name: "Web", type: "web" }],
    placements: [{ channelId: CHANNEL, placementId: PLACEMENT, name: "Hero banner" }],
    creatives,
    decisionFlows: [
      {
        decisionFlowId: "df_scale",
        name: "Catalog scale benchmark",
        isDefault: true,
        publishedVersion: 1,
        definition: {
          score: {
            method: "prie",
            weights: { propensity: 0.4, relevance: 0.2, impact: 0.3, emphasis: 0.1 },
            propensity: "mean",
            priorWeight: 10,
          },
        },
      },
      // The same scoring with the customer protections of a real flow: every decision reads the
      // customer's contact history (scenario <n>_policies).
      {
        decisionFlowId: "df_scale_policies",
        name: "Catalog scale benchmark, contact policies",
        isDefault: false,
        publishedVersion: 1,
        definition: {
          score: { method: "prie", propensity: "mean", priorWeight: 10 },
          policies: [
            { type: "frequency_cap", scope: "offer", max: 3, window: "week" },
            { type: "outcome_suppression", days: 30 },
          ],
        },
      },
      // Thompson sampling: a draw per candidate, so every decision scores every offer (scenario <n>_thompson).
      {
        decisionFlowId: "df_scale_thompson",
        name: "Catalog scale benchmark, Thompson sampling",
        isDefault: false,
        publishedVersion: 1,
        definition: { score: { method: "prie", propensity: "thompson", priorWeight: 10 } },
      },
    ],
    qualificationRules: [
      {
        qualificationRuleId: "rule_loyal",
        name: "Loyal customers only",
        categoryIds: [`cat_${String(CATEGORIES - 1).padStart(2, "0")}`],
        condition: "coalesce(customer.loyalty_score, 0) >= 50",
      },
    ],
  };
}

/** How many offers the bench customer qualifies for (the 10% with segment premium and the 10% with age < 30 fail). */
export function qualifyingOffers(offers: number): number {
  let n = 0;
  for (let i = 0; i < offers; i++) if (i % 10 !== 1 && i % 10 !== 3) n++;
  return n;
}

// ---------------------------------------------------------------------------------------------------------

function usage(): never {
  process.stderr.write(
    "usage: bun bench/catalog-build.ts document <offers> | request | count <base-url> <tenant> | vacuum <database-url> | import <base-url> <tenant> <offers> | change <base-url> <tenant> <offers>\n",
  );
  process.exit(2);
}

function wholeNumber(raw: string | undefined, what: string): number {
  const n = Number(raw);
  if (!raw || !Number.isSafeInteger(n) || n < 1) {
    process.stderr.write(`${what} must be a whole number above 0, got '${raw}'\n`);
    process.exit(2);
  }
  return n;
}

function client(base: string, tenant: string) {
  const key = process.env.KAIREON_API_KEY;
  if (!key) {
    process.stderr.write("KAIREON_API_KEY (an admin key of the tenant) is not set\n");
    process.exit(2);
  }
  const u = new URL(base);
  if (!["127.0.0.1", "localhost", "[::1]"].includes(u.hostname)) {
    process.stderr.write(`refusing to talk to ${u.hostname}: local only\n`);
    process.exit(2);
  }
  const headers = { "x-tenant-id": tenant, "x-api-key": key, "content-type": "application/json" };
  return async (method: string, path: string, body?: unknown, timeoutMs = 10_000) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    let json: unknown = null;
    try {
      json = JSON.parse(text);
    } catch {}
    return { status: res.status, json: json as Record<string, unknown> | null, text };
  };
}

const [cmd, ...args] = import.meta.main ? process.argv.slice(2) : [];

if (!import.meta.main) {
  // imported (bench/decide-micro.ts builds the same catalog in process)
} else if (cmd === "request") {
  // `request [flow]`: the scenario's Recommend body, for the default flow or the one named.
  const flow = args[0];
  process.stdout.write(`${JSON.stringify(flow ? { ...REQUEST, decisionFlowId: flow } : REQUEST)}\n`);
} else if (cmd === "count") {
  // The number of offers of a tenant, from its catalog export.
  const [base, tenant] = args;
  if (!base || !tenant) usage();
  const res = await client(base, tenant)("GET", "/api/v1/catalog", undefined, 60_000);
  // REST answers the document itself (gRPC wraps it in ExportCatalogResponse.catalog).
  const catalog = (res.json?.catalog ?? res.json) as { offers?: unknown[] } | null;
  if (res.status !== 200 || !catalog) {
    process.stderr.write(`catalog export of ${tenant}: HTTP ${res.status} ${res.text.slice(0, 500)}\n`);
    process.exit(1);
  }
  process.stdout.write(`${catalog.offers?.length ?? 0}\n`);
} else if (cmd === "vacuum") {
  // VACUUM ANALYZE of the benchmark's database after the imports, so that autovacuum does not wake up in
  // the middle of a measured run.
  const [url] = args;
  if (!url) usage();
  const u = new URL(url);
  if (!["127.0.0.1", "localhost"].includes(u.hostname)) {
    process.stderr.write(`refusing to talk to ${u.hostname}: local only\n`);
    process.exit(2);
  }
  const { default: postgres } = await import("postgres");
  const sql = postgres(url, { onnotice: () => {}, max: 1, connect_timeout: 10 });
  const t0 = performance.now();
  try {
    await sql.unsafe("vacuum analyze");
  } finally {
    await sql.end({ timeout: 5 });
  }
  process.stdout.write(`vacuum analyze: ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
} else if (cmd === "document") {
  process.stdout.write(`${JSON.stringify(catalogDocument(wholeNumber(args[0], "offers")), null, 2)}\n`);
} else if (cmd === "import") {
  const [base, tenant] = args;
  if (!base || !tenant) usage();
  const offers = wholeNumber(args[2], "offers");
  const call = client(base, tenant);
  const body = JSON.stringify(catalogDocument(offers));
  const t0 = performance.now();
  const res = await call("POST", "/api/v1/catalog/import", body, 600_000);
  const s = (performance.now() - t0) / 1000;
  if (res.status !== 200) {
    process.stderr.write(`catalog import into ${tenant}: HTTP ${res.status} ${res.text.slice(0, 2000)}\n`);
    process.exit(1);
  }
  const results = (res.json?.results ?? []) as { kind: string; created?: number; updated?: number; unchanged?: number }[];
  const resources = results.reduce((n, r) => n + (r.created ?? 0) + (r.updated ?? 0) + (r.unchanged ?? 0), 0);
  const tally = results
    .filter((r) => (r.created ?? 0) + (r.updated ?? 0) + (r.unchanged ?? 0) > 0)
    .map((r) => `${r.kind} ${(r.created ?? 0) + (r.updated ?? 0)}`)
    .join(", ");
  const cust = await call("PUT", `/api/v1/customers/${CUSTOMER.customerId}`, {
    attributes: CUSTOMER.attributes,
    segments: CUSTOMER.segments,
  });
  if (cust.status !== 200) {
    process.stderr.write(`customer upsert in ${tenant}: HTTP ${cust.status} ${cust.text}\n`);
    process.exit(1);
  }
  // The first decision compiles the catalog: allow it time.
  const rec = await call("POST", "/api/v1/recommend", REQUEST, 60_000);
  const recs = (rec.json?.recommendations ?? []) as { offerId: string }[];
  if (rec.status !== 200 || recs.length === 0) {
    process.stderr.write(`recommend in ${tenant} after import: HTTP ${rec.status} ${rec.text.slice(0, 2000)}\n`);
    process.exit(1);
  }
  process.stdout.write(
    `${tenant}: imported ${resources} resources (${tally}) of ${(body.length / 1e6).toFixed(1)} MB in ${s.toFixed(1)} s ` +
      `(${Math.round(resources / s)} resources/s); ${offers} offers eligible on ${CHANNEL}/${PLACEMENT}, ` +
      `${qualifyingOffers(offers)} qualify for ${CUSTOMER.customerId}; recommend: ${recs.map((r) => r.offerId).join(", ")}\n`,
  );
} else if (cmd === "change") {
  const [base, tenant] = args;
  if (!base || !tenant) usage();
  const offers = wholeNumber(args[2], "offers");
  const intervalMs = wholeNumber(process.env.INTERVAL_MS ?? "1000", "INTERVAL_MS");
  const seconds = wholeNumber(process.env.SECONDS_LIMIT ?? "600", "SECONDS_LIMIT");
  const call = client(base, tenant);
  // Offers spread over the catalog, changed in turn; their current version is read once, then taken
  // from each answer (a 409 reads it again).
  const targets = Array.from({ length: Math.min(10, offers) }, (_, k) => Math.floor((k * offers) / Math.min(10, offers)));
  const versions = new Map<number, number>();
  const latencies: number[] = [];
  let ok = 0;
  let failed = 0;
  let stopping = false;
  const failures: string[] = [];
  const stop = () => {
    stopping = true;
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  const deadline = Date.now() + seconds * 1000;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  for (let n = 0; !stopping && Date.now() < deadline; n++) {
    const started = Date.now();
    const i = targets[n % targets.length] as number;
    const id = offerId(i);
    try {
      let version = versions.get(i);
      if (version === undefined) {
        const got = await call("GET", `/api/v1/offers/${id}`);
        if (got.status !== 200) throw new Error(`GET ${id}: HTTP ${got.status} ${got.text.slice(0, 300)}`);
        version = Number(got.json?.version);
      }
      // Alternate between the offer's own priority and one 5 points away: a real change every time.
      const priority = Math.floor(n / targets.length) % 2 === 0 ? Math.min(100, priorityOf(i) + 5) : priorityOf(i);
      const t = performance.now();
      const res = await call("PATCH", `/api/v1/offers/${id}`, { priority, version });
      latencies.push(performance.now() - t);
      if (res.status === 200) {
        ok++;
        versions.set(i, Number(res.json?.version));
      } else {
        versions.delete(i);
        throw new Error(`PATCH ${id}: HTTP ${res.status} ${res.text.slice(0, 300)}`);
      }
    } catch (err) {
      failed++;
      if (failures.length < 5) failures.push(err instanceof Error ? err.message : String(err));
    }
    const wait = intervalMs - (Date.now() - started);
    for (let waited = 0; !stopping && waited < wait; waited += 50) await sleep(Math.min(50, wait - waited));
  }
  latencies.sort((a, b) => a - b);
  const pct = (p: number) =>
    latencies.length ? (latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] as number) : 0;
  process.stdout.write(
    `offer changes: ${ok} ok, ${failed} failed, one every ${intervalMs} ms over ${targets.length} offers; ` +
      `PATCH latency p50 ${pct(0.5).toFixed(0)} ms, max ${(latencies[latencies.length - 1] ?? 0).toFixed(0)} ms` +
      `${failures.length ? `; first failures: ${failures.join(" | ")}` : ""}\n`,
  );
} else {
  usage();
}
