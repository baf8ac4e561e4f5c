// The service started inside a benchmark's own process on a fresh database (dropped by `stop`) and a
// Redis key prefix of its own, with limits out of the way and the demo tenant under a known key.

import postgres from "postgres";
import { type App, startApp } from "../src/app.ts";
import { loadConfig } from "../src/config.ts";
import { randomBase62 } from "../src/ids.ts";
import { createLogger } from "../src/log.ts";

export const SERVER = process.env.DATABASE_URL || "postgres://postgres@127.0.0.1:5432/postgres";
export const REDIS_URL = process.env.REDIS_URL || "redis://127.0.0.1:6379";

export interface BenchService {
  app: App;
  base: string;
  headers: Record<string, string>;
  /** A connection to the service's database, for counting what it wrote. */
  sql: postgres.Sql;
  redisPrefix: string;
  stop(): Promise<void>;
}

export async function startBenchService(label: string, key: string, env: Record<string, string> = {}): Promise<BenchService> {
  const name = `kaireon_${label}_${randomBase62(6).toLowerCase()}`;
  const at = (db: string) => Object.assign(new URL(SERVER), { pathname: `/${db}` }).toString();
  const admin = postgres(at("postgres"), { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  const redisPrefix = `kaireon_${label}_${randomBase62(6)}`;
  const app = await startApp(
    loadConfig({
      NODE_ENV: "production",
      HOST: "127.0.0.1",
      PORT: "0",
      GRPC_PORT: "0",
      DATABASE_URL: at(name),
      REDIS_URL,
      REDIS_KEY_PREFIX: redisPrefix,
      API_KEY_PEPPER: "bench-pepper-0123456789abcdef",
      DEMO_API_KEY: key,
      RATE_LIMIT_OVERRIDE_PER_MINUTE: "100000000",
      MONTHLY_DECISION_QUOTA_OVERRIDE: "1000000000",
      ...env,
    }),
    createLogger("warn"),
  );
  const sql = postgres(at(name), { max: 2, onnotice: () => {} });
  return {
    app,
    base: `http://127.0.0.1:${app.listeners.port}`,
    headers: { "x-tenant-id": "demo", "x-api-key": key, "content-type": "application/json" },
    sql,
    redisPrefix,
    async stop() {
      await app.stop();
      await sql.end();
      await admin.unsafe(`drop database ${name} with (force)`);
      await admin.end();
    },
  };
}
