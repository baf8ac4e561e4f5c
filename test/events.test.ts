// Decision events end to end: attribution ids on every transport, the outbox, webhook delivery with
// signatures, retries, an outage and the dead-letter list, and the checks Respond makes of what it names.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHmac } from "node:crypto";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { RecommendService } from "../gen/kaireon/v1/recommend_pb.ts";
import { WebhookService } from "../gen/kaireon/v1/webhook_pb.ts";
import { authHeaders, createTenantWithKey, DEMO_KEY, postJson, startTestService, type TestService, waitFor } from "./harness.ts";
import { Code, ConnectError } from "@connectrpc/connect";

interface Received {
  headers: Headers;
  body: string;
  event: { id: string; type: string; tenantId: string; occurredAt: string; data: Record<string, unknown> };
}

/** A webhook receiver: records every POST and answers what `answer` says for it. */
function receiver(answer: (event: Received["event"], attempt: number) => number) {
  const received: Received[] = [];
  const attempts = new Map<string, number>();
  let server: ReturnType<typeof Bun.serve> | null = null;
  const start = (port = 0) => {
    server = Bun.serve({
      hostname: "127.0.0.1",
      port,
      async fetch(req) {
        const body = await req.text();
        const event = JSON.parse(body) as Received["event"];
        const n = (attempts.get(event.id) ?? 0) + 1;
        attempts.set(event.id, n);
        const status = answer(event, n);
        if (status < 300) received.push({ headers: req.headers, body, event });
        return new Response(null, { status });
      },
    });
    return server.port as number;
  };
  const port = start();
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    received,
    attempts,
    stop: () => server?.stop(true),
    restart: () => start(port),
  };
}

function verify(secret: string, r: Received): boolean {
  const header = r.headers.get("kaireon-signature") ?? "";
  const m = header.match(/^t=(\d+),v1=([0-9a-f]{64})$/);
  if (!m) return false;
  const expected = createHmac("sha256", secret).update(`${m[1]}.${r.body}`).digest("hex");
  return expected === m[2] && Math.abs(Number(m[1]) - Date.now() / 1000) < 300;
}

// biome-ignore lint/suspicious/noExplicitAny: answers are read field by field
type Json = Record<string, any>;
const getJson = async (path: string): Promise<Json> =>
  (await fetch(`${svc.http}${path}`, { headers: authHeaders() })).json() as Promise<Json>;

let svc: TestService;
beforeAll(async () => {
  svc = await startTestService({
    WEBHOOK_ALLOW_PRIVATE_TARGETS: "true",
    WEBHOOK_RETRY_BASE_MS: "200",
    WEBHOOK_RETRY_MAX_MS: "1000",
    WEBHOOK_MAX_ATTEMPTS: "6",
    EVENT_RELAY_POLL_MS: "50",
    TRACE_FLUSH_MS: "20",
  });
}, 60_000);
afterAll(async () => {
  await svc?.stop();
});

async function metricValue(name: string, labels: string): Promise<number> {
  const text = await (await fetch(`${svc.http}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name}{${labels}}`));
  return line ? Number(line.split(" ").pop()) : 0;
}

async function createWebhook(url: string, events = ["decision.made.v1", "interaction.recorded.v1"]) {
  const res = await postJson(svc.http, "/api/v1/webhooks", { url, events, description: "test receiver" });
  expect(res.status).toBe(200);
  expect(res.json.webhookId).toMatch(/^wh_/);
  expect(res.json.secret).toMatch(/^whsec_/);
  return res.json as { webhookId: string; secret: string };
}

async function recommendAndRespond(customerId: string) {
  const rec = await postJson(svc.http, "/api/v1/recommend", { customerId, channelId: "ch_email" });
  expect(rec.status).toBe(200);
  const first = rec.json.recommendations[0];
  expect(first.recommendationId).toMatch(/^rec_[0-9A-Za-z]{20}\d{2}$/);
  const res = await postJson(svc.http, "/api/v1/respond", {
    customerId,
    offerId: first.offerId,
    channelId: "ch_email",
    outcomeType: "click",
    recommendationId: first.recommendationId,
  });
  expect(res.status).toBe(200);
  expect(res.json.recommendationId).toBe(first.recommendationId);
  // The creative comes from the recommendation when the response names none.
  expect(res.json.creativeId).toBe(first.creativeId);
  return { recommendationId: first.recommendationId as string, interactionId: res.json.id as string, offerId: first.offerId as string };
}

