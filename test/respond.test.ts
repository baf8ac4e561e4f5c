// Respond as a durable, idempotent, group-committed write: Idempotency-Key on every transport (retries,
// reuse with another body, concurrent duplicates on one and on two instances), many responds sharing few
// commits, a failed commit never acknowledged, opt-outs and impression scores, and no acknowledged
// interaction lost when the process is killed.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { RespondService } from "../gen/kaireon/v1/respond_pb.ts";
import { type App, startApp } from "../src/app.ts";
import { loadConfig } from "../src/config.ts";
import { randomBase62 } from "../src/ids.ts";
import { createLogger } from "../src/log.ts";
import { deleteExpiredIdempotencyKeys } from "../src/store/idempotency-keys.ts";
import {
  authHeaders,
  createTenantWithKey,
  createTestDatabase,
  DEMO_KEY,
  postJson,
  REDIS_URL,
  type SpawnedService,
  spawnService,
  TEST_KEY_PREFIX,
  startTestService,
  type TestService,
  testEnv,
  waitFor,
} from "./harness.ts";

let svc: TestService;
let second: App;
let secondUrl: string;
const cleanups: (() => Promise<void> | void)[] = [];
beforeAll(async () => {
  // Traces stay in the write buffer up to a second, so an impression can find its trace there.
  svc = await startTestService({ TRACE_FLUSH_MS: "1000" });
  // A second instance on the same database, as behind a load balancer.
  second = await startApp(loadConfig(testEnv({ DATABASE_URL: svc.db.url, REDIS_URL })), createLogger("error"));
  secondUrl = `http://127.0.0.1:${second.listeners.port}`;
});
afterAll(async () => {
  // Own services stop first; then every database goes at once (dropping one takes about a second).
  await Promise.all(cleanups.map((c) => c()));
  await second.stop();
  await svc.stop();
}, 30_000);

const demoAuth = { "x-tenant-id": "demo", "x-api-key": DEMO_KEY };
const unique = (prefix: string) => `${prefix}_${randomBase62(12)}`;
const respondBody = (customerId: string, extra: Record<string, unknown> = {}) => ({
  customerId,
  offerId: "act_platinum_cc",
  channelId: "ch_email",
  outcomeType: "click",
  metadata: { source: "test", position: 1 },
  ...extra,
});
const withKey = (key: string) => ({ ...authHeaders(), "idempotency-key": key });
const respondAt = (base: string, body: object, headers = authHeaders()) => postJson(base, "/api/v1/respond", body, headers);

async function rowsOf(customerId: string) {
  return svc.db.sql`select id, recorded_at, outcome_type from interactions where tenant_id = 'demo' and customer_id = ${customerId}`;
}

/** A service of its own (own database), for settings the shared one must not have. */
async function startOwnApp(env: Record<string, string>) {
  const db = await createTestDatabase();
  const app = await startApp(loadConfig(testEnv({ DATABASE_URL: db.url, REDIS_URL, ...env })), createLogger("error"));
  cleanups.push(async () => {
    await app.stop();
    await db.drop();
  });
  return { app, db, url: `http://127.0.0.1:${app.listeners.port}` };
}

async function metric(base: string, line: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const found = text.split("\n").find((l) => l.startsWith(`${line} `));
  return found ? Number(found.slice(line.length + 1)) : 0;
}

