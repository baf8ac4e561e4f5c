// Every REST route under /api/v1, as data: method, path, scope, the contract's messages it reads and
// answers, and the service function it calls. The REST app mounts these, and the OpenAPI document is
// generated from the same list, so the two cannot disagree.

import { create, type DescMessage, type MessageShape, ScalarType, toJson } from "@bufbuild/protobuf";
import {
  ApiKeyService,
  ApiKeySchema,
  CreateApiKeyRequestSchema,
  CreateApiKeyResponseSchema,
  GetApiKeyRequestSchema,
  ListApiKeysRequestSchema,
  ListApiKeysResponseSchema,
  RevokeApiKeyRequestSchema,
} from "../../gen/kaireon/v1/api_key_pb.ts";
import {
  CatalogDocumentSchema,
  CatalogService,
  ImportCatalogRequestSchema,
  ImportCatalogResponseSchema,
} from "../../gen/kaireon/v1/catalog_pb.ts";
import { AuditLogService, ListAuditEntriesRequestSchema, ListAuditEntriesResponseSchema } from "../../gen/kaireon/v1/audit_log_pb.ts";
import {
  CustomerImportReportSchema,
  CustomerSchema,
  CustomerService,
  DeleteCustomerRequestSchema,
  DeleteCustomerResponseSchema,
  GetCustomerRequestSchema,
  UpsertCustomerRequestSchema,
} from "../../gen/kaireon/v1/customer_pb.ts";
import {
  DecisionFlowSchema,
  DecisionFlowService,
  ListDecisionFlowVersionsRequestSchema,
  ListDecisionFlowVersionsResponseSchema,
  PublishDecisionFlowRequestSchema,
  RollBackDecisionFlowRequestSchema,
} from "../../gen/kaireon/v1/decision_flow_pb.ts";
import { DecisionTraceSchema, DecisionTraceService, GetDecisionTraceRequestSchema } from "../../gen/kaireon/v1/decision_trace_pb.ts";
import {
  CreateExperimentRequestSchema,
  ExperimentSchema,
  ExperimentService,
  GetExperimentResultsRequestSchema,
  GetExperimentResultsResponseSchema,
  UpdateExperimentRequestSchema,
} from "../../gen/kaireon/v1/experiment_pb.ts";
import { RecommendRequestSchema, RecommendResponseSchema, RecommendService } from "../../gen/kaireon/v1/recommend_pb.ts";
import { RespondRequestSchema, RespondResponseSchema, RespondService } from "../../gen/kaireon/v1/respond_pb.ts";
import { TenantSettingsSchema, TenantSettingsService, UpdateTenantSettingsRequestSchema } from "../../gen/kaireon/v1/tenant_settings_pb.ts";
import {
  CreateTenantApiKeyRequestSchema,
  CreateTenantApiKeyResponseSchema,
  CreateTenantRequestSchema,
  GetTenantRequestSchema,
  ListTenantsRequestSchema,
  ListTenantsResponseSchema,
  OperatorService,
  UpdateTenantRequestSchema,
} from "../../gen/kaireon/v1/operator_pb.ts";
import { AppError, validationError } from "../errors.ts";
import { createApiKey, getApiKeyInfo, listApiKeys, revokeApiKey } from "../services/api-keys.ts";
import { listAuditEntries } from "../services/audit-log.ts";
import { exportCatalog, importCatalog } from "../services/catalog.ts";
import type { CallContext, ServiceDeps } from "../services/context.ts";
import { deleteCustomer, getCustomer, importCustomers, upsertCustomer } from "../services/customers.ts";
import { getDecisionTrace } from "../services/decision-trace.ts";
import { listDecisionFlowVersions, publishDecisionFlow, rollBackDecisionFlow } from "../services/decision-flows.ts";
import { createExperiment, getExperimentResults, updateExperiment } from "../services/experiments.ts";
import {
  categoryKind,
  channelKind,
  contactPolicyKind,
  creativeKind,
  decisionFlowKind,
  experimentKind,
  offerKind,
  outcomeTypeKind,
  placementKind,
  qualificationRuleKind,
} from "../services/kinds/index.ts";
import { recommend } from "../services/recommend.ts";
import {
  createResource,
  deleteResource,
  getResource,
  jsonNameOf,
  listResources,
  META_FIELDS,
  type Resource,
  type ResourceKind,
  updateResource,
} from "../services/resources.ts";
import { respond } from "../services/respond.ts";
import { getTenantSettings, updateTenantSettings, WRITABLE_SETTINGS } from "../services/tenant-settings.ts";
import { createTenant, createTenantApiKey, getTenantInfo, listTenants, updateTenant } from "../services/operator.ts";
import type { LimitBucket } from "../services/limits.ts";
import type { CallScope } from "../services/auth.ts";
import { decodeJsonMessage, parseJsonObject } from "./json.ts";
import { ndjsonLines } from "./ndjson.ts";
import { traceJson } from "./trace-json.ts";

