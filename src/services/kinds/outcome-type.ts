// Outcome types a tenant registers beyond the built-in ones, classified for learning.

import { create } from "@bufbuild/protobuf";
import { OutcomeTypeSchema, OutcomeTypeService } from "../../../gen/kaireon/v1/outcome_type_pb.ts";
import type { ResourceKind } from "../resources.ts";
import { OUTCOME_TYPES } from "../respond.ts";
import { oneOf } from "./checks.ts";

export const CLASSIFICATIONS = ["positive", "negative", "neutral"] as const;

export const outcomeTypeKind: ResourceKind = {
  noun: "outcome_type",
  label: "Outcome type",
  schema: OutcomeTypeSchema,
  service: OutcomeTypeService,
  table: { table: "outcome_types", keys: ["id"], columns: ["classification"] },
  keyFields: ["outcomeType"],
  idPattern: { pattern: /^[a-z][a-z0-9_]{0,63}$/, message: "must be a lowercase letter, then up to 63 lowercase letters, digits or '_'" },
  normalize() {},
  async validate(r, v) {
    if (r.outcomeType in OUTCOME_TYPES) v.add("outcomeType", `${r.outcomeType} is a built-in outcome type`);
    oneOf(v, "classification", r.classification, CLASSIFICATIONS);
  },
  toRow: (r) => ({ id: r.outcomeType, classification: r.classification }),
  fromRowFields: (row) => create(OutcomeTypeSchema, { outcomeType: row.id as string, classification: row.classification as string }),
};