describe("Idempotency-Key over REST", () => {
  test("the same key and body twice: one row, the first id and recordedAt both times", async () => {
    const customer = unique("cust_idem");
    const key = unique("key");
    const first = await respondAt(svc.http, respondBody(customer), withKey(key));
    expect(first.status).toBe(200);
    // Metadata keys in another order are the same request.
    const again = await respondAt(svc.http, respondBody(customer, { metadata: { position: 1, source: "test" } }), withKey(key));
    expect(again.status).toBe(200);
    expect(again.json.id).toBe(first.json.id);
    expect(again.json.recordedAt).toBe(first.json.recordedAt);
    expect(again.json).toEqual(first.json);
    // Ids the request did not name are left out of the answer, not echoed as "".
    expect(first.json).not.toHaveProperty("traceId");
    expect(first.json).not.toHaveProperty("creativeId");
    const rows = await rowsOf(customer);
    expect(rows.map((r) => r.id)).toEqual([first.json.id]);
    const keys = await svc.db.sql`select interaction_id from idempotency_keys where tenant_id = 'demo' and key = ${key}`;
    expect(keys.map((k) => k.interaction_id)).toEqual([first.json.id]);
  });

  test("a retry's answer is the first one whole, the creative taken from the recommendation included; the key stores no answer", async () => {
    const customer = unique("cust_idem_rec");
    const rec = await postJson(svc.http, "/api/v1/recommend", { customerId: customer, channelId: "ch_email" });
    expect(rec.status).toBe(200);
    const shown = rec.json.recommendations[0];
    // No creativeId: the interaction takes the recommendation's.
    const body = {
      customerId: customer,
      offerId: shown.offerId,
      channelId: "ch_email",
      outcomeType: "click",
      recommendationId: shown.recommendationId,
    };
    const key = unique("key");
    const first = await respondAt(svc.http, body, withKey(key));
    expect(first.status).toBe(200);
    expect(first.json.creativeId).toBe(shown.creativeId);
    await Bun.sleep(5);
    const again = await respondAt(svc.http, body, withKey(key));
    expect(again.status).toBe(200);
    expect(again.json).toEqual(first.json);
    // What the key keeps: the first write's id and time; the rest of the answer is the retry's own.
    const [row] = await svc.db
      .sql`select interaction_id, recorded_at, response from idempotency_keys where tenant_id = 'demo' and key = ${key}`;
    expect(row?.interaction_id).toBe(first.json.id);
    expect((row?.recorded_at as Date | undefined)?.toISOString()).toBe(first.json.recordedAt);
    expect(row?.response).toBeNull();
  });

  test("a key stored with its whole answer, as before the answers were rebuilt, replays that answer", async () => {
    const customer = unique("cust_idem_old");
    const key = unique("key");
    const first = await respondAt(svc.http, respondBody(customer), withKey(key));
    expect(first.status).toBe(200);
    // The form keys had before migration 012: the answer in `response`, no recorded_at.
    const stored = { ...first.json, id: "int_StoredBeforeTheUpgrade01", recordedAt: "2026-01-02T03:04:05.678Z" };
    await svc.db.sql`update idempotency_keys set response = ${JSON.stringify(stored)}::jsonb, recorded_at = null
                      where tenant_id = 'demo' and key = ${key}`;
    const again = await respondAt(svc.http, respondBody(customer), withKey(key));
    expect(again.status).toBe(200);
    expect(again.json).toEqual(stored);
  });

  test("without a key, the same body twice is two interactions", async () => {
    const customer = unique("cust_nokey");
    const a = await respondAt(svc.http, respondBody(customer));
    const b = await respondAt(svc.http, respondBody(customer));
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(a.json.id).not.toBe(b.json.id);
    expect((await rowsOf(customer)).length).toBe(2);
  });

  test("the same key with another body is 409 CONFLICT and writes nothing", async () => {
    const customer = unique("cust_conflict");
    const key = unique("key");
    const first = await respondAt(svc.http, respondBody(customer), withKey(key));
    expect(first.status).toBe(200);
    const other = await respondAt(svc.http, respondBody(customer, { outcomeType: "conversion" }), withKey(key));
    expect(other.status).toBe(409);
    expect(other.json.code).toBe("CONFLICT");
    expect(other.json.details).toEqual([{ field: "Idempotency-Key", message: expect.stringContaining("different request") }]);
    expect(other.json.requestId).toMatch(/^req_/);
    expect((await rowsOf(customer)).map((r) => r.outcome_type)).toEqual(["click"]);
  });

  test("20 concurrent requests with one key: all 200 with one id, one row", async () => {
    const customer = unique("cust_race");
    const key = unique("key");
    const answers = await Promise.all(Array.from({ length: 20 }, () => respondAt(svc.http, respondBody(customer), withKey(key))));
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(200));
    expect(new Set(answers.map((a) => a.json.id)).size).toBe(1);
    expect((await rowsOf(customer)).map((r) => r.id)).toEqual([answers[0]?.json.id]);
  });

  test("concurrent requests with one key on two instances still write one row", async () => {
    const customer = unique("cust_two");
    const key = unique("key");
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => respondAt(i % 2 === 0 ? svc.http : secondUrl, respondBody(customer), withKey(key))),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(200));
    expect(new Set(answers.map((a) => a.json.id)).size).toBe(1);
    expect((await rowsOf(customer)).length).toBe(1);
  });

  test("a key over 255 characters is 400 naming Idempotency-Key; 255 is fine; an empty one is 400", async () => {
    const customer = unique("cust_long");
    const long = await respondAt(svc.http, respondBody(customer), withKey("k".repeat(256)));
    expect(long.status).toBe(400);
    expect(long.json.code).toBe("VALIDATION_ERROR");
    expect(long.json.details).toEqual([{ field: "Idempotency-Key", message: "Idempotency-Key must be at most 255 characters" }]);
    const empty = await respondAt(svc.http, respondBody(customer), withKey(""));
    expect(empty.status).toBe(400);
    expect(empty.json.details[0].field).toBe("Idempotency-Key");
    expect((await rowsOf(customer)).length).toBe(0);
    const max = await respondAt(svc.http, respondBody(customer), withKey(`${"k".repeat(243)}${randomBase62(12)}`));
    expect(max.status).toBe(200);
  });

  test("a key is scoped to its tenant: the same key of another tenant does not replay this one's answer", async () => {
    const customer = unique("cust_tenant");
    const key = unique("key");
    const first = await respondAt(svc.http, respondBody(customer), withKey(key));
    expect(first.status).toBe(200);
    // Another tenant has no such offer: it must get its own answer (404), never the demo tenant's.
    const tenant = unique("tenant").toLowerCase();
    const otherKey = await createTenantWithKey(svc, tenant);
    const other = await respondAt(svc.http, respondBody(customer), { ...authHeaders(otherKey, tenant), "idempotency-key": key });
    expect(other.status).toBe(404);
    expect(JSON.stringify(other.json)).not.toContain(first.json.id);
  });

  test("expired keys are removed by the cleanup; the key then records anew", async () => {
    const customer = unique("cust_expiry");
    const key = unique("key");
    const first = await respondAt(svc.http, respondBody(customer), withKey(key));
    const fresh = unique("key");
    expect((await respondAt(svc.http, respondBody(unique("cust_fresh")), withKey(fresh))).status).toBe(200);
    await svc.db.sql`update idempotency_keys set created_at = now() - interval '25 hours' where tenant_id = 'demo' and key = ${key}`;
    const deleted = await deleteExpiredIdempotencyKeys(
      svc.app.deps.db,
      new Date(),
      svc.app.config.idempotencyKeyRetentionHours * 3_600_000,
    );
    expect(deleted).toBeGreaterThanOrEqual(1);
    const left = await svc.db.sql`select key from idempotency_keys where tenant_id = 'demo' and key in (${key}, ${fresh})`;
    expect(left.map((r) => r.key)).toEqual([fresh]);
    const later = await respondAt(svc.http, respondBody(customer), withKey(key));
    expect(later.status).toBe(200);
    expect(later.json.id).not.toBe(first.json.id);
    expect((await rowsOf(customer)).length).toBe(2);
  });
});

