// The tenant's webhooks and their dead-letter lists.

import { create } from "@bufbuild/protobuf";
import {
  CreateWebhookRequestSchema,
  DeleteWebhookRequestSchema,
  GetWebhookRequestSchema,
  ListDeadLettersRequestSchema,
  ListDeadLettersResponseSchema,
  ListWebhooksResponseSchema,
  RedeliverDeadLetterRequestSchema,
  RedeliverDeadLetterResponseSchema,
  UpdateWebhookRequestSchema,
  WebhookSchema,
  WebhookService,
} from "../../../gen/kaireon/v1/webhook_pb.ts";
import type { ServiceDeps } from "../../services/context.ts";
import {
  createWebhook,
  deleteWebhook,
  getWebhook,
  listDeadLetters,
  listWebhooks,
  redeliverDeadLetter,
  updateWebhook,
} from "../../services/webhooks.ts";
import { decodeJsonMessage, parseJsonObject } from "../json.ts";
import { json, type RestRoute } from "./binding.ts";

export function webhookRoutes(deps: ServiceDeps): RestRoute[] {
  const base = "/api/v1/webhooks";
  const id = (params: Record<string, string | undefined>) => params.webhookId ?? "";
  return [
    {
      method: "POST",
      path: base,
      operationId: "createWebhook",
      rpc: WebhookService.method.createWebhook,
      summary: "Create a webhook; its signing secret is in this answer only",
      tag: "Webhooks",
      body: CreateWebhookRequestSchema,
      response: WebhookSchema,
      run: async (ctx, { body }) =>
        json(WebhookSchema, (await createWebhook(deps, ctx, decodeJsonMessage(CreateWebhookRequestSchema, body))).webhook),
    },
    {
      method: "GET",
      path: base,
      operationId: "listWebhooks",
      rpc: WebhookService.method.listWebhooks,
      summary: "List the tenant's webhooks",
      tag: "Webhooks",
      response: ListWebhooksResponseSchema,
      run: async (ctx) => json(ListWebhooksResponseSchema, await listWebhooks(deps, ctx)),
    },
    {
      method: "GET",
      path: `${base}/:webhookId`,
      operationId: "getWebhook",
      rpc: WebhookService.method.getWebhook,
      summary: "Get a webhook",
      tag: "Webhooks",
      response: WebhookSchema,
      run: async (ctx, { params }) =>
        json(WebhookSchema, (await getWebhook(deps, ctx, create(GetWebhookRequestSchema, { webhookId: id(params) }))).webhook),
    },
    {
      method: "PATCH",
      path: `${base}/:webhookId`,
      operationId: "updateWebhook",
      rpc: WebhookService.method.updateWebhook,
      summary: "Change the fields the body names (url, events, secret, status, description)",
      tag: "Webhooks",
      body: WebhookSchema,
      response: WebhookSchema,
      run: async (ctx, { params, body }) => {
        const sent = decodeJsonMessage(WebhookSchema, body);
        sent.webhookId = id(params);
        const paths = Object.keys(parseJsonObject(body)).filter((k) => k !== "webhookId");
        return json(
          WebhookSchema,
          (await updateWebhook(deps, ctx, create(UpdateWebhookRequestSchema, { webhook: sent, updateMask: { paths } }))).webhook,
        );
      },
    },
    {
      method: "DELETE",
      path: `${base}/:webhookId`,
      operationId: "deleteWebhook",
      rpc: WebhookService.method.deleteWebhook,
      summary: "Delete a webhook and its dead-letter list",
      tag: "Webhooks",
      response: WebhookSchema,
      run: async (ctx, { params }) =>
        json(WebhookSchema, (await deleteWebhook(deps, ctx, create(DeleteWebhookRequestSchema, { webhookId: id(params) }))).webhook),
    },
    {
      method: "GET",
      path: `${base}/:webhookId/dead-letters`,
      operationId: "listDeadLetters",
      rpc: WebhookService.method.listDeadLetters,
      summary: "Events the webhook did not accept after its last retry",
      tag: "Webhooks",
      response: ListDeadLettersResponseSchema,
      run: async (ctx, { params }) =>
        json(
          ListDeadLettersResponseSchema,
          await listDeadLetters(deps, ctx, create(ListDeadLettersRequestSchema, { webhookId: id(params) })),
        ),
    },
    {
      method: "POST",
      path: `${base}/:webhookId/dead-letters/:eventId/redeliver`,
      operationId: "redeliverDeadLetter",
      rpc: WebhookService.method.redeliverDeadLetter,
      summary: "Deliver a dead letter again now; delivered, it leaves the list",
      tag: "Webhooks",
      response: RedeliverDeadLetterResponseSchema,
      run: async (ctx, { params }) =>
        json(
          RedeliverDeadLetterResponseSchema,
          await redeliverDeadLetter(
            deps,
            ctx,
            create(RedeliverDeadLetterRequestSchema, { webhookId: id(params), eventId: params.eventId ?? "" }),
          ),
        ),
    },
  ];
}
