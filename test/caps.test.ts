// Exact caps across instances: two service instances on one database and one Redis. A volume cap holds
// exactly under 300 concurrent Recommends spread over both; a value budget and a paced cap follow the
// service's clock; concurrent Recommends for one customer at a frequency cap of 1 give the offer to one
// answer only; and with Redis gone, offers under a volume cap are dropped rather than shown uncounted.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import Redis from "ioredis";
import { type App, startApp } from "../src/app.ts";
import { loadConfig } from "../src/config.ts";
import { randomBase62 } from "../src/ids.ts";
import { createLogger } from "../src/log.ts";
import { authHeaders, createTestDatabase, postJson, REDIS_URL, type TestDatabase, testEnv } from "./harness.ts";

let db: TestDatabase;
const apps: App[] = [];
const prefix = `kaireon_caps_${randomBase62(10)}`;
/** Both instances' clock: Recommend decides at it. */
let clockMs: number | null = null;
const bases: string[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  for (let i = 0; i < 2; i++) {
    const app = await startApp(
      loadConfig(testEnv({ DATABASE_URL: db.url, REDIS_URL, REDIS_KEY_PREFIX: prefix, EVENT_RELAY: "false" })),
      createLogger("error"),
    );
    const real = app.deps.clock.now;
    app.deps.clock.now = () => (clockMs === null ? real() : new Date(clockMs));
    apps.push(app);
    bases.push(`http://127.0.0.1:${app.listeners.port}`);
  }
}, 120_000);
afterAll(async () => {
  for (const app of apps) await app.stop();
  await db?.drop();
  const redis = new Redis(REDIS_URL);
  const keys = await redis.keys(`${prefix}:*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
}, 60_000);

/** Publishes a flow of the demo tenant with these policies, seen by both instances at once. */
async function flowWith(flowId: string, definition: Record<string, unknown>): Promise<string> {
  await db.sql`insert into decision_flows (tenant_id, id, name) values ('demo', ${flowId}, ${flowId})`;
  await db.sql`insert into decision_flow_versions (tenant_id, flow_id, version, status, definition, published_at)
    values ('demo', ${flowId}, 1, 'published', ${db.sql.json(definition as never)}, now())`;
  for (const app of apps) app.deps.catalogs.invalidate("demo");
  return flowId;
}

async function recommend(i: number, body: Record<string, unknown>) {
  const res = await postJson(bases[i % bases.length] as string, "/api/v1/recommend", { channelId: "ch_email", ...body });
  expect(res.status).toBe(200);
  return res.json as { recommendations: { offerId: string; recommendationId: string }[]; traceId?: string };
}

const offersOf = (r: { recommendations: { offerId: string }[] }) => r.recommendations.map((x) => x.offerId);

describe("volume caps", () => {
  test("a tenant-wide cap of 50 holds exactly under 300 concurrent Recommends over two instances", async () => {
    const created = await postJson(bases[0] as string, "/api/v1/contact-policies", {
      contactPolicyId: "vc_platinum",
      name: "Platinum: 50 a day",
      type: "volume_cap",
      scope: "global",
      max: 50,
      window: "day",
      offerIds: ["act_platinum_cc"],
    });
    expect(created.status).toBe(200);
    for (const app of apps) app.deps.catalogs.invalidate("demo");
    try {
      const answers = await Promise.all(Array.from({ length: 300 }, (_, i) => recommend(i, { customerId: `vol_${i}`, maxOffers: 3 })));
      const holding = answers.filter((a) => offersOf(a).includes("act_platinum_cc"));
      expect(holding).toHaveLength(50);
      // The others were decided again without it: they get what the flow answers without it.
      const without = offersOf(await recommend(1, { customerId: "vol_x", maxOffers: 3, excludeOffers: ["act_platinum_cc"] }));
      expect(without.length).toBeGreaterThan(0);
      for (const a of answers) if (!holding.includes(a)) expect(offersOf(a)).toEqual(without);
      const redis = new Redis(REDIS_URL);
      const keys = await redis.keys(`${prefix}:{demo}:vol:cp:vc_platinum:*`);
      expect(keys).toHaveLength(1);
      expect(await redis.get(keys[0] as string)).toBe("50");
      redis.disconnect();
      // And a traced decision says why.
      const traced = await recommend(0, { customerId: "vol_traced", trace: true });
      expect(offersOf(traced)).not.toContain("act_platinum_cc");
      const trace = await fetch(`${bases[0]}/api/v1/decision-traces/${traced.traceId}`, { headers: authHeaders() });
      const body = (await trace.json()) as { stages: { name: string; filtered?: string[]; drops?: { reason: string }[] }[] };
      const filter = body.stages.find((s) => s.name === "filter");
      expect(filter?.filtered).toContain("act_platinum_cc (volume_cap reached: 50/day at scope=global)");
      expect(filter?.drops?.some((d) => d.reason === "FILTER_REASON_VOLUME_CAP")).toBe(true);
    } finally {
      const del = await fetch(`${bases[0]}/api/v1/contact-policies/vc_platinum`, { method: "DELETE", headers: authHeaders() });
      expect(del.status).toBe(200);
      for (const app of apps) app.deps.catalogs.invalidate("demo");
    }
  }, 120_000);

  test("a value budget admits offers while their business value fits, across instances", async () => {
    // The platinum card is worth 450: a budget of 1,000 admits two of them a month.
    const flow = await flowWith("df_budget", {
      policies: [{ type: "volume_cap", scope: "offer", budget: 1000, window: "month", offerIds: ["act_platinum_cc"] }],
    });
    const shown: string[][] = [];
    for (let i = 0; i < 6; i++) shown.push(offersOf(await recommend(i, { customerId: `budget_${i}`, decisionFlowId: flow, maxOffers: 2 })));
    expect(shown.filter((o) => o.includes("act_platinum_cc"))).toHaveLength(2);
    expect(shown.slice(0, 2).every((o) => o[0] === "act_platinum_cc")).toBe(true);
  });

  test("a paced daily cap spends its share of the day by the service's clock, in the policy's time zone", async () => {
    const flow = await flowWith("df_paced", {
      policies: [
        {
          type: "volume_cap",
          scope: "offer",
          max: 24,
          window: "day",
          pacing: "even",
          timeZone: "Asia/Tokyo",
          offerIds: ["act_platinum_cc"],
        },
      ],
    });
    // 06:00 in Tokyo (UTC+9, no daylight saving) is a quarter of the day: 6 of the 24.
    const day = Date.UTC(2026, 5, 10) - 9 * 3_600_000;
    const count = async (n: number, tag: string) => {
      let holding = 0;
      const answers = await Promise.all(
        Array.from({ length: n }, (_, i) => recommend(i, { customerId: `paced_${tag}_${i}`, decisionFlowId: flow, maxOffers: 1 })),
      );
      for (const a of answers) if (offersOf(a).includes("act_platinum_cc")) holding++;
      return holding;
    };
    try {
      clockMs = day + 6 * 3_600_000;
      expect(await count(20, "a")).toBe(6);
      // By noon half of it: six more.
      clockMs = day + 12 * 3_600_000;
      expect(await count(20, "b")).toBe(6);
      // The next day starts again, with the share of its first half hour (rounded up): one.
      clockMs = day + 24 * 3_600_000 + 30 * 60_000;
      expect(await count(10, "c")).toBe(1);
    } finally {
      clockMs = null;
    }
  });

  test("policies that cannot be used are refused with the field named", async () => {
    const bad = [
      [{ max: 10, budget: 5 }, "max"],
      [{ max: 10, window: "30d" }, "window"],
      [{ max: 10, timeZone: "Mars/Olympus" }, "timeZone"],
      [{ max: 10, pacing: "fast" }, "pacing"],
      [{ max: 0 }, "max"],
    ] as const;
    for (const [settings, field] of bad) {
      const res = await postJson(bases[0] as string, "/api/v1/contact-policies", {
        contactPolicyId: `vc_bad_${field}`,
        name: "bad",
        type: "volume_cap",
        scope: "global",
        window: "day",
        ...settings,
      });
      expect(res.status).toBe(400);
      expect(res.json.details.map((d: { field: string }) => d.field)).toContain(field);
    }
  });

  test("with Redis unreachable, offers under a volume cap are dropped (fail closed) and the rest still answer", async () => {
    const flow = await flowWith("df_closed", {
      policies: [{ type: "volume_cap", scope: "global", max: 1000, window: "day", offerIds: ["act_platinum_cc"] }],
    });
    const app = await startApp(
      loadConfig(testEnv({ DATABASE_URL: db.url, REDIS_URL: "redis://127.0.0.1:1", REDIS_KEY_PREFIX: prefix, EVENT_RELAY: "false" })),
      createLogger("error"),
    );
    try {
      const res = await postJson(`http://127.0.0.1:${app.listeners.port}`, "/api/v1/recommend", {
        customerId: "closed_1",
        channelId: "ch_email",
        decisionFlowId: flow,
        maxOffers: 3,
      });
      expect(res.status).toBe(200);
      const offers = res.json.recommendations.map((r: { offerId: string }) => r.offerId);
      expect(offers).not.toContain("act_platinum_cc");
      // What the flow answers without the capped offer.
      const without = await recommend(0, {
        customerId: "closed_1",
        decisionFlowId: flow,
        maxOffers: 3,
        excludeOffers: ["act_platinum_cc"],
      });
      expect(offers).toEqual(offersOf(without));
      expect(offers.length).toBeGreaterThan(0);
    } finally {
      await app.stop();
    }
  });
});