export type HttpMethod = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

export interface QueryParam {
  name: string;
  type: "string" | "integer";
  description: string;
}

export interface RouteInput {
  request: Request;
  params: Record<string, string>;
  query: Record<string, string | undefined>;
  /** The JSON body as text ("" for routes without one, or that stream it). */
  body: string;
}

export interface RestRoute {
  method: HttpMethod;
  /** Elysia-style path: /api/v1/offers/:offerId. */
  path: string;
  /** The OpenAPI operationId, e.g. createOffer. */
  operationId: string;
  /** The contract's RPC that does the same over gRPC and Connect, e.g. kaireon.v1.OfferService/CreateOffer. */
  rpc?: string;
  summary: string;
  tag: string;
  scope: CallScope;
  /** The message the JSON body decodes into, "ndjson" for a streamed import, or none. */
  body?: DescMessage | "ndjson";
  /** Largest body accepted, when not MAX_BODY_BYTES. */
  maxBodyBytes?: (deps: ServiceDeps) => number;
  query?: QueryParam[];
  /** The message of the answer's JSON body. */
  response: DescMessage;
  /** Which rate-limit window the call takes a slot of. */
  /** The rate-limit window the route spends: by default decisions for a decide-scope route, else administration. */
  bucket?: LimitBucket;
  run(ctx: CallContext, input: RouteInput): Promise<unknown>;
}

const json = <D extends DescMessage>(schema: D, message: MessageShape<D> | undefined) =>
  message ? toJson(schema, message, { alwaysEmitImplicit: true }) : null;

/** Query parameters of a list request, from its message: limit, cursor and any filter the path does not fix. */
function listQuery(schema: DescMessage, pathParams: string[]): QueryParam[] {
  return schema.fields
    .filter((f) => !pathParams.includes(f.jsonName))
    .map((f) => ({
      name: f.jsonName,
      type: f.fieldKind === "scalar" && f.scalar !== ScalarType.STRING ? ("integer" as const) : ("string" as const),
      description:
        f.jsonName === "limit"
          ? "page size, 1 to 100 (50)"
          : f.jsonName === "cursor"
            ? "nextCursor of the previous page"
            : `only those of this ${f.jsonName}`,
    }));
}

/** Builds a request message from query parameters and path parameters, checking whole numbers. */
function fromQuery(
  schema: DescMessage,
  query: Record<string, string | undefined>,
  params: Record<string, string>,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of schema.fields) {
    const raw = params[f.jsonName] ?? query[f.jsonName];
    if (raw === undefined || raw === "") continue;
    if (f.fieldKind === "scalar" && f.scalar !== ScalarType.STRING) {
      if (!/^\d{1,9}$/.test(raw)) throw validationError([{ field: f.jsonName, message: `${f.jsonName} must be a whole number` }]);
      out[f.localName] = Number(raw);
    } else out[f.localName] = raw;
  }
  return out;
}

function pathParamsOf(path: string): string[] {
  return [...path.matchAll(/:([A-Za-z]+)/g)].map((m) => m[1] as string);
}

interface ResourceRouteOptions {
  /** The resource; its gRPC service's List method gives the list's request and response messages. */
  kind: ResourceKind;
  /** The collection's path, e.g. /api/v1/offers or /api/v1/channels/:channelId/placements. */
  collection: string;
  tag: string;
  /** Plural for summaries: "offers". */
  plural: string;
  /** Only these operations, when the resource writes through requests of its own (experiments). */
  only?: ("create" | "list" | "get" | "replace" | "update" | "delete")[];
}

