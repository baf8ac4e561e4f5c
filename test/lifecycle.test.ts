// The process as an operator runs it: two instances starting at once on an empty database, SIGTERM under
// load, and the embedded database a newcomer gets from the README's start command.

import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  authHeaders,
  BUN,
  createTestDatabase,
  DEMO_KEY,
  postJson,
  processEnv,
  ROOT,
  spawnService,
  TUTORIAL_RECOMMEND,
  type TestDatabase,
  waitFor,
} from "./harness.ts";

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

describe("start-up", () => {
  test("two instances started at once on one empty database both come up; migrations ran once", async () => {
    const db: TestDatabase = await createTestDatabase();
    cleanups.push(() => db.drop());
    const env = processEnv({ DATABASE_URL: db.url, DEMO_API_KEY: DEMO_KEY });
    const [a, b] = await Promise.all([spawnService(env), spawnService(env)]);
    cleanups.push(() => {
      a.proc.kill("SIGKILL");
      b.proc.kill("SIGKILL");
    });
    for (const s of [a, b]) {
      const ready = await fetch(`${s.http}/readyz`);
      expect(ready.status).toBe(200);
      const rec = await postJson(s.http, "/api/v1/recommend", TUTORIAL_RECOMMEND);
      expect(rec.status).toBe(200);
    }
    const migrations = await db.sql`select version from schema_migrations`;
    // Each migration file once, by the number its name starts with.
    const files = readdirSync(join(ROOT, "src/store/migrations"))
      .filter((f) => f.endsWith(".sql"))
      .sort();
    expect(files.length).toBeGreaterThanOrEqual(13);
    expect(migrations.map((r) => r.version).sort((x, y) => x - y)).toEqual(files.map((f) => Number.parseInt(f, 10)));
    const applied = [a, b].map(
      (s) =>
        s
          .output()
          .split("\n")
          .find((l) => l.includes('"msg":"database ready"')) ?? "",
    );
    // Exactly one of the two applied the migrations, all of them; the other found nothing to do.
    expect(applied.filter((l) => l.includes(`"migrationsApplied":${JSON.stringify(files)}`)).length).toBe(1);
    expect(applied.filter((l) => l.includes('"migrationsApplied":[]')).length).toBe(1);
    const tenants = await db.sql`select id from tenants`;
    expect(tenants.map((t) => t.id)).toEqual(["demo"]);
    const keys = await db.sql`select id from api_keys`;
    expect(keys.length).toBe(1);
  }, 60_000);
});

describe("shutdown", () => {
  test("SIGTERM under load: every accepted request completes and the process exits 0", async () => {
    const db = await createTestDatabase();
    cleanups.push(() => db.drop());
    const svc = await spawnService(processEnv({ DATABASE_URL: db.url, DEMO_API_KEY: DEMO_KEY }));
    cleanups.push(() => {
      svc.proc.kill("SIGKILL");
    });
    const body = JSON.stringify({ customerId: "cust_12345", offerId: "act_cashback", channelId: "ch_email", outcomeType: "impression" });

    // One respond is certainly in flight when the signal comes: its headers and half its body are sent, the
    // service has taken it (the in-flight gauge says so: itself and the scrape), and the rest follows the
    // signal. Timing alone cannot promise that: every respond of a group commit is answered at once, and a
    // signal can land in the gap before the clients send their next ones.
    const held = connect({ host: "127.0.0.1", port: Number(new URL(svc.http).port) });
    let heldReply = "";
    held.on("data", (chunk) => {
      heldReply += chunk.toString();
    });
    const heldClosed = new Promise<void>((resolve) => held.once("close", () => resolve()));
    await new Promise<void>((resolve) => held.once("connect", () => resolve()));
    const half = Math.floor(body.length / 2);
    held.write(
      `POST /api/v1/respond HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\nx-tenant-id: demo\r\nx-api-key: ${DEMO_KEY}\r\n` +
        `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body.slice(0, half)}`,
    );
    await waitFor(async () => {
      const text = await (await fetch(`${svc.http}/metrics`)).text();
      return /^kaireon_requests_in_flight (\d+)$/m.exec(text)?.[1] === "2";
    }, 20_000);

    const acknowledged: string[] = [];
    const failures: string[] = [];
    let statusOther = 0;
    let stop = false;
    // 40 clients, each sending responds back to back until the server stops accepting them.
    const clients = Array.from({ length: 40 }, async () => {
      while (!stop) {
        try {
          const res = await fetch(`${svc.http}/api/v1/respond`, {
            method: "POST",
            headers: { "content-type": "application/json", "x-tenant-id": "demo", "x-api-key": DEMO_KEY },
            body,
          });
          if (res.status === 200) acknowledged.push(((await res.json()) as { id: string }).id);
          else statusOther++;
        } catch (err) {
          // Refused or reset: never accepted, which a client retries; nothing else may happen.
          failures.push(String((err as Error).message ?? err));
          return;
        }
      }
    });
    await Bun.sleep(700);
    const before = acknowledged.length;
    svc.proc.kill("SIGTERM");
    await waitFor(async () => svc.output().includes('"msg":"draining in-flight requests"'), 20_000);
    held.write(body.slice(half));
    const code = await svc.exited;
    stop = true;
    await Promise.all(clients);
    await heldClosed;

    expect(code).toBe(0);
    expect(before).toBeGreaterThan(0);
    expect(statusOther).toBe(0);
    expect(svc.output()).toContain('"msg":"stopped"');
    // The held respond, accepted before the signal and finished after it, was answered and kept.
    expect(heldReply.split("\r\n")[0]).toBe("HTTP/1.1 200 OK");
    const heldId = (JSON.parse(heldReply.slice(heldReply.indexOf("\r\n\r\n") + 4)) as { id: string }).id;
    acknowledged.push(heldId);
    // Every acknowledged interaction is committed.
    const rows = await db.sql`select id from interactions where tenant_id = 'demo'`;
    const stored = new Set(rows.map((r) => r.id as string));
    for (const id of acknowledged) expect(stored.has(id)).toBe(true);
  }, 90_000);
});

