// The demo tenant: a small bank's catalog that makes the API tutorial's examples work verbatim, seeded
// on a database without tenants (unless SEED_DEMO=false).

import { type CreativeDef, offerWithDefaults } from "./decisioning/definitions.ts";
import { assignVariant, type Variant } from "./decisioning/experiment.ts";
import { hashApiKey } from "./services/auth.ts";
import { applyCatalogDocument } from "./services/catalog.ts";
import { type CatalogSeed, catalogDocumentOf } from "./services/catalog-document.ts";
import { newApiKey, newApiKeyId } from "./ids.ts";
import type { Db, Queryable } from "./store/db.ts";
import { insertApiKey } from "./store/tenants.ts";
import { seededRandom } from "./random.ts";

export const DEMO_TENANT = "demo";

// Loyal customers get a better rate: 2.5 points off from a loyalty score of 80, 1.25 from 50.
const PERSONALIZED_RATE = "round(base_rate - (customer.loyalty_score >= 80 ? 2.5 : customer.loyalty_score >= 50 ? 1.25 : 0), 2)";

const offer = offerWithDefaults;

function creative(
  id: string,
  offerId: string,
  channelId: string,
  placementId: string | null,
  content: Record<string, unknown>,
): CreativeDef {
  return { id, offerId, channelId, placementId, name: id, status: "active", content };
}

function emailContent(subject: string, headline: string, body: string, ctaText: string, ctaUrl: string) {
  return { subject, headline, body, ctaText, ctaUrl };
}

