// The operator's commands, run by the command line (src/cli.ts) on the database, or by a running
// service on the CLI's behalf (its embedded database is its own). Everything a tenant owns goes through
// the same service functions as the API (same checks, same audit log, with "cli" as the actor).

import { readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { create, fromJson, type JsonObject, type JsonValue, toJson } from "@bufbuild/protobuf";
import { CatalogDocumentSchema, ImportCatalogRequestSchema } from "../gen/kaireon/v1/catalog_pb.ts";
import { PublishDecisionFlowRequestSchema, RollBackDecisionFlowRequestSchema } from "../gen/kaireon/v1/decision_flow_pb.ts";
import { TenantSettingsSchema, UpdateTenantSettingsRequestSchema } from "../gen/kaireon/v1/tenant_settings_pb.ts";
import { AppError } from "./errors.ts";
import { randomBase62 } from "./ids.ts";
import { issueApiKey, SCOPES } from "./services/api-keys.ts";
import { exportCatalog, importCatalog } from "./services/catalog.ts";
import type { CallContext, ServiceDeps } from "./services/context.ts";
import { TENANT_ID } from "./services/operator.ts";
import { publishDecisionFlow, rollBackDecisionFlow } from "./services/decision-flows.ts";
import { decisionFlowKind, outcomeTypeKind } from "./services/kinds/index.ts";
import { createResource, getResource, updateResource } from "./services/resources.ts";
import { OUTCOME_TYPES } from "./services/respond.ts";
import { getTenantSettings, PLANS, updateTenantSettings } from "./services/tenant-settings.ts";
import { appendAudit } from "./store/audit.ts";
import { clearOptOut } from "./store/history.ts";
import { listVersions } from "./store/flows.ts";
import { listOutcomeTypes } from "./store/outcome-types.ts";
import { createTenant, getTenant, listApiKeys, listTenants, revokeApiKey, type Scope, setTenantStatus } from "./store/tenants.ts";

const USAGE = `usage:
  tenants create <id> [--name NAME] [--plan community|professional|enterprise]
  tenants list
  tenants suspend <id> | tenants activate <id>
  keys create <tenant> [--name NAME] [--scopes decide,admin] [--expires-days N]
  keys list <tenant>
  keys revoke <tenant> <key id or prefix>
  tenants set <id> [--trace-sample-rate 0..1] [--trace-retention-days N]
                   [--plan community|professional|enterprise] [--rate-limit N|plan]
                   [--respond-rate-limit N|plan] [--admin-rate-limit N|plan] [--monthly-quota N|plan]
                   [--holdout-percent 0..50]
  customers opt-in <tenant> <customer> <channel>
  outcomes add <tenant> <type> --class positive|negative|neutral
  outcomes list <tenant>
  flows versions <tenant> <flow>
  flows publish <tenant> <flow> --file definition.json [--name NAME] [--default]
  flows rollback <tenant> <flow> <version>
  catalog export <tenant> [--file catalog.json]
  catalog import <tenant> --file catalog.json`;

class UsageError extends Error {}

/** What a write from the command line is recorded as: key "cli", a request id of its own. */
function operatorContext(deps: ServiceDeps, tenantId: string): CallContext {
  const requestId = `cli_${randomBase62(16)}`;
  return {
    auth: { tenantId, keyId: "cli", scopes: ["admin"], operator: true },
    requestId,
    log: deps.log.child({ requestId, transport: "cli" }),
  };
}

function readJsonFile(path: string | undefined, what: string): unknown {
  if (!path) throw new UsageError(`--file with the ${what} (JSON) is required`);
  try {
    return JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new UsageError(`cannot read ${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

async function run(deps: ServiceDeps, argv: string[]): Promise<string> {
  const { db } = deps;
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      file: { type: "string" },
      class: { type: "string" },
      default: { type: "boolean" },
      "trace-sample-rate": { type: "string" },
      "trace-retention-days": { type: "string" },
      "holdout-percent": { type: "string" },
      "rate-limit": { type: "string" },
      "respond-rate-limit": { type: "string" },
      "admin-rate-limit": { type: "string" },
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
    return operatorContext(deps, id);
  };

  if (group === "tenants" && action === "create") {
    if (!first || !TENANT_ID.test(first)) throw new UsageError("tenant id: lowercase letters, digits, _ and -, at most 63 characters");
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
    const ctx = await requireTenant(first);
    const status = action === "suspend" ? "suspended" : "active";
    await db.transaction(async (tx) => {
      await setTenantStatus(tx, ctx.auth.tenantId, status);
      await appendAudit(
        tx,
        { tenantId: ctx.auth.tenantId, keyId: "cli", requestId: ctx.requestId },
        {
          action: `tenant.${action}`,
          resourceType: "tenant",
          resourceId: ctx.auth.tenantId,
          details: {},
        },
      );
    });
    return `tenant ${ctx.auth.tenantId} is ${status}`;
  }
  if (group === "keys" && action === "create") {
    const ctx = await requireTenant(first);
    const scopes = (values.scopes ?? "decide,admin").split(",").map((s) => s.trim());
    if (scopes.some((s) => !SCOPES.includes(s as Scope))) throw new UsageError(`scopes must be among ${SCOPES.join(", ")}`);
    let expiresAt: Date | null = null;
    if (values["expires-days"] !== undefined) {
      const days = Number(values["expires-days"]);
      if (!Number.isInteger(days) || days < 1 || days > 3650) throw new UsageError("--expires-days must be a whole number from 1 to 3650");
      expiresAt = new Date(Date.now() + days * 86_400_000);
    }
    const actor = { tenantId: ctx.auth.tenantId, keyId: "cli", requestId: ctx.requestId };
    const { key, record } = await issueApiKey(deps, actor, { name: values.name ?? "", scopes, expiresAt });
    return `created key ${record.id} for tenant ${record.tenantId} (scopes ${record.scopes.join(",")})\n${key}\nStore it now: it cannot be shown again.`;
  }
  if (group === "keys" && action === "list") {
    const ctx = await requireTenant(first);
    const rows = await listApiKeys(db, ctx.auth.tenantId);
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
    const ctx = await requireTenant(first);
    if (!second) throw new UsageError("a key id or prefix is required");
    const n = await db.transaction(async (tx) => {
      const count = await revokeApiKey(tx, ctx.auth.tenantId, second);
      if (count > 0) {
        await appendAudit(
          tx,
          { tenantId: ctx.auth.tenantId, keyId: "cli", requestId: ctx.requestId },
          {
            action: "api_key.revoke",
            resourceType: "api_key",
            resourceId: second,
            details: { keys: count },
          },
        );
      }
      return count;
    });
    if (n === 0) throw new UsageError(`no active key ${second} in tenant ${ctx.auth.tenantId}`);
    return `revoked ${n} key${n === 1 ? "" : "s"}; cached copies stop working within 15 seconds`;
  }
  if (group === "customers" && action === "opt-in") {
    const ctx = await requireTenant(first);
    if (!second || !third) throw new UsageError("a customer id and a channel id are required");
    // Clearing is idempotent: a customer who never opted out is already opted in.
    const cleared = await clearOptOut(db, ctx.auth.tenantId, second, third);
    return cleared
      ? `customer ${second} of tenant ${ctx.auth.tenantId} is opted back into ${third}`
      : `customer ${second} of tenant ${ctx.auth.tenantId} had no opt-out on ${third}; nothing to clear`;
  }
  if (group === "tenants" && action === "set") {
    const ctx = await requireTenant(first);
    const current = (await getTenantSettings(deps, ctx)).tenantSettings ?? create(TenantSettingsSchema);
    const change: Record<string, unknown> = {};
    const number = (option: string, setting: string, whole: boolean) => {
      const raw = values[option as keyof typeof values];
      if (raw === undefined || typeof raw !== "string") return;
      // "plan" clears a tenant's own number, so its plan's applies again.
      if (raw === "plan" && whole) change[setting] = null;
      else {
        const n = Number(raw);
        if (raw.trim() === "" || !Number.isFinite(n) || (whole && !Number.isSafeInteger(n))) {
          throw new UsageError(`--${option} must be a ${whole ? "whole number, or plan" : "number"}`);
        }
        change[setting] = setting === "monthlyDecisionQuota" ? String(n) : n;
      }
    };
    number("trace-sample-rate", "traceSampleRate", false);
    number("trace-retention-days", "traceRetentionDays", true);
    number("holdout-percent", "holdoutPercent", false);
    number("rate-limit", "rateLimitPerMinute", true);
    number("respond-rate-limit", "respondRateLimitPerMinute", true);
    number("admin-rate-limit", "adminRateLimitPerMinute", true);
    number("monthly-quota", "monthlyDecisionQuota", true);
    if (values.plan !== undefined) change.plan = values.plan;
    if (Object.keys(change).length === 0) throw new UsageError("nothing to set");
    const sent = fromJson(TenantSettingsSchema, {
      ...(toJson(TenantSettingsSchema, current) as JsonObject),
      ...change,
    } as JsonValue);
    const res = await updateTenantSettings(
      deps,
      ctx,
      create(UpdateTenantSettingsRequestSchema, { tenantSettings: sent, updateMask: { paths: Object.keys(change) } }),
    );
    const saved = res.tenantSettings ?? create(TenantSettingsSchema);
    return `tenant ${ctx.auth.tenantId}: ${JSON.stringify(toJson(TenantSettingsSchema, saved))}`;
  }
  if (group === "outcomes" && action === "add") {
    const ctx = await requireTenant(first);
    if (!second) throw new UsageError("an outcome type is required");
    if (second in OUTCOME_TYPES) throw new UsageError(`${second} is a built-in outcome type`);
    const classification = values.class;
    if (classification !== "positive" && classification !== "negative" && classification !== "neutral") {
      throw new UsageError("--class must be positive, negative or neutral");
    }
    // Registers it, or reclassifies one registered before.
    const existing = await getResource(deps, ctx, outcomeTypeKind, [second]).catch(() => null);
    if (existing) await updateResource(deps, ctx, outcomeTypeKind, { outcomeType: second, classification, version: existing.version }, []);
    else await createResource(deps, ctx, outcomeTypeKind, { outcomeType: second, classification });
    return `outcome type ${second} (${classification}) registered for tenant ${ctx.auth.tenantId}`;
  }
  if (group === "outcomes" && action === "list") {
    const ctx = await requireTenant(first);
    const custom = await listOutcomeTypes(db, ctx.auth.tenantId);
    return Object.entries(OUTCOME_TYPES)
      .map(([id, c]) => `${id}\t${c}\tbuilt-in`)
      .concat(custom.map((o) => `${o.id}\t${o.classification}\tregistered`))
      .join("\n");
  }
  if (group === "flows" && action === "versions") {
    const ctx = await requireTenant(first);
    if (!second) throw new UsageError("a flow id is required");
    const versions = await listVersions(db, ctx.auth.tenantId, second);
    if (versions.length === 0) throw new UsageError(`flow ${second} has no versions in tenant ${ctx.auth.tenantId}`);
    return ["version\tstatus\tcreated\tpublished"]
      .concat(versions.map((v) => [v.version, v.status, v.createdAt.toISOString(), v.publishedAt?.toISOString() ?? "-"].join("\t")))
      .join("\n");
  }
  if (group === "flows" && action === "publish") {
    const ctx = await requireTenant(first);
    if (!second) throw new UsageError("a flow id is required");
    const definition = readJsonFile(values.file, "flow definition") as JsonObject;
    const existing = await getResource(deps, ctx, decisionFlowKind, [second]).catch(() => null);
    const saved = existing
      ? await updateResource(
          deps,
          ctx,
          decisionFlowKind,
          {
            decisionFlowId: second,
            definition,
            isDefault: values.default ?? existing.isDefault,
            name: values.name ?? existing.name,
            version: existing.version,
          },
          ["definition", "is_default", "name"],
        )
      : await createResource(deps, ctx, decisionFlowKind, {
          decisionFlowId: second,
          name: values.name ?? second,
          isDefault: values.default ?? false,
          definition,
        });
    if (!saved.draftVersion) return `${second} version ${saved.publishedVersion} already has this definition`;
    const res = await publishDecisionFlow(
      deps,
      ctx,
      create(PublishDecisionFlowRequestSchema, { decisionFlowId: second, version: saved.version }),
    );
    return `published ${second} version ${res.decisionFlow?.publishedVersion} for tenant ${ctx.auth.tenantId}`;
  }
  if (group === "flows" && action === "rollback") {
    const ctx = await requireTenant(first);
    const target = Number(third);
    if (!second || !Number.isInteger(target) || target < 1) throw new UsageError("usage: flows rollback <tenant> <flow> <version>");
    const flow = await getResource(deps, ctx, decisionFlowKind, [second]);
    const res = await rollBackDecisionFlow(
      deps,
      ctx,
      create(RollBackDecisionFlowRequestSchema, { decisionFlowId: second, toVersion: target, version: flow.version }),
    );
    return `published version ${target}'s definition of ${second} as version ${res.decisionFlow?.publishedVersion}`;
  }
  if (group === "catalog" && action === "export") {
    const ctx = await requireTenant(first);
    const catalog = (await exportCatalog(deps, ctx)).catalog ?? create(CatalogDocumentSchema);
    const json = JSON.stringify(toJson(CatalogDocumentSchema, catalog), null, 2);
    if (!values.file) return json;
    writeFileSync(values.file, `${json}\n`);
    return `catalog of tenant ${ctx.auth.tenantId} written to ${values.file}`;
  }
  if (group === "catalog" && action === "import") {
    const ctx = await requireTenant(first);
    const raw = readJsonFile(values.file, "catalog document");
    const catalog = (() => {
      try {
        return fromJson(CatalogDocumentSchema, raw as JsonValue, { ignoreUnknownFields: true });
      } catch (err) {
        throw new UsageError(`${values.file} is not a catalog document: ${err instanceof Error ? err.message : String(err)}`);
      }
    })();
    const res = await importCatalog(deps, ctx, create(ImportCatalogRequestSchema, { catalog }));
    return res.results.map((r) => `${r.kind}\tcreated ${r.created}\tupdated ${r.updated}\tunchanged ${r.unchanged}`).join("\n");
  }
  throw new UsageError(USAGE);
}

/** A refusal from a service: its message and every field it names, one per line. */
function describeRefusal(err: AppError): string {
  const lines =
    err.details.length > 0 ? err.details.map((d) => (d.message.startsWith(d.field) ? d.message : `${d.field}: ${d.message}`)) : [];
  return [err.message, ...lines.filter((l) => l !== err.message)].join("\n");
}

export interface CommandResult {
  stdout: string;
  stderr: string;
  /** 0 done, 1 failed, 2 refused (usage, or a check of the service). */
  code: number;
}

/** Runs one command line (without the program name) and says what to print and how to exit. */
export async function runCommand(deps: ServiceDeps, argv: string[]): Promise<CommandResult> {
  try {
    return { stdout: `${await run(deps, argv)}\n`, stderr: "", code: 0 };
  } catch (err) {
    if (err instanceof AppError && err.code !== "INTERNAL_ERROR") return { stdout: "", stderr: `${describeRefusal(err)}\n`, code: 2 };
    const message = `${err instanceof Error ? err.message : String(err)}\n`;
    return { stdout: "", stderr: message, code: err instanceof UsageError || (err instanceof Error && err.name === "TypeError") ? 2 : 1 };
  }
}

/** The command line with every --file made absolute, so that another process in another directory finds it. */
export function withAbsoluteFiles(argv: string[], cwd: string): string[] {
  return argv.map((a, i) => {
    if (a.startsWith("--file=")) return `--file=${resolve(cwd, a.slice("--file=".length))}`;
    return argv[i - 1] === "--file" ? resolve(cwd, a) : a;
  });
}
