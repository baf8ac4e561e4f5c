// What a REST route is, and the helpers that bind JSON bodies, path and query parameters to the
// contract's messages.

import { type DescMessage, type DescMethod, type MessageShape, ScalarType, toJson } from "@bufbuild/protobuf";
import { type Timestamp, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { validationError } from "../../errors.ts";
import type { CallContext } from "../../services/context.ts";
import { jsonNameOf, type ResourceKind } from "../../services/resources.ts";
import { inlineOneofs } from "../inline-oneofs.ts";
import { decodeJsonMessage } from "../json.ts";
import { type CallRule, pathOf, ruleOf } from "../call-rules.ts";

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
  /**
   * The contract's RPC this route serves, the same call over gRPC and Connect. Its call rule is the
   * route's (key scope, rate-limit window, body limit: transport/call-rules.ts); its messages are the
   * route's body and answer, or a field of them (a created offer answers the Offer, not its wrapper).
   */
  rpc: DescMethod;
  /**
   * A REST-only operation (the streamed customer import): it has no RPC of its own and is admitted under
   * the rule of `rpc`, the RPC it does in bulk.
   */
  restOnly?: true;
  summary: string;
  tag: string;
  /** The message the JSON body decodes into, "ndjson" for a streamed import, or none. */
  body?: DescMessage | "ndjson";
  /** For an NDJSON body: the message each line decodes into (the customer import's lines have no message). */
  ndjsonLine?: DescMessage;
  query?: QueryParam[];
  /** The message of the answer's JSON body; with ndjsonAnswer, of each line of an NDJSON answer. */
  response: DescMessage;
  ndjsonAnswer?: true;
  run(ctx: CallContext, input: RouteInput): Promise<unknown>;
}

/** A message as REST answers it: its protobuf JSON with every field, oneof cases of messages written inline. */
export const json = <D extends DescMessage>(schema: D, message: MessageShape<D> | undefined) =>
  message ? inlineOneofs(schema, toJson(schema, message, { alwaysEmitImplicit: true })) : null;

/** Query parameters of a list request, from its message: limit, cursor and any filter the path does not fix. */
export function listQuery(schema: DescMessage, pathParams: string[]): QueryParam[] {
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
export function fromQuery(
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

export function pathParamsOf(path: string): string[] {
  return [...path.matchAll(/:([A-Za-z]+)/g)].map((m) => m[1] as string);
}

/** The body of a create or update with the key taken from the path; a body that names another key is refused. */
export function withPathKey(kind: ResourceKind, body: string, params: Record<string, string>, requireAll: boolean) {
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

export const lowerFirst = (s: string) => s.charAt(0).toLowerCase() + s.slice(1);

/** An optional whole-number query parameter. */
export function wholeParam(query: Record<string, string | undefined>, name: string): number | undefined {
  const raw = query[name];
  if (raw === undefined || raw === "") return undefined;
  if (!/^\d{1,9}$/.test(raw)) throw validationError([{ field: name, message: `${name} must be a whole number` }]);
  return Number(raw);
}

/** An RFC 3339 timestamp in the query, or undefined when absent. */
export function timestampParam(query: Record<string, string | undefined>, name: string): Timestamp | undefined {
  const raw = query[name];
  if (raw === undefined || raw === "") return undefined;
  const at = /^\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]\d{2}:\d{2}))?$/.test(raw) ? new Date(raw) : new Date(Number.NaN);
  if (Number.isNaN(at.getTime())) throw validationError([{ field: name, message: `${name} must be an RFC 3339 timestamp` }]);
  return timestampFromDate(at);
}

/** A resource service's method by name (CreateOffer, ListOffers…); the contract has each, or it is a wiring bug. */
export function methodOf(kind: ResourceKind, name: string): DescMethod {
  const m = kind.service.methods.find((x) => x.name === name);
  if (!m) throw new Error(`${kind.service.typeName} has no ${name} method`);
  return m;
}

/** The call rule of a route: its RPC's, from the one table every transport admits calls by. */
export function ruleOfRoute(route: RestRoute): CallRule {
  const rule = ruleOf(route.rpc);
  if (!rule) throw new Error(`no call rule for ${pathOf(route.rpc)} (route ${route.method} ${route.path})`);
  return rule;
}
