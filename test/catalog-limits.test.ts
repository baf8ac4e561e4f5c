// Write-time limits on what one tenant's catalog may ask of every decision: formula size, computed
// fields per offer and template size. Each is refused when written (REST, gRPC, the catalog import) with
// a 400 naming the field; exactly at the limit is accepted; a catalog stored before the limits still decides.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { ErrorDetailSchema } from "../gen/kaireon/v1/errors_pb.ts";
import { OfferService } from "../gen/kaireon/v1/offer_pb.ts";
import { authHeaders, createTenantWithKey, startTestService, type TestService, waitFor } from "./harness.ts";

let svc: TestService;
let tenant: Record<string, string>;
beforeAll(async () => {
  svc = await startTestService();
  tenant = authHeaders(await createTenantWithKey(svc, "limits"), "limits");
  // A tenant of its own, with a category, a channel and an offer for the creatives.
  for (const [path, body] of [
    ["/api/v1/categories", { categoryId: "cat_cards", name: "Cards", fields: { base_rate: 20 } }],
    ["/api/v1/channels", { channelId: "ch_web", name: "Web" }],
    ["/api/v1/offers", { offerId: "off_card", categoryId: "cat_cards", name: "Card" }],
  ] as const) {
    expect((await send("POST", path, body)).status).toBe(200);
  }
});
afterAll(async () => {
  await svc.stop();
});

// biome-ignore lint/suspicious/noExplicitAny: answers are read as loose JSON, as in the other API tests.
type Json = Record<string, any>;

