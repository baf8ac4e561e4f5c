// Generates the scale data set: tenant `scale` with 10,000 offers, 1,000,000 customer profiles and
// 10,000,000 interactions over the last 60 days, in a fresh database, with set-based SQL (the catalog through
// the catalog import).
//
//   API_KEY_PEPPER=… bun bench/scale-generate.ts [server-url] [database]            everything, from scratch
//   API_KEY_PEPPER=… bun bench/scale-generate.ts --key-only [server-url] [database] only a new API key
//
// server-url defaults to DATABASE_URL or postgres://postgres@127.0.0.1:5432/postgres; database to
// kaireon_scale (dropped first if it exists). Sizes come from the environment: OFFERS (10000), PROFILES
// (1000000), INTERACTIONS (10000000), DAYS (60), CATEGORIES (50). The API key is SCALE_API_KEY, or a new one
// printed on stdout; only its HMAC under API_KEY_PEPPER is stored. Progress and timings go to stderr.
//
// Ids are fixed-width so a load script can make them: customers cust_0000001 … cust_1000000, offers
// off_00001 … off_10000, categories cat_001 …. A few "flagship" offers (priority 95-100, the highest business
// values and click rates) rank first for most customers; some customers get 3-5 recent impressions of one
// (the frequency cap must then hide it) or a recent dismiss (outcome suppression), so the contact policies
// of the flow have something to act on.

import { fromJson, type JsonValue, toJson } from "@bufbuild/protobuf";
import postgres from "postgres";
import { CatalogDocumentSchema } from "../gen/kaireon/v1/catalog_pb.ts";
import type { FlowDefinition } from "../src/decisioning/definitions.ts";
import { newApiKey, newApiKeyId } from "../src/ids.ts";
import { API_KEY_PATTERN, hashApiKey } from "../src/services/auth.ts";
import { applyCatalogDocument } from "../src/services/catalog.ts";
import { catalogDocumentOf } from "../src/services/catalog-document.ts";
import { type Db, openPostgres, type Queryable } from "../src/store/db.ts";
import { migrate } from "../src/store/migrate.ts";
import { insertApiKey } from "../src/store/tenants.ts";

export const TENANT = "scale";
export const FLOW_ID = "df_scale";
export const KEY_NAME = "scale-bench";
/**
 * An enterprise plan's "configured" limits, set high enough that a load test measures decisions rather
 * than 429s: the rate-limit check itself (a Redis script per call) still runs on every request.
 */
const TENANT_SETTINGS = { rateLimitPerMinute: 100_000_000, monthlyDecisionQuota: 1_000_000_000_000 };

const args = process.argv.slice(2);
const keyOnly = args[0] === "--key-only";
const positional = keyOnly ? args.slice(1) : args;
const serverUrl = positional[0] || process.env.DATABASE_URL || "postgres://postgres@127.0.0.1:5432/postgres";
const dbName = positional[1] || "kaireon_scale";
if (!/^[a-z_][a-z0-9_]*$/.test(dbName)) fail(`database name must match [a-z_][a-z0-9_]*, got '${dbName}'`);

function envInt(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name];
  const n = raw === undefined || raw === "" ? fallback : Number(raw.replaceAll("_", ""));
  if (!Number.isInteger(n) || n < min || n > max) fail(`${name} must be a whole number from ${min} to ${max}, got '${raw}'`);
  return n;
}

// Fixed id widths keep ids sortable and let the wrk script build them without a lookup.
const OFFERS = envInt("OFFERS", 10_000, 10, 99_999);
const PROFILES = envInt("PROFILES", 1_000_000, 100, 9_999_999);
const INTERACTIONS = envInt("INTERACTIONS", 10_000_000, 0, 1_000_000_000);
const DAYS = envInt("DAYS", 60, 1, 365);
const CATEGORIES = envInt("CATEGORIES", 50, 1, 999);
const PROFILE_CHUNK = 100_000;