export const demoCatalog: CatalogSeed = {
  categories: [
    { id: "cat_credit_cards", name: "Credit Cards", fields: { base_rate: 21.99 }, computed: { personalized_rate: PERSONALIZED_RATE } },
    { id: "cat_loans", name: "Loans", fields: { base_rate: 9.5 }, computed: { personalized_rate: PERSONALIZED_RATE } },
    { id: "cat_deposits", name: "Savings and Deposits", fields: { apy: 4.1 }, computed: {} },
    { id: "cat_insurance", name: "Insurance", fields: {}, computed: {} },
    { id: "cat_banking", name: "Everyday Banking", fields: {}, computed: {} },
  ],
  offers: [
    offer({
      id: "act_platinum_cc",
      categoryId: "cat_credit_cards",
      name: "Platinum Rewards Card",
      description: "3x points on every purchase",
      priority: 90,
      businessValue: 450,
      fields: { base_rate: 19.99, annual_fee: 95 },
      computed: { annual_fee_waiver: "customer.credit_score >= 700 && customer.loyalty_score >= 80" },
    }),
    offer({
      id: "act_cashback",
      categoryId: "cat_credit_cards",
      name: "Cash Back Card",
      description: "2% cash back on everything",
      priority: 80,
      businessValue: 300,
      fields: { base_rate: 20.74, annual_fee: 0 },
    }),
    offer({
      id: "act_travel_cc",
      categoryId: "cat_credit_cards",
      name: "Travel Rewards Card",
      priority: 75,
      businessValue: 380,
      fields: { base_rate: 21.49 },
    }),
    offer({
      id: "act_student_cc",
      categoryId: "cat_credit_cards",
      name: "Student Card",
      priority: 60,
      businessValue: 120,
      fields: { base_rate: 23.99 },
      qualification: { condition: "coalesce(customer.age, 99) < 26" },
    }),
    offer({
      id: "act_balance_transfer",
      categoryId: "cat_credit_cards",
      name: "Balance Transfer Card",
      priority: 65,
      businessValue: 260,
      fields: { base_rate: 16.99 },
    }),
    offer({
      id: "act_secured_cc",
      categoryId: "cat_credit_cards",
      name: "Secured Card",
      priority: 40,
      businessValue: 80,
      fields: { base_rate: 24.99 },
      qualification: { condition: "coalesce(customer.credit_score, 0) < 620" },
    }),
    offer({
      id: "act_home_loan",
      categoryId: "cat_loans",
      name: "Home Loan",
      priority: 85,
      businessValue: 900,
      fields: { base_rate: 6.49 },
      qualification: { segment: "mortgage_ready" },
    }),
    offer({
      id: "act_auto_loan",
      categoryId: "cat_loans",
      name: "Auto Loan",
      priority: 70,
      businessValue: 400,
      fields: { base_rate: 7.99 },
      qualification: { minPropensity: 0.55 },
    }),
    offer({
      id: "act_personal_loan",
      categoryId: "cat_loans",
      name: "Personal Loan",
      priority: 55,
      businessValue: 250,
      fields: { base_rate: 11.99 },
    }),
    offer({
      id: "act_student_refi",
      categoryId: "cat_loans",
      name: "Student Loan Refinance",
      priority: 45,
      businessValue: 220,
      fields: { base_rate: 5.99 },
    }),
    offer({ id: "act_hy_savings", categoryId: "cat_deposits", name: "High-Yield Savings", priority: 60, businessValue: 150 }),
    offer({ id: "act_cd_12m", categoryId: "cat_deposits", name: "12-Month CD", priority: 50, businessValue: 130, fields: { apy: 4.6 } }),
    offer({ id: "act_travel_insurance", categoryId: "cat_insurance", name: "Travel Insurance", priority: 45, businessValue: 90 }),
    offer({ id: "act_life_insurance", categoryId: "cat_insurance", name: "Term Life Insurance", priority: 50, businessValue: 200 }),
    offer({ id: "act_premium_checking", categoryId: "cat_banking", name: "Premium Checking", priority: 55, businessValue: 110 }),
  ],
  channels: [
    { id: "ch_email", name: "Email", type: "email", implicitImpressions: false },
    { id: "ch_web", name: "Web", type: "web", implicitImpressions: false },
    { id: "ch_sms", name: "SMS", type: "sms", implicitImpressions: false },
  ],
  placements: [
    { channelId: "ch_email", id: "hero_offer", name: "Hero offer" },
    { channelId: "ch_email", id: "footer", name: "Footer" },
    { channelId: "ch_web", id: "hero_offer", name: "Home page hero" },
    { channelId: "ch_web", id: "sidebar", name: "Sidebar" },
  ],
  creatives: [
    creative(
      "treat_platinum_email",
      "act_platinum_cc",
      "ch_email",
      "hero_offer",
      emailContent(
        'You\'re invited, {{customer.first_name | "friend"}} - Earn 3x Rewards',
        "{{offer.name}}",
        "Start earning 3x points with a personalized rate of {{personalized_rate}}% APR.",
        "Apply Now",
        "https://example.com/apply/platinum",
      ),
    ),
    creative(
      "treat_platinum_email_variant_a",
      "act_platinum_cc",
      "ch_email",
      "hero_offer",
      emailContent(
        '{{customer.first_name | "Hello"}}, your Platinum invitation is waiting',
        "{{offer.name}}",
        "3x points on everything, at {{personalized_rate}}% APR just for you.",
        "Claim My Card",
        "https://example.com/apply/platinum?v=a",
      ),
    ),
    creative(
      "treat_cashback_email",
      "act_cashback",
      "ch_email",
      "hero_offer",
      emailContent(
        '{{customer.first_name | "Hi"}}, get 2% cash back on everything',
        "{{offer.name}}",
        "No annual fee, 2% cash back on all purchases.",
        "Learn More",
        "https://example.com/apply/cashback",
      ),
    ),
    creative(
      "treat_home_loan_email",
      "act_home_loan",
      "ch_email",
      "hero_offer",
      emailContent(
        "Your new home starts here",
        "{{offer.name}}",
        "Rates from {{personalized_rate}}% for pre-approved buyers.",
        "Get Pre-Approved",
        "https://example.com/home",
      ),
    ),
    creative(
      "treat_auto_loan_email",
      "act_auto_loan",
      "ch_email",
      "hero_offer",
      emailContent(
        "Drive away for less",
        "{{offer.name}}",
        "Auto loans from {{personalized_rate}}% APR.",
        "Check My Rate",
        "https://example.com/auto",
      ),
    ),
    creative(
      "treat_savings_email_footer",
      "act_hy_savings",
      "ch_email",
      "footer",
      emailContent("Grow your savings", "{{offer.name}}", "Earn {{apy}}% APY.", "Open Account", "https://example.com/savings"),
    ),
    ...[
      "act_platinum_cc",
      "act_cashback",
      "act_travel_cc",
      "act_student_cc",
      "act_balance_transfer",
      "act_secured_cc",
      "act_home_loan",
      "act_auto_loan",
      "act_personal_loan",
      "act_student_refi",
      "act_hy_savings",
      "act_cd_12m",
      "act_travel_insurance",
      "act_life_insurance",
      "act_premium_checking",
    ].map((id) =>
      creative(`treat_${id.slice(4)}_web`, id, "ch_web", null, {
        headline: "{{offer.name}}",
        body: 'Picked for you, {{customer.first_name | "valued customer"}}.',
        ctaText: "See Details",
        ctaUrl: `https://example.com/offers/${id}`,
      }),
    ),
    ...["act_cashback", "act_personal_loan", "act_hy_savings"].map((id) =>
      creative(`treat_${id.slice(4)}_sms`, id, "ch_sms", null, {
        text: '{{customer.first_name | "Hi"}}: {{offer.name}} - reply YES to learn more.',
      }),
    ),
  ],
  experiments: [
    {
      id: "exp_cc_cta_test",
      offerId: "act_platinum_cc",
      channelId: "ch_email",
      status: "running",
      variants: [
        { variant: "control", creativeId: "treat_platinum_email", weight: 70 },
        { variant: "variant_a", creativeId: "treat_platinum_email_variant_a", weight: 30 },
      ],
    },
  ],
  flows: [
    {
      id: "df_credit_cards",
      name: "Credit cards and lending",
      isDefault: true,
      definition: {
        score: {
          method: "prie",
          weights: { propensity: 0.4, relevance: 0.2, impact: 0.3, emphasis: 0.1 },
          propensity: "mean",
          priorWeight: 10,
        },
      },
    },
  ],
};

