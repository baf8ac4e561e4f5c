// Contact policies end to end on the demo tenant: each kind lets an offer through under its limit and
// drops it at the limit with the reason in the trace, windows roll with the service's clock, opt-outs are
// cleared by the CLI, and an unreadable history drops the offers under a policy without failing Recommend.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { authHeaders, BUN, postJson, ROOT, startTestService, type TestService } from "./harness.ts";

let svc: TestService;
let realNow: () => Date;
/** The service's clock in these tests: Recommend decides at it and Respond records at it. */
let clockMs = Date.now();
beforeAll(async () => {
  svc = await startTestService();
  realNow = svc.app.deps.clock.now;
  svc.app.deps.clock.now = () => new Date(clockMs);
});
afterAll(async () => {
  svc.app.deps.clock.now = realNow;
  await svc.stop();
});

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** Publishes a new flow of the demo tenant whose definition holds these policies. */
async function flowWithPolicies(flowId: string, policies: unknown[]): Promise<string> {
  const definition = { policies };
  await svc.db.sql`insert into decision_flows (tenant_id, id, name) values ('demo', ${flowId}, ${flowId})`;
  await svc.db.sql`insert into decision_flow_versions (tenant_id, flow_id, version, status, definition, published_at)
    values ('demo', ${flowId}, 1, 'published', ${svc.db.sql.json(definition as never)}, now())`;
  svc.app.deps.catalogs.invalidate("demo");
  return flowId;
}

interface Decided {
  offers: string[];
  filtered: string[];
}

async function recommend(flowId: string, customerId: string, channelId = "ch_web"): Promise<Decided> {
  const res = await postJson(svc.http, "/api/v1/recommend", { customerId, channelId, decisionFlowId: flowId, maxOffers: 50, trace: true });
  expect(res.status).toBe(200);
  const trace = await fetch(`${svc.http}/api/v1/decision-traces/${res.json.traceId}`, { headers: authHeaders() });
  expect(trace.status).toBe(200);
  const body = (await trace.json()) as { stages: { name: string; filtered: string[] }[] };
  const filter = body.stages.find((s) => s.name === "filter");
  return { offers: res.json.recommendations.map((r: { offerId: string }) => r.offerId), filtered: filter?.filtered ?? [] };
}

async function respond(customerId: string, offerId: string, outcomeType: string, channelId = "ch_web") {
  const res = await postJson(svc.http, "/api/v1/respond", { customerId, offerId, channelId, outcomeType });
  expect(res.status).toBe(200);
}

