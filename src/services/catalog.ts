// A tenant's whole catalog as one document: export it, and import such a document into a tenant. An
// import checks and writes everything in one transaction, each kind after what it refers to, so either
// the whole document is applied or, on any error, nothing is; every error is reported with its place in
// the document (`offers[3].categoryId`). Resources the document does not name are left as they are.

import { create } from "@bufbuild/protobuf";
import {
  type CatalogDocument,
  CatalogDocumentSchema,
  type ExportCatalogResponse,
  ExportCatalogResponseSchema,
  type ImportCatalogRequest,
  type ImportCatalogResponse,
  ImportCatalogResponseSchema,
} from "../../gen/kaireon/v1/catalog_pb.ts";
import { AppError, type FieldViolation, validationError } from "../errors.ts";
import type { Actor } from "../store/audit.ts";
import type { Queryable } from "../store/db.ts";
import { flowHeads, publishDraftIn } from "../store/flows.ts";
import { getRow, listRows } from "../store/resources.ts";
import type { CallContext, ServiceDeps } from "./context.ts";
import { CATALOG_PARTS } from "./kinds/index.ts";
import { databaseRefs } from "./refs.ts";
import {
  actorOf,
  canonicalJson,
  catalogWrite,
  contentJson,
  copyOf,
  fromRow,
  keyOf,
  META_FIELDS,
  type Resource,
  type ResourceKind,
  validateResource,
  writeResource,
} from "./resources.ts";

/** Errors listed for one import; past it the import still fails, with the first ones. */
const MAX_IMPORT_ERRORS = 1000;
const EXPORT_PAGE = 1000;

async function allOf(db: Queryable, tenantId: string, kind: ResourceKind): Promise<Resource[]> {
  const out: Resource[] = [];
  let after: string[] | null = null;
  for (;;) {
    const page = await listRows(db, kind.table, tenantId, { after, limit: EXPORT_PAGE });
    const items = page.rows.map((row) => fromRow(kind, row));
    if (kind.decorate && items.length > 0) await kind.decorate(db, tenantId, items);
    out.push(...items);
    const last = items[items.length - 1];
    if (!page.more || !last) return out;
    after = keyOf(kind, last);
  }
}

export async function exportCatalog(deps: ServiceDeps, ctx: CallContext): Promise<ExportCatalogResponse> {
  const tenantId = ctx.auth.tenantId;
  // One snapshot, so the parts agree with each other.
  const catalog = await deps.db.transaction(async (tx) => {
    await tx.query("set transaction isolation level repeatable read, read only");
    const doc = create(CatalogDocumentSchema) as Resource;
    for (const { field, kind } of CATALOG_PARTS) doc[field] = await allOf(tx, tenantId, kind);
    // A flow's definition in force is its published one; a flow never published carries its draft.
    for (const flow of doc.decisionFlows as Resource[]) {
      if (flow.publishedVersion) flow.definition = flow.publishedDefinition;
      flow.draftVersion = 0;
      flow.publishedDefinition = undefined;
    }
    return doc as CatalogDocument;
  });
  return create(ExportCatalogResponseSchema, { catalog });
}

/** Turns a refusal of one resource into violations placed in the document. */
function placed(err: unknown, at: string): FieldViolation[] {
  if (!(err instanceof AppError) || (err.code !== "VALIDATION_ERROR" && err.code !== "CONFLICT")) throw err;
  if (err.details.length === 0 || err.code === "CONFLICT") return [{ field: at, message: `${at}: ${err.message}` }];
  return err.details.map((d) => ({ field: `${at}.${d.field}`, message: `${at}: ${d.message}` }));
}

interface Tally {
  created: number;
  updated: number;
  unchanged: number;
}

