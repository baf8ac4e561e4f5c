// Offers: schedule, value, priority, custom and computed fields, and their own qualification.

import { create, fromJson, type JsonObject, type JsonValue, toJson } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { OfferSchema, OfferService, type Qualification, QualificationSchema } from "../../../gen/kaireon/v1/offer_pb.ts";
import { softDeleteWhere } from "../../store/resources.ts";
import { type Resource, type ResourceKind, stillReferenced } from "../resources.ts";
import type { Violations } from "../validate.ts";
import {
  computedFieldCount,
  computedFields,
  customFields,
  formula,
  fraction,
  MAX_COMPUTED_FIELDS_PER_OFFER,
  MAX_TEXT_LENGTH,
  oneOf,
  requireText,
  timestampOrder,
  visibleNames,
  wholeNumber,
} from "./checks.ts";

export const OFFER_STATUSES = ["active", "inactive"] as const;
const MAX_FIT_RULES = 20;

function checkQualification(v: Violations, q: Qualification, known: Set<string>): void {
  v.maxLength("qualification.segment", q.segment, 64);
  if (q.condition) formula(v, "qualification.condition", q.condition, known);
  fraction(v, "qualification.minPropensity", q.minPropensity);
  if (q.fit.length > MAX_FIT_RULES) v.add("qualification.fit", `qualification.fit must have at most ${MAX_FIT_RULES} rules`);
  q.fit.forEach((rule, i) => {
    formula(v, `qualification.fit[${i}].when`, rule.when, known);
    fraction(v, `qualification.fit[${i}].relevance`, rule.relevance);
  });
}

const dateOf = (r: Resource, field: string) => (r[field] ? timestampDate(r[field]) : null);

export const offerKind: ResourceKind = {
  noun: "offer",
  label: "Offer",
  schema: OfferSchema,
  service: OfferService,
  table: {
    table: "offers",
    keys: ["id"],
    columns: [
      "category_id",
      "name",
      "description",
      "status",
      "starts_at",
      "ends_at",
      "priority",
      "business_value",
      "weight",
      "mandatory",
      "fields",
      "computed",
      "qualification",
    ],
  },
  keyFields: ["offerId"],
  normalize(r) {
    r.status ||= "active";
    r.priority ??= 50;
    r.businessValue ??= 0;
    r.weight ??= 100;
    r.fields ??= {};
    r.qualification ??= create(QualificationSchema);
  },
  async validate(r, v, refs) {
    requireText(v, "name", r.name);
    v.maxLength("description", r.description, MAX_TEXT_LENGTH);
    oneOf(v, "status", r.status, OFFER_STATUSES);
    wholeNumber(v, "priority", r.priority, 0, 100);
    wholeNumber(v, "weight", r.weight, 0, 100);
    if (!(Number.isFinite(r.businessValue) && r.businessValue >= 0 && r.businessValue <= 1e15)) {
      v.add("businessValue", "businessValue must be a number of at least 0");
    }
    timestampOrder(v, "startsAt", dateOf(r, "startsAt"), "endsAt", dateOf(r, "endsAt"));
    customFields(v, "fields", r.fields);
    const category = r.categoryId ? await refs.category(r.categoryId) : null;
    if (!r.categoryId) v.add("categoryId", "categoryId is required");
    else if (!category) v.add("categoryId", `category ${r.categoryId} does not exist`);
    const known = visibleNames({ fields: r.fields, computed: r.computed }, category ?? undefined);
    computedFields(v, "computed", r.computed, known, r.fields);
    const computedCount = computedFieldCount(r.computed, category?.computed);
    if (computedCount > MAX_COMPUTED_FIELDS_PER_OFFER) {
      v.add(
        "computed",
        `computed: the offer has ${computedCount} computed fields (its own and its category's), at most ${MAX_COMPUTED_FIELDS_PER_OFFER} allowed`,
      );
    }
    checkQualification(v, r.qualification, known);
  },
  toRow: (r) => ({
    id: r.offerId,
    category_id: r.categoryId,
    name: r.name,
    description: r.description,
    status: r.status,
    starts_at: dateOf(r, "startsAt"),
    ends_at: dateOf(r, "endsAt"),
    priority: r.priority,
    business_value: r.businessValue,
    weight: r.weight,
    mandatory: r.mandatory,
    fields: r.fields,
    computed: r.computed,
    // Stored as the engine reads it (decisioning/catalog.ts QualificationDef): defaults left out.
    qualification: toJson(QualificationSchema, r.qualification),
  }),
  fromRowFields: (row) =>
    create(OfferSchema, {
      offerId: row.id as string,
      categoryId: row.category_id as string,
      name: row.name as string,
      description: row.description as string,
      status: row.status as string,
      startsAt: row.starts_at instanceof Date ? timestampFromDate(row.starts_at) : undefined,
      endsAt: row.ends_at instanceof Date ? timestampFromDate(row.ends_at) : undefined,
      priority: Number(row.priority),
      businessValue: Number(row.business_value),
      weight: Number(row.weight),
      mandatory: row.mandatory as boolean,
      fields: row.fields as JsonObject,
      computed: row.computed as Record<string, string>,
      qualification: fromJson(QualificationSchema, (row.qualification ?? {}) as JsonValue, { ignoreUnknownFields: true }),
    }),
  async beforeDelete(tx, tenantId, current) {
    const running = await tx.query<{ id: string }>(
      "select id from experiments where tenant_id = $1 and offer_id = $2 and status = 'running' and deleted_at is null",
      [tenantId, current.offerId],
    );
    if (running.length > 0) {
      throw stillReferenced(
        "Offer",
        current.offerId,
        "running experiments",
        running.map((r) => r.id),
      );
    }
    // The offer's creatives exist only for it.
    const creatives = await softDeleteWhere(tx, "creatives", tenantId, { offer_id: current.offerId });
    return creatives.length > 0 ? { deletedCreatives: creatives } : undefined;
  },
};
