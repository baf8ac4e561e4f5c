// Operator command line: tenants and API keys, against the same database the service uses
// (DATABASE_URL, or the embedded database under DATA_DIR).
//
//   bun src/cli.ts tenants create <id> [--name NAME] [--plan community|professional|enterprise]
//   bun src/cli.ts tenants list
//   bun src/cli.ts tenants suspend|activate <id>
//   bun src/cli.ts keys create <tenant> [--name NAME] [--scopes decide,admin] [--expires-days N]
//   bun src/cli.ts keys list <tenant>
//   bun src/cli.ts keys revoke <tenant> <key id or prefix>
//   bun src/cli.ts customers opt-in <tenant> <customer> <channel>

import { parseArgs } from "node:util";
import { openDatabase } from "./app.ts";
import { loadConfig } from "./config.ts";
import { newApiKey, newApiKeyId } from "./ids.ts";
import { hashApiKey } from "./services/auth.ts";
import type { Db } from "./store/db.ts";
import { clearOptOut } from "./store/history.ts";
import { migrate } from "./store/migrate.ts";
import {
  createTenant,
  getTenant,
  insertApiKey,
  listApiKeys,
  listTenants,
  revokeApiKey,
  type Scope,
  setTenantStatus,
} from "./store/tenants.ts";

const USAGE = `usage:
  tenants create <id> [--name NAME] [--plan community|professional|enterprise]
  tenants list
  tenants suspend <id> | tenants activate <id>
  keys create <tenant> [--name NAME] [--scopes decide,admin] [--expires-days N]
  keys list <tenant>
  keys revoke <tenant> <key id or prefix>
  customers opt-in <tenant> <customer> <channel>`;

class UsageError extends Error {}

const ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const PLANS = ["community", "professional", "enterprise"];
const SCOPES: Scope[] = ["decide", "admin"];

async function run(db: Db, pepper: string, argv: string[]): Promise<string> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      name: { type: "string" },
      plan: { type: "string" },
      scopes: { type: "string" },
      "expires-days": { type: "string" },
    },
  });
  const [group, action, first, second, third] = positionals;
  const requireTenant = async (id: string | undefined) => {
    if (!id) throw new UsageError("a tenant id is required");
    if (!(await getTenant(db, id))) throw new UsageError(`tenant ${id} does not exist`);
    return id;
  };

  if (group === "tenants" && action === "create") {
    if (!first || !ID_PATTERN.test(first)) throw new UsageError("tenant id: lowercase letters, digits, _ and -, at most 63 characters");
    const plan = values.plan ?? "community";
    if (!PLANS.includes(plan)) throw new UsageError(`plan must be one of ${PLANS.join(", ")}`);
    if (await getTenant(db, first)) throw new UsageError(`tenant ${first} already exists`);
    const t = await createTenant(db, { id: first, name: values.name ?? first, plan });
    return `created tenant ${t.id} (${t.plan})`;
  }
  if (group === "tenants" && action === "list") {
    const rows = await listTenants(db);
    return rows.map((t) => `${t.id}\t${t.status}\t${t.plan}\t${t.name}`).join("\n");
  }
  if (group === "tenants" && (action === "suspend" || action === "activate")) {
    const id = await requireTenant(first);
    await setTenantStatus(db, id, action === "suspend" ? "suspended" : "active");
    return `tenant ${id} is ${action === "suspend" ? "suspended" : "active"}`;
  }
  if (group === "keys" && action === "create") {
    const tenantId = await requireTenant(first);
    const scopes = (values.scopes ?? "decide,admin").split(",").map((s) => s.trim()) as Scope[];
    if (scopes.length === 0 || scopes.some((s) => !SCOPES.includes(s))) throw new UsageError(`scopes must be among ${SCOPES.join(", ")}`);
    let expiresAt: Date | null = null;
    if (values["expires-days"] !== undefined) {
      const days = Number(values["expires-days"]);
      if (!Number.isInteger(days) || days < 1 || days > 3650) throw new UsageError("--expires-days must be a whole number from 1 to 3650");
      expiresAt = new Date(Date.now() + days * 86_400_000);
    }
    const key = newApiKey();
    const id = newApiKeyId();
    await insertApiKey(db, {
      id,
      tenantId,
      hash: hashApiKey(key, pepper),
      prefix: key.slice(0, 12),
      name: values.name ?? "",
      scopes,
      expiresAt,
    });
    return `created key ${id} for tenant ${tenantId} (scopes ${scopes.join(",")})\n${key}\nStore it now: it cannot be shown again.`;
  }
  if (group === "keys" && action === "list") {
    const tenantId = await requireTenant(first);
    const rows = await listApiKeys(db, tenantId);
    const iso = (d: Date | null) => (d ? d.toISOString() : "-");
    return ["id\tprefix\tname\tscopes\tcreated\tlast_used\texpires\trevoked"]
      .concat(
        rows.map((k) =>
          [
            k.id,
            `${k.prefix}…`,
            k.name || "-",
            k.scopes.join(","),
            iso(k.createdAt),
            iso(k.lastUsedAt),
            iso(k.expiresAt),
            iso(k.revokedAt),
          ].join("\t"),
        ),
      )
      .join("\n");
  }
  if (group === "keys" && action === "revoke") {
    const tenantId = await requireTenant(first);
    if (!second) throw new UsageError("a key id or prefix is required");
    const n = await revokeApiKey(db, tenantId, second);
    if (n === 0) throw new UsageError(`no active key ${second} in tenant ${tenantId}`);
    return `revoked ${n} key${n === 1 ? "" : "s"}; cached copies stop working within 15 seconds`;
  }
  if (group === "customers" && action === "opt-in") {
    const tenantId = await requireTenant(first);
    if (!second || !third) throw new UsageError("a customer id and a channel id are required");
    // Clearing is idempotent: a customer who never opted out is already opted in.
    const cleared = await clearOptOut(db, tenantId, second, third);
    return cleared
      ? `customer ${second} of tenant ${tenantId} is opted back into ${third}`
      : `customer ${second} of tenant ${tenantId} had no opt-out on ${third}; nothing to clear`;
  }
  throw new UsageError(USAGE);
}

const config = loadConfig();
const db = await openDatabase(config);
let code = 0;
try {
  await migrate(db);
  process.stdout.write(`${await run(db, config.apiKeyPepper, process.argv.slice(2))}\n`);
} catch (err) {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  code = err instanceof UsageError || (err instanceof Error && err.name === "TypeError") ? 2 : 1;
} finally {
  await db.close();
}
process.exit(code);
