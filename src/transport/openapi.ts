// The OpenAPI 3.1 document of the REST API, generated from the route table (transport/routes/) and the
// contract's message descriptors: every route, its parameters, and the JSON of every message it reads or
// answers, written as the proto3 JSON mapping writes it.

import { type DescEnum, type DescField, type DescMessage, ScalarType, toJson } from "@bufbuild/protobuf";
import { CatalogDocumentSchema } from "../../gen/kaireon/v1/catalog_pb.ts";
import { demoCatalog } from "../demo.ts";
import { catalogDocumentOf } from "../services/catalog-document.ts";
import { pathOf } from "./call-rules.ts";
import protoComments from "./proto-comments.json" with { type: "json" };
import { type RestRoute, ruleOfRoute } from "./routes/index.ts";

type Schema = Record<string, unknown>;

const WELL_KNOWN: Record<string, Schema> = {
  "google.protobuf.Timestamp": { type: "string", format: "date-time" },
  "google.protobuf.Duration": { type: "string", description: "seconds with an s suffix, e.g. 1.5s" },
  "google.protobuf.Struct": { type: "object", additionalProperties: true },
  "google.protobuf.Value": {},
  "google.protobuf.ListValue": { type: "array", items: {} },
  "google.protobuf.FieldMask": { type: "string", description: "comma-separated field names" },
  "google.protobuf.Empty": { type: "object" },
  "google.protobuf.DoubleValue": { type: ["number", "null"] },
  "google.protobuf.FloatValue": { type: ["number", "null"] },
  "google.protobuf.Int32Value": { type: ["integer", "null"], format: "int32" },
  "google.protobuf.UInt32Value": { type: ["integer", "null"], format: "int32" },
  "google.protobuf.Int64Value": { type: ["string", "integer", "null"], format: "int64" },
  "google.protobuf.UInt64Value": { type: ["string", "integer", "null"], format: "int64" },
  "google.protobuf.BoolValue": { type: ["boolean", "null"] },
  "google.protobuf.StringValue": { type: ["string", "null"] },
  "google.protobuf.BytesValue": { type: ["string", "null"], contentEncoding: "base64" },
};

function scalarSchema(scalar: ScalarType): Schema {
  switch (scalar) {
    case ScalarType.STRING:
      return { type: "string" };
    case ScalarType.BYTES:
      return { type: "string", contentEncoding: "base64" };
    case ScalarType.BOOL:
      return { type: "boolean" };
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return { type: "number" };
    case ScalarType.INT64:
    case ScalarType.UINT64:
    case ScalarType.SINT64:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      // proto3 JSON writes 64-bit integers as strings and reads numbers too.
      return { type: ["string", "integer"], format: "int64" };
    default:
      return { type: "integer", format: "int32" };
  }
}

/** The contract's comment on a service, method, message or field, by its full name. */
export function commentOf(typeName: string): string {
  return (protoComments as Record<string, string>)[typeName] ?? "";
}

/**
 * A field the service refuses a request without (VALIDATION_ERROR "… is required") says so in its proto
 * comment, which starts "Required.", so that every generated client reads the same rule.
 */
export const isRequired = (f: DescField) => /^Required\./.test(commentOf(`${f.parent.typeName}.${f.name}`));

const withDescription = (schema: Schema, description: string): Schema => {
  if (!description) return schema;
  const own = typeof schema.description === "string" ? ` (${schema.description})` : "";
  return { ...schema, description: `${description}${own}` };
};

/** Collects the component schemas of every message reachable from the routes. */
class Components {
  readonly schemas: Record<string, Schema> = {};

  ref(message: DescMessage): Schema {
    const known = WELL_KNOWN[message.typeName];
    if (known) return known;
    const name = schemaName(message);
    if (!(name in this.schemas)) {
      this.schemas[name] = {}; // placeholder first: messages may refer to themselves
      this.schemas[name] = this.object(message);
    }
    return { $ref: `#/components/schemas/${name}` };
  }

  private enumSchema(e: DescEnum): Schema {
    return { type: "string", enum: e.values.map((v) => v.name) };
  }

  private field(f: DescField): Schema {
    switch (f.fieldKind) {
      case "scalar":
        return scalarSchema(f.scalar);
      case "enum":
        return this.enumSchema(f.enum);
      case "message":
        return this.ref(f.message);
      case "list":
        return {
          type: "array",
          items: f.listKind === "scalar" ? scalarSchema(f.scalar) : f.listKind === "enum" ? this.enumSchema(f.enum) : this.ref(f.message),
        };
      case "map":
        return {
          type: "object",
          additionalProperties:
            f.mapKind === "scalar" ? scalarSchema(f.scalar) : f.mapKind === "enum" ? this.enumSchema(f.enum) : this.ref(f.message),
        };
    }
  }

