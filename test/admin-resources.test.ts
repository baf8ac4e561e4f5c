// Every catalog resource of the admin API, from one table: the happy path (create, get, list, replace,
// patch, delete and create again), validation errors naming each field, another tenant's id (404), a
// decide key on an admin route (403), a stale version (409) and the audit rows; then the same resources
// over gRPC.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { CategoryService } from "../gen/kaireon/v1/category_pb.ts";
import { ChannelService } from "../gen/kaireon/v1/channel_pb.ts";
import { ContactPolicyService } from "../gen/kaireon/v1/contact_policy_pb.ts";
import { CreativeService } from "../gen/kaireon/v1/creative_pb.ts";
import { DecisionFlowService } from "../gen/kaireon/v1/decision_flow_pb.ts";
import { ExperimentService } from "../gen/kaireon/v1/experiment_pb.ts";
import { OfferService } from "../gen/kaireon/v1/offer_pb.ts";
import { OutcomeTypeService } from "../gen/kaireon/v1/outcome_type_pb.ts";
import { PlacementService } from "../gen/kaireon/v1/placement_pb.ts";
import { QualificationRuleService } from "../gen/kaireon/v1/qualification_rule_pb.ts";
import { authHeaders, createTenantWithKey, DEMO_KEY, startTestService, type TestService } from "./harness.ts";