async function send(method: string, path: string, body?: unknown, headers = tenant) {
  const res = await fetch(`${svc.http}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, json: (text ? JSON.parse(text) : null) as Json };
}

/** The violations of a refused write, as field → message. */
function violations(res: { status: number; json: Json }): Record<string, string> {
  expect(res.status).toBe(400);
  expect(res.json.code).toBe("VALIDATION_ERROR");
  return Object.fromEntries(res.json.details.map((d: { field: string; message: string }) => [d.field, d.message]));
}

/** A formula of exactly `nodes` nodes (a sum; `-` on the first term makes an even count). */
function formulaOf(nodes: number, term = "base_rate"): string {
  const first = nodes % 2 === 0 ? `-${term}` : term;
  return first + ` + ${term}`.repeat(Math.floor((nodes - 1) / 2));
}

/** `n` computed fields named `${prefix}0`… */
function computedOf(prefix: string, n: number, source = "base_rate * 2"): Record<string, string> {
  return Object.fromEntries(Array.from({ length: n }, (_, i) => [`${prefix}${i}`, source]));
}

describe("formula size", () => {
  const big = formulaOf(257);
  const atLimit = formulaOf(256);
  const tooBig = (field: string) => `${field}: formula has 257 nodes, at most 256 allowed`;

  test("a formula over 256 nodes is refused in an offer's computed field, condition and fit rule, naming each", async () => {
    const res = await send("POST", "/api/v1/offers", {
      offerId: "off_big",
      categoryId: "cat_cards",
      name: "Big",
      computed: { personalized_rate: big },
      qualification: {
        condition: `${big} > 0`,
        fit: [
          { when: "true", relevance: 0.5 },
          { when: big, relevance: 0.5 },
        ],
      },
    });
    const v = violations(res);
    expect(v["computed.personalized_rate"]).toBe(tooBig("computed.personalized_rate"));
    expect(v["qualification.condition"]).toBe("qualification.condition: formula has 259 nodes, at most 256 allowed");
    expect(v["qualification.fit[1].when"]).toBe(tooBig("qualification.fit[1].when"));
    expect(Object.keys(v).sort()).toEqual(["computed.personalized_rate", "qualification.condition", "qualification.fit[1].when"]);
    expect((await send("GET", "/api/v1/offers/off_big")).status).toBe(404);
  });

  test("a formula over 256 nodes is refused in a category's computed field and in a qualification rule", async () => {
    const category = await send("POST", "/api/v1/categories", {
      categoryId: "cat_big",
      name: "Big",
      fields: { base_rate: 1 },
      computed: { score: big },
    });
    expect(violations(category)).toEqual({ "computed.score": tooBig("computed.score") });
    // A rule's bare names are not checked (they read each offer's own fields), its size is.
    const rule = await send("POST", "/api/v1/qualification-rules", { qualificationRuleId: "qr_big", name: "Big", condition: big });
    expect(violations(rule)).toEqual({ condition: tooBig("condition") });
    expect((await send("GET", "/api/v1/categories/cat_big")).status).toBe(404);
    expect((await send("GET", "/api/v1/qualification-rules/qr_big")).status).toBe(404);
  });

  test("a formula of exactly 256 nodes is accepted everywhere a formula is written", async () => {
    const category = await send("POST", "/api/v1/categories", {
      categoryId: "cat_edge",
      name: "Edge",
      fields: { base_rate: 1 },
      computed: { score: atLimit },
    });
    expect(category.status).toBe(200);
    const offer = await send("POST", "/api/v1/offers", {
      offerId: "off_edge",
      categoryId: "cat_edge",
      name: "Edge",
      computed: { personalized_rate: atLimit },
      qualification: { condition: atLimit, fit: [{ when: atLimit, relevance: 0.5 }] },
    });
    expect(offer.status).toBe(200);
    const rule = await send("POST", "/api/v1/qualification-rules", { qualificationRuleId: "qr_edge", name: "Edge", condition: atLimit });
    expect(rule.status).toBe(200);
  });

  test("an update that makes a formula too big is refused and leaves the offer as it was", async () => {
    const before = (await send("GET", "/api/v1/offers/off_card")).json;
    const res = await send("PATCH", "/api/v1/offers/off_card", { computed: { personalized_rate: big }, version: before.version });
    expect(violations(res)).toEqual({ "computed.personalized_rate": tooBig("computed.personalized_rate") });
    expect((await send("GET", "/api/v1/offers/off_card")).json).toEqual(before);
  });

  test("over gRPC the refusal is invalid_argument with the field in the typed detail", async () => {
    const client = createClient(OfferService, createGrpcTransport({ baseUrl: svc.grpc }));
    const err = await client
      .createOffer(
        { offer: { offerId: "off_grpc_big", categoryId: "cat_cards", name: "Big", computed: { personalized_rate: big } } },
        { headers: { "x-tenant-id": "limits", "x-api-key": tenant["x-api-key"] as string } },
      )
      .then(
        () => null,
        (e: unknown) => ConnectError.from(e),
      );
    expect(err?.code).toBe(Code.InvalidArgument);
    const [detail] = err?.findDetails(ErrorDetailSchema) ?? [];
    expect(detail?.code).toBe("VALIDATION_ERROR");
    expect(detail?.details).toEqual([
      expect.objectContaining({ field: "computed.personalized_rate", message: tooBig("computed.personalized_rate") }),
    ]);
  });
});

describe("computed fields per offer", () => {
  const limit = "at most 32 allowed";

  test("an offer's own computed fields and its category's count together, a replaced one once", async () => {
    const category = await send("POST", "/api/v1/categories", {
      categoryId: "cat_many",
      name: "Many",
      fields: { base_rate: 3 },
      computed: computedOf("shared_", 20),
    });
    expect(category.status).toBe(200);
    const offer = (id: string, computed: Record<string, string>) =>
      send("POST", "/api/v1/offers", { offerId: id, categoryId: "cat_many", name: id, computed });

    expect((await offer("off_at_limit", computedOf("own_", 12))).status).toBe(200);
    // Five of its own replace the category's of the same name: 20 + 12 distinct.
    expect((await offer("off_replacing", { ...computedOf("own_", 12), ...computedOf("shared_", 5, "base_rate") })).status).toBe(200);

    const over = await offer("off_over", computedOf("own_", 13));
    expect(violations(over)).toEqual({
      computed: "computed: the offer has 33 computed fields (its own and its category's), at most 32 allowed",
    });
    expect((await send("GET", "/api/v1/offers/off_over")).status).toBe(404);

    // Moving an offer to a category with more computed fields counts the new category's.
    const moved = await send("POST", "/api/v1/offers", {
      offerId: "off_moving",
      categoryId: "cat_cards",
      name: "Mover",
      computed: computedOf("own_", 13),
    });
    expect(moved.status).toBe(200);
    const move = await send("PATCH", "/api/v1/offers/off_moving", { categoryId: "cat_many", version: moved.json.version });
    expect(violations(move).computed).toContain(limit);
  });

  test("a category over 32 computed fields is refused; exactly 32 is accepted", async () => {
    const over = await send("POST", "/api/v1/categories", {
      categoryId: "cat_33",
      name: "Over",
      fields: { base_rate: 1 },
      computed: computedOf("c", 33),
    });
    expect(violations(over)).toEqual({ computed: `computed: the category has 33 computed fields, ${limit}` });
    const at = await send("POST", "/api/v1/categories", {
      categoryId: "cat_32",
      name: "At",
      fields: { base_rate: 1 },
      computed: computedOf("c", 32),
    });
    expect(at.status).toBe(200);
  });

  test("a category cannot grow its computed fields past what its offers leave room for", async () => {
    const current = (await send("GET", "/api/v1/categories/cat_many")).json;
    // off_at_limit has 12 of its own beside the category's 20: one more on the category is 33 for it.
    const grown = await send("PATCH", "/api/v1/categories/cat_many", {
      computed: { ...current.computed, extra: "base_rate" },
      version: current.version,
    });
    const message = violations(grown).computed;
    expect(message).toContain("off_at_limit (33)");
    expect(message).toContain("off_replacing (33)");
    expect(message).toContain("more than 32 computed fields");
    expect((await send("GET", "/api/v1/categories/cat_many")).json).toEqual(current);
    // Replacing one of its own formulas keeps the count, so it is accepted.
    const replaced = await send("PATCH", "/api/v1/categories/cat_many", {
      computed: { ...current.computed, shared_0: "base_rate * 3" },
      version: current.version,
    });
    expect(replaced.status).toBe(200);
  });
});

describe("template size", () => {
  const creative = (id: string, content: Record<string, unknown>) =>
    send("POST", "/api/v1/creatives", { creativeId: id, offerId: "off_card", channelId: "ch_web", name: id, content });

  test("a content field of 8192 characters and 64 placeholders is accepted", async () => {
    const res = await creative("cr_at_limit", {
      body: "x".repeat(8192),
      headline: "{{offer.name}}".repeat(64),
      ctaUrl: { not: "a template" },
    });
    expect(res.status).toBe(200);
  });

  test("an over-long content field and one with too many placeholders are refused, each named", async () => {
    const res = await creative("cr_over", {
      body: "x".repeat(8193),
      headline: `${'{{offer.name}} {{customer.first_name | "you"}} '.repeat(32)}{{base_rate}}`,
      title: "fine",
    });
    expect(violations(res)).toEqual({
      "content.body": "content.body: template has 8193 characters, at most 8192 allowed",
      "content.headline": "content.headline: template has 65 placeholders, at most 64 allowed",
    });
    expect((await send("GET", "/api/v1/creatives/cr_over")).status).toBe(404);
  });
});

describe("catalog import", () => {
  test("the same limits hold inside an imported document, placed in it, and nothing is written", async () => {
    const doc = {
      categories: [{ categoryId: "imp_cat", name: "Imported", fields: { base_rate: 1 }, computed: computedOf("c", 33) }],
      offers: [{ offerId: "imp_offer", categoryId: "cat_cards", name: "Imported", computed: { personalized_rate: formulaOf(300) } }],
      creatives: [
        { creativeId: "imp_cr", offerId: "off_card", channelId: "ch_web", name: "Imported", content: { body: "y".repeat(9000) } },
      ],
      qualificationRules: [{ qualificationRuleId: "imp_qr", name: "Imported", condition: formulaOf(257, "customer.age") }],
    };
    const v = violations(await send("POST", "/api/v1/catalog/import", doc));
    expect(Object.keys(v).sort()).toEqual([
      "categories[0].computed",
      "creatives[0].content.body",
      "offers[0].computed.personalized_rate",
      "qualificationRules[0].condition",
    ]);
    expect(v["offers[0].computed.personalized_rate"]).toContain("formula has 300 nodes, at most 256 allowed");
    const [rows] = await svc.db.sql`select (select count(*) from categories where id = 'imp_cat')::int as categories,
                                            (select count(*) from offers where id = 'imp_offer')::int as offers`;
    expect(rows).toEqual({ categories: 0, offers: 0 });
  });
});

describe("a catalog stored before the limits", () => {
  test("still decides, and its next write must come within them", async () => {
    const demo = authHeaders();
    // As if written before the limits existed: straight into the table, then the usual reload notice.
    const source = formulaOf(301, "1");
    await svc.db.sql`update offers set computed = ${svc.db.sql.json({ big: source })} where tenant_id = 'demo' and id = 'act_cashback'`;
    await svc.db.sql`select pg_notify('kaireon_catalog', 'demo')`;
    const recommended = await waitFor(async () => {
      const res = await send("POST", "/api/v1/recommend", { customerId: "cust_12345", channelId: "ch_web", maxOffers: 50 }, demo);
      expect(res.status).toBe(200);
      return res.json.recommendations.find((r: Json) => r.offerId === "act_cashback" && r.personalization?.big !== undefined);
    }, 10_000);
    expect(recommended.personalization.big).toBe(151);

    const current = (await send("GET", "/api/v1/offers/act_cashback", undefined, demo)).json;
    const patch = await send("PATCH", "/api/v1/offers/act_cashback", { priority: 51, version: current.version }, demo);
    expect(violations(patch)).toEqual({ "computed.big": "computed.big: formula has 301 nodes, at most 256 allowed" });
  });
});
