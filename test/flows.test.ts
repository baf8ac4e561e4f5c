// Decision flow versions and tenant settings: drafts are not used until published, publishing reaches
// every running instance within a second, rollbacks publish an old definition anew, and the tenant's
// trace sample rate and retention apply.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type App, startApp } from "../src/app.ts";
import { loadConfig } from "../src/config.ts";
import { createLogger } from "../src/log.ts";
import { listVersions, publishDraft, rollBack, saveDraft } from "../src/store/flows.ts";
import { updateTenantSettings } from "../src/store/tenants.ts";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { authHeaders, postJson, REDIS_URL, runCli, startTestService, type TestService, testEnv, waitFor } from "./harness.ts";

let svc: TestService;
let second: App;
let secondUrl: string;
beforeAll(async () => {
  svc = await startTestService();
  // A second instance on the same database, as behind a load balancer.
  second = await startApp(loadConfig(testEnv({ DATABASE_URL: svc.db.url, REDIS_URL })), createLogger("error"));
  secondUrl = `http://127.0.0.1:${second.listeners.port}`;
});
afterAll(async () => {
  await second.stop();
  await svc.stop();
});

const request = { customerId: "cust_12345", channelId: "ch_email", placement: "hero_offer", trace: true };
const offersAt = async (base: string) => {
  const res = await postJson(base, "/api/v1/recommend", request, authHeaders());
  expect(res.status).toBe(200);
  return res.json.recommendations.map((r: { offerId: string }) => r.offerId) as string[];
};

describe("flow versions", () => {
  test("a draft changes nothing; publishing it changes the next Recommend on another instance within a second", async () => {
    expect(await offersAt(svc.http)).toEqual(["act_platinum_cc", "act_cashback"]);
    expect(await offersAt(secondUrl)).toEqual(["act_platinum_cc", "act_cashback"]);

    const db = svc.app.deps.db;
    const version = await db.transaction((tx) => saveDraft(tx, "demo", "df_credit_cards", { candidates: { offerIds: ["act_cashback"] } }));
    expect(version).toBe(2);
    await Bun.sleep(200);
    expect(await offersAt(secondUrl)).toEqual(["act_platinum_cc", "act_cashback"]);

    const published = Date.now();
    expect(await publishDraft(db, "demo", "df_credit_cards")).toBe(2);
    await waitFor(async () => JSON.stringify(await offersAt(secondUrl)) === JSON.stringify(["act_cashback"]), 1000, 20);
    expect(Date.now() - published).toBeLessThanOrEqual(1000);

    const rec = await postJson(secondUrl, "/api/v1/recommend", request, authHeaders());
    const trace = await (await fetch(`${secondUrl}/api/v1/decision-traces/${rec.json.traceId}`, { headers: authHeaders() })).json();
    expect((trace as { decisionFlowVersion: number }).decisionFlowVersion).toBe(2);
  });

  test("published versions are kept; a rollback publishes the old definition as a new version", async () => {
    const db = svc.app.deps.db;
    expect(await publishDraft(db, "demo", "df_credit_cards")).toBeNull();
    expect(await rollBack(db, "demo", "df_credit_cards", 1)).toBe(3);
    // Both instances learn of the new version by notification, each on its own time: wait for each.
    for (const base of [secondUrl, svc.http]) await waitFor(async () => (await offersAt(base)).length === 2, 1000, 20);
    expect(await offersAt(svc.http)).toEqual(["act_platinum_cc", "act_cashback"]);
    expect(await offersAt(secondUrl)).toEqual(["act_platinum_cc", "act_cashback"]);
    const versions = await listVersions(db, "demo", "df_credit_cards");
    expect(versions.map((v) => [v.version, v.status])).toEqual([
      [1, "published"],
      [2, "published"],
      [3, "published"],
    ]);
    expect(versions[2]?.definition).toEqual(versions[0]?.definition as object);
    expect(await rollBack(db, "demo", "df_credit_cards", 99)).toBeNull();
  });
});

describe("tenant trace settings", () => {
  test("a sample rate of 1 traces calls that did not ask; 0 does not", async () => {
    const plain = { customerId: "cust_12345", channelId: "ch_email" };
    expect((await postJson(svc.http, "/api/v1/recommend", plain)).json).not.toHaveProperty("traceId");
    await updateTenantSettings(svc.app.deps.db, "demo", { traceSampleRate: 1, traceRetentionDays: 2 });
    const sampled = await waitFor(
      async () => {
        const res = await postJson(secondUrl, "/api/v1/recommend", plain);
        return res.json.traceId ? res : null;
      },
      1000,
      20,
    );
    await second.deps.traces.flush();
    const rows = await svc.db
      .sql`select extract(epoch from expires_at - created_at)::int as ttl from decision_traces where trace_id = ${sampled.json.traceId}`;
    expect(rows[0]?.ttl).toBe(2 * 86_400);
    await updateTenantSettings(svc.app.deps.db, "demo", { traceSampleRate: 0 });
    await waitFor(async () => !(await postJson(svc.http, "/api/v1/recommend", plain)).json.traceId, 1000, 20);
  });
});

describe("the flows CLI", () => {
  test("refuses an invalid definition naming the field, publishes a valid one and lists versions", async () => {
    const dir = await mkdtemp(join(tmpdir(), "kaireon-flow-"));
    try {
      const bad = join(dir, "bad.json");
      await writeFile(bad, JSON.stringify({ score: { propensity: "guess" }, policies: [{ type: "frequency_cap", max: 0 }] }));
      const refused = await runCli(svc, "flows", "publish", "demo", "df_web", "--file", bad);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain("score.propensity");
      expect(refused.stderr).toContain("policies[0]");

      const good = join(dir, "good.json");
      await writeFile(good, JSON.stringify({ candidates: { categoryIds: ["cat_deposits"] }, score: { propensity: "mean" } }));
      const published = await runCli(svc, "flows", "publish", "demo", "df_web", "--file", good, "--name", "Web savings");
      expect(published.code).toBe(0);
      expect(published.stdout).toContain("version 1");
      await waitFor(
        async () => {
          const res = await postJson(secondUrl, "/api/v1/recommend", {
            customerId: "cust_12345",
            channelId: "ch_web",
            decisionFlowId: "df_web",
          });
          return res.status === 200 && res.json.recommendations.every((r: { categoryId: string }) => r.categoryId === "cat_deposits");
        },
        1000,
        20,
      );
      const versions = await runCli(svc, "flows", "versions", "demo", "df_web");
      expect(versions.stdout).toMatch(/^1\tpublished\t/m);
      // A second version, then the rollback as the README writes it: version 1's definition published anew.
      await writeFile(good, JSON.stringify({ candidates: { categoryIds: ["cat_credit_cards"] }, score: { propensity: "mean" } }));
      expect((await runCli(svc, "flows", "publish", "demo", "df_web", "--file", good)).stdout).toContain("version 2");
      const rolledBack = await runCli(svc, "flows", "rollback", "demo", "df_web", "1");
      expect(rolledBack.stderr).toBe("");
      expect(rolledBack.code).toBe(0);
      expect(rolledBack.stdout).toContain("published version 1's definition of df_web as version 3");
      expect((await runCli(svc, "flows", "rollback", "demo", "df_web", "zero")).code).toBe(2);
      const settings = await runCli(svc, "tenants", "set", "demo", "--trace-sample-rate", "2");
      expect(settings.code).toBe(2);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
