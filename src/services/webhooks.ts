// The calling tenant's webhooks (proto WebhookService): create, read, change, delete, and the dead-letter
// list with redelivery. Delivery itself is the relay's (events/relay.ts).

import { create, type JsonObject } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  type CreateWebhookRequest,
  type CreateWebhookResponse,
  CreateWebhookResponseSchema,
  type DeleteWebhookResponse,
  DeleteWebhookResponseSchema,
  type GetWebhookResponse,
  GetWebhookResponseSchema,
  type UpdateWebhookResponse,
  UpdateWebhookResponseSchema,
  DeadLetterSchema,
  type DeleteWebhookRequest,
  type GetWebhookRequest,
  type ListDeadLettersRequest,
  type ListDeadLettersResponse,
  ListDeadLettersResponseSchema,
  type ListWebhooksResponse,
  ListWebhooksResponseSchema,
  type RedeliverDeadLetterRequest,
  type RedeliverDeadLetterResponse,
  RedeliverDeadLetterResponseSchema,
  type UpdateWebhookRequest,
  type Webhook,
  WebhookSchema,
} from "../../gen/kaireon/v1/webhook_pb.ts";
import { AppError, notFound, validationError } from "../errors.ts";
import { deliver } from "../events/delivery.ts";
import { urlProblem } from "../events/webhook-target.ts";
import { newWebhookId, newWebhookSecret } from "../ids.ts";
import { appendAudit } from "../store/audit.ts";
import { currentPosition, EVENT_TYPES, saveCursor } from "../store/outbox.ts";
import {
  countWebhooks,
  deleteDeadLetter,
  deleteWebhookRow,
  getWebhook as getWebhookRow,
  insertWebhook,
  listDeadLetters as listDeadLetterRows,
  listWebhooks as listWebhookRows,
  MAX_WEBHOOKS_PER_TENANT,
  updateWebhookRow,
  type WebhookRecord,
  webhookSink,
} from "../store/webhooks.ts";
import type { CallContext, ServiceDeps } from "./context.ts";
import { actorOf } from "./resources.ts";
import { MAX_ID_LENGTH, Violations } from "./validate.ts";

const STATUSES = ["active", "paused"];
const UPDATABLE = ["url", "events", "secret", "status", "description"];

function message(w: WebhookRecord, withSecret: boolean): Webhook {
  return create(WebhookSchema, {
    webhookId: w.id,
    url: w.url,
    events: w.events,
    secret: withSecret ? w.secret : "",
    status: w.status,
    description: w.description,
    createdAt: timestampFromDate(w.createdAt),
    updatedAt: timestampFromDate(w.updatedAt),
  });
}

function check(
  deps: ServiceDeps,
  v: Violations,
  w: { url: string; events: string[]; secret: string; status: string; description: string },
) {
  const problem = urlProblem(w.url, deps.config.webhookAllowPrivateTargets);
  if (!w.url) v.add("url", "url is required");
  else if (problem) v.add("url", problem);
  if (w.events.length === 0) v.add("events", `events must name at least one of ${EVENT_TYPES.join(", ")}`);
  for (const e of w.events) {
    if (!(EVENT_TYPES as readonly string[]).includes(e))
      v.add("events", `events must be among ${EVENT_TYPES.join(", ")}, got "${e.slice(0, 64)}"`);
  }
  if (!/^[\x21-\x7e]{24,256}$/.test(w.secret)) v.add("secret", "secret must be 24 to 256 printable characters without spaces");
  if (!STATUSES.includes(w.status)) v.add("status", `status must be one of ${STATUSES.join(", ")}`);
  v.maxLength("description", w.description, 500);
}

export async function createWebhook(deps: ServiceDeps, ctx: CallContext, req: CreateWebhookRequest): Promise<CreateWebhookResponse> {
  const w = {
    url: req.url,
    events: [...new Set(req.events)],
    secret: req.secret || newWebhookSecret(),
    status: req.status || "active",
    description: req.description,
  };
  const v = new Violations();
  check(deps, v, w);
  if (v.list.length > 0) throw validationError(v.list);
  const tenantId = ctx.auth.tenantId;
  const record = await deps.db.transaction(async (tx) => {
    if ((await countWebhooks(tx, tenantId)) >= MAX_WEBHOOKS_PER_TENANT) {
      throw new AppError("CONFLICT", `A tenant has at most ${MAX_WEBHOOKS_PER_TENANT} webhooks; delete one first`);
    }
    const id = newWebhookId();
    const row = await insertWebhook(tx, { tenantId, id, ...w, status: w.status as WebhookRecord["status"] });
    // It receives what is committed from now on, not the outbox's past.
    await saveCursor(tx, webhookSink(tenantId, id), await currentPosition(tx));
    await appendAudit(tx, actorOf(ctx), {
      action: "webhook.create",
      resourceType: "webhook",
      resourceId: id,
      details: { url: w.url, events: w.events, status: w.status },
    });
    return row;
  });
  return create(CreateWebhookResponseSchema, { webhook: message(record, true) });
}

async function existing(deps: ServiceDeps, ctx: CallContext, webhookId: string): Promise<WebhookRecord> {
  const v = new Violations();
  v.requireString("webhookId", webhookId, MAX_ID_LENGTH);
  if (v.list.length > 0) throw validationError(v.list);
  const w = await getWebhookRow(deps.db, ctx.auth.tenantId, webhookId);
  if (!w) throw notFound("Webhook");
  return w;
}

