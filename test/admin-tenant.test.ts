// A tenant built through the admin API alone (after the operator creates it and its first key) decides
// correctly over REST and gRPC; the demo catalog exported and imported into a new tenant gives identical
// answers; flows are published and rolled back through the API; settings and keys are managed there.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { ApiKeyService } from "../gen/kaireon/v1/api_key_pb.ts";
import { AuditLogService } from "../gen/kaireon/v1/audit_log_pb.ts";
import { CatalogService } from "../gen/kaireon/v1/catalog_pb.ts";
import { RecommendService } from "../gen/kaireon/v1/recommend_pb.ts";
import { TenantSettingsService } from "../gen/kaireon/v1/tenant_settings_pb.ts";
import { authHeaders, DEMO_KEY, OPERATOR_KEY, operatorHeaders, runCli, startTestService, type TestService, waitFor } from "./harness.ts";

let svc: TestService;
beforeAll(async () => {
  svc = await startTestService();
});
afterAll(async () => {
  await svc.stop();
});

type Json = Record<string, any>;

async function send(method: string, path: string, body?: unknown, headers = authHeaders()) {
  const res = await fetch(`${svc.http}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, json: (text ? JSON.parse(text) : null) as Json };
}

/** The operator's part: a tenant and its first admin key, from the command line. */
async function operatorCreatesTenant(tenantId: string): Promise<Record<string, string>> {
  expect((await runCli(svc, "tenants", "create", tenantId, "--name", tenantId)).code).toBe(0);
  const created = await runCli(svc, "keys", "create", tenantId, "--name", "admin", "--scopes", "admin");
  expect(created.code).toBe(0);
  const key = created.stdout.split("\n").find((l) => l.startsWith("krn_")) as string;
  return authHeaders(key, tenantId);
}

const ok = async (p: Promise<{ status: number; json: Json }>) => {
  const res = await p;
  if (res.status !== 200) throw new Error(`${res.status}: ${JSON.stringify(res.json)}`);
  return res.json;
};

const offersOf = (json: Json) => json.recommendations.map((r: { offerId: string }) => r.offerId);

describe("a tenant built through the API", () => {
  let admin: Record<string, string>;
  let decide: Record<string, string>;
  let decideKeyId: string;

  test("catalog, rules, flow, customers and a decide key, all over REST", async () => {
    admin = await operatorCreatesTenant("northwind");
    const post = (path: string, body: Json) => ok(send("POST", `/api/v1/${path}`, body, admin));
    const settings = await ok(send("GET", "/api/v1/settings", undefined, admin));
    // The plan is the operator's: the tenant's admin key reads it and is refused when it writes it.
    const refused = await send("PATCH", "/api/v1/settings", { plan: "professional", version: settings.version }, admin);
    expect(refused.status).toBe(403);
    expect(refused.json.details).toEqual([{ field: "plan", message: "plan is set by the operator" }]);
    await ok(send("PATCH", "/api/v1/tenants/northwind", { plan: "professional", version: settings.version }, operatorHeaders()));

    await post("outcome-types", { outcomeType: "signup", classification: "positive" });
    await post("categories", {
      categoryId: "cards",
      name: "Cards",
      fields: { base_rate: 20 },
      computed: { rate: "round(base_rate - coalesce(customer.loyalty, 0) / 10, 2)" },
    });
    await post("channels", { channelId: "app", name: "App", type: "mobile" });
    await post("channels/app/placements", { placementId: "home", name: "Home screen" });
    await post("offers", { offerId: "gold", categoryId: "cards", name: "Gold Card", priority: 90 });
    await post("offers", { offerId: "silver", categoryId: "cards", name: "Silver Card", priority: 70, fields: { base_rate: 22 } });
    await post("offers", { offerId: "vip_only", categoryId: "cards", name: "VIP Card", priority: 99, qualification: { segment: "vip" } });
    await post("offers", { offerId: "student", categoryId: "cards", name: "Student Card", priority: 95 });
    for (const offerId of ["gold", "silver", "vip_only", "student"]) {
      await post("creatives", {
        creativeId: `${offerId}_home`,
        offerId,
        channelId: "app",
        placementId: "home",
        name: offerId,
        content: { title: "{{offer.name}}", body: 'Hi {{customer.first_name | "there"}}, {{rate}}% APR' },
      });
    }
    await post("qualification-rules", {
      qualificationRuleId: "students",
      name: "Students only",
      offerIds: ["student"],
      condition: "customer.age < 26",
    });
    await post("contact-policies", {
      contactPolicyId: "once_a_day",
      name: "Once a day",
      type: "frequency_cap",
      scope: "offer",
      max: 1,
      window: "day",
    });
    const flow = await post("decision-flows", {
      decisionFlowId: "main",
      name: "Main",
      isDefault: true,
      definition: { score: { method: "priority_weighted" } },
    });
    expect(flow).toMatchObject({ draftVersion: 1, publishedVersion: 0 });
    // Nothing runs before it is published.
    const published = await ok(send("POST", "/api/v1/decision-flows/main/publish", { version: flow.version }, admin));
    expect(published).toMatchObject({
      draftVersion: 0,
      publishedVersion: 1,
      publishedDefinition: { score: { method: "priority_weighted" } },
    });

    await ok(send("PUT", "/api/v1/customers/ann", { attributes: { first_name: "Ann", loyalty: 50, age: 40 }, segments: [] }, admin));
    await ok(send("PUT", "/api/v1/customers/bo", { attributes: { first_name: "Bo", loyalty: 0, age: 21 }, segments: ["vip"] }, admin));
    const key = await ok(send("POST", "/api/v1/api-keys", { name: "web", scopes: ["decide"] }, admin));
    expect(key.key).toMatch(/^krn_[0-9A-Za-z]{40}$/);
    expect(key.apiKey).toMatchObject({ name: "web", scopes: ["decide"], prefix: key.key.slice(0, 12) });
    decide = authHeaders(key.key, "northwind");
    decideKeyId = key.apiKey.apiKeyId;

    const listed = await ok(send("GET", "/api/v1/api-keys", undefined, admin));
    expect(listed.apiKeys.map((k: Json) => k.name).sort()).toEqual(["admin", "web"]);
    expect(JSON.stringify(listed)).not.toContain(key.key);
  });

  test("Recommend over REST follows the catalog: scores, rules, templates and computed values", async () => {
    const ann = await ok(
      send("POST", "/api/v1/recommend", { customerId: "ann", channelId: "app", placement: "home", trace: true }, decide),
    );
    // priority_weighted: priority/100 × weight/100; vip_only needs the segment, student the tenant rule.
    expect(offersOf(ann)).toEqual(["gold", "silver"]);
    expect(ann.recommendations.map((r: Json) => r.score)).toEqual([0.9, 0.7]);
    expect(ann.recommendations[0]).toMatchObject({
      offerName: "Gold Card",
      categoryId: "cards",
      creativeId: "gold_home",
      content: { title: "Gold Card", body: "Hi Ann, 15% APR" },
      personalization: { rate: 15 },
    });
    expect(ann.recommendations[1].content.body).toBe("Hi Ann, 17% APR");
    const trace = await ok(send("GET", `/api/v1/decision-traces/${ann.traceId}`, undefined, decide));
    const filter = trace.stages.find((s: Json) => s.name === "filter");
    expect(filter.filtered).toEqual(expect.arrayContaining(["vip_only (segment_required)", "student (condition_failed, rule students)"]));

    const bo = await ok(send("POST", "/api/v1/recommend", { customerId: "bo", channelId: "app" }, decide));
    expect(offersOf(bo)).toEqual(["vip_only", "student", "gold", "silver"]);
    expect(bo.recommendations[0].content.body).toBe("Hi Bo, 20% APR");
  });

  test("the same answer over gRPC, and the tenant's contact policy holds", async () => {
    // The REST answer above holds Ann's slots of the once-a-day cap for CAP_HOLD_SECONDS (an answer counts
    // until its impression is recorded or its hold lapses); a minute later they are free again.
    const realNow = svc.app.deps.clock.now;
    svc.app.deps.clock.now = () => new Date(realNow().getTime() + 61_000);
    const client = createClient(RecommendService, createGrpcTransport({ baseUrl: svc.grpc }));
    const res = await client.recommend({ customerId: "ann", channelId: "app", placement: "home" }, { headers: decide });
    expect(res.recommendations.map((r) => r.offerId)).toEqual(["gold", "silver"]);
    expect(res.recommendations[0]?.content).toEqual({ title: "Gold Card", body: "Hi Ann, 15% APR" });

    await ok(send("POST", "/api/v1/respond", { customerId: "ann", offerId: "gold", channelId: "app", outcomeType: "impression" }, decide));
    await ok(send("POST", "/api/v1/respond", { customerId: "ann", offerId: "gold", channelId: "app", outcomeType: "signup" }, decide));
    // Once a day: gold was just shown to Ann; silver, answered but never shown, is free once its hold lapses.
    svc.app.deps.clock.now = () => new Date(realNow().getTime() + 122_000);
    const after = await ok(send("POST", "/api/v1/recommend", { customerId: "ann", channelId: "app", trace: true }, decide));
    expect(offersOf(after)).toEqual(["silver"]);
    svc.app.deps.clock.now = realNow;
  });

  test("the decide key cannot administer; once revoked it is refused at once", async () => {
    expect((await send("GET", "/api/v1/offers", undefined, decide)).status).toBe(403);
    expect((await send("POST", "/api/v1/api-keys", { scopes: ["admin"] }, decide)).status).toBe(403);
    expect((await send("GET", "/api/v1/settings", undefined, decide)).status).toBe(403);
    expect((await send("GET", "/api/v1/catalog", undefined, decide)).status).toBe(403);
    expect((await send("POST", "/api/v1/catalog/import", {}, decide)).status).toBe(403);
    const revoked = await ok(send("DELETE", `/api/v1/api-keys/${decideKeyId}`, undefined, admin));
    expect(revoked.revokedAt).toBeTruthy();
    expect((await send("POST", "/api/v1/recommend", { customerId: "ann", channelId: "app" }, decide)).status).toBe(401);
    // Another tenant cannot see or revoke it.
    expect((await send("GET", `/api/v1/api-keys/${decideKeyId}`)).status).toBe(404);
    const audit = await svc.db.sql`select action from audit_log where tenant_id = 'northwind' order by id`;
    expect(audit.map((a) => a.action)).toEqual(
      expect.arrayContaining([
        "api_key.create",
        "tenant_settings.update",
        "offer.create",
        "decision_flow.publish",
        "customer.upsert",
        "api_key.revoke",
      ]),
    );
  });
});

describe("the audit log", () => {
  test("lists who changed what, newest first, for the tenant or one resource; REST and gRPC agree", async () => {
    const northwind = (await svc.db.sql`select id from api_keys where tenant_id = 'northwind' and name = 'admin'`)[0]?.id;
    const admin = authHeaders(
      (await runCli(svc, "keys", "create", "northwind", "--scopes", "admin")).stdout.split("\n")[1] as string,
      "northwind",
    );
    const gold = await ok(send("GET", "/api/v1/audit-log?resourceType=offer&resourceId=gold", undefined, admin));
    expect(gold.entries.map((e: Json) => [e.action, e.actorKeyId])).toEqual([["offer.create", northwind]]);
    expect(gold.entries[0].details.after).toMatchObject({ offerId: "gold", name: "Gold Card", priority: 90 });
    expect(Date.parse(gold.entries[0].at)).toBeGreaterThan(Date.now() - 600_000);

    const ids: string[] = [];
    let cursor = "";
    do {
      const page = await ok(send("GET", `/api/v1/audit-log?limit=7${cursor ? `&cursor=${cursor}` : ""}`, undefined, admin));
      ids.push(...page.entries.map((e: Json) => e.auditEntryId));
      cursor = page.nextCursor;
    } while (cursor);
    expect(ids.length).toBeGreaterThan(20);
    expect(ids.map(Number)).toEqual([...ids.map(Number)].sort((a, b) => b - a));
    const client = createClient(AuditLogService, createGrpcTransport({ baseUrl: svc.grpc }));
    const first = await client.listAuditEntries({ limit: 3 }, { headers: admin });
    expect(first.entries.map((e) => e.auditEntryId)).toEqual(ids.slice(0, 3));
    // Another tenant's entries are not there, and a decide key may not read them.
    expect((await ok(send("GET", "/api/v1/audit-log?resourceType=offer&resourceId=gold"))).entries).toEqual([]);
    expect((await send("GET", "/api/v1/audit-log?resourceId=gold", undefined, admin)).status).toBe(400);
  });
});

describe("export and import", () => {
  const compareable = (json: Json) => {
    const { processedAt: _p, traceId: _t, ...rest } = json;
    // Each recommendation has an id of its own.
    rest.recommendations = rest.recommendations.map(({ recommendationId: _r, ...r }: Json) => r);
    return rest;
  };

  test("the demo catalog imported into a new tenant gives identical answers", async () => {
    const exported = await ok(send("GET", "/api/v1/catalog"));
    expect(exported.offers.length).toBe(15);
    expect(exported.decisionFlows[0]).toMatchObject({ decisionFlowId: "df_credit_cards", publishedVersion: 1, isDefault: true });
    const copy = await operatorCreatesTenant("demo_copy");
    const imported = await ok(send("POST", "/api/v1/catalog/import", exported, copy));
    const counts = Object.fromEntries(imported.results.map((r: Json) => [r.kind, r.created]));
    expect(counts).toMatchObject({
      categories: 5,
      offers: 15,
      channels: 3,
      placements: 4,
      creatives: 24,
      experiments: 1,
      decisionFlows: 1,
    });

    // The same customers on both sides.
    const customers = ["cust_12345", ...Array.from({ length: 30 }, (_, i) => `cust_${10001 + i}`)];
    for (const id of customers) {
      const profile = await ok(send("GET", `/api/v1/customers/${id}`));
      await ok(send("PUT", `/api/v1/customers/${id}`, { attributes: profile.attributes, segments: profile.segments }, copy));
    }
    // Learned propensities are history, not catalog: on email (where the demo has history) the request
    // brings its own, so both tenants score alike.
    const propensityScores = Object.fromEntries(exported.offers.map((o: Json, i: number) => [o.offerId, 0.2 + i / 40]));
    let compared = 0;
    for (const customerId of customers) {
      for (const request of [
        { customerId, channelId: "ch_web", maxOffers: 10 },
        { customerId, channelId: "ch_sms" },
        { customerId, channelId: "ch_email", placement: "hero_offer", attributes: { propensityScores }, maxOffers: 4 },
      ]) {
        const a = await ok(send("POST", "/api/v1/recommend", request));
        const b = await ok(send("POST", "/api/v1/recommend", request, copy));
        expect(compareable(b)).toEqual(compareable(a));
        compared += a.recommendations.length;
      }
    }
    expect(compared).toBeGreaterThan(200);
    const tutorial = await ok(
      send(
        "POST",
        "/api/v1/recommend",
        { customerId: "cust_12345", channelId: "ch_email", maxOffers: 3, placement: "hero_offer", attributes: { propensityScores } },
        copy,
      ),
    );
    expect(tutorial.recommendations[0].personalization.personalized_rate).toBe(17.49);

    // Exported again, the copy's catalog is the demo's; imported again, nothing changes.
    const strip = (doc: Json) =>
      JSON.parse(JSON.stringify(doc), (k, v) => (["version", "createdAt", "updatedAt", "phase"].includes(k) ? undefined : v));
    const again = await ok(send("GET", "/api/v1/catalog", undefined, copy));
    expect(strip(again)).toEqual(strip(exported));
    const twice = await ok(send("POST", "/api/v1/catalog/import", exported, copy));
    expect(twice.results.every((r: Json) => r.created === 0 && r.updated === 0)).toBe(true);
  });

  test("an import is checked whole: any error is placed in the document and nothing is written", async () => {
    const target = await operatorCreatesTenant("halfway");
    const doc = {
      categories: [{ categoryId: "c1", name: "One", fields: { base: 1 } }],
      offers: [
        { offerId: "o1", categoryId: "c1", name: "Fine" },
        { offerId: "o2", categoryId: "c_missing", name: "Orphan" },
        { offerId: "o3", categoryId: "c1", name: "Bad formula", computed: { x: "base +" } },
        { offerId: "o1", categoryId: "c1", name: "Twice" },
      ],
      decisionFlows: [{ decisionFlowId: "f", name: "F", definition: { candidates: { offerIds: ["o1", "o9"] } }, publishedVersion: 1 }],
    };
    const res = await send("POST", "/api/v1/catalog/import", doc, target);
    expect(res.status).toBe(400);
    const fields = res.json.details.map((d: Json) => d.field);
    expect(fields).toEqual([
      "offers[1].categoryId",
      "offers[2].computed.x",
      "offers[3]",
      "decisionFlows[0].definition.candidates.offerIds[1]",
    ]);
    const [rows] = await svc.db.sql`select (select count(*) from categories where tenant_id = 'halfway')::int as categories,
                                            (select count(*) from offers where tenant_id = 'halfway')::int as offers,
                                            (select count(*) from audit_log where tenant_id = 'halfway' and action like 'offer.%')::int as audited`;
    expect(rows).toEqual({ categories: 0, offers: 0, audited: 0 });

    // Fixed, it goes in whole, and the flow is published.
    const fixed = {
      ...doc,
      offers: [doc.offers[0]],
      decisionFlows: [{ ...doc.decisionFlows[0], definition: { candidates: { offerIds: ["o1"] } } }],
    };
    const done = await ok(send("POST", "/api/v1/catalog/import", fixed, target));
    expect(done.results.filter((r: Json) => r.created > 0).map((r: Json) => r.kind)).toEqual(["categories", "offers", "decisionFlows"]);
    const flow = await ok(send("GET", "/api/v1/decision-flows/f", undefined, target));
    expect(flow).toMatchObject({ publishedVersion: 1, draftVersion: 0, publishedDefinition: { candidates: { offerIds: ["o1"] } } });
  });

  test("a catalog larger than any other request goes in whole, over REST and gRPC", async () => {
    const offers = Array.from({ length: 2000 }, (_, i) => ({
      offerId: `bulk_${String(i).padStart(4, "0")}`,
      categoryId: "bulk",
      name: `Bulk offer ${i}`,
      description: "x".repeat(100),
      priority: i % 100,
      fields: { base_rate: 5 + (i % 10) },
    }));
    const doc = { categories: [{ categoryId: "bulk", name: "Bulk", fields: { base_rate: 1 } }], offers };
    expect(JSON.stringify(doc).length).toBeGreaterThan(svc.app.config.maxBodyBytes);
    const target = await operatorCreatesTenant("bulk");
    const started = performance.now();
    const res = await ok(send("POST", "/api/v1/catalog/import", doc, target));
    console.log(`catalog import of 2,000 offers over REST: ${Math.round(performance.now() - started)} ms`);
    expect(res.results.find((r: Json) => r.kind === "offers")).toMatchObject({ created: 2000 });
    // The same document over gRPC changes nothing.
    const client = createClient(CatalogService, createGrpcTransport({ baseUrl: svc.grpc }));
    const again = await client.importCatalog({ catalog: doc }, { headers: target });
    expect(again.results.find((r) => r.kind === "offers")).toMatchObject({ created: 0, updated: 0, unchanged: 2000 });
    // Other requests keep their limit.
    const big = await send(
      "POST",
      "/api/v1/offers",
      { offerId: "big", categoryId: "bulk", name: "x", description: "x".repeat(300_000) },
      target,
    );
    expect(big.status).toBe(413);
  }, 60_000);

  test("over gRPC, and from the command line to a file and back", async () => {
    const client = createClient(CatalogService, createGrpcTransport({ baseUrl: svc.grpc }));
    const headers = { "x-tenant-id": "demo", "x-api-key": DEMO_KEY };
    const exported = await client.exportCatalog({}, { headers });
    expect(exported.catalog?.creatives.length).toBe(24);

    const dir = await mkdtemp(join(tmpdir(), "kaireon-catalog-"));
    try {
      const file = join(dir, "catalog.json");
      expect((await runCli(svc, "catalog", "export", "demo", "--file", file)).code).toBe(0);
      expect(JSON.parse(await readFile(file, "utf8")).offers.length).toBe(15);
      expect((await runCli(svc, "tenants", "create", "from_file")).code).toBe(0);
      const imported = await runCli(svc, "catalog", "import", "from_file", "--file", file);
      expect(imported.code).toBe(0);
      expect(imported.stdout).toContain("offers\tcreated 15\tupdated 0\tunchanged 0");
      const [row] = await svc.db.sql`select count(*)::int as n from creatives where tenant_id = 'from_file'`;
      expect(row?.n).toBe(24);
      const broken = join(dir, "broken.json");
      await Bun.write(broken, JSON.stringify({ offers: [{ offerId: "x", categoryId: "nope", name: "x" }] }));
      const refused = await runCli(svc, "catalog", "import", "from_file", "--file", broken);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain("offers[0].categoryId");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("decision flows through the API", () => {
  test("a draft changes nothing until published; versions are listed; a rollback publishes an old one anew", async () => {
    const offers = async () =>
      offersOf(await ok(send("POST", "/api/v1/recommend", { customerId: "cust_12345", channelId: "ch_web", maxOffers: 50 })));
    const before = await offers();
    expect(before.length).toBeGreaterThan(5);
    let flow = await ok(send("GET", "/api/v1/decision-flows/df_credit_cards"));
    flow = await ok(
      send("PATCH", "/api/v1/decision-flows/df_credit_cards", {
        definition: { candidates: { categoryIds: ["cat_deposits"] } },
        version: flow.version,
      }),
    );
    expect(flow).toMatchObject({ draftVersion: 2, publishedVersion: 1, definition: { candidates: { categoryIds: ["cat_deposits"] } } });
    expect(await offers()).toEqual(before);

    expect((await send("POST", "/api/v1/decision-flows/df_credit_cards/publish", { version: flow.version - 1 })).status).toBe(409);
    flow = await ok(send("POST", "/api/v1/decision-flows/df_credit_cards/publish", { version: flow.version }));
    expect(flow.publishedVersion).toBe(2);
    expect(await offers()).toEqual(
      ["act_hy_savings", "act_cd_12m"].filter((o) => before.includes(o)).sort((a, b) => before.indexOf(a) - before.indexOf(b)),
    );
    const nothing = await send("POST", "/api/v1/decision-flows/df_credit_cards/publish", { version: flow.version });
    expect(nothing.status).toBe(409);
    expect(nothing.json.error).toContain("no draft");

    const versions = await ok(send("GET", "/api/v1/decision-flows/df_credit_cards/versions"));
    expect(versions.versions.map((v: Json) => [v.version, v.status])).toEqual([
      [1, "published"],
      [2, "published"],
    ]);
    const rolled = await ok(send("POST", "/api/v1/decision-flows/df_credit_cards/rollback", { toVersion: 1, version: flow.version }));
    expect(rolled.publishedVersion).toBe(3);
    expect(await offers()).toEqual(before);
    const bad = await send("POST", "/api/v1/decision-flows/df_credit_cards/rollback", { toVersion: 9, version: rolled.version });
    expect(bad.status).toBe(400);
    expect(bad.json.details[0].field).toBe("toVersion");
    // A draft that names what was deleted since is refused at publish.
    flow = await ok(
      send("POST", "/api/v1/decision-flows", {
        decisionFlowId: "df_tmp",
        name: "Tmp",
        definition: { candidates: { offerIds: ["act_cd_12m"] } },
      }),
    );
    const creatives = await ok(send("GET", "/api/v1/creatives?offerId=act_cd_12m"));
    expect(creatives.creatives.map((c: Json) => c.creativeId)).toEqual(["treat_cd_12m_web"]);
    await ok(send("DELETE", "/api/v1/offers/act_cd_12m"));
    const refused = await send("POST", "/api/v1/decision-flows/df_tmp/publish", { version: flow.version });
    expect(refused.status).toBe(400);
    expect(refused.json.details[0].field).toBe("definition.candidates.offerIds[0]");
    // Making another flow the default takes it from the old one.
    const tmp = await ok(send("PATCH", "/api/v1/decision-flows/df_tmp", { isDefault: true, definition: {}, version: flow.version }));
    expect(tmp.isDefault).toBe(true);
    expect((await ok(send("GET", "/api/v1/decision-flows/df_credit_cards"))).isDefault).toBe(false);
    await ok(
      send("PATCH", "/api/v1/decision-flows/df_credit_cards", {
        isDefault: true,
        version: (await ok(send("GET", "/api/v1/decision-flows/df_credit_cards"))).version,
      }),
    );
  });
});

describe("tenant settings", () => {
  test("read, changed by version, checked, and in force at once", async () => {
    const s = await ok(send("GET", "/api/v1/settings"));
    expect(s).toMatchObject({
      tenantId: "demo",
      plan: "professional",
      status: "active",
      effectiveRateLimitPerMinute: 10_000_000,
      traceSampleRate: 0,
    });
    // The operator's fields, checked: a bad plan and limit are named along with the tenant's own.
    const bad = await send(
      "PATCH",
      "/api/v1/tenants/demo",
      { plan: "gold", traceSampleRate: 2, traceRetentionDays: 0, rateLimitPerMinute: 0, version: s.version },
      operatorHeaders(),
    );
    expect(bad.status).toBe(400);
    expect(bad.json.details.map((d: Json) => d.field)).toEqual(["plan", "rateLimitPerMinute", "traceSampleRate", "traceRetentionDays"]);
    // A tenant's key changes its trace settings but not its quota, plan or limits: 403 naming each.
    const lifted = await send("PATCH", "/api/v1/settings", {
      traceSampleRate: 1,
      plan: "enterprise",
      rateLimitPerMinute: 1_000_000,
      monthlyDecisionQuota: 999_999_999,
      version: s.version,
    });
    expect(lifted.status).toBe(403);
    expect(lifted.json.code).toBe("FORBIDDEN");
    expect(lifted.json.details.map((d: Json) => d.field)).toEqual(["plan", "rateLimitPerMinute", "monthlyDecisionQuota"]);
    const traced = await ok(send("PATCH", "/api/v1/settings", { traceSampleRate: 1, version: s.version }));
    const changed = await ok(
      send("PATCH", "/api/v1/tenants/demo", { monthlyDecisionQuota: 123456, version: traced.version }, operatorHeaders()),
    );
    expect(changed).toMatchObject({
      traceSampleRate: 1,
      monthlyDecisionQuota: "123456",
      effectiveMonthlyDecisionQuota: "123456",
      version: s.version + 2,
    });
    expect((await send("PATCH", "/api/v1/settings", { traceSampleRate: 0, version: s.version })).status).toBe(409);
    // Every Recommend is traced now.
    await waitFor(
      async () => (await ok(send("POST", "/api/v1/recommend", { customerId: "cust_12345", channelId: "ch_email" }))).traceId,
      1000,
      20,
    );
    // A replace by the tenant sends back what it read of the operator's fields, or leaves them out.
    const replaced = await ok(
      send("PUT", "/api/v1/settings", { name: s.name, plan: s.plan, traceSampleRate: 0, version: changed.version }),
    );
    expect(replaced.monthlyDecisionQuota).toBe("123456");
    const back = await ok(
      send("PATCH", "/api/v1/tenants/demo", { monthlyDecisionQuota: null, version: replaced.version }, operatorHeaders()),
    );
    expect(back).not.toHaveProperty("monthlyDecisionQuota");
    expect(back.effectiveMonthlyDecisionQuota).toBe(s.effectiveMonthlyDecisionQuota);
    const audits = await svc.db
      .sql`select actor_key_id, details from audit_log where action = 'tenant_settings.update' order by id desc limit 4`;
    expect(audits.map((a) => [a.actor_key_id, Object.keys(a.details.changes).sort()])).toEqual([
      ["operator", ["monthlyDecisionQuota"]],
      [expect.any(String), ["traceSampleRate"]],
      ["operator", ["monthlyDecisionQuota"]],
      [expect.any(String), ["traceSampleRate"]],
    ]);

    const client = createClient(TenantSettingsService, createGrpcTransport({ baseUrl: svc.grpc }));
    const headers = { "x-tenant-id": "demo", "x-api-key": DEMO_KEY };
    const got = await client.getTenantSettings({}, { headers });
    expect(got.tenantSettings?.version).toBe(back.version);
    const stale = await client
      .updateTenantSettings(
        { tenantSettings: { traceSampleRate: 0.5, version: 1 }, updateMask: { paths: ["trace_sample_rate"] } },
        { headers },
      )
      .catch((e) => ConnectError.from(e).code);
    expect(stale).toBe(Code.Aborted);
    const forbidden = await client
      .updateTenantSettings({ tenantSettings: { plan: "enterprise", version: back.version }, updateMask: { paths: ["plan"] } }, { headers })
      .catch((e) => ConnectError.from(e));
    expect(forbidden).toBeInstanceOf(ConnectError);
    expect((forbidden as ConnectError).code).toBe(Code.PermissionDenied);
    // The operator key, on the tenant's own service, may.
    const lifted2 = await client.updateTenantSettings(
      { tenantSettings: { plan: "enterprise", version: back.version }, updateMask: { paths: ["plan"] } },
      { headers: { "x-tenant-id": "demo", "x-api-key": OPERATOR_KEY } },
    );
    expect(lifted2.tenantSettings?.plan).toBe("enterprise");
    await client.updateTenantSettings(
      { tenantSettings: { plan: "professional", version: lifted2.tenantSettings?.version }, updateMask: { paths: ["plan"] } },
      { headers: { "x-tenant-id": "demo", "x-api-key": OPERATOR_KEY } },
    );
  });
});

describe("API keys over gRPC", () => {
  test("create shows the key once; list pages through; a bad scope is refused", async () => {
    const client = createClient(ApiKeyService, createGrpcTransport({ baseUrl: svc.grpc }));
    const headers = { "x-tenant-id": "demo", "x-api-key": DEMO_KEY };
    for (let i = 0; i < 3; i++) await client.createApiKey({ name: `k${i}`, scopes: ["decide"] }, { headers });
    const seen: string[] = [];
    let cursor = "";
    do {
      const page = await client.listApiKeys({ limit: 2, cursor }, { headers });
      seen.push(...page.apiKeys.map((k) => k.name));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen).toEqual(expect.arrayContaining(["k0", "k1", "k2", "demo"]));
    const bad = await client.createApiKey({ name: "x", scopes: ["root"] }, { headers }).catch((e) => ConnectError.from(e));
    expect((bad as ConnectError).code).toBe(Code.InvalidArgument);
    const past = await client
      .createApiKey({ name: "x", scopes: ["admin"], expiresAt: { seconds: 1n, nanos: 0 } }, { headers })
      .catch((e) => ConnectError.from(e).code);
    expect(past).toBe(Code.InvalidArgument);
  });
});