/** The body of a create or update with the key taken from the path; a body that names another key is refused. */
function withPathKey(kind: ResourceKind, body: string, params: Record<string, string>, requireAll: boolean) {
  const message = decodeJsonMessage(kind.schema, body) as Record<string, unknown>;
  const v: { field: string; message: string }[] = [];
  for (const f of kind.keyFields) {
    const name = jsonNameOf(kind, f);
    const fromPath = params[name];
    if (fromPath === undefined) {
      if (requireAll && !message[f]) v.push({ field: name, message: `${name} is required` });
      continue;
    }
    if (message[f] && message[f] !== fromPath)
      v.push({ field: name, message: `${name} in the body (${message[f]}) differs from the path (${fromPath})` });
    message[f] = fromPath;
  }
  if (v.length > 0) throw validationError(v);
  return message;
}

/** Create, list, get, replace, patch and delete of one resource kind. */
function resourceRoutes(deps: ServiceDeps, o: ResourceRouteOptions): RestRoute[] {
  const { kind } = o;
  const name = kind.service.typeName;
  const M = kind.schema.name;
  const keyNames = kind.keyFields.map((f) => jsonNameOf(kind, f));
  const item = `${o.collection}/:${keyNames[keyNames.length - 1]}`;
  const keyFrom = (params: Record<string, string>) => keyNames.map((k) => params[k] ?? "");
  const out = (r: unknown) => json(kind.schema, r as never);
  const article = (word: string) => (/^[aeiou]/i.test(word) ? "an" : "a");
  const noun = kind.label.toLowerCase();
  const list = kind.service.methods.find((m) => m.name.startsWith("List"));
  // The contract gives every resource service a List method; its absence is a wiring bug.
  if (!list) throw new Error(`${name} has no List method`);
  const listField = list.output.fields.find((f) => f.fieldKind === "list")?.localName as string;
  const routes: RestRoute[] = [
    {
      method: "POST",
      path: o.collection,
      operationId: `create${M}`,
      rpc: `${name}/Create${M}`,
      summary: `Create ${article(noun)} ${noun}`,
      tag: o.tag,
      scope: "admin",
      body: kind.schema,
      response: kind.schema,
      run: async (ctx, { body, params }) => out(await createResource(deps, ctx, kind, withPathKey(kind, body, params, false))),
    },
    {
      method: "GET",
      path: o.collection,
      operationId: lowerFirst(list.name),
      rpc: `${name}/${list.name}`,
      summary: `List ${o.plural}, in id order, a page at a time`,
      tag: o.tag,
      scope: "admin",
      query: listQuery(list.input, pathParamsOf(o.collection)),
      response: list.output,
      run: async (ctx, { query, params }) => {
        const req = create(list.input, fromQuery(list.input, query, params) as never) as unknown as Resource & {
          limit: number;
          cursor: string;
        };
        const page = await listResources(deps, ctx, kind, req);
        return toJson(list.output, create(list.output, { [listField]: page.items, nextCursor: page.nextCursor } as never), {
          alwaysEmitImplicit: true,
        });
      },
    },
    {
      method: "GET",
      path: item,
      operationId: `get${M}`,
      rpc: `${name}/Get${M}`,
      summary: `Get ${article(noun)} ${noun}`,
      tag: o.tag,
      scope: "admin",
      response: kind.schema,
      run: async (ctx, { params }) => out(await getResource(deps, ctx, kind, keyFrom(params))),
    },
    {
      method: "PUT",
      path: item,
      operationId: `replace${M}`,
      rpc: `${name}/Update${M}`,
      summary: `Replace ${article(noun)} ${noun} (send the version you read)`,
      tag: o.tag,
      scope: "admin",
      body: kind.schema,
      response: kind.schema,
      run: async (ctx, { body, params }) => out(await updateResource(deps, ctx, kind, withPathKey(kind, body, params, true), [])),
    },
    {
      method: "PATCH",
      path: item,
      operationId: `update${M}`,
      rpc: `${name}/Update${M}`,
      summary: `Change the top-level fields the body names (send the version you read)`,
      tag: o.tag,
      scope: "admin",
      body: kind.schema,
      response: kind.schema,
      run: async (ctx, { body, params }) => {
        const sent = withPathKey(kind, body, params, true);
        // The fields a patch can change; anything else in the body is ignored, as unknown fields are everywhere.
        const readOnly = new Set([...META_FIELDS, ...(kind.readOnly ?? []), ...kind.keyFields].map((f) => jsonNameOf(kind, f)));
        const writable = new Set(kind.schema.fields.map((f) => f.jsonName).filter((n) => !readOnly.has(n)));
        const mask = Object.keys(parseJsonObject(body)).filter((k) => writable.has(k));
        if (mask.length === 0) throw validationError([{ field: "", message: "the body names no field to change" }]);
        return out(await updateResource(deps, ctx, kind, sent, mask));
      },
    },
    {
      method: "DELETE",
      path: item,
      operationId: `delete${M}`,
      rpc: `${name}/Delete${M}`,
      summary: `Delete ${article(noun)} ${noun}`,
      tag: o.tag,
      scope: "admin",
      query: [{ name: "version", type: "integer", description: "refuse the delete unless this is the current version" }],
      response: kind.schema,
      run: async (ctx, { params, query }) => out(await deleteResource(deps, ctx, kind, keyFrom(params), wholeParam(query, "version") ?? 0)),
    },
  ];
  // Each operationId starts with its operation: createOffer, listOffers, getOffer, replaceOffer…
  return o.only
    ? routes.filter((r) => o.only?.some((op) => r.operationId.startsWith(op) && /^[A-Z]/.test(r.operationId.slice(op.length))))
    : routes;
}