describe("Idempotency-Key over Connect and gRPC", () => {
  const transports = {
    connect: () => createConnectTransport({ baseUrl: svc.http, httpVersion: "1.1" }),
    grpc: () => createGrpcTransport({ baseUrl: svc.grpc }),
  };
  test.each(Object.keys(transports))(
    "%s: metadata idempotency-key replays the first answer; another body is already_exists",
    async (name) => {
      const client = createClient(RespondService, transports[name as keyof typeof transports]());
      const customer = unique("cust_rpc");
      const key = unique("key");
      const headers = { ...demoAuth, "idempotency-key": key };
      const first = await client.respond(respondBody(customer), { headers });
      const again = await client.respond(respondBody(customer), { headers });
      expect(first.id).toMatch(/^int_/);
      expect(again.id).toBe(first.id);
      expect(again.recordedAt).toEqual(first.recordedAt);
      expect((await rowsOf(customer)).length).toBe(1);

      const err = await client.respond(respondBody(customer, { outcomeType: "dismiss" }), { headers }).then(
        () => null,
        (e: unknown) => ConnectError.from(e),
      );
      expect(err?.code).toBe(Code.AlreadyExists);
      expect((await rowsOf(customer)).length).toBe(1);

      const long = await client.respond(respondBody(customer), { headers: { ...demoAuth, "idempotency-key": "k".repeat(256) } }).then(
        () => null,
        (e: unknown) => ConnectError.from(e),
      );
      expect(long?.code).toBe(Code.InvalidArgument);
    },
  );

  test("a key first used over REST is retried over gRPC with the same answer", async () => {
    const customer = unique("cust_cross");
    const key = unique("key");
    const rest = await respondAt(svc.http, respondBody(customer), withKey(key));
    expect(rest.status).toBe(200);
    const client = createClient(RespondService, transports.grpc());
    const again = await client.respond(respondBody(customer), { headers: { ...demoAuth, "idempotency-key": key } });
    expect(again.id).toBe(rest.json.id);
    expect((await rowsOf(customer)).length).toBe(1);
  });
});

