// Operator command line: tenants and API keys, against the same database the service uses
// (DATABASE_URL, or the embedded database under DATA_DIR).
//
//   bun src/cli.ts tenants create <id> [--name NAME] [--plan community|professional|enterprise]
//   bun src/cli.ts tenants list
//   bun src/cli.ts tenants suspend|activate <id>
//   bun src/cli.ts keys create <tenant> [--name NAME] [--scopes decide,admin] [--expires-days N]
//   bun src/cli.ts keys list <tenant>
//   bun src/cli.ts keys revoke <tenant> <key id or prefix>
//   bun src/cli.ts tenants set <id> [--trace-sample-rate 0..1] [--trace-retention-days N]
//                                  [--plan P] [--rate-limit N|plan] [--respond-rate-limit N|plan] [--monthly-quota N|plan]
//   bun src/cli.ts customers opt-in <tenant> <customer> <channel>
//   bun src/cli.ts outcomes add <tenant> <type> --class positive|negative|neutral
//   bun src/cli.ts outcomes list <tenant>
//   bun src/cli.ts flows versions <tenant> <flow>
//   bun src/cli.ts flows publish <tenant> <flow> --file definition.json [--name NAME] [--default]
//   bun src/cli.ts flows rollback <tenant> <flow> <version>

import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { openDatabase } from "./app.ts";
import { loadConfig } from "./config.ts";
import type { FlowDefinition } from "./decisioning/catalog.ts";
import { validateFlowDefinition } from "./decisioning/flow-validation.ts";
import { newApiKey, newApiKeyId } from "./ids.ts";
import { hashApiKey } from "./services/auth.ts";
import { OUTCOME_TYPES } from "./services/respond.ts";
import type { Db } from "./store/db.ts";
import { clearOptOut } from "./store/history.ts";
import { createFlow, listVersions, publishDraft, rollBack, saveDraft } from "./store/flows.ts";
import { migrate } from "./store/migrate.ts";
import { listOutcomeTypes, registerOutcomeType } from "./store/outcome-types.ts";
import {
  createTenant,
  getTenant,
  insertApiKey,
  listApiKeys,
  listTenants,
  revokeApiKey,
  type Scope,
  setTenantStatus,
  updateTenantSettings,
} from "./store/tenants.ts";

const USAGE = `usage:
  tenants create <id> [--name NAME] [--plan community|professional|enterprise]
  tenants list
  tenants suspend <id> | tenants activate <id>
  keys create <tenant> [--name NAME] [--scopes decide,admin] [--expires-days N]
  keys list <tenant>
  keys revoke <tenant> <key id or prefix>
  tenants set <id> [--trace-sample-rate 0..1] [--trace-retention-days N]
                   [--plan community|professional|enterprise] [--rate-limit N|plan]
                   [--respond-rate-limit N|plan] [--monthly-quota N|plan]
  customers opt-in <tenant> <customer> <channel>
  outcomes add <tenant> <type> --class positive|negative|neutral
  outcomes list <tenant>
  flows versions <tenant> <flow>
  flows publish <tenant> <flow> --file definition.json [--name NAME] [--default]
  flows rollback <tenant> <flow> <version>`;

class UsageError extends Error {}

const ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const PLANS = ["community", "professional", "enterprise"];
const SCOPES: Scope[] = ["decide", "admin"];