const lowerFirst = (s: string) => s.charAt(0).toLowerCase() + s.slice(1);

/** An optional whole-number query parameter. */
function wholeParam(query: Record<string, string | undefined>, name: string): number | undefined {
  const raw = query[name];
  if (raw === undefined || raw === "") return undefined;
  if (!/^\d{1,9}$/.test(raw)) throw validationError([{ field: name, message: `${name} must be a whole number` }]);
  return Number(raw);
}

/** The NDJSON content types the customer import accepts. */
const NDJSON_TYPES = ["application/x-ndjson", "application/ndjson", "application/jsonl"];

export function apiRoutes(deps: ServiceDeps): RestRoute[] {
  const v1 = "/api/v1";
  return [
    {
      method: "POST",
      path: `${v1}/recommend`,
      operationId: "recommend",
      rpc: `${RecommendService.typeName}/Recommend`,
      summary: "Ranked, personalized offers for a customer on a channel",
      tag: "Decisions",
      scope: "decide",
      body: RecommendRequestSchema,
      response: RecommendResponseSchema,
      run: async (ctx, { body }) =>
        json(RecommendResponseSchema, await recommend(deps, ctx, decodeJsonMessage(RecommendRequestSchema, body))),
    },
    {
      method: "POST",
      path: `${v1}/respond`,
      operationId: "respond",
      rpc: `${RespondService.typeName}/Respond`,
      summary: "Record how the customer reacted (answered once committed; Idempotency-Key header for safe retries)",
      tag: "Decisions",
      scope: "decide",
      bucket: "respond",
      body: RespondRequestSchema,
      response: RespondResponseSchema,
      run: async (ctx, { body }) => json(RespondResponseSchema, await respond(deps, ctx, decodeJsonMessage(RespondRequestSchema, body))),
    },
    {
      method: "GET",
      path: `${v1}/decision-traces/:traceId`,
      operationId: "getDecisionTrace",
      rpc: `${DecisionTraceService.typeName}/GetDecisionTrace`,
      summary: "How a decision was made, stage by stage",
      tag: "Decisions",
      scope: "decide",
      response: DecisionTraceSchema,
      run: async (ctx, { params }) => {
        const res = await getDecisionTrace(deps, ctx, create(GetDecisionTraceRequestSchema, { traceId: params.traceId ?? "" }));
        return res.trace ? traceJson(res.trace) : null;
      },
    },
    ...resourceRoutes(deps, {
      kind: categoryKind,
      collection: `${v1}/categories`,
      tag: "Catalog",
      plural: "categories",
    }),
    ...resourceRoutes(deps, {
      kind: offerKind,
      collection: `${v1}/offers`,
      tag: "Catalog",
      plural: "offers",
    }),
    ...resourceRoutes(deps, {
      kind: channelKind,
      collection: `${v1}/channels`,
      tag: "Catalog",
      plural: "channels",
    }),
    ...resourceRoutes(deps, {
      kind: placementKind,
      collection: `${v1}/channels/:channelId/placements`,
      tag: "Catalog",
      plural: "the channel's placements",
    }),
    ...resourceRoutes(deps, {
      kind: creativeKind,
      collection: `${v1}/creatives`,
      tag: "Catalog",
      plural: "creatives",
    }),
    ...resourceRoutes(deps, {
      kind: contactPolicyKind,
      collection: `${v1}/contact-policies`,
      tag: "Rules",
      plural: "contact policies",
    }),
    ...resourceRoutes(deps, {
      kind: qualificationRuleKind,
      collection: `${v1}/qualification-rules`,
      tag: "Rules",
      plural: "qualification rules",
    }),
    ...resourceRoutes(deps, {
      kind: outcomeTypeKind,
      collection: `${v1}/outcome-types`,
      tag: "Rules",
      plural: "outcome types",
    }),
    ...resourceRoutes(deps, {
      kind: decisionFlowKind,
      collection: `${v1}/decision-flows`,
      tag: "Decision flows",
      plural: "decision flows",
    }),
    {
      method: "POST",
      path: `${v1}/decision-flows/:decisionFlowId/publish`,
      operationId: "publishDecisionFlow",
      rpc: `${DecisionFlowService.typeName}/PublishDecisionFlow`,
      summary: "Publish the draft as the newest version (body: the version you read)",
      tag: "Decision flows",
      scope: "admin",
      body: PublishDecisionFlowRequestSchema,
      response: DecisionFlowSchema,
      run: async (ctx, { body, params }) => {
        const req = { ...decodeJsonMessage(PublishDecisionFlowRequestSchema, body), decisionFlowId: params.decisionFlowId ?? "" };
        return json(DecisionFlowSchema, (await publishDecisionFlow(deps, ctx, req)).decisionFlow);
      },
    },
    {
      method: "GET",
      path: `${v1}/decision-flows/:decisionFlowId/versions`,
      operationId: "listDecisionFlowVersions",
      rpc: `${DecisionFlowService.typeName}/ListDecisionFlowVersions`,
      summary: "Every version of a flow, oldest first",
      tag: "Decision flows",
      scope: "admin",
      response: ListDecisionFlowVersionsResponseSchema,
      run: async (ctx, { params }) =>
        json(
          ListDecisionFlowVersionsResponseSchema,
          await listDecisionFlowVersions(
            deps,
            ctx,
            create(ListDecisionFlowVersionsRequestSchema, { decisionFlowId: params.decisionFlowId ?? "" }),
          ),
        ),
    },
    {
      method: "POST",
      path: `${v1}/decision-flows/:decisionFlowId/rollback`,
      operationId: "rollBackDecisionFlow",
      rpc: `${DecisionFlowService.typeName}/RollBackDecisionFlow`,
      summary: "Publish an earlier version's definition anew (body: toVersion and the version you read)",
      tag: "Decision flows",
      scope: "admin",
      body: RollBackDecisionFlowRequestSchema,
      response: DecisionFlowSchema,
      run: async (ctx, { body, params }) => {
        const req = { ...decodeJsonMessage(RollBackDecisionFlowRequestSchema, body), decisionFlowId: params.decisionFlowId ?? "" };
        return json(DecisionFlowSchema, (await rollBackDecisionFlow(deps, ctx, req)).decisionFlow);
      },
    },
    {
      method: "POST",
      path: `${v1}/experiments`,
      operationId: "createExperiment",
      rpc: `${ExperimentService.typeName}/CreateExperiment`,
      summary: "Create an experiment",
      tag: "Experiments",
      scope: "admin",
      body: CreateExperimentRequestSchema,
      response: ExperimentSchema,
      run: async (ctx, { body }) =>
        json(ExperimentSchema, (await createExperiment(deps, ctx, decodeJsonMessage(CreateExperimentRequestSchema, body))).experiment),
    },
    {
      method: "PATCH",
      path: `${v1}/experiments/:experimentId`,
      operationId: "updateExperiment",
      rpc: `${ExperimentService.typeName}/UpdateExperiment`,
      summary: "Change an experiment's status or variants (send the version you read)",
      tag: "Experiments",
      scope: "admin",
      body: UpdateExperimentRequestSchema,
      response: ExperimentSchema,
      run: async (ctx, { body, params }) => {
        const req = { ...decodeJsonMessage(UpdateExperimentRequestSchema, body), experimentId: params.experimentId ?? "" };
        return json(ExperimentSchema, (await updateExperiment(deps, ctx, req)).experiment);
      },
    },
    ...resourceRoutes(deps, {
      kind: experimentKind,
      collection: `${v1}/experiments`,
      tag: "Experiments",
      plural: "experiments",
      only: ["list", "get", "delete"],
    }),
    {
      method: "GET",
      path: `${v1}/experiments/:experimentId/results`,
      operationId: "getExperimentResults",
      rpc: `${ExperimentService.typeName}/GetExperimentResults`,
      summary: "Per-variant results of a phase, with significance and a sample-ratio check",
      tag: "Experiments",
      scope: "admin",
      query: [{ name: "phase", type: "integer", description: "the phase to report (the current one when absent)" }],
      response: GetExperimentResultsResponseSchema,
      run: async (ctx, { params, query }) =>
        json(
          GetExperimentResultsResponseSchema,
          await getExperimentResults(
            deps,
            ctx,
            create(GetExperimentResultsRequestSchema, { experimentId: params.experimentId ?? "", phase: wholeParam(query, "phase") }),
          ),
        ),
    },
    {
      method: "PUT",
      path: `${v1}/customers/:customerId`,
      operationId: "upsertCustomer",
      rpc: `${CustomerService.typeName}/UpsertCustomer`,
      summary: "Create or replace a customer's profile",
      tag: "Customers",
      scope: "admin",
      body: UpsertCustomerRequestSchema,
      response: CustomerSchema,
      run: async (ctx, { body, params }) => {
        const req = { ...decodeJsonMessage(UpsertCustomerRequestSchema, body), customerId: params.customerId ?? "" };
        return json(CustomerSchema, (await upsertCustomer(deps, ctx, req)).customer);
      },
    },
    {
      method: "GET",
      path: `${v1}/customers/:customerId`,
      operationId: "getCustomer",
      rpc: `${CustomerService.typeName}/GetCustomer`,
      summary: "Get a customer's profile",
      tag: "Customers",
      scope: "admin",
      response: CustomerSchema,
      run: async (ctx, { params }) =>
        json(
          CustomerSchema,
          (await getCustomer(deps, ctx, create(GetCustomerRequestSchema, { customerId: params.customerId ?? "" }))).customer,
        ),
    },
    {
      method: "DELETE",
      path: `${v1}/customers/:customerId`,
      operationId: "deleteCustomer",
      rpc: `${CustomerService.typeName}/DeleteCustomer`,
      summary: "Erase a customer: profile, interactions, decision traces and opt-outs",
      tag: "Customers",
      scope: "admin",
      response: DeleteCustomerResponseSchema,
      run: async (ctx, { params }) =>
        json(
          DeleteCustomerResponseSchema,
          await deleteCustomer(deps, ctx, create(DeleteCustomerRequestSchema, { customerId: params.customerId ?? "" })),
        ),
    },
    {
      method: "POST",
      path: `${v1}/customers/import`,
      operationId: "importCustomers",
      summary: "Import profiles from NDJSON of any size, streamed; bad lines are reported by number",
      tag: "Customers",
      scope: "admin",
      body: "ndjson",
      response: CustomerImportReportSchema,
      run: async (ctx, { request }) => {
        const type = (request.headers.get("content-type") ?? "").split(";", 1)[0]?.trim().toLowerCase() ?? "";
        if (!NDJSON_TYPES.includes(type)) {
          const message = `content-type must be ${NDJSON_TYPES[0]}`;
          throw new AppError("VALIDATION_ERROR", message, [{ field: "content-type", message }]);
        }
        const report = await importCustomers(deps, ctx, ndjsonLines(request.body, deps.config.importMaxLineBytes));
        return json(CustomerImportReportSchema, create(CustomerImportReportSchema, report));
      },
    },
    {
      method: "GET",
      path: `${v1}/catalog`,
      operationId: "exportCatalog",
      rpc: `${CatalogService.typeName}/ExportCatalog`,
      summary: "The whole catalog as one document",
      tag: "Catalog",
      scope: "admin",
      response: CatalogDocumentSchema,
      run: async (ctx) => json(CatalogDocumentSchema, (await exportCatalog(deps, ctx)).catalog),
    },
    {
      method: "POST",
      path: `${v1}/catalog/import`,
      operationId: "importCatalog",
      rpc: `${CatalogService.typeName}/ImportCatalog`,
      summary: "Apply a catalog document: all of it in one transaction, or none of it on any error",
      tag: "Catalog",
      scope: "admin",
      body: CatalogDocumentSchema,
      maxBodyBytes: (d) => d.config.catalogMaxBytes,
      response: ImportCatalogResponseSchema,
      run: async (ctx, { body }) =>
        json(
          ImportCatalogResponseSchema,
          await importCatalog(deps, ctx, create(ImportCatalogRequestSchema, { catalog: decodeJsonMessage(CatalogDocumentSchema, body) })),
        ),
    },
    {
      method: "GET",
      path: `${v1}/settings`,
      operationId: "getTenantSettings",
      rpc: `${TenantSettingsService.typeName}/GetTenantSettings`,
      summary: "The tenant's plan, limits and trace settings",
      tag: "Tenant",
      scope: "admin",
      response: TenantSettingsSchema,
      run: async (ctx) => json(TenantSettingsSchema, (await getTenantSettings(deps, ctx)).tenantSettings),
    },
    ...(["PUT", "PATCH"] as const).map(
      (method): RestRoute => ({
        method,
        path: `${v1}/settings`,
        operationId: method === "PUT" ? "replaceTenantSettings" : "updateTenantSettings",
        rpc: `${TenantSettingsService.typeName}/UpdateTenantSettings`,
        summary:
          method === "PUT"
            ? "Replace the tenant's settings (send the version you read)"
            : "Change the settings the body names (send the version you read)",
        tag: "Tenant",
        scope: "admin",
        body: TenantSettingsSchema,
        response: TenantSettingsSchema,
        run: async (ctx, { body }) => {
          const sent = decodeJsonMessage(TenantSettingsSchema, body);
          const paths =
            method === "PATCH"
              ? Object.keys(parseJsonObject(body)).filter((k) => (WRITABLE_SETTINGS as readonly string[]).includes(k))
              : [];
          if (method === "PATCH" && paths.length === 0)
            throw validationError([{ field: "", message: "the body names no setting to change" }]);
          const res = await updateTenantSettings(
            deps,
            ctx,
            create(UpdateTenantSettingsRequestSchema, { tenantSettings: sent, updateMask: { paths } }),
          );
          return json(TenantSettingsSchema, res.tenantSettings);
        },
      }),
    ),
    {
      method: "POST",
      path: `${v1}/api-keys`,
      operationId: "createApiKey",
      rpc: `${ApiKeyService.typeName}/CreateApiKey`,
      summary: "Create an API key; the key is in this answer only",
      tag: "Tenant",
      scope: "admin",
      body: CreateApiKeyRequestSchema,
      response: CreateApiKeyResponseSchema,
      run: async (ctx, { body }) =>
        json(CreateApiKeyResponseSchema, await createApiKey(deps, ctx, decodeJsonMessage(CreateApiKeyRequestSchema, body))),
    },
    {
      method: "GET",
      path: `${v1}/api-keys`,
      operationId: "listApiKeys",
      rpc: `${ApiKeyService.typeName}/ListApiKeys`,
      summary: "List API keys (prefix, name, scopes, last use, expiry), revoked ones included",
      tag: "Tenant",
      scope: "admin",
      query: listQuery(ListApiKeysRequestSchema, []),
      response: ListApiKeysResponseSchema,
      run: async (ctx, { query }) =>
        json(
          ListApiKeysResponseSchema,
          await listApiKeys(deps, ctx, create(ListApiKeysRequestSchema, fromQuery(ListApiKeysRequestSchema, query, {}))),
        ),
    },
    {
      method: "GET",
      path: `${v1}/api-keys/:apiKeyId`,
      operationId: "getApiKey",
      rpc: `${ApiKeyService.typeName}/GetApiKey`,
      summary: "Get an API key's details",
      tag: "Tenant",
      scope: "admin",
      response: ApiKeySchema,
      run: async (ctx, { params }) =>
        json(ApiKeySchema, (await getApiKeyInfo(deps, ctx, create(GetApiKeyRequestSchema, { apiKeyId: params.apiKeyId ?? "" }))).apiKey),
    },
    {
      method: "DELETE",
      path: `${v1}/api-keys/:apiKeyId`,
      operationId: "revokeApiKey",
      rpc: `${ApiKeyService.typeName}/RevokeApiKey`,
      summary: "Revoke an API key: refused everywhere within 15 seconds",
      tag: "Tenant",
      scope: "admin",
      response: ApiKeySchema,
      run: async (ctx, { params }) =>
        json(ApiKeySchema, (await revokeApiKey(deps, ctx, create(RevokeApiKeyRequestSchema, { apiKeyId: params.apiKeyId ?? "" }))).apiKey),
    },
    ...operatorRoutes(deps),
    {
      method: "GET",
      path: `${v1}/audit-log`,
      operationId: "listAuditEntries",
      rpc: `${AuditLogService.typeName}/ListAuditEntries`,
      summary: "The tenant's audit log, newest first: who changed what, and when",
      tag: "Tenant",
      scope: "admin",
      query: listQuery(ListAuditEntriesRequestSchema, []),
      response: ListAuditEntriesResponseSchema,
      run: async (ctx, { query }) =>
        json(
          ListAuditEntriesResponseSchema,
          await listAuditEntries(deps, ctx, create(ListAuditEntriesRequestSchema, fromQuery(ListAuditEntriesRequestSchema, query, {}))),
        ),
    },
  ];
}

