// Versioned SQL migrations, applied at start-up. A transaction-scoped advisory lock makes concurrent
// start-ups safe: the first instance applies what is pending, the others wait and then find nothing to do.

import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Db } from "./db.ts";
import { ensureInteractionPartitions } from "./partitions.ts";

const MIGRATION_LOCK = 72_150_001;
const migrationsDir = join(import.meta.dir, "migrations");

export interface MigrationResult {
  applied: string[];
}

export async function migrate(db: Db, now: Date = new Date()): Promise<MigrationResult> {
  const files = readdirSync(migrationsDir)
    .filter((f) => /^\d+_.+\.sql$/.test(f))
    .sort();
  return db.transaction(async (tx) => {
    await tx.query("select pg_advisory_xact_lock($1)", [MIGRATION_LOCK]);
    await tx.exec(`create table if not exists schema_migrations (
      version integer primary key,
      name text not null,
      applied_at timestamptz not null default now()
    )`);
    const done = new Set((await tx.query<{ version: number }>("select version from schema_migrations")).map((r) => r.version));
    const applied: string[] = [];
    for (const file of files) {
      const version = Number.parseInt(file, 10);
      if (done.has(version)) continue;
      await tx.exec(readFileSync(join(migrationsDir, file), "utf8"));
      await tx.query("insert into schema_migrations (version, name) values ($1, $2)", [version, file]);
      applied.push(file);
    }
    await ensureInteractionPartitions(tx, now);
    return { applied };
  });
}

/** The migrations this database has not had yet (all of them when it has none). */
export async function pendingMigrations(db: Db): Promise<string[]> {
  const files = readdirSync(migrationsDir)
    .filter((f) => /^\d+_.+\.sql$/.test(f))
    .sort();
  const [table] = await db.query<{ present: boolean }>("select to_regclass('schema_migrations') is not null as present");
  if (!table?.present) return files;
  const done = new Set((await db.query<{ version: number }>("select version from schema_migrations")).map((r) => r.version));
  return files.filter((f) => !done.has(Number.parseInt(f, 10)));
}