  private object(message: DescMessage): Schema {
    const properties: Record<string, Schema> = {};
    for (const f of message.fields) properties[f.jsonName] = withDescription(this.field(f), commentOf(`${message.typeName}.${f.name}`));
    const required = message.fields.filter(isRequired).map((f) => f.jsonName);
    const description = commentOf(message.typeName);
    return { type: "object", ...(description ? { description } : {}), ...(required.length > 0 ? { required } : {}), properties };
  }
}

const schemaName = (message: DescMessage) => message.typeName.replace(/^kaireon\.v1\./, "");

const ERROR_SCHEMA: Schema = {
  type: "object",
  required: ["error", "code", "details", "requestId"],
  properties: {
    error: { type: "string", description: "What went wrong, for a person." },
    code: {
      type: "string",
      description: "What went wrong, for a program: one of a closed set.",
      enum: [
        "VALIDATION_ERROR",
        "UNAUTHORIZED",
        "FORBIDDEN",
        "NOT_FOUND",
        "METHOD_NOT_ALLOWED",
        "CONFLICT",
        "PAYLOAD_TOO_LARGE",
        "UNSUPPORTED_MEDIA_TYPE",
        "REQUEST_TIMEOUT",
        "RATE_LIMITED",
        "QUOTA_EXCEEDED",
        "INTERNAL_ERROR",
        "UNAVAILABLE",
      ],
    },
    details: {
      type: "array",
      description: "One entry per field that was refused; empty otherwise.",
      items: {
        type: "object",
        required: ["field", "message"],
        properties: {
          field: { type: "string", description: "JSON path, e.g. variants[1].weight." },
          message: { type: "string", description: "What is wrong with the field." },
        },
      },
    },
    requestId: { type: "string", description: "The request's x-request-id, to find its log lines." },
  },
};

const ERRORS: Record<string, string> = {
  "400": "The request is not valid (VALIDATION_ERROR); details name each field",
  "401": "Missing or invalid API key (UNAUTHORIZED)",
  "403": "The key lacks the scope, or the tenant is suspended (FORBIDDEN)",
  "404": "Not found, or another tenant's (NOT_FOUND)",
  "409": "Already exists, still referenced, or changed since read (CONFLICT)",
  "413": "Body over the limit (PAYLOAD_TOO_LARGE)",
  "408": "The body did not arrive within REQUEST_READ_TIMEOUT_MS (REQUEST_TIMEOUT)",
  "415": "A body sent as something other than JSON (UNSUPPORTED_MEDIA_TYPE)",
  "429": "Rate limit or monthly quota reached (RATE_LIMITED, QUOTA_EXCEEDED); see Retry-After",
  "500": "Unexpected failure (INTERNAL_ERROR)",
  "503": "A dependency is down (UNAVAILABLE)",
};

/** The tutorial's Recommend and Respond requests, which the demo tenant answers as the tutorial shows. */
const TUTORIAL_EXAMPLES: Record<string, unknown> = {
  "kaireon.v1.RecommendRequest": {
    customerId: "cust_12345",
    channelId: "ch_email",
    decisionFlowId: "df_credit_cards",
    maxOffers: 3,
    placement: "hero_offer",
    attributes: { tier: "gold", source: "campaign_q1", device: "mobile" },
    trace: true,
  },
  "kaireon.v1.RespondRequest": {
    customerId: "cust_12345",
    offerId: "act_platinum_cc",
    channelId: "ch_email",
    outcomeType: "click",
    creativeId: "treat_platinum_email",
    traceId: "trace_abc123",
    metadata: { clickPosition: "hero_banner", deviceType: "mobile" },
  },
};

/** An example body per message: the tutorial's requests, and the first of each kind of the demo catalog. */
function examples(): Record<string, unknown> {
  const demo = toJson(CatalogDocumentSchema, catalogDocumentOf(demoCatalog)) as Record<string, unknown[] | undefined>;
  const out: Record<string, unknown> = { ...TUTORIAL_EXAMPLES };
  for (const f of CatalogDocumentSchema.fields) {
    const first = demo[f.jsonName]?.[0];
    if (f.fieldKind === "list" && f.listKind === "message" && first) out[f.message.typeName] = first;
  }
  return out;
}

/** The comment of the RPC a route serves, else of its service: what the operation does, in the contract's words. */
function rpcComment(route: RestRoute): string {
  return commentOf(`${route.rpc.parent.typeName}.${route.rpc.name}`) || commentOf(route.rpc.parent.typeName);
}

/**
 * The schema of a route's JSON body. A body whose message has required fields the call does not need
 * gets the message's properties with the fewer required ones: a patch needs none (it sends the fields
 * it changes), and a key the path names need not be in the body too.
 */
