// docs/first-tenant.md, step by step: its shell blocks run in order against a fresh service that has
// an operator key and nothing but the demo tenant, and what the guide built is then read back through
// the API to check each step did what the guide says.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { OPERATOR_KEY, operatorHeaders, ROOT, startTestService, type TestService } from "./harness.ts";
import { runShellBlocks, shellBlocks, shellFailure } from "./shell-docs.ts";

const GUIDE = path.join(ROOT, "docs/first-tenant.md");

let svc: TestService;
let work: string;

beforeAll(async () => {
  svc = await startTestService();
  work = await mkdtemp(path.join(tmpdir(), "kaireon-first-tenant-"));
}, 60_000);
afterAll(async () => {
  await svc?.stop();
  await rm(work, { recursive: true, force: true });
}, 30_000);

describe("the first-tenant guide", () => {
  test("every step runs as written, and the tenant it builds decides as the guide says", async () => {
    const blocks = shellBlocks(await readFile(GUIDE, "utf8"));
    // Operator; category, channel and placement, offers, creatives; flow; customer; decision; response;
    // trace.
    expect(blocks.length).toBe(10);
    const port = new URL(svc.http).port;
    const run = await runShellBlocks(blocks, {
      cwd: work,
      env: { OPERATOR_API_KEY: OPERATOR_KEY },
      rewrite: (text) => text.replaceAll("localhost:3000", `localhost:${port}`),
    });
    if (run.code !== 0) throw shellFailure("docs/first-tenant.md", run);
    expect(run.started).toBe(blocks.length);

    // The tenant exists with the keys the guide made, and its catalog is what the guide wrote.
    const tenant = await fetch(`${svc.http}/api/v1/tenants/harbor`, { headers: operatorHeaders() });
    expect(tenant.status).toBe(200);
    const catalog = await fetch(`${svc.http}/api/v1/catalog`, { headers: { ...operatorHeaders(), "x-tenant-id": "harbor" } });
    expect(catalog.status).toBe(200);
    const doc = (await catalog.json()) as Record<string, { [k: string]: unknown }[]>;
    const ids = (kind: string, key: string) => (doc[kind] ?? []).map((r) => r[key]).sort();
    expect(ids("categories", "categoryId")).toEqual(["cat_cards"]);
    expect(ids("offers", "offerId")).toEqual(["off_student_card", "off_travel_card"]);
    expect(ids("creatives", "creativeId")).toEqual(["cr_student_web", "cr_travel_web"]);
    expect(ids("decisionFlows", "decisionFlowId")).toEqual(["df_web"]);

    // The decision block printed the personalized content; the trace block the filter stage dropping
    // the student card for its segment.
    expect(run.output).toContain('"headline": "Ada, fly further with the Travel Card"');
    expect(run.output).toContain("off_student_card (segment_required)");
    // The response was recorded once, linked to the decision's trace.
    const interactions = await svc.db.sql`select offer_id, outcome_type, trace_id from interactions where tenant_id = 'harbor'`;
    expect(interactions.map((r) => [r.offer_id, r.outcome_type])).toEqual([["off_travel_card", "click"]]);
    expect(String(interactions[0]?.trace_id)).toMatch(/^trace_/);
  }, 120_000);
});
