// Create, get, list, update and delete for every catalog resource of the admin API, written once: each
// resource (services/kinds/) brings its table, its checks and its mapping between message and
// row. Every write validates fully before it changes anything, runs in one transaction with its audit
// row, and tells every instance to reload the tenant's catalog.

import { clone, create, type DescField, type DescMessage, type DescService, type MessageShape, toJson } from "@bufbuild/protobuf";
import { type Timestamp, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { AppError, notFound, validationError } from "../errors.ts";
import { type Actor, appendAudit } from "../store/audit.ts";
import type { Queryable } from "../store/db.ts";
import { lockCatalogRevision } from "../store/catalog.ts";
import { classifyDbFailure } from "../store/db-errors.ts";
import { notifyCatalogChanged } from "../store/flows.ts";
import { getRow, insertRow, listRows, type Row, softDeleteRow, type TableSpec, updateRow } from "../store/resources.ts";
import type { CallContext, ServiceDeps } from "./context.ts";
import { type CatalogRefs, databaseRefs } from "./refs.ts";
import { textProblem } from "./text.ts";
import { Violations } from "./validate.ts";

// biome-ignore lint/suspicious/noExplicitAny: resources are handled generically; each kind is typed where it is defined.
export type Resource = Record<string, any>;

/** The fields every resource message carries, which only the service writes. */
export const META_FIELDS = ["version", "createdAt", "updatedAt", "deletedAt"];

export interface ResourceKind {
  /** Lowercase noun for messages and the audit log: "offer", "placement", "contact_policy". */
  noun: string;
  /** For "… not found". */
  label: string;
  schema: DescMessage;
  /** The contract's service for it (CreateOffer, GetOffer, ListOffers, UpdateOffer, DeleteOffer). */
  service: DescService;
  table: TableSpec;
  /** The message fields (local names) holding the key, in the order of `table.keys`. */
  keyFields: string[];
  /** Fields (local names) the service derives, never taken from a write: a flow's versions, an experiment's phase. */
  readOnly?: string[];
  /** Message fields (local names) a replacing update leaves as they are when it does not send them. */
  keepWhenAbsent?: string[];
  /** The id field's own rule (the last key field); the common one when unset. */
  idPattern?: { pattern: RegExp; message: string };
  /** List request fields (local names) that narrow a list, and the column each matches. */
  listFilters?: Record<string, string>;
  /** Fills defaults, so that what is validated is what is stored. */
  normalize(r: Resource): void;
  validate(r: Resource, v: Violations, refs: CatalogRefs, write: WriteContext): Promise<void>;
  toRow(r: Resource): Row;
  /** The message for a row, meta fields aside (see `fromRow`). */
  fromRowFields(row: Row): Resource;
  /** Adds what lives outside the row (a flow's versions, an experiment's phase) to messages read. */
  decorate?(db: Queryable, tenantId: string, items: Resource[]): Promise<void>;
  /** Runs in the write's transaction before the row is written; `prev` is null on create. */
  beforeWrite?(tx: Queryable, tenantId: string, next: Resource, prev: Resource | null): Promise<void>;
  /** Runs in the write's transaction after the row is written. */
  afterWrite?(tx: Queryable, tenantId: string, next: Resource, prev: Resource | null): Promise<void>;
  /** Refuses the delete (throws CONFLICT) or deletes what belongs to the resource; in the transaction. */
  beforeDelete?(tx: Queryable, tenantId: string, current: Resource): Promise<Record<string, unknown> | undefined>;
}

export interface WriteContext {
  tenantId: string;
  /** The resource as it was before this write; null on create. */
  prev: Resource | null;
  /** The database of the write's transaction, for checks the references do not cover. */
  tx: Queryable;
}

/** Ids: the alphabet of a URL path segment that needs no escaping, and never a dot segment ("." or ".."). */
export const ID_PATTERN = /^(?!\.{1,2}$)[A-Za-z0-9_.-]{1,128}$/;
export const ID_MESSAGE = "must be 1-128 letters, digits, '_', '-' or '.' (and not '.' or '..')";
export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 100;

const ts = (d: unknown): Timestamp | undefined => (d instanceof Date ? timestampFromDate(d) : undefined);

export function fromRow(kind: ResourceKind, row: Row): Resource {
  const r = kind.fromRowFields(row);
  r.version = Number(row.version);
  r.createdAt = ts(row.created_at);
  r.updatedAt = ts(row.updated_at);
  r.deletedAt = ts(row.deleted_at);
  return r;
}

export const actorOf = (ctx: CallContext): Actor => ({ tenantId: ctx.auth.tenantId, keyId: ctx.auth.keyId, requestId: ctx.requestId });

/** A message of the kind's own, copied from a message or built from plain fields, so a write never edits its input. */
export function copyOf(kind: ResourceKind, input: Resource | undefined): Resource {
  return clone(kind.schema, create(kind.schema, (input ?? {}) as never)) as Resource;
}

export function keyOf(kind: ResourceKind, r: Resource): string[] {
  return kind.keyFields.map((f) => String(r[f] ?? ""));
}

/** The resource's JSON without meta and read-only fields: what a write sets, what the audit log compares. */
export function contentJson(kind: ResourceKind, r: Resource): Record<string, unknown> {
  const json = toJson(kind.schema, r as MessageShape<DescMessage>, { alwaysEmitImplicit: true }) as Record<string, unknown>;
  for (const f of [...META_FIELDS, ...(kind.readOnly ?? [])]) delete json[jsonNameOf(kind, f)];
  return json;
}

/** JSON text with object keys sorted, so that equal values compare equal whatever their key order. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_, v) =>
    typeof v === "bigint"
      ? v.toString()
      : v && typeof v === "object" && !Array.isArray(v)
        ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1)))
        : v,
  );
}

/** Top-level fields whose JSON differs, with the value before and after. */
function changes(before: Record<string, unknown>, after: Record<string, unknown>): Record<string, { from: unknown; to: unknown }> {
  const out: Record<string, { from: unknown; to: unknown }> = {};
  for (const k of new Set([...Object.keys(before), ...Object.keys(after)])) {
    if (canonicalJson(before[k]) !== canonicalJson(after[k])) out[k] = { from: before[k] ?? null, to: after[k] ?? null };
  }
  return out;
}

/** The JSON name of a field of the resource, by its local name. */
export function jsonNameOf(kind: ResourceKind, localName: string): string {
  return kind.schema.fields.find((f) => f.localName === localName)?.jsonName ?? localName;
}

function checkKey(kind: ResourceKind, v: Violations, r: Resource): void {
  kind.keyFields.forEach((field, i) => {
    const value = String(r[field] ?? "");
    const name = jsonNameOf(kind, field);
    const last = i === kind.keyFields.length - 1;
    const rule = last && kind.idPattern ? kind.idPattern : { pattern: ID_PATTERN, message: ID_MESSAGE };
    if (value === "") v.add(name, `${name} is required`);
    else if (!rule.pattern.test(value)) v.add(name, `${name} ${rule.message}`);
  });
}

async function decorated(kind: ResourceKind, db: Queryable, tenantId: string, items: Resource[]): Promise<Resource[]> {
  if (kind.decorate && items.length > 0) await kind.decorate(db, tenantId, items);
  return items;
}

/**
 * Runs a write: the transaction, the catalog-change notice to every instance, and the reload on this
 * one, which the write waits for (at most CATALOG_RELOAD_WAIT_MS) so that the writer's next call sees
 * its change; decisions keep being answered from the previous catalog meanwhile.
 */
export async function catalogWrite<T>(deps: ServiceDeps, tenantId: string, fn: (tx: Queryable) => Promise<T>): Promise<T> {
  let out: T;
  try {
    out = await deps.db.transaction(async (tx) => {
      await lockCatalogRevision(tx, tenantId);
      const result = await fn(tx);
      await notifyCatalogChanged(tx, tenantId);
      return result;
    });
  } catch (err) {
    throw writeFailure(err);
  }
  const reloaded = deps.catalogs.reload(tenantId).then(
    () => true,
    (err) => {
      // The committed write stands, and the previous catalog goes on serving until a reload (the next
      // request after its expiry, a NOTIFY) brings the change.
      deps.log.warn("catalog reload after a write failed", { tenantId, err });
      deps.catalogs.expire(tenantId);
      return true;
    },
  );
  let timer: ReturnType<typeof setTimeout> | undefined;
  const waited = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), deps.config.catalogReloadWaitMs);
  });
  const inTime = await Promise.race([reloaded, waited]);
  clearTimeout(timer);
  if (!inTime) {
    deps.log.warn("catalog reload after a write is still running; answering the write", {
      tenantId,
      waitedMs: deps.config.catalogReloadWaitMs,
    });
  }
  return out;
}