let svc: TestService;
let acmeKey: string;
let decideKey: string;
beforeAll(async () => {
  svc = await startTestService();
  acmeKey = await createTenantWithKey(svc, "acme");
  decideKey = await createTenantWithKey(svc, "demo-decide", ["decide"]);
  await svc.db.sql`update api_keys set tenant_id = 'demo' where tenant_id = 'demo-decide'`;
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

interface Fixture {
  name: string;
  /** The collection's path. */
  collection: string;
  /** The JSON name of the id field, and the id the test creates. */
  idField: string;
  id: string;
  create: Json;
  /** A change for PATCH, and what the answer then shows. */
  patch: Json;
  /** A body with mistakes, and the fields each must be reported under. */
  invalid: Json;
  invalidFields: string[];
  /** An id of the demo tenant that acme must not see. */
  demoId: string;
  /** False for resources without a full replace (experiments change by PATCH). */
  put?: boolean;
  /** Resources the fixture needs, made through the API first. */
  setup?: () => Promise<void>;
  /** The list response field. */
  listField: string;
}

const fixtures: Fixture[] = [
  {
    name: "categories",
    collection: "/api/v1/categories",
    idField: "categoryId",
    id: "cat_test",
    create: { categoryId: "cat_test", name: "Test", fields: { rate: 2 }, computed: { doubled: "rate * 2" } },
    patch: { name: "Test renamed" },
    invalid: { categoryId: "bad id!", name: "", computed: { x: "rate +", y: "rat * 2" } },
    invalidFields: ["categoryId", "name", "computed.x", "computed.y"],
    demoId: "cat_loans",
    listField: "categories",
  },
  {
    name: "offers",
    collection: "/api/v1/offers",
    idField: "offerId",
    id: "off_test",
    create: { offerId: "off_test", categoryId: "cat_credit_cards", name: "Test card", priority: 60, fields: { base_rate: 12 } },
    patch: { priority: 75, qualification: { segment: "card_member", minPropensity: 0.1 } },
    invalid: {
      offerId: "off_bad",
      categoryId: "cat_nope",
      name: "x",
      priority: 101,
      endsAt: "2020-01-01T00:00:00Z",
      startsAt: "2021-01-01T00:00:00Z",
      computed: { z: "base_rat * 2" },
      qualification: { condition: "customer.age >", fit: [{ when: "true", relevance: 3 }] },
    },
    invalidFields: ["priority", "endsAt", "categoryId", "computed.z", "qualification.condition", "qualification.fit[0].relevance"],
    demoId: "act_cashback",
    listField: "offers",
  },
  {
    name: "channels",
    collection: "/api/v1/channels",
    idField: "channelId",
    id: "ch_test",
    create: { channelId: "ch_test", name: "Kiosk", type: "kiosk", implicitImpressions: true },
    patch: { implicitImpressions: false },
    invalid: { channelId: "", name: "", type: "t".repeat(65) },
    invalidFields: ["channelId", "name", "type"],
    demoId: "ch_sms",
    listField: "channels",
  },
  {
    name: "placements",
    collection: "/api/v1/channels/ch_web/placements",
    idField: "placementId",
    id: "pl_test",
    create: { placementId: "pl_test", name: "Footer banner" },
    patch: { name: "Footer" },
    invalid: { placementId: "p l", name: "" },
    invalidFields: ["placementId", "name"],
    demoId: "sidebar",
    listField: "placements",
  },
  {
    name: "creatives",
    collection: "/api/v1/creatives",
    idField: "creativeId",
    id: "cr_test",
    create: {
      creativeId: "cr_test",
      offerId: "act_cashback",
      channelId: "ch_sms",
      name: "SMS B",
      content: { text: '{{customer.first_name | "Hi"}}, {{offer.name}} at {{base_rate}}%' },
    },
    patch: { status: "inactive" },
    invalid: {
      creativeId: "cr_bad",
      offerId: "act_cashback",
      channelId: "ch_web",
      placementId: "nowhere",
      name: "x",
      status: "paused",
      content: { text: "{{base_rat}}", title: "{{ unclosed" },
    },
    invalidFields: ["status", "placementId", "content.text", "content.title"],
    demoId: "treat_cashback_email",
    listField: "creatives",
  },
  {
    name: "contact policies",
    collection: "/api/v1/contact-policies",
    idField: "contactPolicyId",
    id: "cp_test",
    create: { contactPolicyId: "cp_test", name: "Three a day", type: "frequency_cap", scope: "offer", max: 3, window: "day" },
    patch: { max: 5, channelIds: ["ch_email"] },
    invalid: {
      contactPolicyId: "cp_bad",
      name: "x",
      type: "frequency_cap",
      scope: "planet",
      window: "day",
      max: 2,
      hours: 4,
      channelIds: ["ch_nope"],
    },
    invalidFields: ["hours", "scope", "channelIds[0]"],
    demoId: "cp_demo",
    listField: "contactPolicies",
    setup: async () => {
      const r = await send("POST", "/api/v1/contact-policies", { contactPolicyId: "cp_demo", name: "Opt-outs", type: "opt_out" });
      expect(r.status).toBe(200);
    },
  },
  {
    name: "qualification rules",
    collection: "/api/v1/qualification-rules",
    idField: "qualificationRuleId",
    id: "qr_test",
    create: {
      qualificationRuleId: "qr_test",
      name: "Adults",
      categoryIds: ["cat_insurance"],
      condition: "coalesce(customer.age, 0) >= 18",
    },
    patch: { minPropensity: 0.05 },
    invalid: { qualificationRuleId: "qr_bad", name: "x", offerIds: ["act_nope"], condition: "customer.age >=", minPropensity: 2 },
    invalidFields: ["condition", "minPropensity", "offerIds[0]"],
    demoId: "qr_demo",
    listField: "qualificationRules",
    setup: async () => {
      const r = await send("POST", "/api/v1/qualification-rules", {
        qualificationRuleId: "qr_demo",
        name: "Members",
        segment: "card_member",
        status: "inactive",
      });
      expect(r.status).toBe(200);
    },
  },
  {
    name: "outcome types",
    collection: "/api/v1/outcome-types",
    idField: "outcomeType",
    id: "purchase",
    create: { outcomeType: "purchase", classification: "positive" },
    patch: { classification: "neutral" },
    invalid: { outcomeType: "Bought!", classification: "great" },
    invalidFields: ["outcomeType", "classification"],
    demoId: "complaint",
    listField: "outcomeTypes",
    setup: async () => {
      expect((await send("POST", "/api/v1/outcome-types", { outcomeType: "complaint", classification: "negative" })).status).toBe(200);
    },
  },
  {
    name: "decision flows",
    collection: "/api/v1/decision-flows",
    idField: "decisionFlowId",
    id: "df_test",
    create: { decisionFlowId: "df_test", name: "Loans only", definition: { candidates: { categoryIds: ["cat_loans"] } } },
    patch: { name: "Loans" },
    invalid: { decisionFlowId: "df_bad", name: "", definition: { score: { weights: { propensity: 2 } }, surprise: 1 } },
    invalidFields: ["name", "definition.surprise", "definition.score.weights.propensity"],
    demoId: "df_credit_cards",
    listField: "decisionFlows",
  },
  {
    name: "experiments",
    collection: "/api/v1/experiments",
    idField: "experimentId",
    id: "exp_test",
    create: {
      experimentId: "exp_test",
      offerId: "act_personal_loan",
      channelId: "ch_sms",
      variants: [
        { variant: "control", creativeId: "treat_personal_loan_sms", weight: 50 },
        { variant: "short", creativeId: "cr_exp_short", weight: 50 },
      ],
    },
    patch: { status: "running" },
    invalid: {
      experimentId: "exp bad",
      offerId: "act_personal_loan",
      channelId: "ch_sms",
      goal: "Bought!",
      variants: [
        { variant: "control", creativeId: "treat_personal_loan_sms", weight: 60 },
        { variant: "control", creativeId: "treat_cashback_sms", weight: 30 },
      ],
    },
    invalidFields: ["experimentId", "goal", "variants[1].variant", "variants[1].creativeId", "variants"],
    demoId: "exp_cc_cta_test",
    put: false,
    listField: "experiments",
    setup: async () => {
      const r = await send("POST", "/api/v1/creatives", {
        creativeId: "cr_exp_short",
        offerId: "act_personal_loan",
        channelId: "ch_sms",
        name: "Short",
        content: { text: "{{offer.name}}?" },
      });
      expect(r.status).toBe(200);
    },
  },
];

/** Every item of a paged list, following nextCursor with a small page size. */
async function listAll(f: Fixture, headers = authHeaders()): Promise<Json[]> {
  const items: Json[] = [];
  let cursor = "";
  for (let page = 0; page < 50; page++) {
    const res = await send("GET", `${f.collection}?limit=2${cursor ? `&cursor=${cursor}` : ""}`, undefined, headers);
    expect(res.status).toBe(200);
    expect(res.json[f.listField].length).toBeLessThanOrEqual(2);
    items.push(...res.json[f.listField]);
    cursor = res.json.nextCursor;
    if (!cursor) return items;
  }
  throw new Error("list did not end");
}

const auditOf = (id: string) =>
  svc.db.sql`select action, actor_key_id, details from audit_log where tenant_id = 'demo' and resource_id like ${`%${id}`} order by id`;

describe.each(fixtures)("$name", (f) => {
  const item = `${f.collection}/${f.id}`;

  test("happy path: create, get, list, replace, patch, delete, and create again", async () => {
    await f.setup?.();
    const created = await send("POST", f.collection, f.create);
    expect(created.status).toBe(200);
    expect(created.json).toMatchObject(f.create);
    expect(created.json.version).toBeGreaterThanOrEqual(1);
    expect(Date.parse(created.json.createdAt)).toBeGreaterThan(Date.now() - 60_000);

    const got = await send("GET", item);
    expect(got.status).toBe(200);
    expect(got.json).toEqual(created.json);
    expect((await listAll(f)).map((x) => x[f.idField])).toContain(f.id);
    // Ids in order, without repeats, across pages.
    const ids = (await listAll(f)).map((x) => x[f.idField]);
    expect(ids).toEqual([...new Set(ids)].sort());

    let current = created.json;
    if (f.put !== false) {
      const replaced = await send("PUT", item, { ...f.create, version: current.version });
      expect(replaced.status).toBe(200);
      expect(replaced.json.version).toBe(current.version + 1);
      current = replaced.json;
    }
    const patched = await send("PATCH", item, { ...f.patch, version: current.version });
    expect(patched.status).toBe(200);
    expect(patched.json).toMatchObject(f.patch);
    expect(patched.json.version).toBe(current.version + 1);
    // What the patch did not name stays as it was.
    for (const [k, v] of Object.entries(f.create)) if (!(k in f.patch)) expect(patched.json[k]).toEqual(v);
    expect((await send("GET", item)).json).toEqual(patched.json);

    const deleted = await send("DELETE", `${item}?version=${patched.json.version}`);
    expect(deleted.status).toBe(200);
    expect(deleted.json.deletedAt).toBeTruthy();
    expect((await send("GET", item)).status).toBe(404);
    expect((await listAll(f)).map((x) => x[f.idField])).not.toContain(f.id);
    expect((await send("DELETE", item)).status).toBe(404);

    // The id is free again; the version keeps growing, so a handle on the old one stays stale.
    const again = await send("POST", f.collection, f.create);
    expect(again.status).toBe(200);
    expect(again.json.version).toBeGreaterThan(deleted.json.version);
    expect((await send("POST", f.collection, f.create)).status).toBe(409);

    const audit = await auditOf(f.id);
    expect(audit.map((a) => a.action.split(".")[1])).toEqual(
      f.put === false ? ["create", "update", "delete", "create"] : ["create", "update", "update", "delete", "create"],
    );
    expect(new Set(audit.map((a) => a.actor_key_id)).size).toBe(1);
    const update = audit.find((a) => a.action.endsWith(".update") && Object.keys(a.details.changes).length > 0);
    expect(Object.keys(update?.details.changes ?? {})).toEqual(expect.arrayContaining(Object.keys(f.patch)));
  });

  test("validation errors name each field, and nothing is written", async () => {
    const res = await send("POST", f.collection, f.invalid);
    expect(res.status).toBe(400);
    expect(res.json.code).toBe("VALIDATION_ERROR");
    const fields = res.json.details.map((d: { field: string }) => d.field);
    for (const field of f.invalidFields) expect(fields).toContain(field);
    for (const d of res.json.details) expect(d.message.length).toBeGreaterThan(5);
    const id = f.invalid[f.idField];
    if (id) expect((await send("GET", `${f.collection}/${encodeURIComponent(id)}`)).status).toBe(404);
    // A wrong JSON type is named too.
    const typed = await send("POST", f.collection, { [f.idField]: 12 });
    expect(typed.status).toBe(400);
    expect(typed.json.details[0].field).toBe(f.idField);
  });

  test("another tenant's id is not found, whatever the verb", async () => {
    const acme = authHeaders(acmeKey, "acme");
    const path = `${f.collection}/${f.demoId}`;
    expect((await send("GET", path)).status).toBe(200);
    expect((await send("GET", path, undefined, acme)).status).toBe(404);
    expect((await send("PATCH", path, { ...f.patch, version: 1 }, acme)).status).toBe(404);
    expect((await send("DELETE", path, undefined, acme)).status).toBe(404);
    expect((await listAll(f, acme)).length).toBe(0);
  });

  test("a decide key is refused on every admin route", async () => {
    const decide = authHeaders(decideKey);
    expect((await send("GET", f.collection, undefined, decide)).status).toBe(403);
    expect((await send("POST", f.collection, f.create, decide)).status).toBe(403);
    expect((await send("GET", `${f.collection}/${f.demoId}`, undefined, decide)).status).toBe(403);
    expect((await send("PATCH", `${f.collection}/${f.demoId}`, { ...f.patch, version: 1 }, decide)).status).toBe(403);
    expect((await send("DELETE", `${f.collection}/${f.demoId}`, undefined, decide)).status).toBe(403);
    expect((await send("GET", `${f.collection}/${f.demoId}`)).status).toBe(200);
  });

  test("a stale version is a conflict; a missing one is a validation error", async () => {
    const path = `${f.collection}/${f.demoId}`;
    const current = (await send("GET", path)).json;
    const stale = await send("PATCH", path, { ...f.patch, version: current.version + 7 });
    expect(stale.status).toBe(409);
    expect(stale.json.code).toBe("CONFLICT");
    expect(stale.json.details).toEqual([{ field: "version", message: `version ${current.version} is current` }]);
    expect((await send("PATCH", path, f.patch)).json.details[0].field).toBe("version");
    expect((await send("DELETE", `${path}?version=${current.version + 7}`)).status).toBe(409);
    if (f.put !== false) expect((await send("PUT", path, { ...current, version: current.version + 7 })).status).toBe(409);
    expect((await send("GET", path)).json).toEqual(current);
  });
});

describe("references", () => {
  test("what is still used cannot be deleted; an offer takes its creatives with it", async () => {
    const cat = await send("DELETE", "/api/v1/categories/cat_deposits");
    expect(cat.status).toBe(409);
    expect(cat.json.error).toContain("act_cd_12m");
    const channel = await send("DELETE", "/api/v1/channels/ch_email");
    expect(channel.status).toBe(409);
    const placement = await send("DELETE", "/api/v1/channels/ch_email/placements/footer");
    expect(placement.status).toBe(409);
    expect(placement.json.error).toContain("treat_savings_email_footer");
    // The running demo experiment holds its offer and creatives.
    expect((await send("DELETE", "/api/v1/offers/act_platinum_cc")).status).toBe(409);
    expect((await send("DELETE", "/api/v1/creatives/treat_platinum_email_variant_a")).status).toBe(409);
    // The default flow is the tenant's fallback.
    expect((await send("DELETE", "/api/v1/decision-flows/df_credit_cards")).status).toBe(409);

    const offer = await send("DELETE", "/api/v1/offers/act_travel_insurance");
    expect(offer.status).toBe(200);
    expect((await send("GET", "/api/v1/creatives/treat_travel_insurance_web")).status).toBe(404);
    const [audit] = await svc.db.sql`select details from audit_log where action = 'offer.delete' and resource_id = 'act_travel_insurance'`;
    expect(audit?.details.deletedCreatives).toEqual(["treat_travel_insurance_web"]);
    // A deleted offer is no longer decided on, nor accepted by Respond.
    const rec = await send("POST", "/api/v1/recommend", { customerId: "cust_12345", channelId: "ch_web", maxOffers: 50 });
    expect(rec.json.recommendations.map((r: { offerId: string }) => r.offerId)).not.toContain("act_travel_insurance");
    const res = await send("POST", "/api/v1/respond", {
      customerId: "c",
      offerId: "act_travel_insurance",
      channelId: "ch_web",
      outcomeType: "click",
    });
    expect(res.status).toBe(404);
  });

  test("a patch changes what it can and ignores the rest: unknown and read-only fields, as read", async () => {
    const read = await send("GET", "/api/v1/offers/act_student_refi");
    const patched = await send("PATCH", "/api/v1/offers/act_student_refi", {
      ...read.json,
      priority: 46,
      createdAt: "2000-01-01T00:00:00Z",
      nonsense: 1,
    });
    expect(patched.status).toBe(200);
    expect(patched.json).toEqual({ ...read.json, priority: 46, version: read.json.version + 1, updatedAt: patched.json.updatedAt });
    const nothing = await send("PATCH", "/api/v1/offers/act_student_refi", { nonsense: 1, version: patched.json.version });
    expect(nothing.status).toBe(400);
  });

  test("of concurrent writers with the same version one wins; of concurrent creates of one id one wins", async () => {
    const read = (await send("GET", "/api/v1/offers/act_personal_loan")).json;
    const patches = await Promise.all(
      Array.from({ length: 6 }, (_, i) => send("PATCH", "/api/v1/offers/act_personal_loan", { priority: 10 + i, version: read.version })),
    );
    expect(patches.map((p) => p.status).sort()).toEqual([200, 409, 409, 409, 409, 409]);
    const winner = patches.find((p) => p.status === 200)?.json as Json;
    expect((await send("GET", "/api/v1/offers/act_personal_loan")).json).toEqual(winner);
    const creates = await Promise.all(
      Array.from({ length: 6 }, () => send("POST", "/api/v1/channels", { channelId: "ch_race", name: "Race" })),
    );
    expect(creates.map((c) => c.status).sort()).toEqual([200, 409, 409, 409, 409, 409]);
    const [audit] = await svc.db.sql`select count(*)::int as n from audit_log where resource_id = 'ch_race'`;
    expect(audit?.n).toBe(1);
  });

  test("a bad cursor, limit or mask is a validation error", async () => {
    expect((await send("GET", "/api/v1/offers?cursor=nonsense")).json.details[0].field).toBe("cursor");
    expect((await send("GET", "/api/v1/offers?limit=101")).json.details[0].field).toBe("limit");
    expect((await send("GET", "/api/v1/offers?limit=-1")).json.details[0].field).toBe("limit");
    const other = await send("PUT", "/api/v1/offers/act_cashback", { offerId: "act_other", version: 1 });
    expect(other.status).toBe(400);
    expect(other.json.details[0].field).toBe("offerId");
  });
});

describe("gRPC", () => {
  const headers = { "x-tenant-id": "demo", "x-api-key": DEMO_KEY };
  const codeOf = (p: Promise<unknown>) =>
    p.then(
      () => "OK",
      (e: unknown) => Code[ConnectError.from(e).code],
    );

  test("create, get, list, update with a mask, and delete, for each resource service", async () => {
    const transport = createGrpcTransport({ baseUrl: svc.grpc });
    // service, the request field, the resource, its key, a change, and a resource with a mistake.
    const cases: [DescService, string, Json, Json, Json, Json][] = [
      [
        CategoryService,
        "category",
        { categoryId: "cat_grpc", name: "G" },
        { categoryId: "cat_grpc" },
        { name: "G2" },
        { categoryId: "cat_x" },
      ],
      [
        OfferService,
        "offer",
        { offerId: "off_grpc", categoryId: "cat_loans", name: "G" },
        { offerId: "off_grpc" },
        { name: "G2" },
        { offerId: "off_x", categoryId: "cat_nope", name: "x" },
      ],
      [ChannelService, "channel", { channelId: "ch_grpc", name: "G" }, { channelId: "ch_grpc" }, { name: "G2" }, { channelId: "ch x" }],
      [
        PlacementService,
        "placement",
        { channelId: "ch_sms", placementId: "pl_grpc", name: "G" },
        { channelId: "ch_sms", placementId: "pl_grpc" },
        { name: "G2" },
        { channelId: "ch_nope", placementId: "pl_x", name: "x" },
      ],
      [
        CreativeService,
        "creative",
        { creativeId: "cr_grpc", offerId: "act_cashback", channelId: "ch_web", name: "G" },
        { creativeId: "cr_grpc" },
        { name: "G2" },
        { creativeId: "cr_x", offerId: "act_cashback", channelId: "ch_web", name: "x", content: { t: "{{" } },
      ],
      [
        ContactPolicyService,
        "contactPolicy",
        { contactPolicyId: "cp_grpc", name: "G", type: "cooldown", hours: 12 },
        { contactPolicyId: "cp_grpc" },
        { name: "G2" },
        { contactPolicyId: "cp_x", name: "x", type: "sometimes" },
      ],
      [
        QualificationRuleService,
        "qualificationRule",
        { qualificationRuleId: "qr_grpc", name: "G", segment: "x", status: "inactive" },
        { qualificationRuleId: "qr_grpc" },
        { name: "G2" },
        { qualificationRuleId: "qr_x", name: "x" },
      ],
      [
        OutcomeTypeService,
        "outcomeType",
        { outcomeType: "grpc_outcome", classification: "neutral" },
        { outcomeType: "grpc_outcome" },
        { classification: "negative" },
        { outcomeType: "click", classification: "positive" },
      ],
      [
        DecisionFlowService,
        "decisionFlow",
        { decisionFlowId: "df_grpc", name: "G" },
        { decisionFlowId: "df_grpc" },
        { name: "G2" },
        { decisionFlowId: "df_x" },
      ],
    ];
    for (const [service, field, resource, key, change, invalid] of cases) {
      const client = createClient(service, transport) as unknown as Record<string, (req: unknown, opts: unknown) => Promise<Json>>;
      const call = (verb: string, req: unknown, h: Record<string, string> = headers) => {
        const method = service.methods.find((m) => m.name.startsWith(verb))?.localName as string;
        return (client[method] as (req: unknown, opts: unknown) => Promise<Json>)(req, { headers: h });
      };
      const created = await call("Create", { [field]: resource });
      expect(created[field]).toMatchObject(resource);
      expect((await call("Get", key))[field].version).toBe(created[field].version);
      const listed = await call("List", { limit: 100 });
      const page = Object.values(listed).find((v) => Array.isArray(v)) as Json[];
      expect(page.some((x) => Object.entries(key).every(([k, v]) => x[k] === v))).toBe(true);
      const updated = await call("Update", {
        [field]: { ...key, ...change, version: created[field].version },
        updateMask: { paths: Object.keys(change) },
      });
      expect(updated[field]).toMatchObject({ ...resource, ...change });
      expect(await codeOf(call("Update", { [field]: { ...resource, version: created[field].version } }))).toBe("Aborted");
      expect(await codeOf(call("Get", key, { "x-tenant-id": "acme", "x-api-key": acmeKey }))).toBe("NotFound");
      expect(await codeOf(call("Get", key, { ...headers, "x-api-key": decideKey }))).toBe("PermissionDenied");
      expect(await codeOf(call("Create", { [field]: invalid }))).toBe("InvalidArgument");
      const deleted = await call("Delete", { ...key, version: updated[field].version });
      expect(deleted[field].deletedAt).toBeTruthy();
      expect(await codeOf(call("Get", key))).toBe("NotFound");
    }
  });

  test("experiments: get, list and delete over gRPC", async () => {
    const client = createClient(ExperimentService, createGrpcTransport({ baseUrl: svc.grpc }));
    const got = await client.getExperiment({ experimentId: "exp_cc_cta_test" }, { headers });
    expect(got.experiment).toMatchObject({ offerId: "act_platinum_cc", status: "running", phase: 1 });
    const listed = await client.listExperiments({ limit: 1 }, { headers });
    expect(listed.experiments.length).toBe(1);
    expect(await codeOf(client.deleteExperiment({ experimentId: "exp_cc_cta_test", version: 99 }, { headers }))).toBe("Aborted");
    expect(
      await codeOf(client.getExperiment({ experimentId: "exp_cc_cta_test" }, { headers: { "x-tenant-id": "acme", "x-api-key": acmeKey } })),
    ).toBe("NotFound");
  });
});