/** Writes one resource of the document if it is new or differs; returns what happened, or the violations. */
async function importOne(
  tx: Queryable,
  actor: Actor,
  kind: ResourceKind,
  item: Resource,
): Promise<{ outcome: keyof Tally; saved: Resource; prev: Resource | null }> {
  const tenantId = actor.tenantId;
  const next = copyOf(kind, item);
  const key = keyOf(kind, next);
  const row = key.every((k) => k !== "") ? await getRow(tx, kind.table, tenantId, key, { lock: true }) : null;
  const prev = row ? fromRow(kind, row) : null;
  if (prev && kind.decorate) await kind.decorate(tx, tenantId, [prev]);
  const blank = create(kind.schema) as Resource;
  for (const f of [...META_FIELDS, ...(kind.readOnly ?? [])]) next[f] = prev ? prev[f] : blank[f];
  kind.normalize(next);
  await validateResource(kind, next, databaseRefs(tx, tenantId), { tenantId, prev, tx });
  if (prev && canonicalJson(contentJson(kind, prev)) === canonicalJson(contentJson(kind, next))) {
    return { outcome: "unchanged", saved: prev, prev };
  }
  const saved = await writeResource(tx, kind, actor, next, prev, prev ? "update" : "create");
  return { outcome: prev ? "updated" : "created", saved, prev };
}

/** Publishes an imported flow's definition when the document says it was published and it is not in force yet. */
async function publishImported(tx: Queryable, tenantId: string, flow: Resource): Promise<boolean> {
  if (!flow.publishedVersion) return false;
  const head = (await flowHeads(tx, tenantId, [flow.decisionFlowId])).get(flow.decisionFlowId);
  if (!head?.draft) return false;
  if (head.published && canonicalJson(head.published.definition) === canonicalJson(head.draft.definition)) return false;
  return (await publishDraftIn(tx, tenantId, flow.decisionFlowId)) !== null;
}

export async function importCatalog(deps: ServiceDeps, ctx: CallContext, req: ImportCatalogRequest): Promise<ImportCatalogResponse> {
  const doc = req.catalog ?? create(CatalogDocumentSchema);
  const actor = actorOf(ctx);
  const results = await catalogWrite(deps, ctx.auth.tenantId, (tx) => applyCatalogDocument(tx, actor, doc));
  return create(ImportCatalogResponseSchema, { results });
}

/**
 * Checks and writes a catalog document inside the caller's transaction, for the actor's tenant: every
 * resource through its kind's checks and writer, each kind after what it refers to. Throws
 * VALIDATION_ERROR with every refusal placed in the document; the caller's transaction must then end.
 */
export async function applyCatalogDocument(tx: Queryable, actor: Actor, document: CatalogDocument): Promise<(Tally & { kind: string })[]> {
  const doc = document as Resource;
  const tenantId = actor.tenantId;
  // Tables grow by thousands of rows inside this one transaction: plans made for their size at the
  // start (a sequential scan of a small table) would make each lookup slower than the last.
  await tx.query("set local plan_cache_mode = force_custom_plan");
  const errors: FieldViolation[] = [];
  const results: (Tally & { kind: string })[] = [];
  for (const { field, kind } of CATALOG_PARTS) {
    const tally = { kind: field, created: 0, updated: 0, unchanged: 0 };
    results.push(tally);
    const seen = new Set<string>();
    for (const [i, item] of (doc[field] as Resource[]).entries()) {
      if (errors.length >= MAX_IMPORT_ERRORS) break;
      const at = `${field}[${i}]`;
      const id = keyOf(kind, item).join("/");
      if (seen.has(id)) {
        errors.push({ field: at, message: `${at}: ${kind.label} ${id} appears twice in the document` });
        continue;
      }
      seen.add(id);
      // A refused resource is refused by the checks, before anything of it is written, so the
      // transaction stays usable for checking the rest; a database error ends the import.
      try {
        const { outcome } = await importOne(tx, actor, kind, item);
        tally[outcome]++;
        if (field === "decisionFlows" && (await publishImported(tx, tenantId, item)) && outcome === "unchanged") {
          tally.unchanged--;
          tally.updated++;
        }
      } catch (err) {
        errors.push(...placed(err, at));
      }
    }
  }
  if (errors.length > 0) throw validationError(errors.slice(0, MAX_IMPORT_ERRORS));
  return results;
}
