// Every catalog resource, in the order a catalog is written: each after what it refers to.

import type { CatalogDocument } from "../../../gen/kaireon/v1/catalog_pb.ts";
import type { ResourceKind } from "../resources.ts";
import { categoryKind } from "./category.ts";
import { channelKind, placementKind } from "./channel.ts";
import { contactPolicyKind } from "./contact-policy.ts";
import { creativeKind } from "./creative.ts";
import { decisionFlowKind } from "./decision-flow.ts";
import { experimentKind } from "./experiment.ts";
import { offerKind } from "./offer.ts";
import { outcomeTypeKind } from "./outcome-type.ts";
import { qualificationRuleKind } from "./qualification-rule.ts";

export interface CatalogPart {
  /** The CatalogDocument field holding this kind. */
  field: Exclude<keyof CatalogDocument, "$typeName" | "$unknown">;
  kind: ResourceKind;
}

export const CATALOG_PARTS: CatalogPart[] = [
  { field: "outcomeTypes", kind: outcomeTypeKind },
  { field: "categories", kind: categoryKind },
  { field: "channels", kind: channelKind },
  { field: "placements", kind: placementKind },
  { field: "offers", kind: offerKind },
  { field: "creatives", kind: creativeKind },
  { field: "experiments", kind: experimentKind },
  { field: "contactPolicies", kind: contactPolicyKind },
  { field: "qualificationRules", kind: qualificationRuleKind },
  { field: "decisionFlows", kind: decisionFlowKind },
];

export {
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
};
