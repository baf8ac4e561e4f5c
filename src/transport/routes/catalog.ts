// The catalog's routes: each resource of the catalog and its rules, and the catalog as one document.

import { create } from "@bufbuild/protobuf";
import {
  CatalogDocumentSchema,
  CatalogService,
  ImportCatalogRequestSchema,
  ImportCatalogResponseSchema,
} from "../../../gen/kaireon/v1/catalog_pb.ts";
import { exportCatalog, importCatalog } from "../../services/catalog.ts";
import type { ServiceDeps } from "../../services/context.ts";
import {
  categoryKind,
  channelKind,
  contactPolicyKind,
  creativeKind,
  offerKind,
  outcomeTypeKind,
  placementKind,
  qualificationRuleKind,
} from "../../services/kinds/index.ts";
import { decodeJsonMessage } from "../json.ts";
import { json, type RestRoute } from "./binding.ts";
import { resourceRoutes } from "./resources.ts";

/** Categories, offers, channels, placements, creatives, contact policies, qualification rules, outcome types, and the whole catalog as a document. */
export function catalogRoutes(deps: ServiceDeps): RestRoute[] {
  const v1 = "/api/v1";
  return [
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
    {
      method: "GET",
      path: `${v1}/catalog`,
      operationId: "exportCatalog",
      rpc: CatalogService.method.exportCatalog,
      summary: "The whole catalog as one document",
      tag: "Catalog",
      response: CatalogDocumentSchema,
      run: async (ctx) => json(CatalogDocumentSchema, (await exportCatalog(deps, ctx)).catalog),
    },
    {
      method: "POST",
      path: `${v1}/catalog/import`,
      operationId: "importCatalog",
      rpc: CatalogService.method.importCatalog,
      summary: "Apply a catalog document: all of it in one transaction, or none of it on any error",
      tag: "Catalog",
      body: CatalogDocumentSchema,
      response: ImportCatalogResponseSchema,
      run: async (ctx, { body }) =>
        json(
          ImportCatalogResponseSchema,
          await importCatalog(deps, ctx, create(ImportCatalogRequestSchema, { catalog: decodeJsonMessage(CatalogDocumentSchema, body) })),
        ),
    },
  ];
}