describe("embedded database", () => {
  test("without DATABASE_URL the service runs on PGlite under DATA_DIR, seeds the demo and prints its key", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "kaireon-embedded-"));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    // The outbox and its relay work on the embedded database too: a webhook receives the decision's events.
    const received: { type: string; data: Record<string, unknown> }[] = [];
    const receiver = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: async (req) => {
        received.push(JSON.parse(await req.text()));
        return new Response(null, { status: 204 });
      },
    });
    cleanups.push(() => {
      receiver.stop(true);
    });
    const svc = await spawnService(
      {
        HOST: "127.0.0.1",
        PORT: "0",
        GRPC_PORT: "0",
        DATA_DIR: dataDir,
        LOG_LEVEL: "info",
        WEBHOOK_ALLOW_PRIVATE_TARGETS: "true",
        EVENT_RELAY_POLL_MS: "50",
      },
      60_000,
    );
    cleanups.push(() => {
      svc.proc.kill("SIGKILL");
    });
    // The key is printed just after the listeners start: wait for it rather than race the output pipe.
    const key = await waitFor(async () => svc.output().match(/krn_[0-9A-Za-z]{32,}/)?.[0], 10_000);
    expect(key).toBeDefined();
    expect(svc.output()).toContain('"kind":"embedded"');
    expect(svc.output()).toContain("API_KEY_PEPPER is not set");

    const headers = { "content-type": "application/json", "x-tenant-id": "demo", "x-api-key": key as string };
    const hook = await postJson(
      svc.http,
      "/api/v1/webhooks",
      { url: `http://127.0.0.1:${receiver.port}/events`, events: ["decision.made.v1", "interaction.recorded.v1"] },
      headers,
    );
    expect(hook.status).toBe(200);
    const rec = await postJson(svc.http, "/api/v1/recommend", TUTORIAL_RECOMMEND, headers);
    expect(rec.status).toBe(200);
    expect(rec.json.recommendations.map((r: { offerId: string }) => r.offerId)).toEqual(["act_platinum_cc", "act_cashback"]);
    expect(rec.json.recommendations[0].content.subject).toBe("You're invited, Sarah - Earn 3x Rewards");
    expect(
      rec.json.recommendations.map((r: { personalization: { personalized_rate: number } }) => r.personalization.personalized_rate),
    ).toEqual([17.49, 18.24]);
    expect(rec.json.traceId).toMatch(/^trace_/);

    const trace = await fetch(`${svc.http}/api/v1/decision-traces/${rec.json.traceId}`, { headers });
    expect(trace.status).toBe(200);
    const res = await postJson(
      svc.http,
      "/api/v1/respond",
      {
        customerId: "cust_12345",
        offerId: "act_platinum_cc",
        channelId: "ch_email",
        outcomeType: "click",
        recommendationId: rec.json.recommendations[0].recommendationId,
      },
      headers,
    );
    expect(res.status).toBe(200);
    await waitFor(async () => received.length >= 2, 30_000);
    expect(received.map((e) => e.type).sort()).toEqual(["decision.made.v1", "interaction.recorded.v1"]);
    expect(received.find((e) => e.type === "interaction.recorded.v1")?.data.recommendationId).toBe(
      rec.json.recommendations[0].recommendationId,
    );

    // The data survives a restart: same key, no second seed.
    svc.proc.kill("SIGTERM");
    expect(await svc.exited).toBe(0);
    const again = await spawnService({ HOST: "127.0.0.1", PORT: "0", GRPC_PORT: "0", DATA_DIR: dataDir, LOG_LEVEL: "info" }, 60_000);
    cleanups.push(() => {
      again.proc.kill("SIGKILL");
    });
    expect(again.output()).not.toMatch(/krn_[0-9A-Za-z]{32,}/);
    const rec2 = await postJson(again.http, "/api/v1/recommend", TUTORIAL_RECOMMEND, headers);
    expect(rec2.status).toBe(200);
    again.proc.kill("SIGTERM");
    expect(await again.exited).toBe(0);
  }, 120_000);

  test("one process at a time on DATA_DIR: the CLI beside a running service runs through it; the tenant it builds decides at once and after a restart", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "kaireon-locked-"));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const env = { HOST: "127.0.0.1", PORT: "0", GRPC_PORT: "0", DATA_DIR: dataDir, LOG_LEVEL: "info", DEMO_API_KEY: DEMO_KEY };
    let svc = await spawnService(env, 60_000);
    cleanups.push(() => {
      svc.proc.kill("SIGKILL");
    });
    const workDir = mkdtempSync(join(tmpdir(), "kaireon-cli-cwd-"));
    cleanups.push(() => rmSync(workDir, { recursive: true, force: true }));
    const cli = async (...args: string[]) => {
      const proc = Bun.spawn([BUN, join(ROOT, "src/cli.ts"), ...args], {
        cwd: workDir,
        env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", DATA_DIR: dataDir },
        stdout: "pipe",
        stderr: "pipe",
      });
      const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
      return { stdout, stderr, code };
    };
    const created = await cli("tenants", "create", "acme", "--plan", "professional");
    expect(created).toMatchObject({ code: 0, stdout: "created tenant acme (professional)\n" });
    const issued = await cli("keys", "create", "acme", "--name", "admin", "--scopes", "admin,decide");
    expect(issued.code).toBe(0);
    const key = issued.stdout.split("\n").find((l) => l.startsWith("krn_")) as string;
    expect(key).toMatch(/^krn_/);
    // The running service knows the key at once: the command ran inside it.
    const settings = await fetch(`${svc.http}/api/v1/settings`, { headers: authHeaders(key, "acme") });
    expect(settings.status).toBe(200);
    expect(((await settings.json()) as { plan: string }).plan).toBe("professional");
    // A refusal keeps its exit code and message; a relative --file is the caller's, not the service's.
    expect(await cli("tenants", "create", "acme")).toMatchObject({ code: 2, stderr: "tenant acme already exists\n" });
    expect((await cli("catalog", "export", "demo", "--file", "demo.json")).code).toBe(0);
    expect(JSON.parse(readFileSync(join(workDir, "demo.json"), "utf8")).offers.length).toBeGreaterThan(0);
    // The tenant built from the command line decides at once.
    expect((await cli("catalog", "import", "acme", "--file", "demo.json")).code).toBe(0);
    const decide = async () => {
      const res = await postJson(svc.http, "/api/v1/recommend", TUTORIAL_RECOMMEND, authHeaders(key, "acme"));
      expect(res.status).toBe(200);
      return res.json.recommendations.length as number;
    };
    expect(await decide()).toBeGreaterThan(0);

    // A second service on the same directory does not start.
    const twin = Bun.spawn([BUN, "src/main.ts"], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...env },
      stdout: "pipe",
      stderr: "pipe",
    });
    expect(await twin.exited).toBe(1);
    expect(await new Response(twin.stderr).text()).toContain("is in use by another process");

    // After a restart the tenant and its key are still there.
    svc.proc.kill("SIGTERM");
    expect(await svc.exited).toBe(0);
    expect((await cli("tenants", "list")).stdout).toContain("acme");
    svc = await spawnService(env, 60_000);
    const again = await fetch(`${svc.http}/api/v1/settings`, { headers: authHeaders(key, "acme") });
    expect(again.status).toBe(200);
    expect(await decide()).toBeGreaterThan(0);
    expect((await postJson(svc.http, "/api/v1/recommend", TUTORIAL_RECOMMEND)).status).toBe(200);
  }, 120_000);
});