describe("group commit", () => {
  test("200 concurrent responds: all 200, all rows and counters committed, in far fewer than 200 commits", async () => {
    const commitsBefore = await metric(svc.http, 'kaireon_interaction_commits_total{result="ok"}');
    const statsOf = async () =>
      (
        await svc.db.sql`select impressions::int, clicks::int, conversions::int, negatives::int from offer_channel_stats
          where tenant_id = 'demo' and offer_id = 'act_cashback' and channel_id = 'ch_sms'`
      )[0] ?? { impressions: 0, clicks: 0, conversions: 0, negatives: 0 };
    const statsBefore = await statsOf();
    const outcomes = ["impression", "click", "conversion", "dismiss", "opt_out"];
    const answers = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        respondAt(svc.http, {
          customerId: `cust_batch_${i}`,
          offerId: "act_cashback",
          channelId: "ch_sms",
          outcomeType: outcomes[i % outcomes.length],
        }),
      ),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(200).fill(200));
    const ids = answers.map((a) => a.json.id as string);
    const rows = await svc.db.sql`select id from interactions where tenant_id = 'demo' and id in ${svc.db.sql(ids)}`;
    expect(rows.length).toBe(200);
    const commits = (await metric(svc.http, 'kaireon_interaction_commits_total{result="ok"}')) - commitsBefore;
    expect(commits).toBeGreaterThan(0);
    expect(commits).toBeLessThanOrEqual(50);
    // Summed per offer × channel, the counters still count every interaction once.
    const stats = await statsOf();
    expect(stats.impressions - statsBefore.impressions).toBe(40);
    expect(stats.clicks - statsBefore.clicks).toBe(40);
    expect(stats.conversions - statsBefore.conversions).toBe(40);
    expect(stats.negatives - statsBefore.negatives).toBe(80);
  });

  test("one interaction the database cannot store fails alone; the others in its batch are committed", async () => {
    // A wide window puts all 21 in one batch for sure. Requests never carry a NUL this far (the edge
    // refuses it, below), so the bad one is handed to the writer directly, as a bug upstream would.
    const { app, url, db } = await startOwnApp({ RESPOND_BATCH_MAX_WAIT_MS: "200" });
    const good = Array.from({ length: 20 }, (_, i) => respondAt(url, respondBody(`cust_isolated_${i}`)));
    await Bun.sleep(20);
    const bad = app.deps.interactions
      .write([
        {
          id: `int_nul_${randomBase62(8)}`,
          tenantId: "demo",
          customerId: "cust_nul",
          offerId: "act_platinum_cc",
          channelId: "ch_email",
          creativeId: null,
          outcomeType: "click",
          outcomeClass: "positive",
          traceId: null,
          recommendationId: null,
          metadata: { note: "a\u0000b" },
          recordedAt: new Date(),
          propensity: null,
          score: null,
        },
      ])
      .then(
        () => "written",
        (err: unknown) => (err as { code?: string }).code ?? "failed",
      );
    const [badOutcome, ...goodAnswers] = await Promise.all([bad, ...good]);
    expect(badOutcome).not.toBe("written");
    expect(goodAnswers.map((a) => a.status)).toEqual(Array(20).fill(200));
    const ids = goodAnswers.map((a) => a.json.id as string);
    expect((await db.sql`select id from interactions where id in ${db.sql(ids)}`).length).toBe(20);
    expect((await db.sql`select id from interactions where customer_id = 'cust_nul'`).length).toBe(0);
    // The batch of 21 failed once; then each was written on its own: 20 commits and the one refusal.
    expect(app.deps.interactions.stats).toMatchObject({ failures: 2 });
    expect(await metric(url, 'kaireon_interaction_commits_total{result="error"}')).toBe(2);

    // Over the API a NUL is refused where the request is decoded, naming the field.
    const inMetadata = await respondAt(url, respondBody("cust_nul", { metadata: { note: "a\u0000b" } }));
    expect(inMetadata.status).toBe(400);
    expect(inMetadata.json.details).toEqual([{ field: "metadata.note", message: expect.stringContaining("NUL") }]);
    const nulId = await respondAt(url, respondBody("cust\u0000nul"));
    expect(nulId.status).toBe(400);
    expect(nulId.json.details).toEqual([{ field: "customerId", message: "customerId must not contain NUL characters" }]);
  });

  test("a commit that fails is never acknowledged: 503 UNAVAILABLE, no row, and the next respond succeeds", async () => {
    // Hold the counter row so the write waits inside its transaction, then cancel that transaction's
    // statement (as a statement timeout or an operator would).
    const body = (customerId: string) => ({ customerId, offerId: "act_home_loan", channelId: "ch_web", outcomeType: "click" });
    expect((await respondAt(svc.http, body(unique("cust_seed")))).status).toBe(200);
    const customer = unique("cust_lost");
    const locker = await svc.db.sql.reserve();
    try {
      await locker`begin`;
      await locker`select 1 from offer_channel_stats where tenant_id = 'demo' and offer_id = 'act_home_loan' and channel_id = 'ch_web' for update`;
      const pending = respondAt(svc.http, body(customer));
      const [blocked] = await waitFor(async () => {
        const rows = await svc.db.sql`select pid from pg_stat_activity
          where datname = current_database() and wait_event_type = 'Lock' and query like '%offer_channel_stats%'`;
        return rows.length > 0 ? rows : null;
      }, 5_000);
      await svc.db.sql`select pg_cancel_backend(${blocked?.pid as number})`;
      const answer = await pending;
      expect(answer.status).toBe(503);
      expect(answer.json.code).toBe("UNAVAILABLE");
      await locker`rollback`;
    } finally {
      locker.release();
    }
    expect((await rowsOf(customer)).length).toBe(0);
    const next = await respondAt(svc.http, body(customer));
    expect(next.status).toBe(200);
    expect((await rowsOf(customer)).map((r) => r.id)).toEqual([next.json.id]);
  });

  test("a commit slower than RESPOND_COMMIT_TIMEOUT_MS is answered 503; a retry with its key finds it exactly once", async () => {
    const { db, url } = await startOwnApp({ RESPOND_COMMIT_TIMEOUT_MS: "300" });
    const body = (customerId: string) => ({ customerId, offerId: "act_home_loan", channelId: "ch_web", outcomeType: "click" });
    expect((await respondAt(url, body("cust_seed"))).status).toBe(200);
    const key = unique("key");
    const locker = await db.sql.reserve();
    try {
      await locker`begin`;
      await locker`select 1 from offer_channel_stats where offer_id = 'act_home_loan' and channel_id = 'ch_web' for update`;
      const started = Date.now();
      const answer = await respondAt(url, body("cust_slow"), withKey(key));
      expect(answer.status).toBe(503);
      expect(answer.json.code).toBe("UNAVAILABLE");
      expect(Date.now() - started).toBeLessThan(5_000);
      await locker`rollback`;
    } finally {
      locker.release();
    }
    // The transaction went on once the row was free, and committed: the retry gets that interaction.
    const [row] = await waitFor(async () => {
      const rows = await db.sql`select id from interactions where customer_id = 'cust_slow'`;
      return rows.length > 0 ? rows : null;
    }, 5_000);
    const retry = await respondAt(url, body("cust_slow"), withKey(key));
    expect(retry.status).toBe(200);
    expect(retry.json.id).toBe(row?.id);
    expect((await db.sql`select id from interactions where customer_id = 'cust_slow'`).length).toBe(1);
  });

  test("flush() commits what is queued without waiting for the window; close() then refuses writes", async () => {
    const { app, db, url } = await startOwnApp({ RESPOND_BATCH_MAX_WAIT_MS: "1000" });
    const started = Date.now();
    const answer = respondAt(url, respondBody("cust_flush"));
    await waitFor(async () => app.deps.interactions.queued === 1, 2_000, 5);
    await app.deps.interactions.close();
    expect((await answer).status).toBe(200);
    expect(Date.now() - started).toBeLessThan(900);
    const refused = await respondAt(url, respondBody("cust_after_close"));
    expect(refused.status).toBe(503);
    expect(refused.json.code).toBe("UNAVAILABLE");
    const written = await db.sql`select customer_id from interactions where customer_id in ('cust_flush', 'cust_after_close')`;
    expect(written.map((r) => r.customer_id)).toEqual(["cust_flush"]);
  });
});