async function run(db: Db, pepper: string, argv: string[]): Promise<string> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      file: { type: "string" },
      class: { type: "string" },
      default: { type: "boolean" },
      "trace-sample-rate": { type: "string" },
      "trace-retention-days": { type: "string" },
      "rate-limit": { type: "string" },
      "respond-rate-limit": { type: "string" },
      "monthly-quota": { type: "string" },
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
  if (group === "tenants" && action === "set") {
    const id = await requireTenant(first);
    const patch: Record<string, unknown> = {};
    if (values["trace-sample-rate"] !== undefined) {
      const rate = Number(values["trace-sample-rate"]);
      if (!(rate >= 0 && rate <= 1)) throw new UsageError("--trace-sample-rate must be a number from 0 to 1");
      patch.traceSampleRate = rate;
    }
    if (values["trace-retention-days"] !== undefined) {
      const days = Number(values["trace-retention-days"]);
      if (!Number.isInteger(days) || days < 1 || days > 3650)
        throw new UsageError("--trace-retention-days must be a whole number from 1 to 3650");
      patch.traceRetentionDays = days;
    }
    // "plan" clears a tenant's own number, so its plan's applies again.
    const limit = (option: string, setting: string, min: number) => {
      const raw = values[option as keyof typeof values];
      if (raw === undefined || typeof raw !== "string") return;
      if (raw === "plan") {
        patch[setting] = null;
        return;
      }
      const n = Number(raw);
      if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`--${option} must be a whole number of at least ${min}, or plan`);
      patch[setting] = n;
    };
    limit("rate-limit", "rateLimitPerMinute", 1);
    limit("respond-rate-limit", "respondRateLimitPerMinute", 1);
    limit("monthly-quota", "monthlyDecisionQuota", 0);
    const plan = values.plan;
    if (plan !== undefined && !PLANS.includes(plan)) throw new UsageError(`plan must be one of ${PLANS.join(", ")}`);
    if (Object.keys(patch).length === 0 && plan === undefined) throw new UsageError("nothing to set");
    await updateTenantSettings(db, id, patch, plan);
    return `tenant ${id}: ${JSON.stringify(plan === undefined ? patch : { plan, ...patch })}`;
  }
  if (group === "outcomes" && action === "add") {
    const tenantId = await requireTenant(first);
    if (!second || !/^[a-z][a-z0-9_]{0,63}$/.test(second))
      throw new UsageError("outcome type: lowercase letters, digits and _, at most 64 characters");
    if (second in OUTCOME_TYPES) throw new UsageError(`${second} is a built-in outcome type`);
    const classification = values.class;
    if (classification !== "positive" && classification !== "negative" && classification !== "neutral") {
      throw new UsageError("--class must be positive, negative or neutral");
    }
    await registerOutcomeType(db, tenantId, { id: second, classification });
    return `outcome type ${second} (${classification}) registered for tenant ${tenantId}`;
  }
  if (group === "outcomes" && action === "list") {
    const tenantId = await requireTenant(first);
    const custom = await listOutcomeTypes(db, tenantId);
    return Object.entries(OUTCOME_TYPES)
      .map(([id, c]) => `${id}\t${c}\tbuilt-in`)
      .concat(custom.map((o) => `${o.id}\t${o.classification}\tregistered`))
      .join("\n");
  }
  if (group === "flows" && action === "versions") {
    const tenantId = await requireTenant(first);
    if (!second) throw new UsageError("a flow id is required");
    const versions = await listVersions(db, tenantId, second);
    if (versions.length === 0) throw new UsageError(`flow ${second} has no versions in tenant ${tenantId}`);
    return ["version\tstatus\tcreated\tpublished"]
      .concat(versions.map((v) => [v.version, v.status, v.createdAt.toISOString(), v.publishedAt?.toISOString() ?? "-"].join("\t")))
      .join("\n");
  }
  if (group === "flows" && action === "publish") {
    const tenantId = await requireTenant(first);
    if (!second || !ID_PATTERN.test(second)) throw new UsageError("flow id: lowercase letters, digits, _ and -, at most 63 characters");
    if (!values.file) throw new UsageError("--file with the flow definition (JSON) is required");
    let definition: unknown;
    try {
      definition = JSON.parse(readFileSync(values.file, "utf8"));
    } catch (err) {
      throw new UsageError(`cannot read ${values.file}: ${err instanceof Error ? err.message : String(err)}`);
    }
    const problems = validateFlowDefinition(definition);
    if (problems.length > 0) throw new UsageError(problems.map((p) => `${p.field}: ${p.message}`).join("\n"));
    const version = await db.transaction(async (tx) => {
      const exists = await tx.query("select 1 from decision_flows where tenant_id = $1 and id = $2", [tenantId, second]);
      if (exists.length === 0)
        await createFlow(tx, tenantId, { id: second, name: values.name ?? second, isDefault: values.default ?? false });
      else if (values.default) {
        await tx.query("update decision_flows set is_default = (id = $2) where tenant_id = $1", [tenantId, second]);
      }
      return saveDraft(tx, tenantId, second, definition as FlowDefinition);
    });
    const published = await publishDraft(db, tenantId, second);
    return `published ${second} version ${published ?? version} for tenant ${tenantId}`;
  }
  if (group === "flows" && action === "rollback") {
    const tenantId = await requireTenant(first);
    const target = Number(positionals[3]);
    if (!second || !Number.isInteger(target) || target < 1) throw new UsageError("usage: flows rollback <tenant> <flow> <version>");
    const version = await rollBack(db, tenantId, second, target);
    if (version === null) throw new UsageError(`flow ${second} has no published version ${target}`);
    return `published version ${target}'s definition of ${second} as version ${version}`;
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