const FIRST_NAMES = ["Alex", "Maria", "James", "Aisha", "Chen", "Olivia", "Noah", "Fatima", "Liam", "Sofia", "Kenji", "Emma"];

export function demoCustomers(count: number) {
  const rand = seededRandom(20260310);
  const customers = [
    {
      customer_id: "cust_12345",
      attributes: { first_name: "Sarah", last_name: "Johnson", loyalty_score: 85, credit_score: 720, age: 34, tier: "gold" },
      segments: ["card_member"],
    },
  ];
  for (let i = 1; i <= count; i++) {
    const age = 18 + Math.floor(rand() * 60);
    const segments = ["card_member"];
    if (rand() < 0.25) segments.push("mortgage_ready");
    customers.push({
      customer_id: `cust_${String(10000 + i).padStart(5, "0")}`,
      attributes: {
        first_name: FIRST_NAMES[Math.floor(rand() * FIRST_NAMES.length)] as string,
        last_name: "Demo",
        loyalty_score: Math.floor(rand() * 100),
        credit_score: 550 + Math.floor(rand() * 300),
        age,
        tier: rand() < 0.2 ? "gold" : "standard",
      },
      segments,
    });
  }
  return customers;
}

/**
 * Synthetic history for the demo experiment, so that its results show something on a fresh start: 2,000
 * email recipients over the last two weeks, split by the real assignment function, converting at 6.0%
 * (control) and 7.5% (variant). The experiment's phase is moved back to when this history starts.
 */
export function demoExperimentHistory(now: Date) {
  const experiment = demoCatalog.experiments[0] as (typeof demoCatalog.experiments)[number];
  const rand = seededRandom(20260311);
  const rates: Record<string, number> = { control: 0.06, variant_a: 0.075 };
  const rows: { id: string; customer_id: string; creative_id: string; outcome_type: string; recorded_at: string }[] = [];
  for (let i = 0; i < 2000; i++) {
    const customerId = `cust_email_${String(i).padStart(4, "0")}`;
    const variant = assignVariant(experiment.id, customerId, experiment.variants) as Variant;
    const shownAt = now.getTime() - 14 * 86_400_000 + Math.floor(rand() * 13 * 86_400_000);
    rows.push({
      id: `int_demo_${i}_i`,
      customer_id: customerId,
      creative_id: variant.creativeId,
      outcome_type: "impression",
      recorded_at: new Date(shownAt).toISOString(),
    });
    if (rand() < (rates[variant.variant] ?? 0)) {
      const convertedAt = new Date(shownAt + Math.floor(rand() * 86_400_000)).toISOString();
      rows.push({
        id: `int_demo_${i}_c`,
        customer_id: customerId,
        creative_id: variant.creativeId,
        outcome_type: "conversion",
        recorded_at: convertedAt,
      });
    }
  }
  return { experiment, rows, phaseStart: new Date(now.getTime() - 15 * 86_400_000) };
}

