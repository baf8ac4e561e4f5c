// Customer profiles over the admin API: upsert, get, erase (the profile with the customer's
// interactions, decision traces and opt-outs, in one transaction), and a bulk import that consumes NDJSON
// lines in chunks so memory stays constant whatever the size of the input. Every write is audited with
// the key that made it, and drops the profile from this instance's cache so the next decision sees it.

import { create, type JsonObject } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  type Customer,
  CustomerSchema,
  type DeleteCustomerRequest,
  type DeleteCustomerResponse,
  DeleteCustomerResponseSchema,
  type GetCustomerRequest,
  type GetCustomerResponse,
  GetCustomerResponseSchema,
  type UpsertCustomerRequest,
  type UpsertCustomerResponse,
  UpsertCustomerResponseSchema,
} from "../../gen/kaireon/v1/customer_pb.ts";
import { notFound, validationError } from "../errors.ts";
import type { Actor } from "../store/audit.ts";
import { eraseCustomer, getCustomerProfile, type ProfileInput, type ProfileRecord, upsertProfiles } from "../store/customers.ts";
import type { CallContext, ServiceDeps } from "./context.ts";
import { textViolations } from "./text.ts";
import { MAX_ID_LENGTH, Violations } from "./validate.ts";

export const MAX_ATTRIBUTES = 64;
export const MAX_SEGMENTS = 64;
export const MAX_SEGMENT_LENGTH = 64;
/** Rows upserted per statement by an import. */
export const IMPORT_CHUNK = 1000;
/** Errors listed in an import report; the counts still cover every line. */
export const MAX_IMPORT_ERRORS = 1000;

/** Checks one profile, naming each violation by its field. */
function checkProfile(v: Violations, customerId: string, attributes: Record<string, unknown>, segments: string[]): void {
  v.requireString("customerId", customerId, MAX_ID_LENGTH);
  if (Object.keys(attributes).length > MAX_ATTRIBUTES) v.add("attributes", `attributes must have at most ${MAX_ATTRIBUTES} keys`);
  if (segments.length > MAX_SEGMENTS) v.add("segments", `segments must have at most ${MAX_SEGMENTS} entries`);
  segments.forEach((s, i) => {
    if (s === "") v.add(`segments[${i}]`, `segments[${i}] must not be empty`);
    else v.maxLength(`segments[${i}]`, s, MAX_SEGMENT_LENGTH);
  });
}

const cacheKey = (tenantId: string, customerId: string) => `${tenantId}\u0000${customerId}`;
const actorOf = (ctx: CallContext): Actor => ({ tenantId: ctx.auth.tenantId, keyId: ctx.auth.keyId, requestId: ctx.requestId });

function toMessage(p: ProfileRecord): Customer {
  return create(CustomerSchema, {
    customerId: p.customerId,
    attributes: p.attributes as JsonObject,
    segments: p.segments,
    updatedAt: timestampFromDate(p.updatedAt),
  });
}

export async function upsertCustomer(deps: ServiceDeps, ctx: CallContext, req: UpsertCustomerRequest): Promise<UpsertCustomerResponse> {
  const attributes = (req.attributes ?? {}) as Record<string, unknown>;
  const v = new Violations();
  checkProfile(v, req.customerId, attributes, req.segments);
  if (v.list.length > 0) throw validationError(v.list);
  const [saved] = await upsertProfiles(deps.db, actorOf(ctx), "customer.upsert", [
    { customerId: req.customerId, attributes, segments: req.segments },
  ]);
  deps.profiles.invalidate(cacheKey(ctx.auth.tenantId, req.customerId));
  // The statement returns the row it wrote; its absence would be a database fault.
  if (!saved) throw new Error("upsert returned no row");
  return create(UpsertCustomerResponseSchema, { customer: toMessage(saved) });
}

export async function getCustomer(deps: ServiceDeps, ctx: CallContext, req: GetCustomerRequest): Promise<GetCustomerResponse> {
  const v = new Violations();
  v.requireString("customerId", req.customerId, MAX_ID_LENGTH);
  if (v.list.length > 0) throw validationError(v.list);
  const profile = await getCustomerProfile(deps.db, ctx.auth.tenantId, req.customerId);
  if (!profile) throw notFound("Customer");
  return create(GetCustomerResponseSchema, { customer: toMessage(profile) });
}

/**
 * An erasure request: everything stored about the customer goes in one transaction, with an audit row
 * of the counts. Repeating it is harmless (all counts zero). Buffered decision traces and decisions are
 * written first so none of this customer's lands after the erasure.
 */
