// The OpenAPI 3.1 document of the REST API, generated from the route table (transport/routes/) and the
// contract's message descriptors: every route, its parameters, and the JSON of every message it reads or
// answers, written as the proto3 JSON mapping writes it.

import { DecisionMadeV1Schema, EventSchema, InteractionRecordedV1Schema } from "../../gen/kaireon/v1/events_pb.ts";
import { type DescEnum, type DescField, type DescMessage, ScalarType, toJson } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { CatalogDocumentSchema } from "../../gen/kaireon/v1/catalog_pb.ts";
import { DEMO_TENANT, demoCatalog, demoCustomers, TUTORIAL_RECOMMEND_REQUEST, TUTORIAL_RESPOND_REQUEST } from "../demo.ts";
import { type ErrorCode, httpStatusOf } from "../errors.ts";
import { grpcStatusName } from "../request-log.ts";
import { SCOPES } from "../services/api-keys.ts";
import { catalogDocumentOf } from "../services/catalog-document.ts";
import { PLANS } from "../services/tenant-settings.ts";
import { pathOf } from "./call-rules.ts";
import { isInlineOneof } from "./inline-oneofs.ts";
import { connectCodeOf } from "./connect.ts";
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
    for (const f of message.fields) {
      if (f.oneof && isInlineOneof(f.oneof) && f.fieldKind === "message") {
        // REST writes the case's fields beside this message's own (transport/inline-oneofs.ts).
        const inner = this.object(f.message).properties as Record<string, Schema>;
        for (const [name, schema] of Object.entries(inner)) {
          const said = properties[name]?.description;
          const own = `${f.jsonName}: ${String(schema.description ?? "")}`;
          properties[name] = { ...schema, description: said ? `${said}; ${own}` : own };
        }
      } else properties[f.jsonName] = withDescription(this.field(f), commentOf(`${message.typeName}.${f.name}`));
    }
    const required = message.fields.filter((f) => !f.oneof && isRequired(f)).map((f) => f.jsonName);
    const description = commentOf(message.typeName);
    return { type: "object", ...(description ? { description } : {}), ...(required.length > 0 ? { required } : {}), properties };
  }
}

const schemaName = (message: DescMessage) => message.typeName.replace(/^kaireon\.v1\./, "");

/** What each code of the closed set means to a caller; the HTTP status and gRPC code come from their maps. */
const ERROR_MEANINGS: Record<ErrorCode, string> = {
  VALIDATION_ERROR: "The request is not valid; details name each field refused",
  UNAUTHORIZED: "Missing or invalid API key, or no x-tenant-id",
  FORBIDDEN: "The key lacks the scope, or the tenant is suspended",
  NOT_FOUND: "Not found, or another tenant's",
  METHOD_NOT_ALLOWED: "A REST path sent a method it does not serve; Allow lists those it does (REST only: an RPC has no method)",
  CONFLICT: "Already exists, still referenced, or changed since read (a stale version)",
  PAYLOAD_TOO_LARGE: "Body over the limit",
  UNSUPPORTED_MEDIA_TYPE: "A JSON route sent a body declared as something else",
  REQUEST_TIMEOUT: "The body did not arrive within REQUEST_READ_TIMEOUT_MS",
  RATE_LIMITED: "Rate limit reached; see Retry-After",
  QUOTA_EXCEEDED: "Monthly decision quota reached; see Retry-After",
  INTERNAL_ERROR: "Unexpected failure",
  UNAVAILABLE: "A dependency is down; retry later",
};

/** A CONFLICT from a concurrent change (a stale version) is aborted on gRPC and Connect: re-read and retry. */
const ALSO_ON_GRPC: Partial<Record<ErrorCode, { code: Code; when: string }>> = {
  CONFLICT: { code: Code.Aborted, when: "for a stale version" },
};

const ERROR_CODES = Object.keys(httpStatusOf) as ErrorCode[];