/** What a write's database failure means for its caller; the service's own refusals pass through. */
function writeFailure(err: unknown): unknown {
  if (err instanceof AppError) return err;
  switch (classifyDbFailure(err)) {
    case "retryable":
      return new AppError("CONFLICT", "The catalog changed at the same moment; try again");
    case "unavailable":
      return new AppError("UNAVAILABLE", "The database is not reachable; the change was not made");
    case "refused-data":
      return new AppError("VALIDATION_ERROR", "The database refused a value of this request (for example a NUL character)");
    default:
      return err;
  }
}

/** Checks a resource as it would be written; throws VALIDATION_ERROR with every violation. */
export async function validateResource(kind: ResourceKind, r: Resource, refs: CatalogRefs, write: WriteContext): Promise<void> {
  const v = new Violations();
  checkKey(kind, v, r);
  await kind.validate(r, v, refs, write);
  if (v.list.length > 0) throw validationError(v.list);
}

/**
 * Writes one validated resource inside a transaction: insert when `prev` is null (refused when a live
 * one has the key), else update. Audited. Shared by the API and the catalog import.
 */
export async function writeResource(
  tx: Queryable,
  kind: ResourceKind,
  actor: Actor,
  next: Resource,
  prev: Resource | null,
  action: string,
): Promise<Resource> {
  const tenantId = actor.tenantId;
  await kind.beforeWrite?.(tx, tenantId, next, prev);
  let row: Row | null;
  if (prev) {
    row = await updateRow(tx, kind.table, tenantId, keyOf(kind, next), kind.toRow(next));
  } else {
    row = await insertRow(tx, kind.table, tenantId, kind.toRow(next));
    if (!row) throw new AppError("CONFLICT", `${kind.label} ${keyOf(kind, next).join("/")} already exists`);
  }
  const saved = fromRow(kind, row);
  await kind.afterWrite?.(tx, tenantId, next, prev);
  const after = contentJson(kind, next);
  await appendAudit(tx, actor, {
    action: `${kind.noun}.${action}`,
    resourceType: kind.noun,
    resourceId: keyOf(kind, next).join("/"),
    details: prev ? { version: saved.version, changes: changes(contentJson(kind, prev), after) } : { version: saved.version, after },
  });
  return saved;
}

