// Recommend throughput of the service in this process (PostgreSQL and Redis on the same machine): 32
// concurrent POST /api/v1/recommend for SECONDS, on a fresh database. Give another checkout's root to
// measure that version the same way, side by side with this one:
//
//   git worktree add /tmp/before <commit> && ln -s "$PWD/node_modules" /tmp/before/node_modules
//   bun bench/recommend-inprocess.ts /tmp/before; bun bench/recommend-inprocess.ts
//   EXTRA='{"DECISION_BUFFER_SIZE":"1"}' bun bench/recommend-inprocess.ts    # settings of this run
import postgres from "postgres";

const root = process.argv[2] ?? new URL("..", import.meta.url).pathname;
const SECONDS = Number(process.env.SECONDS ?? 6);
const { startApp } = await import(`${root}/src/app.ts`);
const { loadConfig } = await import(`${root}/src/config.ts`);
const { createLogger } = await import(`${root}/src/log.ts`);
const SERVER = process.env.DATABASE_URL || "postgres://postgres@127.0.0.1:5432/postgres";
const KEY = "krn_BenchRecommendInProcess000000000000001";
const name = `kaireon_rip_${Date.now()}`;
const at = (db: string) => Object.assign(new URL(SERVER), { pathname: `/${db}` }).toString();
const admin = postgres(at("postgres"), { max: 1, onnotice: () => {} });
await admin.unsafe(`create database ${name}`);
const app = await startApp(
  loadConfig({
    NODE_ENV: "test",
    HOST: "127.0.0.1",
    PORT: "0",
    GRPC_PORT: "0",
    DATABASE_URL: at(name),
    REDIS_URL: process.env.REDIS_URL || "redis://127.0.0.1:6379",
    REDIS_KEY_PREFIX: `kaireon_rip_${Date.now()}`,
    API_KEY_PEPPER: "bench-pepper-0123456789abcdef",
    DEMO_API_KEY: KEY,
    RATE_LIMIT_OVERRIDE_PER_MINUTE: "100000000",
    MONTHLY_DECISION_QUOTA_OVERRIDE: "1000000000",
    ...(process.env.EXTRA ? JSON.parse(process.env.EXTRA) : {}),
  }),
  createLogger("error"),
);
const base = `http://127.0.0.1:${app.listeners.port}`;
const headers = { "x-tenant-id": "demo", "x-api-key": KEY, "content-type": "application/json" };
try {
  let n = 0;
  let ok = 0;
  const until = performance.now() + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (performance.now() < until) {
        const i = n++;
        const r = await fetch(`${base}/api/v1/recommend`, {
          method: "POST",
          headers,
          body: JSON.stringify({ customerId: `cust_${10001 + (i % 500)}`, channelId: "ch_email", maxOffers: 3 }),
        });
        await r.arrayBuffer();
        if (r.status === 200) ok++;
      }
    }),
  );
  console.log(`${root}${process.env.EXTRA ? ` ${process.env.EXTRA}` : ""}: ${(ok / SECONDS).toFixed(0)} Recommends/s`);
} finally {
  await app.stop();
  await admin.unsafe(`drop database ${name} with (force)`);
  await admin.end();
}