async function cli(...args: string[]) {
  const proc = Bun.spawn([BUN, "src/cli.ts", ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "", DATABASE_URL: svc.db.url, API_KEY_PEPPER: svc.app.config.apiKeyPepper },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { stdout, stderr, code };
}

const EMAIL_OFFERS = ["act_platinum_cc", "act_cashback"];

describe("frequency_cap", () => {
  test("a day cap per offer: three impressions on any channel hide the offer for a rolling 24 hours", async () => {
    const flow = await flowWithPolicies("df_cap_day", [{ type: "frequency_cap", scope: "offer", max: 3, window: "day" }]);
    const customer = "cust_12345";
    const t0 = Date.now();
    clockMs = t0;
    await respond(customer, "act_platinum_cc", "impression");
    expect((await recommend(flow, customer)).offers).toContain("act_platinum_cc");
    clockMs = t0 + HOUR;
    await respond(customer, "act_platinum_cc", "impression");
    expect((await recommend(flow, customer)).offers).toContain("act_platinum_cc");
    clockMs = t0 + 2 * HOUR;
    await respond(customer, "act_platinum_cc", "impression", "ch_email");

    const capped = await recommend(flow, customer);
    expect(capped.offers).not.toContain("act_platinum_cc");
    expect(capped.offers).toContain("act_cashback");
    expect(capped.filtered).toContain("act_platinum_cc (frequency_cap exceeded: 3/day at scope=offer)");
    expect(capped.filtered.filter((f) => f.includes("frequency_cap"))).toEqual([
      "act_platinum_cc (frequency_cap exceeded: 3/day at scope=offer)",
    ]);

    // Rolling, not calendar: 23 hours after the first impression all three still count.
    clockMs = t0 + 23 * HOUR;
    expect((await recommend(flow, customer)).offers).not.toContain("act_platinum_cc");
    clockMs = t0 + DAY + MINUTE;
    const back = await recommend(flow, customer);
    expect(back.offers).toContain("act_platinum_cc");
    expect(back.filtered.some((f) => f.startsWith("act_platinum_cc"))).toBe(false);
  });

  test("a week cap per channel hides every offer of that channel once reached, and none elsewhere", async () => {
    // Offers answered together are impressions together, so an answer also holds no more than the cap has left.
    const flow = await flowWithPolicies("df_cap_channel", [{ type: "frequency_cap", scope: "channel", max: 2, window: "week" }]);
    const customer = "cust_10002";
    const t0 = Date.now();
    clockMs = t0;
    expect((await recommend(flow, customer, "ch_sms")).offers).toHaveLength(2);
    await respond(customer, "act_cashback", "impression", "ch_sms");
    // The answer held both slots; the impression accounts for one, the other lapses after CAP_HOLD_SECONDS.
    expect((await recommend(flow, customer, "ch_sms")).offers).toHaveLength(0);
    clockMs = t0 + 2 * MINUTE;
    expect((await recommend(flow, customer, "ch_sms")).offers).toHaveLength(1);
    clockMs = t0 + 3 * DAY;
    await respond(customer, "act_hy_savings", "impression", "ch_sms");
    const sms = await recommend(flow, customer, "ch_sms");
    expect(sms.offers).toEqual([]);
    expect(sms.filtered).toContain("act_cashback (frequency_cap exceeded: 2/week at scope=channel)");
    expect(sms.filtered).toContain("act_personal_loan (frequency_cap exceeded: 2/week at scope=channel)");
    const web = await recommend(flow, customer, "ch_web");
    expect(web.offers).toHaveLength(2);
    expect(web.filtered.some((f) => f.includes("frequency_cap"))).toBe(false);
    // A week after the first impression one slot is free again.
    clockMs = t0 + 7 * DAY + MINUTE;
    expect((await recommend(flow, customer, "ch_sms")).offers).toHaveLength(1);
  });
});

describe("cooldown", () => {
  test("no offer within 24 hours of its last impression", async () => {
    const flow = await flowWithPolicies("df_cooldown", [{ type: "cooldown", hours: 24, scope: "offer" }]);
    const customer = "cust_10003";
    const t0 = Date.now();
    clockMs = t0;
    expect((await recommend(flow, customer)).offers).toContain("act_cashback");
    await respond(customer, "act_cashback", "impression");
    clockMs = t0 + 2 * HOUR;
    const cooling = await recommend(flow, customer);
    expect(cooling.offers).not.toContain("act_cashback");
    expect(cooling.offers).toContain("act_platinum_cc");
    expect(cooling.filtered).toContain("act_cashback (cooldown: last impression 2.0 h ago, 24 h required)");
    clockMs = t0 + DAY + MINUTE;
    expect((await recommend(flow, customer)).offers).toContain("act_cashback");
  });
});

describe("outcome_suppression", () => {
  test("a dismiss suppresses the offer for the policy's days; a click does not", async () => {
    const flow = await flowWithPolicies("df_suppress", [{ type: "outcome_suppression", days: 7, outcomes: ["dismiss", "not_interested"] }]);
    const customer = "cust_10004";
    const t0 = Date.now();
    clockMs = t0;
    await respond(customer, "act_platinum_cc", "click");
    expect((await recommend(flow, customer)).offers).toEqual(expect.arrayContaining(["act_platinum_cc", "act_travel_cc"]));
    await respond(customer, "act_travel_cc", "dismiss");
    clockMs = t0 + DAY + HOUR;
    const suppressed = await recommend(flow, customer);
    expect(suppressed.offers).not.toContain("act_travel_cc");
    expect(suppressed.offers).toContain("act_platinum_cc");
    expect(suppressed.filtered).toContain("act_travel_cc (outcome_suppression: dismiss 1 d ago)");
    clockMs = t0 + 7 * DAY - MINUTE;
    expect((await recommend(flow, customer)).offers).not.toContain("act_travel_cc");
    clockMs = t0 + 7 * DAY + MINUTE;
    expect((await recommend(flow, customer)).offers).toContain("act_travel_cc");
  });
});

describe("opt_out", () => {
  test("an opt-out on email hides every email offer and none on web, until the CLI opts the customer back in", async () => {
    const flow = await flowWithPolicies("df_opt_out", [{ type: "opt_out" }]);
    const customer = "cust_10005";
    clockMs = Date.now();
    expect((await recommend(flow, customer, "ch_email")).offers).toEqual(expect.arrayContaining(EMAIL_OFFERS));
    await svc.db.sql`insert into contact_opt_outs (tenant_id, customer_id, channel_id) values ('demo', ${customer}, 'ch_email')`;

    const email = await recommend(flow, customer, "ch_email");
    expect(email.offers).toEqual([]);
    for (const id of EMAIL_OFFERS) expect(email.filtered).toContain(`${id} (opt_out on ch_email)`);
    const web = await recommend(flow, customer, "ch_web");
    expect(web.offers).toEqual(expect.arrayContaining(EMAIL_OFFERS));
    expect(web.filtered.some((f) => f.includes("opt_out"))).toBe(false);

    const optIn = await cli("customers", "opt-in", "demo", customer, "ch_email");
    expect(optIn.stderr).toBe("");
    expect(optIn.code).toBe(0);
    expect(optIn.stdout).toContain("opted back into ch_email");
    expect((await recommend(flow, customer, "ch_email")).offers).toEqual(expect.arrayContaining(EMAIL_OFFERS));
    const again = await cli("customers", "opt-in", "demo", customer, "ch_email");
    expect(again.code).toBe(0);
    expect(again.stdout).toContain("nothing to clear");
    expect((await cli("customers", "opt-in", "demo", customer)).code).toBe(2);
  });

  test("Respond wiring: an opt_out recorded through POST /api/v1/respond hides the customer's email offers", async () => {
    const flow = await flowWithPolicies("df_opt_out_respond", [{ type: "opt_out" }]);
    const customer = "cust_10006";
    clockMs = Date.now();
    expect((await recommend(flow, customer, "ch_email")).offers).toEqual(expect.arrayContaining(EMAIL_OFFERS));
    await respond(customer, "act_cashback", "opt_out", "ch_email");
    const email = await recommend(flow, customer, "ch_email");
    expect(email.offers).toEqual([]);
    expect(email.filtered).toContain("act_platinum_cc (opt_out on ch_email)");
    expect((await recommend(flow, customer, "ch_web")).offers).toEqual(expect.arrayContaining(EMAIL_OFFERS));
  });
});

describe("mandatory offers", () => {
  test("rank first past qualification rules and cooldowns, yet stop at their frequency cap", async () => {
    const flow = await flowWithPolicies("df_mandatory", [
      { type: "cooldown", hours: 24 },
      { type: "frequency_cap", scope: "offer", max: 2, window: "day" },
    ]);
    const customer = "cust_12345";
    // The home loan needs a segment Sarah lacks; mandatory, it is shown anyway.
    await svc.db.sql`update offers set mandatory = true where tenant_id = 'demo' and id = 'act_home_loan'`;
    svc.app.deps.catalogs.invalidate("demo");
    try {
      const t0 = Date.now() + 40 * DAY;
      clockMs = t0;
      const first = await recommend(flow, customer);
      expect(first.offers[0]).toBe("act_home_loan");
      await respond(customer, "act_home_loan", "impression");
      await respond(customer, "act_cashback", "impression");
      clockMs = t0 + HOUR;
      const cooled = await recommend(flow, customer);
      expect(cooled.offers[0]).toBe("act_home_loan");
      expect(cooled.filtered).toContain("act_cashback (cooldown: last impression 1.0 h ago, 24 h required)");
      await respond(customer, "act_home_loan", "impression");
      // Past the slots the last answer held for its other offers (CAP_HOLD_SECONDS).
      clockMs = t0 + HOUR + 2 * MINUTE;
      const capped = await recommend(flow, customer);
      expect(capped.offers).not.toContain("act_home_loan");
      expect(capped.offers.length).toBeGreaterThan(0);
      expect(capped.filtered).toContain("act_home_loan (frequency_cap exceeded: 2/day at scope=offer)");
    } finally {
      await svc.db.sql`update offers set mandatory = false where tenant_id = 'demo' and id = 'act_home_loan'`;
      svc.app.deps.catalogs.invalidate("demo");
    }
  });
});

describe("malformed policies", () => {
  test("a malformed stored policy is skipped; the others still apply and Recommend answers", async () => {
    const flow = await flowWithPolicies("df_malformed", [
      { type: "frequency_cap", scope: "offer", max: "three", window: "day" },
      { type: "snooze", hours: 1 },
      { type: "cooldown", hours: 24 },
    ]);
    const customer = "cust_10009";
    clockMs = Date.now();
    await respond(customer, "act_cashback", "impression");
    const decided = await recommend(flow, customer);
    expect(decided.offers).toContain("act_platinum_cc");
    expect(decided.filtered).toContain("act_cashback (cooldown: last impression 0.0 h ago, 24 h required)");
    expect(svc.app.deps.catalogs.peek("demo")?.flows.get(flow)?.policies.issues).toEqual([
      "policies[0]: max must be a whole number of at least 1; skipped",
      'policies[1]: unknown type "snooze"; skipped',
    ]);
  });
});

describe("fail closed", () => {
  const cardsCap = [{ type: "frequency_cap", scope: "offer", max: 5, window: "week", categoryIds: ["cat_credit_cards"] }];

  test("an unreadable history drops the offers under a policy, says why, and the request still succeeds", async () => {
    const flow = await flowWithPolicies("df_fail_closed", cardsCap);
    clockMs = Date.now();
    const before = await recommend(flow, "cust_10007");
    expect(before.offers).toEqual(expect.arrayContaining(["act_platinum_cc", "act_hy_savings"]));
    // A real database failure, not a simulated one.
    await svc.db.sql`alter table interactions rename to interactions_moved`;
    try {
      const blind = await recommend(flow, "cust_10007");
      expect(blind.offers).not.toContain("act_platinum_cc");
      expect(blind.offers).not.toContain("act_cashback");
      expect(blind.offers).toContain("act_hy_savings");
      expect(blind.filtered).toContain("act_platinum_cc (history unavailable)");
      expect(blind.filtered).toContain("act_cashback (history unavailable)");
      expect(blind.filtered.some((f) => f.startsWith("act_hy_savings"))).toBe(false);
    } finally {
      await svc.db.sql`alter table interactions_moved rename to interactions`;
    }
    expect((await recommend(flow, "cust_10007")).offers).toContain("act_platinum_cc");
  });

  test("a history read slower than POLICY_HISTORY_TIMEOUT_MS fails closed in time", async () => {
    const flow = await flowWithPolicies("df_slow_history", cardsCap);
    clockMs = Date.now();
    expect(svc.app.config.policyHistoryTimeoutMs).toBe(1000);
    // Holding an exclusive lock on the interactions makes the history read wait for it.
    await svc.db.sql.begin(async (tx) => {
      await tx`lock table interactions in access exclusive mode`;
      const started = performance.now();
      const res = await postJson(svc.http, "/api/v1/recommend", {
        customerId: "cust_10008",
        channelId: "ch_web",
        decisionFlowId: flow,
        maxOffers: 50,
      });
      expect(performance.now() - started).toBeLessThan(3_000);
      expect(res.status).toBe(200);
      const offers = res.json.recommendations.map((r: { offerId: string }) => r.offerId);
      expect(offers).not.toContain("act_platinum_cc");
      expect(offers).toContain("act_hy_savings");
    });
  });

  test("a flow without policies decides as usual while the history is unreadable", async () => {
    await svc.db.sql`alter table interactions rename to interactions_moved`;
    try {
      const res = await postJson(svc.http, "/api/v1/recommend", { customerId: "cust_12345", channelId: "ch_web", maxOffers: 50 });
      expect(res.status).toBe(200);
      expect(res.json.recommendations.map((r: { offerId: string }) => r.offerId)).toContain("act_platinum_cc");
    } finally {
      await svc.db.sql`alter table interactions_moved rename to interactions`;
    }
  });
});