describe("what an outcome changes", () => {
  test("opt_out records the customer's opt-out of the channel, once", async () => {
    const customer = unique("cust_optout");
    for (let i = 0; i < 2; i++) {
      const res = await respondAt(svc.http, respondBody(customer, { outcomeType: "opt_out", channelId: "ch_sms" }));
      expect(res.status).toBe(200);
    }
    const rows = await svc.db.sql`select channel_id from contact_opt_outs where tenant_id = 'demo' and customer_id = ${customer}`;
    expect(rows.map((r) => r.channel_id)).toEqual(["ch_sms"]);
    const click = unique("cust_click");
    expect((await respondAt(svc.http, respondBody(click))).status).toBe(200);
    expect((await svc.db.sql`select 1 from contact_opt_outs where customer_id = ${click}`).length).toBe(0);
  });

  type ScoreStage = { name: string; scores: Record<string, number>; factors: Record<string, { propensity: number }> };
  async function recommendWithTrace() {
    const rec = await postJson(svc.http, "/api/v1/recommend", {
      customerId: "cust_12345",
      channelId: "ch_email",
      placement: "hero_offer",
      trace: true,
    });
    expect(rec.status).toBe(200);
    const traceId = rec.json.traceId as string;
    const trace = (await (await fetch(`${svc.http}/api/v1/decision-traces/${traceId}`, { headers: authHeaders() })).json()) as {
      stages: ScoreStage[];
    };
    const stage = trace.stages.find((s) => s.name === "score") as ScoreStage;
    const offerId = rec.json.recommendations[0].offerId as string;
    const shown = { score: stage.scores[offerId], propensity: stage.factors[offerId]?.propensity };
    expect(typeof shown.score).toBe("number");
    expect(typeof shown.propensity).toBe("number");
    return { traceId, offerId, score: shown.score as number, propensity: shown.propensity as number };
  }

  async function shownRow(id: string) {
    return (await svc.db.sql`select propensity, score from interactions where tenant_id = 'demo' and id = ${id}`)[0];
  }

  test("an impression stores the score and propensity of its trace, whether the trace is buffered or stored", async () => {
    // Buffered: the trace has not been written yet (TRACE_FLUSH_MS is a second here).
    const buffered = await recommendWithTrace();
    expect(svc.app.deps.traces.peek("demo", buffered.traceId)).toBeDefined();
    const a = await respondAt(svc.http, {
      ...respondBody("cust_12345"),
      offerId: buffered.offerId,
      outcomeType: "impression",
      traceId: buffered.traceId,
    });
    expect(a.status).toBe(200);
    const rowA = await shownRow(a.json.id);
    // The recommendation keeps the exact figures; the trace shows the propensity rounded.
    expect(rowA?.score).toBeCloseTo(buffered.score, 9);
    expect(rowA?.propensity).toBeCloseTo(buffered.propensity, 3);

    // Stored: only the database has it (as on another instance).
    const stored = await recommendWithTrace();
    await Promise.all([svc.app.deps.traces.flush(), svc.app.deps.decisions.flush()]);
    expect(svc.app.deps.traces.peek("demo", stored.traceId)).toBeUndefined();
    expect(svc.app.deps.decisions.peekByTrace("demo", stored.traceId, stored.offerId)).toBeUndefined();
    const b = await respondAt(svc.http, {
      ...respondBody("cust_12345"),
      offerId: stored.offerId,
      outcomeType: "impression",
      traceId: stored.traceId,
    });
    expect(b.status).toBe(200);
    const rowB = await shownRow(b.json.id);
    expect(rowB?.score).toBeCloseTo(stored.score, 9);
    expect(rowB?.propensity).toBeCloseTo(stored.propensity, 3);
    expect(rowB?.propensity).toBeGreaterThan(0);
  });

  test("without a known trace, or for other outcomes, score and propensity stay null", async () => {
    const known = await recommendWithTrace();
    const unknown = await respondAt(svc.http, { ...respondBody("cust_12345"), outcomeType: "impression", traceId: "trace_unknown" });
    const click = await respondAt(svc.http, { ...respondBody("cust_12345"), offerId: known.offerId, traceId: known.traceId });
    const notShown = await respondAt(svc.http, {
      ...respondBody("cust_12345"),
      offerId: "act_home_loan",
      outcomeType: "impression",
      traceId: known.traceId,
    });
    for (const res of [unknown, click, notShown]) {
      expect(res.status).toBe(200);
      expect(await shownRow(res.json.id)).toEqual({ propensity: null, score: null });
    }
  });
});

