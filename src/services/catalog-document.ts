// A catalog written as engine definitions (the demo, tests, benchmarks) turned into the contract's
// catalog document, so that it is written the one way every catalog is: through the catalog import, with
// every check of every resource kind.

import { fromJson, type JsonObject } from "@bufbuild/protobuf";
import { type CatalogDocument, CatalogDocumentSchema } from "../../gen/kaireon/v1/catalog_pb.ts";
import type { CatalogDefinition, FlowDefinition } from "../decisioning/definitions.ts";

/** A flow to be published as written. */
export interface PublishedFlowDef {
  id: string;
  name: string;
  isDefault: boolean;
  definition: FlowDefinition;
}

export type CatalogSeed = Pick<CatalogDefinition, "categories" | "offers" | "channels" | "placements" | "creatives" | "experiments"> & {
  flows: PublishedFlowDef[];
};

export function catalogDocumentOf(seed: CatalogSeed): CatalogDocument {
  const json = {
    categories: seed.categories.map((c) => ({ categoryId: c.id, name: c.name, fields: c.fields, computed: c.computed })),
    offers: seed.offers.map((o) => ({
      offerId: o.id,
      categoryId: o.categoryId,
      name: o.name,
      description: o.description,
      status: o.status,
      startsAt: o.startsAt?.toISOString(),
      endsAt: o.endsAt?.toISOString(),
      priority: o.priority,
      businessValue: o.businessValue,
      weight: o.weight,
      mandatory: o.mandatory,
      fields: o.fields,
      computed: o.computed,
      qualification: o.qualification,
    })),
    channels: seed.channels.map((c) => ({ channelId: c.id, name: c.name, type: c.type, implicitImpressions: c.implicitImpressions })),
    placements: seed.placements.map((p) => ({ channelId: p.channelId, placementId: p.id, name: p.name })),
    creatives: seed.creatives.map((c) => ({
      creativeId: c.id,
      offerId: c.offerId,
      channelId: c.channelId,
      placementId: c.placementId ?? "",
      name: c.name,
      status: c.status,
      content: c.content,
    })),
    experiments: seed.experiments.map((e) => ({
      experimentId: e.id,
      offerId: e.offerId,
      channelId: e.channelId,
      status: e.status,
      goal: "conversion",
      variants: e.variants,
    })),
    decisionFlows: seed.flows.map((f) => ({
      decisionFlowId: f.id,
      name: f.name,
      isDefault: f.isDefault,
      definition: f.definition,
      // Published as written.
      publishedVersion: 1,
    })),
  };
  return fromJson(CatalogDocumentSchema, JSON.parse(JSON.stringify(json)) as JsonObject);
}