export interface SeedResult {
  /** The raw API key, when one was created. */
  apiKey: string | null;
}

/** Creates the demo tenant, its catalog, customers and one API key, in one transaction. */
export async function seedDemo(db: Db, opts: { pepper: string; apiKey?: string }): Promise<SeedResult> {
  const apiKey = opts.apiKey ?? newApiKey();
  await db.transaction(async (tx: Queryable) => {
    await tx.query("insert into tenants (id, name, plan) values ($1, $2, 'professional')", [DEMO_TENANT, "Demo Bank"]);
    // Through the catalog import, with every check an operator's own catalog gets.
    await applyCatalogDocument(tx, { tenantId: DEMO_TENANT, keyId: "seed", requestId: "demo-seed" }, catalogDocumentOf(demoCatalog));
    await tx.query(
      `insert into customer_profiles (tenant_id, customer_id, attributes, segments)
       select $1, customer_id, attributes, array(select jsonb_array_elements_text(segments))
         from jsonb_to_recordset($2::jsonb) as c(customer_id text, attributes jsonb, segments jsonb)`,
      [DEMO_TENANT, demoCustomers(300)],
    );
    const history = demoExperimentHistory(new Date());
    await tx.query(
      `insert into interactions (tenant_id, id, customer_id, offer_id, channel_id, creative_id, outcome_type, recorded_at)
       select $1, id, customer_id, $2, $3, creative_id, outcome_type, recorded_at
         from json_to_recordset($4::json) as r(id text, customer_id text, creative_id text, outcome_type text, recorded_at timestamptz)`,
      [DEMO_TENANT, history.experiment.offerId, history.experiment.channelId, history.rows],
    );
    await tx.query(
      `insert into offer_channel_stats (tenant_id, offer_id, channel_id, impressions, conversions)
       values ($1, $2, $3, $4, $5)`,
      [
        DEMO_TENANT,
        history.experiment.offerId,
        history.experiment.channelId,
        history.rows.filter((r) => r.outcome_type === "impression").length,
        history.rows.filter((r) => r.outcome_type === "conversion").length,
      ],
    );
    await tx.query("update experiment_phases set started_at = $3 where tenant_id = $1 and experiment_id = $2", [
      DEMO_TENANT,
      history.experiment.id,
      history.phaseStart,
    ]);
    await insertApiKey(tx, {
      id: newApiKeyId(),
      tenantId: DEMO_TENANT,
      hash: hashApiKey(apiKey, opts.pepper),
      prefix: apiKey.slice(0, 12),
      name: "demo",
      scopes: ["decide", "admin"],
      expiresAt: null,
    });
  });
  return { apiKey };
}

/** The tutorial's Recommend request: the demo tenant answers it as the tutorial shows (the API docs' example). */
export const TUTORIAL_RECOMMEND_REQUEST = {
  customerId: "cust_12345",
  channelId: "ch_email",
  decisionFlowId: "df_credit_cards",
  maxOffers: 3,
  placement: "hero_offer",
  attributes: { tier: "gold", source: "campaign_q1", device: "mobile" },
  trace: true,
};

/** The tutorial's Respond request. */
export const TUTORIAL_RESPOND_REQUEST = {
  customerId: "cust_12345",
  offerId: "act_platinum_cc",
  channelId: "ch_email",
  outcomeType: "click",
  creativeId: "treat_platinum_email",
  traceId: "trace_abc123",
  metadata: { clickPosition: "hero_banner", deviceType: "mobile" },
};
