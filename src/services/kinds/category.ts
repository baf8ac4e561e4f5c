// Categories: custom fields and computed-field formulas shared by their offers.

import { create, type JsonObject } from "@bufbuild/protobuf";
import { CategorySchema, CategoryService } from "../../../gen/kaireon/v1/category_pb.ts";
import { liveReferences } from "../../store/resources.ts";
import type { CatalogRefs } from "../refs.ts";
import { type ResourceKind, stillReferenced } from "../resources.ts";
import type { Violations } from "../validate.ts";
import { computedFieldCount, computedFields, customFields, MAX_COMPUTED_FIELDS_PER_OFFER, requireText, visibleNames } from "./checks.ts";

/** Offers named in one violation at most; the rest are counted. */
const OFFERS_NAMED = 5;

/**
 * Every offer evaluates its category's computed fields with its own, so a category's are bounded by the
 * per-offer limit, and a change to them must leave each of its offers within it too.
 */
async function computedFieldLimit(v: Violations, refs: CatalogRefs, categoryId: string, computed: Record<string, string>): Promise<void> {
  const count = computedFieldCount(computed);
  if (count > MAX_COMPUTED_FIELDS_PER_OFFER) {
    v.add("computed", `computed: the category has ${count} computed fields, at most ${MAX_COMPUTED_FIELDS_PER_OFFER} allowed`);
    return;
  }
  if (count === 0) return;
  const over: string[] = [];
  for (const offer of await refs.offersComputing(categoryId)) {
    const total = computedFieldCount(offer.computed, computed);
    if (total > MAX_COMPUTED_FIELDS_PER_OFFER) over.push(`${offer.offerId} (${total})`);
  }
  if (over.length === 0) return;
  const more = over.length > OFFERS_NAMED ? ` and ${over.length - OFFERS_NAMED} more` : "";
  v.add(
    "computed",
    `computed: with these, offers ${over.slice(0, OFFERS_NAMED).join(", ")}${more} would have more than ` +
      `${MAX_COMPUTED_FIELDS_PER_OFFER} computed fields each (their own and the category's)`,
  );
}

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
  async validate(r, v, refs) {
    requireText(v, "name", r.name);
    customFields(v, "fields", r.fields);
    // A category's formulas see only the category: its offers may add fields, but not every offer does.
    computedFields(v, "computed", r.computed, visibleNames({ fields: r.fields, computed: r.computed }), r.fields);
    await computedFieldLimit(v, refs, r.categoryId, r.computed);
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