export async function createResource(
  deps: ServiceDeps,
  ctx: CallContext,
  kind: ResourceKind,
  input: Resource | undefined,
): Promise<Resource> {
  const tenantId = ctx.auth.tenantId;
  const r = copyOf(kind, input);
  kind.normalize(r);
  const saved = await catalogWrite(deps, tenantId, async (tx) => {
    await validateResource(kind, r, databaseRefs(tx, tenantId), { tenantId, prev: null, tx });
    return writeResource(tx, kind, actorOf(ctx), r, null, "create");
  });
  return (await decorated(kind, deps.db, tenantId, [saved]))[0] as Resource;
}

function requireKey(kind: ResourceKind, key: string[]): void {
  const v = new Violations();
  kind.keyFields.forEach((f, i) => {
    if (!key[i]) v.add(jsonNameOf(kind, f), `${jsonNameOf(kind, f)} is required`);
  });
  if (v.list.length > 0) throw validationError(v.list);
}

export async function getResource(deps: ServiceDeps, ctx: CallContext, kind: ResourceKind, key: string[]): Promise<Resource> {
  requireKey(kind, key);
  const row = await getRow(deps.db, kind.table, ctx.auth.tenantId, key);
  if (!row) throw notFound(kind.label);
  return (await decorated(kind, deps.db, ctx.auth.tenantId, [fromRow(kind, row)]))[0] as Resource;
}

export function encodeCursor(key: string[]): string {
  return Buffer.from(JSON.stringify(key)).toString("base64url");
}

export function decodeCursor(cursor: string, parts: number): string[] | null {
  if (cursor === "") return null;
  try {
    const key = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
    // A cursor is read back as sent: a forged one with unstorable text is as foreign as a malformed one.
    if (Array.isArray(key) && key.length === parts && key.every((k) => typeof k === "string" && textProblem(k) === null)) return key;
  } catch {}
  throw validationError([{ field: "cursor", message: "cursor is not one this service returned" }]);
}

export function pageSize(limit: number): number {
  if (limit === 0) return DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_SIZE) {
    throw validationError([{ field: "limit", message: `limit must be between 1 and ${MAX_PAGE_SIZE}` }]);
  }
  return limit;
}

export async function listResources(
  deps: ServiceDeps,
  ctx: CallContext,
  kind: ResourceKind,
  req: { limit: number; cursor: string } & Resource,
): Promise<{ items: Resource[]; nextCursor: string }> {
  const limit = pageSize(req.limit);
  const after = decodeCursor(req.cursor, kind.keyFields.length);
  const where: Record<string, string> = {};
  for (const [field, column] of Object.entries(kind.listFilters ?? {})) if (req[field]) where[column] = String(req[field]);
  const { rows, more } = await listRows(deps.db, kind.table, ctx.auth.tenantId, { after, limit, where });
  const items = await decorated(
    kind,
    deps.db,
    ctx.auth.tenantId,
    rows.map((row) => fromRow(kind, row)),
  );
  const last = items[items.length - 1];
  return { items, nextCursor: more && last ? encodeCursor(keyOf(kind, last)) : "" };
}

