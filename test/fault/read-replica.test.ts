// Reads that tolerate lag on a streaming replica: a private primary and a replica the test builds with
// pg_basebackup -R. An instance pointed at the replica with DATABASE_READ_URL starts (migrations run on
// the primary only), its trace reads are served by the replica, a trace the replica does not have yet is
// read from the primary, and the audit log is read there too.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import postgres from "postgres";
import { type App, startApp } from "../../src/app.ts";
import { loadConfig } from "../../src/config.ts";
import { createLogger } from "../../src/log.ts";
import { authHeaders, postJson, REDIS_URL, testEnv, waitFor } from "../harness.ts";
import { type PrivatePostgres, startPrivatePostgres, startReplica } from "./servers.ts";

let primary: PrivatePostgres;
let replica: PrivatePostgres;
let app: App;
let replicaSql: postgres.Sql;
const base = () => `http://127.0.0.1:${app.listeners.port}`;

beforeAll(async () => {
  primary = await startPrivatePostgres({ wal_level: "replica", max_wal_senders: "4" });
  replica = await startReplica(primary);
  app = await startApp(
    loadConfig(testEnv({ DATABASE_URL: primary.url, DATABASE_READ_URL: replica.url, REDIS_URL })),
    createLogger("error"),
  );
  replicaSql = postgres(replica.url, { max: 1, onnotice: () => {} });
}, 180_000);
afterAll(async () => {
  await app?.stop();
  await replicaSql?.end({ timeout: 1 });
  await replica?.destroy();
  await primary?.destroy();
}, 60_000);

/** The last statements of the replica's other sessions (the instance's read pool). */
async function replicaQueries(): Promise<string[]> {
  const rows = await replicaSql`select query from pg_stat_activity
    where backend_type = 'client backend' and pid <> pg_backend_pid() and datname = current_database()`;
  return rows.map((r) => r.query as string);
}

describe("with DATABASE_READ_URL on a replica", () => {
  test("the instance starts; the replica is read-only and has the schema the primary migrated", async () => {
    const [{ in_recovery }] = (await replicaSql`select pg_is_in_recovery() as in_recovery`) as unknown as [{ in_recovery: boolean }];
    expect(in_recovery).toBe(true);
    // The replica replays the primary's migrations with some lag: the table may not exist there yet.
    const primarySql = postgres(primary.url, { max: 1, onnotice: () => {} });
    const [{ n: migrated }] = (await primarySql`select count(*)::int as n from schema_migrations`) as unknown as [{ n: number }];
    await primarySql.end({ timeout: 1 });
    expect(migrated).toBeGreaterThanOrEqual(12);
    await waitFor(async () => {
      const [{ present }] = (await replicaSql`select to_regclass('public.schema_migrations') is not null as present`) as unknown as [
        { present: boolean },
      ];
      if (!present) return false;
      return (await replicaSql`select count(*)::int as n from schema_migrations`)[0]?.n === migrated;
    }, 30_000);
  }, 30_000);

  test("trace reads come from the replica once it has the trace, from the primary before", async () => {
    const rec = await postJson(base(), "/api/v1/recommend", { customerId: "cust_12345", channelId: "ch_email", trace: true });
    expect(rec.status).toBe(200);
    await app.deps.traces.flush();
    const traceId = rec.json.traceId as string;
    // Straight after the write the replica may lag; the answer is found either way.
    const first = await fetch(`${base()}/api/v1/decision-traces/${traceId}`, { headers: authHeaders() });
    expect(first.status).toBe(200);
    await waitFor(async () => (await replicaSql`select 1 from decision_traces where trace_id = ${traceId}`).length > 0, 10_000);
    const res = await fetch(`${base()}/api/v1/decision-traces/${traceId}`, { headers: authHeaders() });
    expect(res.status).toBe(200);
    expect((await replicaQueries()).some((q) => q.includes("from decision_traces"))).toBe(true);
  }, 60_000);

  test("the audit log is listed from the replica", async () => {
    const res = await fetch(`${base()}/api/v1/audit-log?limit=5`, { headers: authHeaders() });
    expect(res.status).toBe(200);
    expect((await replicaQueries()).some((q) => q.includes("audit_log"))).toBe(true);
  }, 30_000);
});
