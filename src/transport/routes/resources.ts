// The routes of one resource kind: create, list, get, replace, patch and delete, from its gRPC service.

import { create, toJson } from "@bufbuild/protobuf";
import { validationError } from "../../errors.ts";
import type { ServiceDeps } from "../../services/context.ts";
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
} from "../../services/resources.ts";
import { parseJsonObject } from "../json.ts";
import { fromQuery, json, listQuery, lowerFirst, methodOf, pathParamsOf, type RestRoute, wholeParam, withPathKey } from "./binding.ts";

export interface ResourceRouteOptions {
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

/** Create, list, get, replace, patch and delete of one resource kind. */
export function resourceRoutes(deps: ServiceDeps, o: ResourceRouteOptions): RestRoute[] {
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
      rpc: methodOf(kind, `Create${M}`),
      summary: `Create ${article(noun)} ${noun}`,
      tag: o.tag,
      body: kind.schema,
      response: kind.schema,
      run: async (ctx, { body, params }) => out(await createResource(deps, ctx, kind, withPathKey(kind, body, params, false))),
    },
    {
      method: "GET",
      path: o.collection,
      operationId: lowerFirst(list.name),
      rpc: methodOf(kind, `${list.name}`),
      summary: `List ${o.plural}, in id order, a page at a time`,
      tag: o.tag,
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
      rpc: methodOf(kind, `Get${M}`),
      summary: `Get ${article(noun)} ${noun}`,
      tag: o.tag,
      response: kind.schema,
      run: async (ctx, { params }) => out(await getResource(deps, ctx, kind, keyFrom(params))),
    },
    {
      method: "PUT",
      path: item,
      operationId: `replace${M}`,
      rpc: methodOf(kind, `Update${M}`),
      summary: `Replace ${article(noun)} ${noun} (send the version you read)`,
      tag: o.tag,
      body: kind.schema,
      response: kind.schema,
      run: async (ctx, { body, params }) => out(await updateResource(deps, ctx, kind, withPathKey(kind, body, params, true), [])),
    },
    {
      method: "PATCH",
      path: item,
      operationId: `update${M}`,
      rpc: methodOf(kind, `Update${M}`),
      summary: `Change the top-level fields the body names (send the version you read)`,
      tag: o.tag,
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
      rpc: methodOf(kind, `Delete${M}`),
      summary: `Delete ${article(noun)} ${noun}`,
      tag: o.tag,
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
