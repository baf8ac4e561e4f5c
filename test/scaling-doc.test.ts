// docs/scaling.md's table of how the schema spreads past one PostgreSQL, held to the migrated schema:
// every table is listed, and every table it calls distributed has tenant_id leading its primary key
// (or says what would have to change for that).

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import path from "node:path";
import { openPostgres } from "../src/store/db.ts";
import { migrate } from "../src/store/migrate.ts";
import { createTestDatabase, ROOT, type TestDatabase } from "./harness.ts";

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
  const store = openPostgres({ url: db.url, poolSize: 2 });
  await migrate(store);
  await store.close();
}, 60_000);
afterAll(async () => {
  await db.drop();
}, 30_000);

describe("docs/scaling.md", () => {
  test("lists every table, and each distributed one leads its primary key with tenant_id or says what would change", async () => {
    const doc = await Bun.file(path.join(ROOT, "docs/scaling.md")).text();
    const section = doc.slice(doc.indexOf("## Past one PostgreSQL"));
    const rows = [...section.matchAll(/^\| `(\w+)` \|([^|]+)\|([^|]*)\|$/gm)].map((m) => ({
      table: m[1] as string,
      placement: (m[2] as string).trim(),
      change: (m[3] as string).trim(),
    }));
    // Top-level tables only: partitions belong to their parent.
    const tables = await db.sql`select c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'public' and c.relkind in ('r', 'p') and not c.relispartition order by 1`;
    expect(rows.map((r) => r.table).sort()).toEqual(tables.map((t) => t.name as string).sort());

    const keys = await db.sql`select c.relname as name, array_agg(a.attname order by k.ord) as columns
      from pg_constraint con join pg_class c on c.oid = con.conrelid
      cross join lateral unnest(con.conkey) with ordinality as k(attnum, ord)
      join pg_attribute a on a.attrelid = c.oid and a.attnum = k.attnum
      where con.contype = 'p' and not c.relispartition group by c.relname`;
    const leading = new Map(keys.map((k) => [k.name as string, (k.columns as string[])[0]]));
    for (const row of rows.filter((r) => r.placement.startsWith("distributed"))) {
      const ok = leading.get(row.table) === "tenant_id" || row.change.includes("primary key");
      expect({ table: row.table, ok }).toEqual({ table: row.table, ok: true });
    }
  }, 60_000);
});
