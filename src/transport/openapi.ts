// The OpenAPI 3.1 document of the REST API, generated from the route table (transport/routes/) and the
// contract's message descriptors: every route, its parameters, and the JSON of every message it reads or
// answers, written as the proto3 JSON mapping writes it.

import { type DescEnum, type DescField, type DescMessage, ScalarType } from "@bufbuild/protobuf";
import { pathOf } from "./call-rules.ts";
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

/** Collects the component schemas of every message reachable from the routes. */
class Components {
  readonly schemas: Record<string, Schema> = {};

  ref(message: DescMessage): Schema {
    const known = WELL_KNOWN[message.typeName];
    if (known) return known;
    const name = message.typeName.replace(/^kaireon\.v1\./, "");
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
    for (const f of message.fields) properties[f.jsonName] = this.field(f);
    return { type: "object", properties };
  }
}

const ERROR_SCHEMA: Schema = {
  type: "object",
  required: ["error", "code", "details", "requestId"],
  properties: {
    error: { type: "string", description: "what went wrong, for a person" },
    code: {
      type: "string",
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
      items: {
        type: "object",
        required: ["field", "message"],
        properties: { field: { type: "string", description: "JSON path, e.g. variants[1].weight" }, message: { type: "string" } },
      },
    },
    requestId: { type: "string" },
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
  const paths: Record<string, Record<string, unknown>> = {};
  const errorResponses = Object.fromEntries(
    Object.entries(ERRORS).map(([status, description]) => [
      status,
      { description, content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } },
    ]),
  );
  for (const route of routes) {
    const path = route.path.replace(/:([A-Za-z]+)/g, "{$1}");
    const pathParams = [...route.path.matchAll(/:([A-Za-z]+)/g)].map((m) => ({
      name: m[1],
      in: "path",
      required: true,
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
      description: `${
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
      operation.requestBody = { required: true, content: { "application/json": { schema: components.ref(route.body) } } };
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