describe("exact per-customer caps", () => {
  test("concurrent Recommends for one customer at a cap of 1, over two instances: each offer is in one answer only", async () => {
    const flow = await flowWith("df_cap_one", { policies: [{ type: "frequency_cap", scope: "offer", max: 1, window: "day" }] });
    const answers = await Promise.all(
      Array.from({ length: 12 }, (_, i) => recommend(i, { customerId: "cust_concurrent", decisionFlowId: flow, maxOffers: 2 })),
    );
    const all = answers.flatMap(offersOf);
    expect(all.filter((o) => o === "act_platinum_cc")).toHaveLength(1);
    expect(new Set(all).size).toBe(all.length);
    // The answer's slot is accounted for by its impression: the offer stays capped after it is reported.
    const holder = answers.find((a) => offersOf(a).includes("act_platinum_cc"));
    const rec = holder?.recommendations.find((r) => r.offerId === "act_platinum_cc");
    const reported = await postJson(bases[1] as string, "/api/v1/respond", {
      customerId: "cust_concurrent",
      offerId: "act_platinum_cc",
      channelId: "ch_email",
      outcomeType: "impression",
      recommendationId: rec?.recommendationId,
    });
    expect(reported.status).toBe(200);
    expect(offersOf(await recommend(0, { customerId: "cust_concurrent", decisionFlowId: flow, maxOffers: 50 }))).not.toContain(
      "act_platinum_cc",
    );
  });

  test("a slot whose impression never comes is free again after CAP_HOLD_SECONDS", async () => {
    const flow = await flowWith("df_cap_lapse", { policies: [{ type: "frequency_cap", scope: "offer", max: 1, window: "day" }] });
    const t0 = Date.now();
    try {
      clockMs = t0;
      expect(offersOf(await recommend(0, { customerId: "cust_lapse", decisionFlowId: flow, maxOffers: 1 }))).toEqual(["act_platinum_cc"]);
      expect(offersOf(await recommend(1, { customerId: "cust_lapse", decisionFlowId: flow, maxOffers: 1 }))).not.toContain(
        "act_platinum_cc",
      );
      clockMs = t0 + 61_000;
      expect(offersOf(await recommend(1, { customerId: "cust_lapse", decisionFlowId: flow, maxOffers: 1 }))).toEqual(["act_platinum_cc"]);
    } finally {
      clockMs = null;
    }
  });
});