const grpcCode = (code: Code) => ({ grpcCode: code, grpcStatus: grpcStatusName(code), connectCode: grpcStatusName(code).toLowerCase() });

/** The error table: every code, its HTTP status, its gRPC and Connect code, and what it means. */
export function errorTable() {
  return ERROR_CODES.map((code) => {
    const also = ALSO_ON_GRPC[code];
    return {
      code,
      httpStatus: httpStatusOf[code],
      ...grpcCode(connectCodeOf[code]),
      ...(also ? { also: { ...grpcCode(also.code), when: also.when } } : {}),
      meaning: ERROR_MEANINGS[code],
    };
  }).sort((a, b) => a.httpStatus - b.httpStatus);
}

const ERROR_SCHEMA: Schema = {
  type: "object",
  required: ["error", "code", "details", "requestId"],
  properties: {
    error: { type: "string", description: "What went wrong, for a person." },
    code: {
      type: "string",
      description: "What went wrong, for a program: one of a closed set.",
      enum: ERROR_CODES,
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

/**
 * The error answers every operation may give, by HTTP status. METHOD_NOT_ALLOWED is left out: it answers a
 * method a path does not serve, never one of the documented operations.
 */
function errorResponses(): Record<string, string> {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of ERROR_CODES) {
    if (code === "METHOD_NOT_ALLOWED") continue;
    byStatus.set(httpStatusOf[code], [...(byStatus.get(httpStatusOf[code]) ?? []), code]);
  }
  return Object.fromEntries(
    [...byStatus].map(([status, codes]) => [String(status), `${codes.map((c) => ERROR_MEANINGS[c]).join("; ")} (${codes.join(", ")})`]),
  );
}

/** The tutorial's Recommend and Respond requests, which the demo tenant answers as the tutorial shows. */
const TUTORIAL_EXAMPLES: Record<string, unknown> = {
  "kaireon.v1.RecommendRequest": TUTORIAL_RECOMMEND_REQUEST,
  "kaireon.v1.RespondRequest": TUTORIAL_RESPOND_REQUEST,
};

/** The demo catalog as the export answers it. */
const demoDocument = () => toJson(CatalogDocumentSchema, catalogDocumentOf(demoCatalog)) as Record<string, Json[] | undefined>;

type Json = Record<string, unknown>;

/** Kinds the demo catalog has none of: the values a bank would give them. */
const SEEDS: Record<string, Json> = {
  "kaireon.v1.ContactPolicy": {
    contactPolicyId: "cp_weekly_email_cap",
    name: "At most three offers a week by email",
    status: "active",
    type: "frequency_cap",
    scope: "channel",
    max: 3,
    window: "week",
    channelIds: ["ch_email"],
  },
  "kaireon.v1.QualificationRule": {
    qualificationRuleId: "qr_adult_credit",
    name: "Credit offers need an adult with a fair score",
    status: "active",
    categoryIds: ["cat_credit_cards", "cat_loans"],
    condition: "customer.age >= 18 && customer.credit_score >= 620",
  },
  "kaireon.v1.TraceStage": {
    name: "filter",
    duration: 0.4,
    candidatesIn: 15,
    candidatesOut: 13,
    filtered: ["act_home_loan (segment_required)", "act_auto_loan (propensity < 0.4)"],
  },
  "kaireon.v1.OutcomeType": { outcomeType: "apply", classification: "positive" },
  "kaireon.v1.TenantSettings": {
    tenantId: DEMO_TENANT,
    name: "Demo Bank",
    plan: PLANS[1] ?? "professional",
    status: "active",
    rateLimitPerMinute: 6000,
    respondRateLimitPerMinute: 12000,
    adminRateLimitPerMinute: 600,
    monthlyDecisionQuota: "5000000",
    traceSampleRate: 0.05,
    traceRetentionDays: 30,
  },
  "kaireon.v1.ApiKey": {
    apiKeyId: "key_2fk9q7",
    name: "checkout-service",
    scopes: [SCOPES[0] ?? "decide"],
    prefix: "kai_live_2fk9",
    createdAt: "2026-03-01T09:30:00Z",
  },
  "kaireon.v1.CreateApiKeyRequest": { name: "checkout-service", scopes: [SCOPES[0] ?? "decide"], expiresAt: "2027-03-01T00:00:00Z" },
  "kaireon.v1.CreateTenantApiKeyRequest": { tenantId: "acme_bank", name: "acme-admin", scopes: [...SCOPES] },
  "kaireon.v1.PublishDecisionFlowRequest": { version: 2 },
  "kaireon.v1.RollBackDecisionFlowRequest": { toVersion: 1, version: 3 },
};

/** A seed per message: the tutorial's requests, the first of each kind of the demo catalog, and the kinds above. */
function seeds(): Record<string, unknown> {
  const demo = demoDocument();
  const out: Record<string, unknown> = { ...SEEDS, ...TUTORIAL_EXAMPLES };
  for (const f of CatalogDocumentSchema.fields) {
    const first = demo[f.jsonName]?.[0];
    if (f.fieldKind === "list" && f.listKind === "message" && first) out[f.message.typeName] = first;
  }
  const customer = demoCustomers(0)[0];
  if (customer) {
    out["kaireon.v1.Customer"] = { customerId: customer.customer_id, attributes: customer.attributes, segments: customer.segments };
    out["kaireon.v1.UpsertCustomerRequest"] = { attributes: customer.attributes, segments: customer.segments };
  }
  // An experiment is created from the demo's; an update stops it.
  const experiment = out["kaireon.v1.Experiment"] as Json | undefined;
  if (experiment) out["kaireon.v1.CreateExperimentRequest"] = { ...experiment, status: "draft" };
  out["kaireon.v1.UpdateExperimentRequest"] = { status: "stopped", version: 2 };
  out["kaireon.v1.CatalogDocument"] = demo;
  return out;
}

/** The id of each kind the demo catalog holds, by the name of its key field: the value a sample id takes. */
function demoIds(): Record<string, string> {
  const ids: Record<string, string> = { customerId: "cust_12345", traceId: "trace_abc123", tenantId: DEMO_TENANT, requestId: "req_7f3a9c" };
  for (const list of Object.values(demoDocument())) {
    for (const [k, v] of Object.entries(list?.[0] ?? {})) if (/Id$/.test(k) && typeof v === "string") ids[k] ??= v;
  }
  return ids;
}

const SAMPLE_TIME = "2026-03-01T09:30:00Z";

/** A value for a field no seed gives, chosen by its name and type: what such a field holds in an answer. */
function sampleOf(types: string[], name: string, schema: Schema, ids: Record<string, string>): unknown {
  const type = types.find((t) => t !== "null");
  if (Array.isArray(schema.enum)) return schema.enum[0];
  const description = String(schema.description ?? "");
  if (type === "string" || type === undefined) {
    if (name in ids) return ids[name];
    if (name === "id") return "int_8d2c41";
    if (/At$/.test(name) || schema.format === "date-time") return SAMPLE_TIME;
    if (/seconds with an s suffix/.test(description)) return "1.5s";
    if (schema.format === "int64") return /Quota/.test(name) ? "5000000" : "12";
    if (/Id$/.test(name)) return `${name.slice(0, -2).replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)}_example`;
    if (/^(status)$/.test(name)) return "active";
    if (/cursor/i.test(name)) return "eyJhZnRlciI6ImFjdF9jYXNoYmFjayJ9";
    if (/^key$/.test(name)) return "kai_live_2fk9q7xg3m8w1p0r5t6y";
    if (/^(error|message)$/.test(name)) return "customerId is required";
    if (/condition|when|formula/i.test(name)) return "customer.loyalty_score >= 80";
    if (/action/.test(name)) return "offer.update";
    if (/resourceType|kind/.test(name)) return "offer";
    if (/variant/i.test(name)) return "control";
    if (/goal/.test(name)) return "conversion";
    if (/segment/i.test(name)) return "card_member";
    if (/name/i.test(name)) return "Platinum Rewards Card";
    if (/outcome/i.test(name)) return "click";
    if (/prefix/.test(name)) return "kai_live_2fk9";
    return type === undefined ? "gold" : name;
  }
  if (type === "integer") {
    if (/^version$|Version$/.test(name)) return 1;
    if (/rank|phase|line|degrees/i.test(name)) return 1;
    if (/weight/.test(name)) return 50;
    if (/impressions|processed|succeeded/i.test(name)) return 1200;
    if (/conversions|created|updated/i.test(name)) return 36;
    if (/Days$/.test(name)) return 30;
    if (/PerMinute$/.test(name)) return 6000;
    return 2;
  }
  if (type === "number") {
    if (/duration/i.test(name)) return 1.8;
    if (/rate|score|propensity|pValue|low|high|uplift|relevance/i.test(name)) return 0.42;
    return 3.5;
  }
  if (type === "boolean") return /mismatch|significant|truncated|deleted/i.test(name) ? false : true;
  if (type === "array") return [];
  if (type === "object") return {};
  return null;
}

/**
 * Fills a schema of the document from a seed: the seed's values where they fit the schema, a sample where
 * it has none. A request example keeps what the seed sends (and the required fields); an answer's names
 * every field, down to a few levels, so a reader sees the whole shape.
 */
class ExampleBuilder {
  constructor(
    private readonly schemas: Record<string, Schema>,
    private readonly seedOf: Record<string, unknown>,
    private readonly ids: Record<string, string>,
  ) {}

  build(schema: Schema, seed: unknown, full: boolean): unknown {
    return this.fill(schema, seed, "", full, 0);
  }

  private fill(schema: Schema, seed: unknown, name: string, full: boolean, depth: number): unknown {
    if (typeof schema.$ref === "string") {
      const component = schema.$ref.split("/").pop() as string;
      const target = this.schemas[component] ?? {};
      return this.fill(target, seed ?? this.seedOf[`kaireon.v1.${component}`], name, full, depth);
    }
    const types = schema.type === undefined ? [] : ([] as string[]).concat(schema.type as string | string[]);
    const kind = seed === null ? "null" : Array.isArray(seed) ? "array" : typeof seed;
    const fits = seed !== undefined && (types.length === 0 || types.some((t) => t === kind || (t === "integer" && Number.isInteger(seed))));
    if (types.includes("object") && schema.properties) {
      return this.object(schema, fits ? (seed as Json) : undefined, full, depth);
    }
    if (types.includes("array")) {
      const items = (schema.items ?? {}) as Schema;
      if (fits) return (seed as unknown[]).map((v) => this.fill(items, v, name, full, depth + 1));
      const itemSeed = typeof items.$ref === "string" ? this.seedOf[`kaireon.v1.${items.$ref.split("/").pop()}`] : undefined;
      if (depth > 3 && itemSeed === undefined) return [];
      return [this.fill(items, itemSeed, name.replace(/s$/, ""), full, depth + 1)];
    }
    if (types.includes("object")) {
      const values = schema.additionalProperties;
      if (fits) {
        if (typeof values !== "object" || values === null) return seed;
        return Object.fromEntries(Object.entries(seed as Json).map(([k, v]) => [k, this.fill(values as Schema, v, k, full, depth + 1)]));
      }
      if (typeof values === "object" && values !== null)
        return { [mapKeyOf(name)]: this.fill(values as Schema, undefined, name, full, depth + 1) };
      return mapSampleOf(name);
    }
    if (fits && !(Array.isArray(schema.enum) && !schema.enum.includes(seed))) return seed;
    return sampleOf(types, name, schema, this.ids);
  }

  private object(schema: Schema, seed: Json | undefined, full: boolean, depth: number): Json {
    const properties = (schema.properties ?? {}) as Record<string, Schema>;
    const required = (schema.required as string[] | undefined) ?? [];
    const out: Json = {};
    for (const [k, property] of Object.entries(properties)) {
      const given = seed?.[k];
      // A live resource is neither deleted nor revoked; an answer shows those only where a seed does.
      const shown = full && k !== "deletedAt" && k !== "revokedAt" && (depth < 3 || !isObjectish(property));
      const wanted = given !== undefined || required.includes(k) || shown;
      if (wanted) out[k] = this.fill(property, given, k, full, depth + 1);
    }
    return out;
  }
}

const isObjectish = (schema: Schema) => typeof schema.$ref === "string" || schema.type === "object" || schema.type === "array";

/** A key a map field holds, by the map's name. */
const mapKeyOf = (name: string) => (/scores/.test(name) ? "act_platinum_cc" : /computed/.test(name) ? "personalized_rate" : "variant_a");

/** A free-form object (a Struct) where no seed gives one. */
function mapSampleOf(name: string): Json {
  if (/attributes/.test(name)) return { tier: "gold", loyalty_score: 85 };
  if (/content/.test(name)) return { subject: "Earn 3x Rewards", ctaText: "Apply Now" };
  if (/personalization|computed/.test(name)) return { personalized_rate: 17.49 };
  if (/definition/i.test(name)) return { score: { method: "prie" } };
  if (/details/.test(name)) return { field: "priority", from: 90, to: 95 };
  if (/fields/.test(name)) return { base_rate: 19.99 };
  return { channel: "ch_email" };
}

/**
 * The body an operation is shown with. A create sends the seed; a replace the same resource without the key
 * its path names, and with the version read; a patch one field changed, and the version.
 */
function requestSeed(route: RestRoute, message: DescMessage, pathNames: string[], seedOf: Record<string, unknown>): unknown {
  const seed = seedOf[message.typeName];
  if (route.operationId === "createTenant") return { ...(seed as Json), tenantId: "acme_bank", name: "Acme Bank" };
  if (route.method === "POST" || seed === undefined || typeof seed !== "object") return seed;
  // The settings' tenant is the caller's: the body does not name it.
  const resource =
    route.path === "/api/v1/settings" ? Object.fromEntries(Object.entries(seed as Json).filter(([k]) => k !== "tenantId")) : (seed as Json);
  const hasVersion = message.fields.some((f) => f.jsonName === "version");
  if (route.method === "PUT") {
    const body = Object.fromEntries(Object.entries(resource).filter(([k]) => !pathNames.includes(k)));
    return hasVersion ? { ...body, version: 1 } : body;
  }
  if (route.method === "PATCH") {
    if (message.typeName === "kaireon.v1.TenantSettings") return { traceSampleRate: 0.1, version: 1 };
    if (message.typeName === "kaireon.v1.UpdateExperimentRequest") return resource;
    const changed = changedField(resource);
    return { ...changed, ...(hasVersion ? { version: 1 } : {}) };
  }
  return seed;
}

/** One field of a resource, changed as a marketer would: a priority raised, else a name reworded. */
function changedField(resource: Json): Json {
  if (typeof resource.priority === "number") return { priority: resource.priority + 5 };
  if (typeof resource.max === "number") return { max: resource.max + 1 };
  if (typeof resource.name === "string") return { name: `${resource.name} (spring)` };
  if (typeof resource.classification === "string") return { classification: "neutral" };
  return {};
}

const EVENT_MESSAGES: [string, DescMessage][] = [
  ["decision.made.v1", DecisionMadeV1Schema],
  ["interaction.recorded.v1", InteractionRecordedV1Schema],
];

/**
 * What the service POSTs to a tenant's webhooks (and publishes on the event stream): the event envelope
 * (kaireon.v1.Event) with `data` of the type's message, as JSON Schema in the document's components.
 */
function eventWebhooks(components: Components): Record<string, unknown> {
  const envelope = components.ref(EventSchema);
  const out: Record<string, unknown> = {};
  for (const [type, message] of EVENT_MESSAGES) {
    out[type] = {
      post: {
        operationId: `event_${type.replace(/\./g, "_")}`,
        summary: commentOf(message.typeName).split(/;|\. /)[0],
        description:
          `${commentOf(message.typeName)}\n\nSent to each active webhook subscribed to ${type}, signed with ` +
          'Kaireon-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>; ' +
          "any 2xx answer acknowledges it. Also the payload of the event stream (EVENT_STREAM).",
        requestBody: {
          required: true,
          content: {
            "application/json": {
              schema: {
                allOf: [
                  envelope,
                  {
                    type: "object",
                    required: ["id", "type", "tenantId", "occurredAt", "data"],
                    properties: { type: { const: type }, data: components.ref(message) },
                  },
                ],
              },
            },
          },
        },
        responses: { "2XX": { description: "Accepted: the event will not be sent to this webhook again" } },
      },
    };
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
  /** What it answers, when the route itself knows (else a known example by operation, or none). */
  example?: unknown;
}

/**
 * What the JSON routes outside the API answer. This document and the non-JSON answers (metrics text, the
 * page) go without: an example of them would be the thing itself.
 */
const PUBLIC_EXAMPLES: Record<string, unknown> = {
  getHealth: { status: "ok" },
  getReadiness: { status: "ok", checks: { database: "ok", redis: "ok" }, details: {} },
};

export function openApiDocument(routes: RestRoute[], publicRoutes: PublicRoute[] = []): Record<string, unknown> {
  const components = new Components();
  const seedOf = seeds();
  const ids = demoIds();
  const paths: Record<string, Record<string, unknown>> = {};
  const answerExamples: { media: Schema; seed: unknown }[] = [];
  const bodyExamples: { media: Schema; seed: unknown }[] = [];
  const errorAnswers = Object.fromEntries(
    Object.entries(errorResponses()).map(([status, description]) => [
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
    const okMedia: Schema = { schema: components.ref(route.response) };
    if (!route.ndjsonAnswer) answerExamples.push({ media: okMedia, seed: undefined });
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
        "200": route.ndjsonAnswer
          ? { description: "OK: NDJSON, one answer per line of the request, in order", content: { "application/x-ndjson": okMedia } }
          : { description: "OK", content: { "application/json": okMedia } },
        ...errorAnswers,
      },
    };
    if (route.body === "ndjson") {
      operation.requestBody = {
        required: true,
        content: {
          "application/x-ndjson": {
            schema: route.ndjsonLine
              ? components.ref(route.ndjsonLine)
              : { type: "string", description: 'one {"customerId", "attributes", "segments"} per line' },
          },
        },
      };
    } else if (route.body) {
      const media: Schema = { schema: bodySchema(components, route, route.body, pathNames) };
      bodyExamples.push({ media, seed: requestSeed(route, route.body, pathNames, seedOf) });
      operation.requestBody = { required: true, content: { "application/json": media } };
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
      responses: {
        "200": {
          description: "OK",
          content: {
            [route.contentType]: {
              schema: {},
              ...(route.example !== undefined
                ? { example: route.example }
                : route.operationId in PUBLIC_EXAMPLES
                  ? { example: PUBLIC_EXAMPLES[route.operationId] }
                  : {}),
            },
          },
        },
      },
    };
  }
  const webhooks = eventWebhooks(components);
  // Examples last: every component the routes reach is known by now.
  const builder = new ExampleBuilder(components.schemas, seedOf, ids);
  for (const { media, seed } of bodyExamples) media.example = builder.build(media.schema as Schema, seed, false);
  for (const { media, seed } of answerExamples) media.example = builder.build(media.schema as Schema, seed, true);
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
    webhooks,
    "x-errors": errorTable(),
    components: {
      securitySchemes: {
        tenantId: { type: "apiKey", in: "header", name: "x-tenant-id" },
        apiKey: { type: "apiKey", in: "header", name: "x-api-key" },
      },
      schemas: { ...components.schemas, Error: ERROR_SCHEMA },
    },
  };
}
