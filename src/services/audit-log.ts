// The calling tenant's audit log, newest first, a page at a time.

import { create, type JsonObject } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  type ListAuditEntriesRequest,
  type ListAuditEntriesResponse,
  ListAuditEntriesResponseSchema,
} from "../../gen/kaireon/v1/audit_log_pb.ts";
import { validationError } from "../errors.ts";
import { listAudit } from "../store/audit.ts";
import type { CallContext, ServiceDeps } from "./context.ts";
import { decodeCursor, encodeCursor, pageSize } from "./resources.ts";
import { MAX_ID_LENGTH, Violations } from "./validate.ts";

export async function listAuditEntries(
  deps: ServiceDeps,
  ctx: CallContext,
  req: ListAuditEntriesRequest,
): Promise<ListAuditEntriesResponse> {
  const v = new Violations();
  v.maxLength("resourceType", req.resourceType, 64);
  v.maxLength("resourceId", req.resourceId, 2 * MAX_ID_LENGTH);
  if (req.resourceId && !req.resourceType) v.add("resourceType", "resourceType is required with resourceId");
  if (v.list.length > 0) throw validationError(v.list);
  const limit = pageSize(req.limit);
  const before = decodeCursor(req.cursor, 1)?.[0] ?? null;
  if (before !== null && !/^\d{1,18}$/.test(before))
    throw validationError([{ field: "cursor", message: "cursor is not one this service returned" }]);
  const { entries, more } = await listAudit(deps.readDb, ctx.auth.tenantId, {
    resourceType: req.resourceType,
    resourceId: req.resourceId,
    before,
    limit,
  });
  const last = entries[entries.length - 1];
  return create(ListAuditEntriesResponseSchema, {
    entries: entries.map((e) => ({
      auditEntryId: e.id,
      actorKeyId: e.actorKeyId,
      action: e.action,
      resourceType: e.resourceType,
      resourceId: e.resourceId,
      details: e.details as JsonObject,
      at: timestampFromDate(e.at),
    })),
    nextCursor: more && last ? encodeCursor([last.id]) : "",
  });
}