describe("webhooks", () => {
  test("get both event types, signed, after failing the first two attempts of each", async () => {
    const hook = receiver((_e, attempt) => (attempt <= 2 ? 503 : 204));
    try {
      const { webhookId, secret } = await createWebhook(hook.url);
      const shown = await svc.app.deps.db.query<{ secret: string }>("select secret from webhooks where id = $1", [webhookId]);
      expect(shown[0]?.secret).toBe(secret);
      const got = await getJson(`/api/v1/webhooks/${webhookId}`);
      expect(got).toMatchObject({ webhookId, url: hook.url, status: "active", events: ["decision.made.v1", "interaction.recorded.v1"] });
      expect(got.secret ?? "").toBe("");

      const { recommendationId, interactionId } = await recommendAndRespond("cust_events_1");
      const both = await waitFor(async () => {
        const decision = hook.received.find((r) => r.event.type === "decision.made.v1");
        const interaction = hook.received.find((r) => r.event.type === "interaction.recorded.v1");
        return decision && interaction ? { decision, interaction } : null;
      }, 30_000);
      for (const r of [both.decision, both.interaction]) {
        expect(verify(secret, r)).toBe(true);
        expect(hook.attempts.get(r.event.id)).toBe(3);
        expect(r.event).toMatchObject({ tenantId: "demo" });
        expect(r.event.id).toMatch(/^evt_/);
        expect(r.headers.get("kaireon-event-type")).toBe(r.event.type);
        expect(r.event.occurredAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
        // The event is sent as compact JSON, its fields in the contract's order.
        expect(Object.keys(r.event)).toEqual(["id", "type", "tenantId", "occurredAt", "data"]);
        expect(r.body).toBe(JSON.stringify(r.event));
      }
      const shownIds = (both.decision.event.data.recommendations as { recommendationId: string }[]).map((x) => x.recommendationId);
      expect(shownIds).toContain(recommendationId);
      expect(both.decision.event.data).toMatchObject({ customerId: "cust_events_1", channelId: "ch_email", decisionFlowVersion: 1 });
      expect(both.interaction.event.data).toMatchObject({ interactionId, recommendationId, outcomeType: "click" });
      // Each event was accepted once.
      expect(hook.received.filter((r) => r.event.id === both.decision.event.id).length).toBe(1);
    } finally {
      hook.stop();
    }
  }, 60_000);

  test("a receiver down for a while gets everything, in order per customer, once it is back", async () => {
    const hook = receiver(() => 200);
    try {
      const { webhookId } = await createWebhook(hook.url, ["interaction.recorded.v1"]);
      const failuresBefore = await metricValue("kaireon_event_delivery_failures_total", 'destination="webhook"');
      hook.stop();
      const sent: string[] = [];
      for (let i = 0; i < 5; i++) sent.push((await recommendAndRespond("cust_events_outage")).interactionId);
      // Down long enough for retries (the first event's first attempts fail), not for its last attempt.
      await waitFor(
        async () => (await metricValue("kaireon_event_delivery_failures_total", 'destination="webhook"')) >= failuresBefore + 2,
        20_000,
      );
      hook.restart();
      await waitFor(async () => hook.received.length >= 5, 30_000);
      expect(hook.received.map((r) => r.event.data.interactionId)).toEqual(sent);
      const dead = await getJson(`/api/v1/webhooks/${webhookId}/dead-letters`);
      expect(dead.deadLetters ?? []).toEqual([]);
    } finally {
      hook.stop();
    }
  }, 60_000);

  test("an event stored before the outbox kept only its data is sent as it was stored", async () => {
    const hook = receiver(() => 200);
    try {
      await createWebhook(hook.url, ["interaction.recorded.v1"]);
      const id = "evt_StoredWholeBefore013";
      const data = { interactionId: "int_old", customerId: "cust_old", offerId: "o", channelId: "ch_email", outcomeType: "click" };
      // Spaced out, so that only a body sent verbatim matches.
      const body = JSON.stringify(
        { id, type: "interaction.recorded.v1", tenantId: "demo", occurredAt: "2026-12-01T10:00:00.000Z", data },
        null,
        1,
      );
      await svc.app.deps.db.query(
        `insert into outbox_events (id, tenant_id, type, customer_id, occurred_at, body)
         values ($1, 'demo', 'interaction.recorded.v1', 'cust_old', '2026-12-01T10:00:00.000Z', $2::text::json)`,
        [id, body],
      );
      const got = await waitFor(async () => hook.received.find((r) => r.event.id === id), 30_000);
      expect(got.body).toBe(body);
    } finally {
      hook.stop();
    }
  }, 60_000);

  test("a permanently failing receiver fills the dead-letter list; redelivery works", async () => {
    let healthy = false;
    const hook = receiver(() => (healthy ? 200 : 500));
    try {
      const { webhookId, secret } = await createWebhook(hook.url);
      const { interactionId } = await recommendAndRespond("cust_events_dead");
      const listed = await waitFor(
        async () => {
          const body = await getJson(`/api/v1/webhooks/${webhookId}/dead-letters`);
          return (body.deadLetters ?? []).length >= 2 ? body.deadLetters : null;
        },
        45_000,
        200,
      );
      expect(listed.map((d: { eventType: string }) => d.eventType).sort()).toEqual(["decision.made.v1", "interaction.recorded.v1"]);
      for (const d of listed) {
        expect(d.attempts).toBe(6);
        expect(d.lastError).toBe("HTTP 500");
      }
      const letter = listed.find((d: { eventType: string }) => d.eventType === "interaction.recorded.v1");
      expect(letter.event.data.interactionId).toBe(interactionId);

      // Still failing: it stays on the list.
      const again = await postJson(svc.http, `/api/v1/webhooks/${webhookId}/dead-letters/${letter.eventId}/redeliver`, {});
      expect(again.json).toMatchObject({ statusCode: 500, error: "HTTP 500" });
      healthy = true;
      const ok = await postJson(svc.http, `/api/v1/webhooks/${webhookId}/dead-letters/${letter.eventId}/redeliver`, {});
      expect(ok.status).toBe(200);
      expect(ok.json).toMatchObject({ delivered: true, statusCode: 200 });
      const delivered = hook.received.find((r) => r.event.id === letter.eventId) as Received;
      expect(verify(secret, delivered)).toBe(true);
      const after = await getJson(`/api/v1/webhooks/${webhookId}/dead-letters`);
      expect(after.deadLetters.map((d: { eventId: string }) => d.eventId)).not.toContain(letter.eventId);
      const gone = await postJson(svc.http, `/api/v1/webhooks/${webhookId}/dead-letters/${letter.eventId}/redeliver`, {});
      expect(gone.status).toBe(404);
      // Every change is audited.
      const audit = await getJson(`/api/v1/audit-log`);
      const actions = audit.entries.map((e: { action: string }) => e.action);
      expect(actions).toContain("webhook.create");
      expect(actions).toContain("webhook.redeliver");
    } finally {
      hook.stop();
    }
  }, 90_000);

  test("paused, changed and deleted webhooks; bad bodies are 400 naming the field", async () => {
    const { webhookId } = await createWebhook("http://127.0.0.1:9/never");
    const patched = await fetch(`${svc.http}/api/v1/webhooks/${webhookId}`, {
      method: "PATCH",
      headers: { ...authHeaders(), "content-type": "application/json" },
      body: JSON.stringify({ status: "paused", events: ["decision.made.v1"] }),
    });
    expect(patched.status).toBe(200);
    expect(await patched.json()).toMatchObject({ status: "paused", events: ["decision.made.v1"] });
    for (const [body, field] of [
      [{ url: "ftp://example.com/x", events: ["decision.made.v1"] }, "url"],
      [{ url: "https://example.com/x", events: [] }, "events"],
      [{ url: "https://example.com/x", events: ["order.placed.v1"] }, "events"],
      [{ url: "https://example.com/x", events: ["decision.made.v1"], secret: "short" }, "secret"],
      [{ url: "https://example.com/x", events: ["decision.made.v1"], status: "on" }, "status"],
    ] as const) {
      const res = await postJson(svc.http, "/api/v1/webhooks", body);
      expect(res.status).toBe(400);
      expect(res.json.details.map((d: { field: string }) => d.field)).toContain(field);
    }
    const deleted = await fetch(`${svc.http}/api/v1/webhooks/${webhookId}`, { method: "DELETE", headers: authHeaders() });
    expect(deleted.status).toBe(200);
    expect((await fetch(`${svc.http}/api/v1/webhooks/${webhookId}`, { headers: authHeaders() })).status).toBe(404);
  }, 30_000);
});

describe("Respond names a recommendation", () => {
  test("a recommendationId from gRPC is accepted; unknown or another tenant's is 404; a creative of another offer is 400", async () => {
    const client = createClient(RecommendService, createGrpcTransport({ baseUrl: svc.grpc }));
    const answer = await client.recommend(
      { customerId: "cust_events_grpc", channelId: "ch_email" },
      { headers: { "x-api-key": DEMO_KEY, "x-tenant-id": "demo" } },
    );
    const first = answer.recommendations[0];
    expect(first?.recommendationId).toMatch(/^rec_/);
    const base = { customerId: "cust_events_grpc", offerId: first?.offerId, channelId: "ch_email", outcomeType: "impression" };
    const ok = await postJson(svc.http, "/api/v1/respond", { ...base, recommendationId: first?.recommendationId });
    expect(ok.status).toBe(200);
    const row = await svc.app.deps.db.query<Record<string, unknown>>(
      "select recommendation_id, creative_id, score, propensity from interactions where id = $1",
      [ok.json.id],
    );
    expect(row[0]).toMatchObject({ recommendation_id: first?.recommendationId, creative_id: first?.creativeId });
    // Learning reads the score the offer was shown with from the recommendation.
    expect(Number(row[0]?.score)).toBeCloseTo(first?.score ?? -1, 9);

    const unknown = await postJson(svc.http, "/api/v1/respond", { ...base, recommendationId: "rec_0000000000000000000001" });
    expect(unknown.status).toBe(404);
    const otherKey = await createTenantWithKey(svc, `events_other_${Date.now()}`);
    const otherTenant = (
      await svc.app.deps.db.query<{ tenant_id: string }>("select tenant_id from api_keys order by created_at desc limit 1")
    )[0]?.tenant_id as string;
    const foreign = await postJson(
      svc.http,
      "/api/v1/respond",
      { ...base, recommendationId: first?.recommendationId },
      authHeaders(otherKey, otherTenant),
    );
    expect(foreign.status).toBe(404);

    const wrongOffer = await postJson(svc.http, "/api/v1/respond", {
      ...base,
      offerId: "act_home_loan",
      recommendationId: first?.recommendationId,
    });
    expect(wrongOffer.status).toBe(400);
    expect(wrongOffer.json.details.map((d: { field: string }) => d.field)).toContain("offerId");

    // A creative of another offer, with or without a recommendation: never counted against this one.
    const creatives = await svc.app.deps.db.query<{ id: string; offer_id: string }>(
      "select id, offer_id from creatives where tenant_id = 'demo' and channel_id = 'ch_email' and offer_id <> $1 limit 1",
      [first?.offerId],
    );
    const foreignCreative = creatives[0]?.id as string;
    expect(foreignCreative).toBeDefined();
    for (const body of [
      { ...base, creativeId: foreignCreative },
      { ...base, creativeId: foreignCreative, recommendationId: first?.recommendationId },
      { ...base, creativeId: "treat_does_not_exist" },
    ]) {
      const res = await postJson(svc.http, "/api/v1/respond", body);
      expect(res.status).toBe(400);
      expect(res.json.details.map((d: { field: string }) => d.field)).toContain("creativeId");
    }
  }, 60_000);
});

describe("GET /api/v1/decision-traces?customerId=", () => {
  test("a customer's traces, newest first, a page at a time; another customer's and bad queries stay out", async () => {
    const made: string[] = [];
    for (let i = 0; i < 5; i++) {
      const rec = await postJson(svc.http, "/api/v1/recommend", { customerId: "cust_trace_list", channelId: "ch_email", trace: true });
      made.push(rec.json.traceId);
      await Bun.sleep(3); // distinct decision times: the order asserted is theirs
    }
    await postJson(svc.http, "/api/v1/recommend", { customerId: "cust_trace_other", channelId: "ch_email", trace: true });
    await svc.app.deps.traces.flush();
    const first = await getJson("/api/v1/decision-traces?customerId=cust_trace_list&limit=3");
    expect(first.traces.map((t: Json) => t.traceId)).toEqual(made.slice(2).reverse());
    expect(first.traces[0].stages.map((s: Json) => s.name)).toEqual(["enrich", "compute", "filter", "score", "rank"]);
    const second = await getJson(`/api/v1/decision-traces?customerId=cust_trace_list&limit=3&cursor=${first.nextCursor}`);
    expect(second.traces.map((t: Json) => t.traceId)).toEqual(made.slice(0, 2).reverse());
    expect(second.nextCursor).toBeUndefined();
    for (const query of [
      "",
      "?customerId=cust_trace_list&limit=0x",
      "?customerId=cust_trace_list&limit=500",
      "?customerId=x&cursor=nope",
    ]) {
      const res = await fetch(`${svc.http}/api/v1/decision-traces${query}`, { headers: authHeaders() });
      expect(`${query} ${res.status}`).toBe(`${query} 400`);
    }
  }, 30_000);
});

describe("over gRPC, and under overload", () => {
  test("WebhookService creates, lists and refuses like REST", async () => {
    const client = createClient(WebhookService, createGrpcTransport({ baseUrl: svc.grpc }));
    const headers = { "x-api-key": DEMO_KEY, "x-tenant-id": "demo" };
    const made = (await client.createWebhook({ url: "http://127.0.0.1:9/grpc", events: ["interaction.recorded.v1"] }, { headers }))
      .webhook as { webhookId: string; secret: string };
    expect(made.secret).toMatch(/^whsec_/);
    const listed = await client.listWebhooks({}, { headers });
    const found = listed.webhooks.find((w) => w.webhookId === made.webhookId);
    expect(found?.secret).toBe("");
    const refused = await client.createWebhook({ url: "gopher://x", events: [] }, { headers }).then(
      () => null,
      (e: unknown) => ConnectError.from(e),
    );
    expect(refused?.code).toBe(Code.InvalidArgument);
    await client.deleteWebhook({ webhookId: made.webhookId }, { headers });
  }, 30_000);

  test("a full decision buffer answers without recommendation ids, counted, and Respond still takes the offer", async () => {
    const small = await startTestService({ DECISION_BUFFER_SIZE: "1", TRACE_FLUSH_MS: "1000" });
    try {
      const answers = await Promise.all(
        Array.from({ length: 5 }, (_, i) =>
          postJson(small.http, "/api/v1/recommend", { customerId: `cust_full_${i}`, channelId: "ch_email" }),
        ),
      );
      for (const a of answers) expect(a.status).toBe(200);
      const ids = answers.map((a) => a.json.recommendations[0].recommendationId ?? "");
      expect(ids.filter((id) => id !== "").length).toBe(1);
      const metrics = await (await fetch(`${small.http}/metrics`)).text();
      expect(metrics).toMatch(/kaireon_decisions_unrecorded_total\{reason="buffer_full"\} 4/);
      const unrecorded = answers.find((a) => !a.json.recommendations[0].recommendationId);
      const res = await postJson(small.http, "/api/v1/respond", {
        customerId: "cust_full_x",
        offerId: unrecorded?.json.recommendations[0].offerId,
        channelId: "ch_email",
        outcomeType: "click",
      });
      expect(res.status).toBe(200);
    } finally {
      await small.stop();
    }
  }, 60_000);
});

describe("the outbox is pruned", () => {
  test("of what every destination has, and of everything when there is none; a quiet tenant's webhook holds nothing back", async () => {
    const own = await startTestService({
      EVENT_PRUNE_INTERVAL_MS: "100",
      EVENT_RELAY_POLL_MS: "50",
      WEBHOOK_ALLOW_PRIVATE_TARGETS: "true",
    });
    const hook = receiver(() => 200);
    try {
      const outbox = async () => Number((await own.db.sql`select count(*)::int as n from outbox_events`)[0]?.n);
      const respond = (customerId: string) =>
        postJson(own.http, "/api/v1/respond", { customerId, offerId: "act_platinum_cc", channelId: "ch_email", outcomeType: "click" });
      expect((await respond("cust_prune_1")).status).toBe(200);
      await waitFor(async () => (await outbox()) === 0, 30_000);

      // Another tenant's webhook that never gets an event, and a paused one of ours.
      const otherKey = await createTenantWithKey(own, "prune_other");
      const other = await postJson(
        own.http,
        "/api/v1/webhooks",
        { url: hook.url, events: ["interaction.recorded.v1"] },
        authHeaders(otherKey, "prune_other"),
      );
      expect(other.status).toBe(200);
      const paused = await postJson(own.http, "/api/v1/webhooks", { url: hook.url, events: ["interaction.recorded.v1"], status: "paused" });
      expect(paused.status).toBe(200);
      expect((await respond("cust_prune_2")).status).toBe(200);
      await Bun.sleep(1_000);
      expect(await outbox()).toBeGreaterThanOrEqual(1); // the paused webhook has not had it

      await fetch(`${own.http}/api/v1/webhooks/${paused.json.webhookId}`, {
        method: "PATCH",
        headers: authHeaders(),
        body: JSON.stringify({ status: "active" }),
      });
      await waitFor(async () => hook.received.some((r) => r.event.data.customerId === "cust_prune_2"), 30_000);
      await waitFor(async () => (await outbox()) === 0, 30_000);
    } finally {
      hook.stop();
      await own.stop();
    }
  }, 90_000);
});