function bodySchema(components: Components, route: RestRoute, message: DescMessage, pathParams: string[]): Schema {
  const ref = components.ref(message);
  const schema = components.schemas[schemaName(message)] ?? {};
  const required = (schema.required as string[] | undefined) ?? [];
  const needed = route.method === "PATCH" ? [] : required.filter((name) => !pathParams.includes(name));
  if (needed.length === required.length) return ref;
  return {
    type: "object",
    description:
      route.method === "PATCH"
        ? `The fields of ${schemaName(message)} to change; those left out keep their value.`
        : `${schemaName(message)}, with ${required.filter((n) => !needed.includes(n)).join(" and ")} from the path.`,
    ...(needed.length > 0 ? { required: needed } : {}),
    properties: schema.properties,
  };
}

/** A path parameter named for a field of the route's message reads that field's comment. */
function pathParamDescription(message: DescMessage, name: string): { description?: string } {
  const field = message.fields.find((f) => f.jsonName === name);
  const description = field ? commentOf(`${message.typeName}.${field.name}`).replace(/^Required\.\s*/, "") : "";
  return description ? { description } : {};
}

/** A route outside the API proper, served without a key: health, metrics, this document. */
export interface PublicRoute {
  method: "GET";
  path: string;
  operationId: string;
  summary: string;
  contentType: string;
}

export function openApiDocument(routes: RestRoute[], publicRoutes: PublicRoute[] = []): Record<string, unknown> {
  const components = new Components();
  const exampleOf = examples();
  const paths: Record<string, Record<string, unknown>> = {};
  const errorResponses = Object.fromEntries(
    Object.entries(ERRORS).map(([status, description]) => [
      status,
      { description, content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } },
    ]),
  );
  for (const route of routes) {
    const path = route.path.replace(/:([A-Za-z]+)/g, "{$1}");
    const pathNames = [...route.path.matchAll(/:([A-Za-z]+)/g)].map((m) => m[1] as string);
    const pathParams = pathNames.map((name) => ({
      name,
      in: "path",
      required: true,
      ...(route.body && route.body !== "ndjson" ? pathParamDescription(route.body, name) : pathParamDescription(route.response, name)),
      schema: { type: "string" },
    }));
    const queryParams = (route.query ?? []).map((q) => ({
      name: q.name,
      in: "query",
      required: false,
      description: q.description,
      schema: { type: q.type },
    }));
    const { scope } = ruleOfRoute(route);
    const operation: Record<string, unknown> = {
      operationId: route.operationId,
      summary: route.summary,
      tags: [route.tag],
      description: `${rpcComment(route)}${rpcComment(route) ? "\n\n" : ""}${
        scope === "operator"
          ? "Needs the operator key (OPERATOR_API_KEY) in x-api-key; no x-tenant-id."
          : `Needs a key with the ${scope} scope.`
      }${route.restOnly ? "" : ` The same over gRPC and Connect: ${pathOf(route.rpc).slice(1)}.`}`,
      security: scope === "operator" ? [{ apiKey: [] }] : [{ tenantId: [], apiKey: [] }],
      parameters: [...pathParams, ...queryParams],
      responses: {
        "200": { description: "OK", content: { "application/json": { schema: components.ref(route.response) } } },
        ...errorResponses,
      },
    };
    if (route.body === "ndjson") {
      operation.requestBody = {
        required: true,
        content: {
          "application/x-ndjson": { schema: { type: "string", description: 'one {"customerId", "attributes", "segments"} per line' } },
        },
      };
    } else if (route.body) {
      const schema = bodySchema(components, route, route.body, pathNames);
      // A create's example is the demo catalog's; an update or a patch of it would send other fields.
      const example = route.method === "POST" || !pathNames.length ? exampleOf[route.body.typeName] : undefined;
      operation.requestBody = {
        required: true,
        content: { "application/json": { schema, ...(example ? { example } : {}) } },
      };
    }
    paths[path] ??= {};
    (paths[path] as Record<string, unknown>)[route.method.toLowerCase()] = operation;
  }
  for (const route of publicRoutes) {
    paths[route.path] ??= {};
    (paths[route.path] as Record<string, unknown>).get = {
      operationId: route.operationId,
      summary: route.summary,
      tags: ["Operations"],
      security: [],
      responses: { "200": { description: "OK", content: { [route.contentType]: { schema: {} } } } },
    };
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "Kaireon decisioning API",
      version: "v1",
      description:
        "Real-time decisioning: Recommend, Respond and decision traces, and the administration of catalogs, flows, customers and keys. " +
        "Every call sends x-tenant-id and x-api-key. The same operations are served over gRPC and Connect from the proto files in proto/kaireon/v1.",
    },
    servers: [{ url: "/", description: "This service: the document is served by the service it describes" }],
    tags: [...new Set([...routes.map((r) => r.tag), ...(publicRoutes.length > 0 ? ["Operations"] : [])])].map((name) => ({ name })),
    paths,
    components: {
      securitySchemes: {
        tenantId: { type: "apiKey", in: "header", name: "x-tenant-id" },
        apiKey: { type: "apiKey", in: "header", name: "x-api-key" },
      },
      schemas: { ...components.schemas, Error: ERROR_SCHEMA },
    },
  };
}
