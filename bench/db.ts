// Database chores of the benchmark, with postgres.js (no psql needed).
//
//   bun bench/db.ts url     <server-url> <name>   print the URL of database <name> on that server
//   bun bench/db.ts create  <server-url> <name>   drop <name> if it exists, then create it empty
//   bun bench/db.ts drop    <server-url> <name>   drop <name> if it exists
//   bun bench/db.ts traces  <server-url> <name>   print the number of stored decision traces

import postgres from "postgres";

const [cmd, serverUrl, name] = process.argv.slice(2);
if (!cmd || !serverUrl || !name || !/^[a-z_][a-z0-9_]*$/.test(name)) {
  process.stderr.write("usage: bun bench/db.ts url|create|drop|traces <server-url> <database-name>\n");
  process.exit(2);
}

function withDatabase(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

async function admin<T>(fn: (sql: postgres.Sql) => Promise<T>): Promise<T> {
  const sql = postgres(withDatabase(serverUrl as string, "postgres"), { onnotice: () => {}, max: 1, connect_timeout: 10 });
  try {
    return await fn(sql);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

switch (cmd) {
  case "url":
    process.stdout.write(`${withDatabase(serverUrl, name)}\n`);
    break;
  case "create":
    await admin(async (sql) => {
      await sql.unsafe(`drop database if exists ${name} with (force)`);
      await sql.unsafe(`create database ${name}`);
    });
    break;
  case "drop":
    await admin((sql) => sql.unsafe(`drop database if exists ${name} with (force)`));
    break;
  case "traces": {
    const sql = postgres(withDatabase(serverUrl, name), { onnotice: () => {}, max: 1, connect_timeout: 10 });
    try {
      const [row] = await sql.unsafe("select count(*)::int as n from decision_traces");
      process.stdout.write(`${row?.n ?? 0}\n`);
    } finally {
      await sql.end({ timeout: 5 });
    }
    break;
  }
  default:
    process.stderr.write(`unknown command ${cmd}\n`);
    process.exit(2);
}