describe("durability", () => {
  test("SIGKILL with responds in flight: every acknowledged interaction is in PostgreSQL after a restart", async () => {
    const db = await createTestDatabase();
    const processes: SpawnedService[] = [];
    cleanups.push(async () => {
      for (const p of processes) p.proc.kill("SIGKILL");
      await Promise.all(processes.map((p) => p.exited));
      await db.drop();
    });
    const env = {
      HOST: "127.0.0.1",
      PORT: "0",
      GRPC_PORT: "0",
      API_KEY_PEPPER: "durability-pepper-0123456789",
      DEMO_API_KEY: DEMO_KEY,
      // spawnService waits for the "listening" line, logged at info.
      LOG_LEVEL: "info",
      REDIS_URL,
      DATABASE_URL: db.url,
      REDIS_KEY_PREFIX: TEST_KEY_PREFIX,
      RATE_LIMIT_OVERRIDE_PER_MINUTE: "10000000",
    };
    const first = await spawnService(env);
    processes.push(first);

    const counterOf = async () =>
      (
        await db.sql`select impressions::int from offer_channel_stats
          where tenant_id = 'demo' and offer_id = 'act_cashback' and channel_id = 'ch_web'`
      )[0]?.impressions ?? 0;
    const impressionsBefore = await counterOf();
    const acknowledged = new Map<string, string>();
    const unanswered: string[] = [];
    let stop = false;
    let sent = 0;
    const bodyOf = (key: string) =>
      JSON.stringify({ customerId: key, offerId: "act_cashback", channelId: "ch_web", outcomeType: "impression" });
    // 40 clients, each sending responds back to back, every one with its own key (the customer id too).
    const clients = Array.from({ length: 40 }, async (_, c) => {
      for (let n = 0; !stop; n++) {
        const key = `crash_${c}_${n}`;
        sent++;
        try {
          const res = await fetch(`${first.http}/api/v1/respond`, { method: "POST", headers: withKey(key), body: bodyOf(key) });
          if (res.status === 200) acknowledged.set(key, ((await res.json()) as { id: string }).id);
          else unanswered.push(key);
        } catch {
          unanswered.push(key);
          return;
        }
      }
    });
    await waitFor(async () => acknowledged.size >= 200, 20_000, 10);
    first.proc.kill("SIGKILL");
    await first.exited;
    stop = true;
    await Promise.all(clients);
    expect(acknowledged.size).toBeGreaterThanOrEqual(200);
    // The kill came while requests were in flight: their callers got no answer.
    expect(unanswered.length).toBeGreaterThan(0);
    expect(acknowledged.size + unanswered.length).toBe(sent);

    const again = await spawnService(env);
    processes.push(again);
    const rows = await db.sql`select id, customer_id from interactions where tenant_id = 'demo' and customer_id like 'crash\_%'`;
    const stored = new Map(rows.map((r) => [r.customer_id as string, r.id as string]));
    for (const [key, id] of acknowledged) expect(stored.get(key)).toBe(id);

    // Retrying the unanswered requests with their keys records each exactly once, committed or not before.
    for (const key of unanswered) {
      const res = await respondAt(again.http, JSON.parse(bodyOf(key)), withKey(key));
      expect(res.status).toBe(200);
      if (stored.has(key)) expect(res.json.id).toBe(stored.get(key));
    }
    const counts = await db.sql`select customer_id, count(*)::int as n from interactions
      where tenant_id = 'demo' and customer_id like 'crash\_%' group by customer_id`;
    expect(counts.length).toBe(sent);
    expect(counts.every((r) => r.n === 1)).toBe(true);
    // The counters were committed with the rows: one impression each, no more, no less.
    expect((await counterOf()) - impressionsBefore).toBe(sent);

    again.proc.kill("SIGTERM");
    expect(await again.exited).toBe(0);
  }, 90_000);
});