const pepper = process.env.API_KEY_PEPPER ?? "";
if (pepper.length < 16) fail("API_KEY_PEPPER is required (at least 16 characters): the service must run with the same one");
const givenKey = process.env.SCALE_API_KEY || undefined;
if (givenKey && !API_KEY_PATTERN.test(givenKey)) fail("SCALE_API_KEY must be krn_ followed by 32-128 letters or digits");

function fail(message: string): never {
  process.stderr.write(`scale-generate: ${message}\n`);
  process.exit(2);
}

const say = (line: string) => process.stderr.write(`${line}\n`);
const fmt = (n: number | bigint) => Number(n).toLocaleString("en-US");
const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

const timings: [string, number][] = [];
async function step<T>(name: string, fn: () => Promise<T>): Promise<T> {
  say(`==> ${name}`);
  const t = performance.now();
  const result = await fn();
  const ms = performance.now() - t;
  timings.push([name, ms]);
  say(`    ${name}: ${secs(ms)}`);
  return result;
}

function withDatabase(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

/** Runs statements in one transaction with bulk-load session settings that end with it. */
function bulk<T>(db: Db, fn: (tx: Queryable) => Promise<T>): Promise<T> {
  return db.transaction(async (tx) => {
    await tx.query("set local synchronous_commit = off");
    await tx.query("set local work_mem = '256MB'");
    return fn(tx);
  });
}

// ---------------------------------------------------------------------------------------------------------
// Catalog

// Like the demo: loyal customers get a better rate.
const PERSONALIZED_RATE = "round(base_rate - (customer.loyalty_score >= 80 ? 2.5 : customer.loyalty_score >= 50 ? 1.25 : 0), 2)";
const FEE_WAIVER = "customer.credit_score >= 700 && customer.loyalty_score >= 80";
const CREDIT_650 = "coalesce(customer.credit_score, 0) >= 650";
const UNDER_30 = "coalesce(customer.age, 99) < 30";
const SEGMENTS = ["mortgage_ready", "premium", "young_adult", "small_business"];

/** Offer numbers (1-based) of the flagship offers: spread evenly over the catalog, at least 2. */
function flagshipOffers(): number[] {
  const n = Math.max(2, Math.floor(OFFERS / 500));
  return Array.from({ length: n }, (_, j) => Math.min(OFFERS, Math.max(1, Math.round(((j + 0.5) * OFFERS) / n))));
}

const flowDefinition = {
  score: {
    method: "prie",
    weights: { propensity: 0.4, relevance: 0.2, impact: 0.3, emphasis: 0.1 },
    propensity: "mean",
    priorWeight: 10,
  },
  // The contact-policy format of the flow definition (SPEC §4.4).
  policies: [
    { type: "frequency_cap", scope: "offer", max: 3, window: "week" },
    { type: "outcome_suppression", days: 30 },
  ],
} as FlowDefinition;

async function loadCatalog(db: Db): Promise<void> {
  const flagship = flagshipOffers();
  await db.transaction(async (tx) => {
    await tx.query("insert into tenants (id, name, plan, settings) values ($1, $2, 'enterprise', $3)", [
      TENANT,
      "Scale Bench Bank",
      TENANT_SETTINGS,
    ]);
    // The whole catalog goes through the catalog import, with every check of every kind; offers and
    // creatives are made from the offer model below.
    const seed = catalogDocumentOf({
      categories: Array.from({ length: CATEGORIES }, (_, k) => {
        const i = k + 1;
        return {
          id: `cat_${String(i).padStart(3, "0")}`,
          name: `Category ${i}`,
          fields: { base_rate: Math.round((3.99 + ((i * 1.37) % 20)) * 100) / 100 },
          computed: { personalized_rate: PERSONALIZED_RATE },
        };
      }),
      offers: [],
      channels: [
        { id: "ch_web", name: "Web", type: "web", implicitImpressions: false },
        { id: "ch_email", name: "Email", type: "email", implicitImpressions: false },
      ],
      placements: [
        { channelId: "ch_web", id: "hero_offer", name: "Home page hero" },
        { channelId: "ch_web", id: "sidebar", name: "Sidebar" },
        { channelId: "ch_email", id: "hero_offer", name: "Hero offer" },
        { channelId: "ch_email", id: "footer", name: "Footer" },
      ],
      creatives: [],
      experiments: [],
      flows: [{ id: FLOW_ID, name: "Scale default flow", isDefault: true, definition: flowDefinition }],
    });

    // The offer model: every offer's number, id, hashes for its varied settings, flagship flag, email flag
    // and click rate. Kept as a table while generating (interactions draw from it), dropped at the end.
    await tx.query(`create table scale_offer_model (
      i int primary key, offer_id text not null, h1 int not null, h2 int not null, h3 int not null,
      flagship boolean not null, flagship_no int, has_email boolean not null, ctr float8 not null)`);
    await tx.query(
      `insert into scale_offer_model
       select i, 'off_' || lpad(i::text, 5, '0'), h1, h2, h3, f, array_position($2::int[], i), (h3 % 10 = 0),
              case when f then 0.20 + (h1 % 6) / 100.0 else 0.01 + (h2 % 150) / 1000.0 end
         from (select i, abs(hashtext('p' || i)) as h1, abs(hashtext('q' || i)) as h2, abs(hashtext('e' || i)) as h3,
                      i = any($2::int[]) as f
                 from generate_series(1, $1::int) i) s`,
      [OFFERS, flagship],
    );
    const offers = await tx.query<{ o: Record<string, unknown> }>(
      `select jsonb_strip_nulls(jsonb_build_object(
                'offerId', m.offer_id,
                'categoryId', 'cat_' || lpad((1 + (m.i - 1) % $1::int)::text, 3, '0'),
                'name', case when m.flagship then 'Flagship offer ' else 'Offer ' end || m.i,
                'description', 'Synthetic offer number ' || m.i,
                'status', case when not m.flagship and m.h2 % 100 = 7 then 'inactive' else 'active' end,
                'endsAt', case when not m.flagship and m.h2 % 100 = 8 then to_char((now() - interval '3 days') at time zone 'utc', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') end,
                'priority', case when m.flagship then 95 + m.h1 % 6 else 10 + m.h1 % 91 end,
                'businessValue', case when m.flagship then 900 + m.h2 % 101 else 20 + m.h2 % 800 end,
                'weight', 100,
                'fields', case when m.h3 % 3 = 0 then jsonb_build_object('base_rate', round((4.99 + (m.h1 % 1500) / 100.0)::numeric, 2))
                               else '{}'::jsonb end,
                'computed', case when m.h3 % 7 = 0 then jsonb_build_object('fee_waiver', $2::text) else '{}'::jsonb end,
                'qualification', case
                  when m.flagship then case when m.flagship_no % 2 = 0 then jsonb_build_object('condition', $3::text) else '{}'::jsonb end
                  when m.h2 % 10 in (0, 1) then jsonb_build_object('segment', ($5::text[])[1 + m.h1 % 4])
                  when m.h2 % 10 = 2 then jsonb_build_object('condition', $3::text)
                  when m.h2 % 10 = 3 then jsonb_build_object('condition', $4::text)
                  when m.h2 % 10 = 4 then jsonb_build_object('minPropensity', 0.1)
                  when m.h2 % 10 = 5 then jsonb_build_object('segment', ($5::text[])[1 + m.h1 % 4], 'condition', $3::text)
                  else '{}'::jsonb
                end)) as o
         from scale_offer_model m order by m.i`,
      [CATEGORIES, FEE_WAIVER, CREDIT_650, UNDER_30, SEGMENTS],
    );
    // Every offer has a web creative (any placement); about one in ten an email one on hero_offer.
    const creatives = await tx.query<{ c: Record<string, unknown> }>(
      `select jsonb_build_object(
                'creativeId', 'cr_' || m.offer_id || '_web', 'offerId', m.offer_id, 'channelId', 'ch_web',
                'name', 'Web ' || m.offer_id, 'status', 'active',
                'content', jsonb_build_object(
                  'headline', '{{offer.name}}',
                  'body', 'Picked for you, {{customer.first_name | "valued customer"}}: {{personalized_rate}}% APR.',
                  'ctaText', 'See Details',
                  'ctaUrl', 'https://example.com/offers/' || m.offer_id)) as c
         from scale_offer_model m
       union all
       select jsonb_build_object(
                'creativeId', 'cr_' || m.offer_id || '_email', 'offerId', m.offer_id, 'channelId', 'ch_email',
                'placementId', 'hero_offer', 'name', 'Email ' || m.offer_id, 'status', 'active',
                'content', jsonb_build_object(
                  'subject', '{{customer.first_name | "Hello"}}, {{offer.name}} at {{personalized_rate}}%',
                  'headline', '{{offer.name}}',
                  'body', 'A rate of {{personalized_rate}}% APR, picked for you.',
                  'ctaText', 'Apply Now',
                  'ctaUrl', 'https://example.com/apply/' || m.offer_id)) as c
         from scale_offer_model m where m.has_email`,
    );
    const document = fromJson(CatalogDocumentSchema, {
      ...(toJson(CatalogDocumentSchema, seed) as Record<string, JsonValue>),
      offers: offers.map((r) => r.o as JsonValue),
      creatives: creatives.map((r) => r.c as JsonValue),
    });
    const t = performance.now();
    await applyCatalogDocument(tx, { tenantId: TENANT, keyId: "bench", requestId: "scale-generate" }, document);
    console.error(
      `catalog import: ${offers.length} offers, ${creatives.length} creatives in ${((performance.now() - t) / 1000).toFixed(1)} s`,
    );
  });
}

async function createApiKey(db: Queryable): Promise<string> {
  const key = givenKey ?? newApiKey();
  // A database generated before the limits existed gets them too.
  await db.query("update tenants set settings = settings || $2::jsonb where id = $1", [TENANT, TENANT_SETTINGS]);
  await db.query("delete from api_keys where tenant_id = $1 and name = $2", [TENANT, KEY_NAME]);
  await insertApiKey(db, {
    id: newApiKeyId(),
    tenantId: TENANT,
    hash: hashApiKey(key, pepper),
    prefix: key.slice(0, 12),
    name: KEY_NAME,
    scopes: ["decide", "admin"],
    expiresAt: null,
  });
  return key;
}

// ---------------------------------------------------------------------------------------------------------
// Customers and history

const FIRST_NAMES = ["Alex", "Maria", "James", "Aisha", "Chen", "Olivia", "Noah", "Fatima", "Liam", "Sofia", "Kenji", "Emma"];
const LAST_NAMES = ["Smith", "Garcia", "Nguyen", "Okafor", "Muller", "Rossi", "Kim", "Silva", "Cohen", "Patel"];

async function loadProfiles(db: Db): Promise<void> {
  for (let lo = 1; lo <= PROFILES; lo += PROFILE_CHUNK) {
    const hi = Math.min(PROFILES, lo + PROFILE_CHUNK - 1);
    const t = performance.now();
    await bulk(db, (tx) =>
      tx.query(
        `insert into customer_profiles (tenant_id, customer_id, attributes, segments)
         select $1, 'cust_' || lpad(g::text, 7, '0'),
                jsonb_build_object(
                  'first_name', ($4::text[])[1 + floor(r1 * cardinality($4::text[]))::int],
                  'last_name', ($5::text[])[1 + floor(r2 * cardinality($5::text[]))::int],
                  'loyalty_score', floor(r3 * 100)::int,
                  'credit_score', 550 + floor(r4 * 300)::int,
                  'age', age,
                  'tier', case when r5 < 0.2 then 'gold' else 'standard' end),
                array_remove(array['card_member',
                  case when r6 < 0.25 then 'mortgage_ready' end,
                  case when r7 < 0.15 then 'premium' end,
                  case when age < 30 then 'young_adult' end,
                  case when r8 < 0.10 then 'small_business' end], null)
           from (select g, random() r1, random() r2, random() r3, random() r4, random() r5, random() r6, random() r7,
                        random() r8, 18 + floor(random() * 60)::int as age
                   from generate_series($2::int, $3::int) g) s`,
        [TENANT, lo, hi, FIRST_NAMES, LAST_NAMES],
      ),
    );
    say(`    profiles ${fmt(lo)}-${fmt(hi)} of ${fmt(PROFILES)} in ${secs(performance.now() - t)}`);
  }
}

/** Monthly partitions (the service's naming) for the whole history, so none of it lands in the default one. */
async function historyPartitions(db: Db, from: Date): Promise<void> {
  const now = new Date();
  let y = from.getUTCFullYear();
  let m = from.getUTCMonth();
  while (Date.UTC(y, m, 1) <= now.getTime()) {
    const name = `interactions_${y}_${String(m + 1).padStart(2, "0")}`;
    const start = new Date(Date.UTC(y, m, 1)).toISOString();
    const end = new Date(Date.UTC(y, m + 1, 1)).toISOString();
    if (m === 11) {
      y++;
      m = 0;
    } else {
      m++;
    }
    if ((await db.query("select 1 from pg_class where relname = $1", [name])).length > 0) continue;
    await db.exec(`create table ${name} partition of interactions for values from ('${start}') to ('${end}')`);
    say(`    created partition ${name}`);
  }
}

// Outcome mix per row, from the offer's click rate: clicks 0.8·ctr, conversions 0.2·ctr, dismiss 3%,
// not_interested 0.5%, impressions the rest. Popular offers (low numbers) are drawn more often.
const INTERACTION_SELECT = `
  select $1, 'int_s' || lpad(x.n::text, 10, '0'), 'cust_' || lpad(x.c::text, 7, '0'), x.offer_id, x.channel_id,
         'cr_' || x.offer_id || case when x.channel_id = 'ch_email' then '_email' else '_web' end,
         case when x.u < x.ctr * 0.8 then 'click'
              when x.u < x.ctr then 'conversion'
              when x.u < x.ctr + 0.03 then 'dismiss'
              when x.u < x.ctr + 0.035 then 'not_interested'
              else 'impression' end,
         x.ts
    from (select s.n, s.c, s.u, s.ts, m.offer_id, m.ctr,
                 case when m.has_email and s.v < 0.4 then 'ch_email' else 'ch_web' end as channel_id
            from (select $2::bigint + g as n,
                         1 + floor(random() * $3::int)::int as c,
                         1 + floor(power(random(), 2) * $4::int)::int as oi,
                         random() as u,
                         random() as v,
                         $5::timestamptz + random() * ($6::timestamptz - $5::timestamptz) as ts
                    from generate_series(1, $7::int) g) s
            join scale_offer_model m on m.i = s.oi) x`;

async function loadInteractions(db: Db, bulkCount: number, start: Date, end: Date): Promise<void> {
  const span = end.getTime() - start.getTime();
  let done = 0;
  const t0 = performance.now();
  for (let d = 0; d < DAYS; d++) {
    const n = Math.floor((bulkCount * (d + 1)) / DAYS) - Math.floor((bulkCount * d) / DAYS);
    if (n === 0) continue;
    const from = new Date(start.getTime() + (span * d) / DAYS);
    const to = new Date(start.getTime() + (span * (d + 1)) / DAYS);
    const t = performance.now();
    await bulk(db, (tx) =>
      tx.query(
        `insert into interactions (tenant_id, id, customer_id, offer_id, channel_id, creative_id, outcome_type, recorded_at) ${INTERACTION_SELECT}`,
        [TENANT, done, PROFILES, OFFERS, from, to, n],
      ),
    );
    done += n;
    const total = (performance.now() - t0) / 1000;
    say(
      `    day ${d + 1}/${DAYS} (${from.toISOString().slice(0, 10)}): ${fmt(n)} rows in ${secs(performance.now() - t)}; ` +
        `${fmt(done)} so far, ${fmt(Math.round(done / total))} rows/s`,
    );
  }
}

/** Customers with planted history (of each kind). */
const plantedCustomers = () => Math.max(1, Math.min(1000, Math.floor(PROFILES / 1000)));

/** Rows the planted history adds: 3 + j % 3 impressions for capped customer j, one dismiss per other customer. */
function plantedCount(): number {
  let n = 0;
  for (let j = 1; j <= plantedCustomers(); j++) n += 3 + (j % 3) + 1;
  return n;
}

/** Planted history for the contact policies: recent repeated impressions and recent dismisses of flagship offers. */
async function plantPolicyHistory(db: Db, firstId: number, now: Date): Promise<number> {
  const k = plantedCustomers();
  const step = Math.floor(PROFILES / (k + 1));
  const rows = await bulk(db, async (tx) => {
    // Customer step·j gets 3-5 impressions of one flagship offer on the web within the last 6 days.
    const capped = await tx.query<{ n: number }>(
      `with f as (select row_number() over (order by i) - 1 as j, offer_id from scale_offer_model where flagship),
            nf as (select count(*) as n from f),
            picks as (select j, $2::int * j as c, 3 + j % 3 as times from generate_series(1, $3::int) j)
       insert into interactions (tenant_id, id, customer_id, offer_id, channel_id, creative_id, outcome_type, recorded_at)
       select $1, 'int_p' || lpad(($4::bigint + row_number() over ())::text, 10, '0'), 'cust_' || lpad(p.c::text, 7, '0'),
              f.offer_id, 'ch_web', 'cr_' || f.offer_id || '_web', 'impression',
              $5::timestamptz - interval '1 hour' - random() * interval '6 days'
         from picks p cross join nf join f on f.j = p.j % nf.n
         cross join lateral generate_series(1, p.times) t
       returning 1`,
      [TENANT, step, k, firstId, now],
    );
    // Customer step·j + 1 dismissed one flagship offer 1-20 days ago.
    const dismissed = await tx.query(
      `with f as (select row_number() over (order by i) - 1 as j, offer_id from scale_offer_model where flagship),
            nf as (select count(*) as n from f)
       insert into interactions (tenant_id, id, customer_id, offer_id, channel_id, creative_id, outcome_type, recorded_at)
       select $1, 'int_q' || lpad((p.j)::text, 10, '0'), 'cust_' || lpad(($2::int * p.j + 1)::text, 7, '0'),
              f.offer_id, 'ch_web', 'cr_' || f.offer_id || '_web', 'dismiss',
              $4::timestamptz - interval '1 day' - random() * interval '19 days'
         from generate_series(1, $3::int) p(j) cross join nf join f on f.j = p.j % nf.n
       returning 1`,
      [TENANT, step, k, now],
    );
    return capped.length + dismissed.length;
  });
  say(
    `    ${fmt(rows)} planted rows: ${fmt(k)} customers with 3-5 impressions of a flagship offer in the last week, ${fmt(k)} with a dismiss`,
  );
  return rows;
}

async function offerChannelStats(db: Db): Promise<void> {
  await bulk(db, (tx) =>
    tx.query(
      `insert into offer_channel_stats (tenant_id, offer_id, channel_id, impressions, clicks, conversions, negatives)
       select tenant_id, offer_id, channel_id,
              count(*) filter (where outcome_type = 'impression'),
              count(*) filter (where outcome_type = 'click'),
              count(*) filter (where outcome_type = 'conversion'),
              count(*) filter (where outcome_type in ('dismiss', 'not_interested', 'opt_out'))
         from interactions where tenant_id = $1
        group by tenant_id, offer_id, channel_id`,
      [TENANT],
    ),
  );
}

// ---------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const url = withDatabase(serverUrl, dbName);
  if (keyOnly) {
    const db = openPostgres({ url, poolSize: 1 });
    try {
      const key = await createApiKey(db);
      if (!givenKey) process.stdout.write(`${key}\n`);
      say(`new API key '${KEY_NAME}' for tenant ${TENANT} in ${dbName}`);
    } finally {
      await db.close();
    }
    return;
  }

  const started = performance.now();
  say(
    `scale data set in ${dbName}: ${fmt(CATEGORIES)} categories, ${fmt(OFFERS)} offers, ${fmt(PROFILES)} profiles, ` +
      `${fmt(INTERACTIONS)} interactions over ${DAYS} days`,
  );
  await step("create database", async () => {
    const admin = postgres(withDatabase(serverUrl, "postgres"), { onnotice: () => {}, max: 1, connect_timeout: 10 });
    try {
      await admin.unsafe(`drop database if exists ${dbName} with (force)`);
      await admin.unsafe(`create database ${dbName}`);
    } finally {
      await admin.end({ timeout: 5 });
    }
  });

  const db = openPostgres({ url, poolSize: 1, connectTimeoutSeconds: 10 });
  try {
    const now = new Date();
    const start = new Date(now.getTime() - DAYS * 86_400_000);
    await step("migrations", async () => {
      const { applied } = await migrate(db, now);
      say(`    applied ${applied.join(", ")}`);
      await historyPartitions(db, start);
    });
    await step("catalog (tenant, categories, offers, creatives, flow)", () => loadCatalog(db));
    const key = await step("API key", () => createApiKey(db));
    await step("customer profiles", () => loadProfiles(db));
    // The planted rows are part of the total.
    const bulkCount = Math.max(0, INTERACTIONS - plantedCount());
    await step("interactions", () => loadInteractions(db, bulkCount, start, now));
    const plantedRows = await step("contact-policy history", () => plantPolicyHistory(db, bulkCount, now));
    await step("offer_channel_stats", () => offerChannelStats(db));
    await step("vacuum analyze", async () => {
      await db.exec("drop table scale_offer_model");
      await db.exec("vacuum (analyze) customer_profiles, interactions, offers, creatives, offer_channel_stats, categories");
    });

    const counts = await db.query<Record<string, bigint>>(
      `select (select count(*) from offers where tenant_id = $1) as offers,
              (select count(*) from categories where tenant_id = $1) as categories,
              (select count(*) from creatives where tenant_id = $1 and channel_id = 'ch_web') as web_creatives,
              (select count(*) from creatives where tenant_id = $1 and channel_id = 'ch_email') as email_creatives,
              (select count(*) from customer_profiles where tenant_id = $1) as profiles,
              (select count(*) from interactions where tenant_id = $1) as interactions,
              (select count(*) from interactions where tenant_id = $1 and outcome_type = 'impression') as impressions,
              (select count(*) from interactions_default) as in_default_partition,
              (select count(*) from offer_channel_stats where tenant_id = $1) as stats_rows`,
      [TENANT],
    );
    const sizes = await db.query<{ name: string; size: string }>(
      `select 'interactions (all partitions, with indexes)' as name,
              pg_size_pretty(sum(pg_total_relation_size(relid))) as size from pg_partition_tree('interactions')
       union all select 'customer_profiles (with indexes)', pg_size_pretty(pg_total_relation_size('customer_profiles'))
       union all select 'database', pg_size_pretty(pg_database_size(current_database()))`,
    );

    say("\nTimings:");
    for (const [name, ms] of timings) say(`  ${name.padEnd(56)} ${secs(ms).padStart(9)}`);
    say(`  ${"total".padEnd(56)} ${secs(performance.now() - started).padStart(9)}`);
    say("\nRows (tenant scale):");
    for (const [name, n] of Object.entries(counts[0] ?? {})) say(`  ${name.padEnd(22)} ${fmt(n).padStart(12)}`);
    say(`  (planted contact-policy rows: ${fmt(plantedRows)})`);
    say("\nSizes:");
    for (const s of sizes) say(`  ${s.name.padEnd(46)} ${s.size}`);
    say(`\nTenant ${TENANT}, default flow ${FLOW_ID}; API key '${KEY_NAME}'${givenKey ? " from SCALE_API_KEY" : " (printed on stdout)"}`);
    if (!givenKey) process.stdout.write(`${key}\n`);
  } finally {
    await db.close();
  }
}

await main();
