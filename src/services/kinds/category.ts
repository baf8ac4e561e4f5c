// Categories: custom fields and computed-field formulas shared by their offers.

import { create, type JsonObject } from "@bufbuild/protobuf";
import { CategorySchema, CategoryService } from "../../../gen/kaireon/v1/category_pb.ts";
import { liveReferences } from "../../store/resources.ts";
import { type ResourceKind, stillReferenced } from "../resources.ts";
import { computedFields, customFields, requireText, visibleNames } from "./checks.ts";

export const categoryKind: ResourceKind = {
  noun: "category",
  label: "Category",
  schema: CategorySchema,
  service: CategoryService,
  table: { table: "categories", keys: ["id"], columns: ["name", "fields", "computed"] },
  keyFields: ["categoryId"],
  normalize(r) {
    r.fields ??= {};
  },
  async validate(r, v) {
    requireText(v, "name", r.name);
    customFields(v, "fields", r.fields);
    // A category's formulas see only the category: its offers may add fields, but not every offer does.
    computedFields(v, "computed", r.computed, visibleNames({ fields: r.fields, computed: r.computed }), r.fields);
  },
  toRow: (r) => ({ id: r.categoryId, name: r.name, fields: r.fields, computed: r.computed }),
  fromRowFields: (row) =>
    create(CategorySchema, {
      categoryId: row.id as string,
      name: row.name as string,
      fields: row.fields as JsonObject,
      computed: row.computed as Record<string, string>,
    }),
  async beforeDelete(tx, tenantId, current) {
    const offers = await liveReferences(tx, "offers", tenantId, { category_id: current.categoryId });
    if (offers.length > 0) throw stillReferenced("Category", current.categoryId, "offers", offers);
    return undefined;
  },
};