export async function deleteCustomer(deps: ServiceDeps, ctx: CallContext, req: DeleteCustomerRequest): Promise<DeleteCustomerResponse> {
  const v = new Violations();
  v.requireString("customerId", req.customerId, MAX_ID_LENGTH);
  if (v.list.length > 0) throw validationError(v.list);
  await Promise.all([deps.traces.flush(), deps.decisions.flush()]);
  const erased = await deps.db.transaction((tx) => eraseCustomer(tx, actorOf(ctx), req.customerId));
  deps.profiles.invalidate(cacheKey(ctx.auth.tenantId, req.customerId));
  return create(DeleteCustomerResponseSchema, { customerId: req.customerId, deleted: erased });
}

/** One line of an import: its 1-based number and its text, or why it could not be read. */
export type ImportLine = { line: number; text: string } | { line: number; error: string };

export interface ImportReport {
  processed: number;
  succeeded: number;
  failed: number;
  errors: { line: number; message: string }[];
  /** True when there were more than MAX_IMPORT_ERRORS errors and only the first are listed. */
  errorsTruncated: boolean;
}

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);

/** Parses and checks one NDJSON line: `{"customerId": "...", "attributes": {...}, "segments": [...]}`. */
function parseLine(text: string): ProfileInput | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return "line is not valid JSON";
  }
  if (!isObject(value)) return "line must be a JSON object";
  const unstorable = textViolations(value);
  if (unstorable.length > 0) return unstorable.map((t) => t.message).join("; ");
  const v = new Violations();
  const { customerId, attributes = {}, segments = [] } = value;
  if (customerId !== undefined && typeof customerId !== "string") v.add("customerId", "customerId must be a string");
  if (!isObject(attributes)) v.add("attributes", "attributes must be an object");
  const segmentsOk = Array.isArray(segments) && segments.every((s) => typeof s === "string");
  if (!segmentsOk) v.add("segments", "segments must be an array of strings");
  if (v.list.length === 0) {
    checkProfile(v, (customerId as string | undefined) ?? "", attributes as Record<string, unknown>, segments as string[]);
  }
  if (v.list.length > 0) return v.list.map((x) => x.message).join("; ");
  return { customerId: customerId as string, attributes: attributes as Record<string, unknown>, segments: segments as string[] };
}

/**
 * Imports profiles line by line, upserting IMPORT_CHUNK at a time; the next lines are only read once a
 * chunk is committed, so a slow database slows the upload instead of growing memory. A chunk the
 * database refuses is retried row by row so the failure is pinned on its line. Blank lines are skipped.
 */
export async function importCustomers(deps: ServiceDeps, ctx: CallContext, lines: AsyncIterable<ImportLine>): Promise<ImportReport> {
  const report: ImportReport = { processed: 0, succeeded: 0, failed: 0, errors: [], errorsTruncated: false };
  const actor = actorOf(ctx);
  const fail = (line: number, message: string) => {
    report.failed++;
    if (report.errors.length < MAX_IMPORT_ERRORS) report.errors.push({ line, message });
    else report.errorsTruncated = true;
  };
  // The last line wins when a chunk names a customer twice (one statement cannot upsert a row twice).
  let chunk = new Map<string, { line: number; profile: ProfileInput; lines: number }>();
  const flush = async () => {
    if (chunk.size === 0) return;
    const entries = [...chunk.values()];
    chunk = new Map();
    try {
      await upsertProfiles(
        deps.db,
        actor,
        "customer.import",
        entries.map((e) => e.profile),
      );
      for (const e of entries) report.succeeded += e.lines;
    } catch (err) {
      ctx.log.warn("import chunk refused; retrying its rows one by one", { err });
      for (const e of entries) {
        try {
          await upsertProfiles(deps.db, actor, "customer.import", [e.profile]);
          report.succeeded += e.lines;
        } catch {
          for (let i = 0; i < e.lines; i++) fail(e.line, "the database refused this profile");
        }
      }
    }
    for (const e of entries) deps.profiles.invalidate(cacheKey(actor.tenantId, e.profile.customerId));
  };
  for await (const item of lines) {
    if ("text" in item && item.text.trim() === "") continue;
    report.processed++;
    if ("error" in item) {
      fail(item.line, item.error);
      continue;
    }
    const parsed = parseLine(item.text);
    if (typeof parsed === "string") {
      fail(item.line, parsed);
      continue;
    }
    const earlier = chunk.get(parsed.customerId);
    chunk.delete(parsed.customerId);
    chunk.set(parsed.customerId, { line: item.line, profile: parsed, lines: (earlier?.lines ?? 0) + 1 });
    if (chunk.size >= IMPORT_CHUNK) await flush();
  }
  await flush();
  return report;
}
