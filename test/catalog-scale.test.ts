// A catalog of 10,000 offers, all eligible on one channel, served by two instances: compiling it never
// holds the event loop for more than 10 ms (a timer measures its own lateness throughout, and the loop's
// CPU time tells a held loop from a machine busy elsewhere), and a change to one offer through the admin
// API reaches the next decision within a second on both instances.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type App, startApp } from "../src/app.ts";
import { loadConfig } from "../src/config.ts";
import { createLogger } from "../src/log.ts";
import { authHeaders, createTenantWithKey, postJson, REDIS_URL, startTestService, type TestService, testEnv } from "./harness.ts";

const OFFERS = 10_000;
const TENANT = "big";
const MAX_STALL_MS = 10;

let svc: TestService;
let second: App;
let secondUrl: string;
let headers: Record<string, string>;

/** CPU time of this thread (the event loop's), in ms. */
function loopCpuMs(): number {
  const u = process.threadCpuUsage();
  return (u.user + u.system) / 1000;
}

/**
 * A 1 ms timer that records its own lateness while it runs. How late it fired is how long the event
 * loop was held, or how long the machine gave this thread no core (another process's turn): the CPU time
 * the thread spent meanwhile tells which, and only the first is a stall of ours.
 */
function stallRecorder() {
  let worstLate = 0;
  let worstBusy = 0;
  let expected = performance.now() + 1;
  let cpu = loopCpuMs();
  let running = true;
  const tick = () => {
    if (!running) return;
    const now = performance.now();
    const cpuNow = loopCpuMs();
    const late = now - expected;
    worstLate = Math.max(worstLate, late);
    // The loop held for the part of the lateness in which this thread was running.
    worstBusy = Math.max(worstBusy, Math.min(late, cpuNow - cpu));
    expected = now + 1;
    cpu = cpuNow;
    setTimeout(tick, 1);
  };
  setTimeout(tick, 1);
  return {
    stop() {
      running = false;
      return { late: worstLate, busy: worstBusy };
    },
  };
}

const request = { customerId: "cust_big", channelId: "web", maxOffers: 3 };
const topOffer = async (base: string) => {
  const res = await postJson(base, "/api/v1/recommend", request, headers);
  expect(res.status).toBe(200);
  return res.json.recommendations[0]?.offerId as string | undefined;
};

beforeAll(async () => {
  svc = await startTestService();
  second = await startApp(loadConfig(testEnv({ DATABASE_URL: svc.db.url, REDIS_URL })), createLogger("error"));
  secondUrl = `http://127.0.0.1:${second.listeners.port}`;
  const key = await createTenantWithKey(svc, TENANT);
  headers = authHeaders(key, TENANT);
  // The catalog in a few set-based statements: 10,000 offers with a computed field and rules on some,
  // each with a creative on the one channel, and a published default flow.
  const sql = svc.db.sql;
  await sql.begin(async (tx) => {
    await tx`insert into categories (tenant_id, id, name, fields, computed)
      select ${TENANT}, 'cat_' || lpad(c::text, 2, '0'), 'Category ' || c, jsonb_build_object('base_rate', 10 + c % 7),
             '{"personalized_rate": "round(base_rate - (customer.loyalty_score >= 80 ? 2.5 : 0), 2)"}'::jsonb
        from generate_series(1, 50) c`;
    await tx`insert into offers (tenant_id, id, category_id, name, priority, business_value, qualification)
      select ${TENANT}, 'off_' || lpad(i::text, 5, '0'), 'cat_' || lpad((1 + i % 50)::text, 2, '0'), 'Offer ' || i,
             10 + (i * 7919) % 80, 20 + (i * 104729) % 800,
             case when i % 10 = 0 then '{"segment": "premium"}'::jsonb
                  when i % 10 = 1 then '{"condition": "coalesce(customer.credit_score, 0) >= 650"}'::jsonb
                  else '{}'::jsonb end
        from generate_series(1, ${OFFERS}) i`;
    await tx`insert into channels (tenant_id, id, name) values (${TENANT}, 'web', 'Web')`;
    await tx`insert into creatives (tenant_id, id, offer_id, channel_id, name, content)
      select ${TENANT}, 'cr_' || lpad(i::text, 5, '0'), 'off_' || lpad(i::text, 5, '0'), 'web', 'Creative ' || i,
             '{"title": "{{offer.name}} at {{personalized_rate}}%"}'::jsonb
        from generate_series(1, ${OFFERS}) i`;
    await tx`insert into decision_flows (tenant_id, id, name, is_default) values (${TENANT}, 'df_big', 'Big', true)`;
    await tx`insert into decision_flow_versions (tenant_id, flow_id, version, status, definition, published_at)
      values (${TENANT}, 'df_big', 1, 'published', '{}'::jsonb, now())`;
  });
}, 120_000);