/** The top-level message fields a mask names; refuses nested and unknown paths. */
function maskedFields(kind: ResourceKind, paths: string[]): DescField[] {
  const v = new Violations();
  const fields: DescField[] = [];
  for (const path of paths) {
    const field = kind.schema.fields.find((f) => f.name === path || f.jsonName === path);
    if (!field || path.includes(".")) v.add("updateMask", `updateMask: ${path} is not a top-level field of ${kind.schema.name}`);
    else fields.push(field);
  }
  if (v.list.length > 0) throw validationError(v.list);
  return fields;
}

/** Refuses a write that does not name the version it read, or names one that is no longer current. */
export function checkVersion(label: string, sent: number, current: number): void {
  if (!sent) throw validationError([{ field: "version", message: "version is required: send the version you read" }]);
  if (sent !== current) {
    throw new AppError(
      "CONFLICT",
      `${label} was changed since it was read: version ${current} is current, not ${sent}; read it again and retry`,
      [{ field: "version", message: `version ${current} is current` }],
      {},
      "aborted",
    );
  }
}

/**
 * Replaces a resource (no mask) or the masked fields of it. Key fields identify it and cannot change;
 * meta fields are the service's.
 */
export async function updateResource(
  deps: ServiceDeps,
  ctx: CallContext,
  kind: ResourceKind,
  input: Resource | undefined,
  mask: string[],
): Promise<Resource> {
  const tenantId = ctx.auth.tenantId;
  const sent = (input ?? {}) as Resource;
  const key = keyOf(kind, sent);
  requireKey(kind, key);
  const masked = mask.length > 0 ? maskedFields(kind, mask) : null;
  const saved = await catalogWrite(deps, tenantId, async (tx) => {
    const row = await getRow(tx, kind.table, tenantId, key, { lock: true });
    if (!row) throw notFound(kind.label);
    const prev = fromRow(kind, row);
    if (kind.decorate) await kind.decorate(tx, tenantId, [prev]);
    checkVersion(kind.label, Number(sent.version ?? 0), prev.version);
    let next: Resource;
    if (masked) {
      next = clone(kind.schema, prev as MessageShape<DescMessage>) as Resource;
      for (const f of masked)
        if (!kind.keyFields.includes(f.localName) && !META_FIELDS.includes(f.localName)) next[f.localName] = sent[f.localName];
    } else {
      next = copyOf(kind, sent);
      for (const f of kind.keepWhenAbsent ?? []) if (next[f] === undefined) next[f] = prev[f];
    }
    for (const f of [...META_FIELDS, ...(kind.readOnly ?? [])]) next[f] = prev[f];
    kind.normalize(next);
    await validateResource(kind, next, databaseRefs(tx, tenantId), { tenantId, prev, tx });
    return writeResource(tx, kind, actorOf(ctx), next, prev, "update");
  });
  return (await decorated(kind, deps.db, tenantId, [saved]))[0] as Resource;
}

export async function deleteResource(
  deps: ServiceDeps,
  ctx: CallContext,
  kind: ResourceKind,
  key: string[],
  version: number,
): Promise<Resource> {
  requireKey(kind, key);
  const tenantId = ctx.auth.tenantId;
  const deleted = await catalogWrite(deps, tenantId, async (tx) => {
    const row = await getRow(tx, kind.table, tenantId, key, { lock: true });
    if (!row) throw notFound(kind.label);
    const current = fromRow(kind, row);
    if (version) checkVersion(kind.label, version, current.version);
    const cascaded = (await kind.beforeDelete?.(tx, tenantId, current)) ?? {};
    const gone = await softDeleteRow(tx, kind.table, tenantId, key);
    if (!gone) throw notFound(kind.label);
    await appendAudit(tx, actorOf(ctx), {
      action: `${kind.noun}.delete`,
      resourceType: kind.noun,
      resourceId: key.join("/"),
      details: { version: Number(gone.version), ...cascaded },
    });
    return fromRow(kind, gone);
  });
  return (await decorated(kind, deps.db, tenantId, [deleted]))[0] as Resource;
}

/** A CONFLICT naming what still refers to a resource, so the caller knows what to change first. */
export function stillReferenced(label: string, id: string, what: string, ids: string[]): AppError {
  const more = ids.length >= 5 ? ", …" : "";
  return new AppError("CONFLICT", `${label} ${id} is still used by ${what} ${ids.join(", ")}${more}; change or delete them first`);
}