/** The operator's routes: tenants above the tenants' own API, for the operator key only. */
function operatorRoutes(deps: ServiceDeps): RestRoute[] {
  const op = OperatorService.typeName;
  const v1 = "/api/v1";
  const tenant = (m: unknown) => json(TenantSettingsSchema, m as never);
  return [
    {
      method: "POST",
      path: `${v1}/tenants`,
      operationId: "createTenant",
      rpc: `${op}/CreateTenant`,
      summary: "Create a tenant with its plan, limits and quota (operator key)",
      tag: "Operator",
      scope: "operator",
      body: TenantSettingsSchema,
      response: TenantSettingsSchema,
      run: async (ctx, { body }) =>
        tenant(
          (await createTenant(deps, ctx, create(CreateTenantRequestSchema, { tenant: decodeJsonMessage(TenantSettingsSchema, body) })))
            .tenant,
        ),
    },
    {
      method: "GET",
      path: `${v1}/tenants`,
      operationId: "listTenants",
      rpc: `${op}/ListTenants`,
      summary: "List tenants with their status, plan, limits and quota (operator key)",
      tag: "Operator",
      scope: "operator",
      query: listQuery(ListTenantsRequestSchema, []),
      response: ListTenantsResponseSchema,
      run: async (ctx, { query }) =>
        json(
          ListTenantsResponseSchema,
          await listTenants(deps, ctx, create(ListTenantsRequestSchema, fromQuery(ListTenantsRequestSchema, query, {}))),
        ),
    },
    {
      method: "GET",
      path: `${v1}/tenants/:tenantId`,
      operationId: "getTenant",
      rpc: `${op}/GetTenant`,
      summary: "A tenant's status, plan, limits and quota (operator key)",
      tag: "Operator",
      scope: "operator",
      response: TenantSettingsSchema,
      run: async (ctx, { params }) =>
        tenant((await getTenantInfo(deps, ctx, create(GetTenantRequestSchema, { tenantId: params.tenantId ?? "" }))).tenant),
    },
    {
      method: "PATCH",
      path: `${v1}/tenants/:tenantId`,
      operationId: "updateTenant",
      rpc: `${op}/UpdateTenant`,
      summary: "Suspend or activate a tenant, or change its plan, limits and quota: the fields the body names (operator key)",
      tag: "Operator",
      scope: "operator",
      body: TenantSettingsSchema,
      response: TenantSettingsSchema,
      run: async (ctx, { body, params }) => {
        const sent = decodeJsonMessage(TenantSettingsSchema, body);
        const tenantId = params.tenantId ?? "";
        if (sent.tenantId && sent.tenantId !== tenantId) {
          throw validationError([
            { field: "tenantId", message: `tenantId in the body (${sent.tenantId}) differs from the path (${tenantId})` },
          ]);
        }
        sent.tenantId = tenantId;
        const writable: readonly string[] = [...WRITABLE_SETTINGS, "status"];
        const paths = Object.keys(parseJsonObject(body)).filter((k) => writable.includes(k));
        if (paths.length === 0) throw validationError([{ field: "", message: "the body names nothing to change" }]);
        const res = await updateTenant(deps, ctx, create(UpdateTenantRequestSchema, { tenant: sent, updateMask: { paths } }));
        return tenant(res.tenant);
      },
    },
    {
      method: "POST",
      path: `${v1}/tenants/:tenantId/api-keys`,
      operationId: "createTenantApiKey",
      rpc: `${op}/CreateTenantApiKey`,
      summary: "Create a key of the tenant, such as its first admin key; the key is in this answer only (operator key)",
      tag: "Operator",
      scope: "operator",
      body: CreateApiKeyRequestSchema,
      response: CreateTenantApiKeyResponseSchema,
      run: async (ctx, { body, params }) => {
        const sent = decodeJsonMessage(CreateApiKeyRequestSchema, body);
        return json(
          CreateTenantApiKeyResponseSchema,
          await createTenantApiKey(
            deps,
            ctx,
            create(CreateTenantApiKeyRequestSchema, { tenantId: params.tenantId ?? "", name: sent.name, scopes: sent.scopes }),
          ),
        );
      },
    },
  ];
}