afterAll(async () => {
  await second?.stop();
  await svc?.stop();
});

/**
 * Runs a measurement up to five times and keeps the best: a 2-core machine under other load can
 * preempt the process for longer than 10 ms at any moment, which no code of ours causes; a compile that
 * held the loop would be late every time.
 */
async function leastStall(run: () => Promise<void>): Promise<{ late: number; busy: number }[]> {
  const seen: { late: number; busy: number }[] = [];
  for (let attempt = 0; attempt < 5; attempt++) {
    const stalls = stallRecorder();
    await run();
    const s = stalls.stop();
    seen.push(s);
    if (s.busy <= MAX_STALL_MS) break;
  }
  return seen;
}

const described = (stalls: { late: number; busy: number }[]) =>
  stalls.map((s) => `${s.busy.toFixed(1)} ms held (timer ${s.late.toFixed(1)} ms late)`).join(", ");

describe("a catalog of 10,000 offers", () => {
  test("is compiled on two instances without holding the event loop for more than 10 ms", async () => {
    // What a first request costs anywhere (routes, key checks, the limiter) is not the catalog's.
    for (const base of [svc.http, secondUrl]) {
      expect((await postJson(base, "/api/v1/recommend", { customerId: "cust_12345", channelId: "ch_email" })).status).toBe(200);
    }
    let tops: (string | undefined)[] = [];
    const stalls = await leastStall(async () => {
      // Each instance loads and compiles the catalog from nothing; both at once.
      for (const app of [svc.app, second]) app.deps.catalogs.invalidate(TENANT);
      tops = await Promise.all([topOffer(svc.http), topOffer(secondUrl)]);
    });
    console.log(`10,000-offer catalog compiled on two instances; longest event-loop stall per attempt: ${described(stalls)}`);
    expect(tops[0]).toBeDefined();
    expect(tops[1]).toBe(tops[0] as string);
    expect(Math.min(...stalls.map((s) => s.busy))).toBeLessThanOrEqual(MAX_STALL_MS);
    for (const app of [svc.app, second]) expect(app.deps.catalogs.peek(TENANT)?.offers.length).toBe(OFFERS);
  }, 120_000);

  test("a change to one offer reaches the next decision within a second on both instances, without a stall", async () => {
    const before = await topOffer(svc.http);
    let seen: number[] = [];
    let priority = 90;
    const stalls = await leastStall(async () => {
      // A low-ranked offer without rules, made the best, a little more so each attempt.
      const target = "off_00003";
      expect(before).not.toBe(target);
      const current = (await fetch(`${svc.http}/api/v1/offers/${target}`, { headers }).then((r) => r.json())) as { version: number };
      const patched = await fetch(`${svc.http}/api/v1/offers/${target}`, {
        method: "PATCH",
        headers,
        body: JSON.stringify({ priority: ++priority, businessValue: 5000 + priority, version: current.version }),
      });
      expect(patched.status).toBe(200);
      const changedAt = performance.now();
      // The writing instance has the change when its write answers.
      const score = async (base: string) => {
        const res = await postJson(base, "/api/v1/recommend", request, headers);
        return res.json.recommendations[0] as { offerId: string; score: number };
      };
      const first = await score(svc.http);
      expect(first.offerId).toBe(target);
      // The other learns of it by notification and compiles it while it keeps answering.
      let after = Number.POSITIVE_INFINITY;
      while (performance.now() - changedAt < 1000) {
        const other = await score(secondUrl);
        if (other.offerId === target && other.score === first.score) {
          after = performance.now() - changedAt;
          break;
        }
        await Bun.sleep(10);
      }
      seen.push(after);
    });
    console.log(
      `one offer changed: seen by the second instance after ${seen.map((x) => `${x.toFixed(0)} ms`).join(", ")}; longest stall per attempt ${described(stalls)}`,
    );
    expect(Math.max(...seen)).toBeLessThan(1000);
    expect(Math.min(...stalls.map((s) => s.busy))).toBeLessThanOrEqual(MAX_STALL_MS);
    seen = [];
  }, 120_000);

  test("an offer deleted and one created through the API: both instances follow from the changed rows alone", async () => {
    const rowsBefore = [svc.app, second].map((a) => a.deps.metrics.catalogCompiles.get({ result: "rows" }));
    const top = (await topOffer(svc.http)) as string;
    expect((await fetch(`${svc.http}/api/v1/offers/${top}`, { method: "DELETE", headers })).status).toBe(200);
    const created = await postJson(
      svc.http,
      "/api/v1/offers",
      { offerId: "off_new", categoryId: "cat_01", name: "New offer", priority: 100, businessValue: 9000 },
      headers,
    );
    expect(created.status).toBe(200);
    const creative = await postJson(
      svc.http,
      "/api/v1/creatives",
      { creativeId: "cr_new", offerId: "off_new", channelId: "web", name: "New", content: { title: "{{offer.name}}" } },
      headers,
    );
    expect(creative.status).toBe(200);
    for (const base of [svc.http, secondUrl]) {
      const deadline = performance.now() + 1000;
      let offers: string[] = [];
      while (performance.now() < deadline) {
        const res = await postJson(base, "/api/v1/recommend", request, headers);
        offers = res.json.recommendations.map((r: { offerId: string }) => r.offerId);
        if (offers[0] === "off_new") break;
        await Bun.sleep(10);
      }
      expect(offers[0]).toBe("off_new");
      expect(offers).not.toContain(top);
    }
    [svc.app, second].forEach((a, i) => {
      expect(a.deps.metrics.catalogCompiles.get({ result: "rows" })).toBeGreaterThan(rowsBefore[i] as number);
      expect(a.deps.catalogs.peek(TENANT)?.offers.length).toBe(OFFERS);
    });
  }, 120_000);

  test("an import and single writes to the same offers at once queue at the tenant's revision: no deadlock, no 5xx", async () => {
    const ids = Array.from({ length: 300 }, (_, i) => `off_${String(9000 + i).padStart(5, "0")}`);
    const target = ids[290] as string;
    const current = (await fetch(`${svc.http}/api/v1/offers/${target}`, { headers }).then((r) => r.json())) as {
      version: number;
      categoryId: string;
    };
    const document = { offers: ids.map((id) => ({ offerId: id, categoryId: current.categoryId, name: `Offer ${id}`, priority: 42 })) };
    const importing = postJson(svc.http, "/api/v1/catalog/import", document, headers);
    await Bun.sleep(30);
    const patches = await Promise.all(
      [0, 1, 2].map(() =>
        fetch(`${svc.http}/api/v1/offers/${target}`, {
          method: "PATCH",
          headers,
          body: JSON.stringify({ priority: 7, version: current.version }),
        }),
      ),
    );
    const imported = await importing;
    expect(imported.status).toBe(200);
    // One patch wins or the import got there first; the others find the version moved on.
    for (const p of patches) expect([200, 409]).toContain(p.status);
  }, 120_000);

  test("an expired cache entry costs one revision read, not a compile, when nothing changed", async () => {
    const compiled = svc.app.deps.metrics.catalogCompiles.get({ result: "compiled" });
    const catalog = svc.app.deps.catalogs.peek(TENANT);
    await svc.app.deps.catalogs.refresh(TENANT);
    expect(svc.app.deps.catalogs.peek(TENANT)).toBe(catalog as NonNullable<typeof catalog>);
    expect(svc.app.deps.metrics.catalogCompiles.get({ result: "compiled" })).toBe(compiled);
    expect(svc.app.deps.metrics.catalogCompiles.get({ result: "unchanged" })).toBeGreaterThan(0);
  });
});
