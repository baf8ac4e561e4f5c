// Tenant-wide qualification rules: a segment, a condition or a propensity floor that a set of offers
// (by id or category; every offer when none is named) asks of a customer, beside each offer's own.

import { create } from "@bufbuild/protobuf";
import { QualificationRuleSchema, QualificationRuleService } from "../../../gen/kaireon/v1/qualification_rule_pb.ts";
import type { ResourceKind } from "../resources.ts";
import { formula, fraction, idList, oneOf, referencesExist, requireText } from "./checks.ts";

export const qualificationRuleKind: ResourceKind = {
  noun: "qualification_rule",
  label: "Qualification rule",
  schema: QualificationRuleSchema,
  service: QualificationRuleService,
  table: { table: "qualification_rules", keys: ["id"], columns: ["name", "status", "definition"] },
  keyFields: ["qualificationRuleId"],
  normalize(r) {
    r.status ||= "active";
  },
  async validate(r, v, refs) {
    requireText(v, "name", r.name);
    oneOf(v, "status", r.status, ["active", "inactive"]);
    if (!r.segment && !r.condition && r.minPropensity === undefined) {
      v.add("condition", "a rule needs a segment, a condition or a minPropensity");
    }
    v.maxLength("segment", r.segment, 64);
    // Bare names read each offer's own fields, which differ from offer to offer: only the roots and
    // offer.* are checked here.
    if (r.condition) formula(v, "condition", r.condition, null);
    fraction(v, "minPropensity", r.minPropensity);
    idList(v, "offerIds", r.offerIds);
    idList(v, "categoryIds", r.categoryIds);
    await referencesExist(v, refs, "offerIds", "offers", r.offerIds, "offer");
    await referencesExist(v, refs, "categoryIds", "categories", r.categoryIds, "category");
  },
  toRow: (r) => {
    const definition: Record<string, unknown> = {};
    if (r.offerIds.length > 0) definition.offerIds = r.offerIds;
    if (r.categoryIds.length > 0) definition.categoryIds = r.categoryIds;
    if (r.segment) definition.segment = r.segment;
    if (r.condition) definition.condition = r.condition;
    if (r.minPropensity !== undefined) definition.minPropensity = r.minPropensity;
    return { id: r.qualificationRuleId, name: r.name, status: r.status, definition };
  },
  fromRowFields: (row) => {
    const d = row.definition as Record<string, unknown>;
    return create(QualificationRuleSchema, {
      qualificationRuleId: row.id as string,
      name: row.name as string,
      status: row.status as string,
      offerIds: (d.offerIds as string[] | undefined) ?? [],
      categoryIds: (d.categoryIds as string[] | undefined) ?? [],
      segment: (d.segment as string | undefined) ?? "",
      condition: (d.condition as string | undefined) ?? "",
      minPropensity: d.minPropensity as number | undefined,
    });
  },
};