export async function getWebhook(deps: ServiceDeps, ctx: CallContext, req: GetWebhookRequest): Promise<GetWebhookResponse> {
  return create(GetWebhookResponseSchema, { webhook: message(await existing(deps, ctx, req.webhookId), false) });
}

export async function listWebhooks(deps: ServiceDeps, ctx: CallContext): Promise<ListWebhooksResponse> {
  const rows = await listWebhookRows(deps.db, ctx.auth.tenantId);
  return create(ListWebhooksResponseSchema, { webhooks: rows.map((w) => message(w, false)) });
}

export async function updateWebhook(deps: ServiceDeps, ctx: CallContext, req: UpdateWebhookRequest): Promise<UpdateWebhookResponse> {
  const sent = req.webhook;
  const paths = req.updateMask?.paths ?? [];
  const v = new Violations();
  v.requireString("webhookId", sent?.webhookId ?? "", MAX_ID_LENGTH);
  if (paths.length === 0) v.add("updateMask", `name at least one field to change: ${UPDATABLE.join(", ")}`);
  for (const p of paths)
    if (!UPDATABLE.includes(p)) v.add("updateMask", `${p.slice(0, 64)} cannot be changed; one of ${UPDATABLE.join(", ")}`);
  if (v.list.length > 0 || !sent) throw validationError(v.list);
  const tenantId = ctx.auth.tenantId;
  const record = await deps.db.transaction(async (tx) => {
    const before = await getWebhookRow(tx, tenantId, sent.webhookId, true);
    if (!before) throw notFound("Webhook");
    const after: WebhookRecord = { ...before };
    if (paths.includes("url")) after.url = sent.url;
    if (paths.includes("events")) after.events = [...new Set(sent.events)];
    if (paths.includes("secret")) after.secret = sent.secret;
    if (paths.includes("status")) after.status = sent.status as WebhookRecord["status"];
    if (paths.includes("description")) after.description = sent.description;
    const checks = new Violations();
    check(deps, checks, after);
    if (checks.list.length > 0) throw validationError(checks.list);
    const row = await updateWebhookRow(tx, after);
    const changed = paths.filter((p) => p !== "secret");
    await appendAudit(tx, actorOf(ctx), {
      action: "webhook.update",
      resourceType: "webhook",
      resourceId: before.id,
      details: {
        changed: paths,
        ...Object.fromEntries(changed.map((p) => [p, { from: before[p as keyof WebhookRecord], to: after[p as keyof WebhookRecord] }])),
      },
    });
    return row;
  });
  return create(UpdateWebhookResponseSchema, { webhook: message(record, false) });
}

export async function deleteWebhook(deps: ServiceDeps, ctx: CallContext, req: DeleteWebhookRequest): Promise<DeleteWebhookResponse> {
  const w = await existing(deps, ctx, req.webhookId);
  await deps.db.transaction(async (tx) => {
    await deleteWebhookRow(tx, w.tenantId, w.id);
    await appendAudit(tx, actorOf(ctx), { action: "webhook.delete", resourceType: "webhook", resourceId: w.id, details: { url: w.url } });
  });
  return create(DeleteWebhookResponseSchema, { webhook: message(w, false) });
}

export async function listDeadLetters(deps: ServiceDeps, ctx: CallContext, req: ListDeadLettersRequest): Promise<ListDeadLettersResponse> {
  const w = await existing(deps, ctx, req.webhookId);
  const rows = await listDeadLetterRows(deps.db, w.tenantId, w.id);
  return create(ListDeadLettersResponseSchema, {
    deadLetters: rows.map((d) =>
      create(DeadLetterSchema, {
        eventId: d.eventId,
        eventType: d.eventType,
        attempts: d.attempts,
        lastError: d.lastError,
        failedAt: timestampFromDate(d.failedAt),
        event: JSON.parse(d.body) as JsonObject,
      }),
    ),
  });
}

/** Delivers a dead letter once, now; a delivered one leaves the list. Audited either way. */
export async function redeliverDeadLetter(
  deps: ServiceDeps,
  ctx: CallContext,
  req: RedeliverDeadLetterRequest,
): Promise<RedeliverDeadLetterResponse> {
  const v = new Violations();
  v.requireString("eventId", req.eventId, MAX_ID_LENGTH);
  if (v.list.length > 0) throw validationError(v.list);
  const w = await existing(deps, ctx, req.webhookId);
  const [letter] = await listDeadLetterRows(deps.db, w.tenantId, w.id, req.eventId);
  if (!letter) throw notFound("Dead letter");
  const result = await deliver(
    { url: w.url, secret: w.secret },
    { id: letter.eventId, type: letter.eventType, body: letter.body },
    { timeoutMs: deps.config.webhookTimeoutMs, allowPrivate: deps.config.webhookAllowPrivateTargets },
  );
  await deps.db.transaction(async (tx) => {
    if (result.ok) await deleteDeadLetter(tx, w.tenantId, w.id, letter.eventId);
    await appendAudit(tx, actorOf(ctx), {
      action: "webhook.redeliver",
      resourceType: "webhook",
      resourceId: w.id,
      details: { eventId: letter.eventId, delivered: result.ok, status: result.status },
    });
  });
  deps.metrics.eventsDelivered.inc({ destination: "webhook" }, result.ok ? 1 : 0);
  return create(RedeliverDeadLetterResponseSchema, {
    delivered: result.ok,
    statusCode: result.status,
    error: result.ok ? "" : result.error,
  });
}
