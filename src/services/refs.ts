// What validation needs to know about the rest of a tenant's catalog: whether a referenced resource
// exists, and the fields a formula or template may name. Read inside the write's transaction, and each
// row found is locked (FOR SHARE) so that it cannot be deleted before the write commits.

import type { Queryable } from "../store/db.ts";

export interface FieldNames {
  fields: Record<string, unknown>;
  computed: Record<string, string>;
}

export interface OfferRef extends FieldNames {
  categoryId: string;
  /** The category's fields and computed values, which the offer inherits. */
  category: FieldNames;
}

export interface CreativeRef {
  offerId: string;
  channelId: string;
  status: string;
}

export interface OfferComputed {
  offerId: string;
  computed: Record<string, string>;
}

export type ReferencedTable = "offers" | "categories" | "channels" | "creatives" | "outcome_types";

export interface CatalogRefs {
  category(id: string): Promise<FieldNames | null>;
  offer(id: string): Promise<OfferRef | null>;
  /** The live offers of a category that have computed fields of their own, in id order. */
  offersComputing(categoryId: string): Promise<OfferComputed[]>;
  channel(id: string): Promise<boolean>;
  placement(channelId: string, id: string): Promise<boolean>;
  creative(id: string): Promise<CreativeRef | null>;
  /** Those of `ids` that name no live row. */
  missing(table: ReferencedTable, ids: string[]): Promise<string[]>;
}

type R = Record<string, unknown>;

export function databaseRefs(tx: Queryable, tenantId: string): CatalogRefs {
  const one = async (sql: string, params: unknown[]) => (await tx.query<R>(sql, [tenantId, ...params]))[0] ?? null;
  const names = (r: R): FieldNames => ({ fields: r.fields as Record<string, unknown>, computed: r.computed as Record<string, string> });
  return {
    async category(id) {
      const r = await one("select fields, computed from categories where tenant_id = $1 and id = $2 and deleted_at is null for share", [
        id,
      ]);
      return r ? names(r) : null;
    },
    async offer(id) {
      const r = await one(
        `select o.category_id, o.fields, o.computed, c.fields as category_fields, c.computed as category_computed
           from offers o join categories c on c.tenant_id = o.tenant_id and c.id = o.category_id
          where o.tenant_id = $1 and o.id = $2 and o.deleted_at is null for share of o`,
        [id],
      );
      if (!r) return null;
      return {
        ...names(r),
        categoryId: r.category_id as string,
        category: { fields: r.category_fields as Record<string, unknown>, computed: r.category_computed as Record<string, string> },
      };
    },
    async offersComputing(categoryId) {
      // Not locked: an offer write locks its category (FOR SHARE, above), which a category write holds
      // FOR UPDATE, so no offer of it changes between this read and the commit.
      const rows = await tx.query<R>(
        `select id, computed from offers
          where tenant_id = $1 and category_id = $2 and deleted_at is null and computed <> '{}'::jsonb order by id`,
        [tenantId, categoryId],
      );
      return rows.map((r) => ({ offerId: r.id as string, computed: r.computed as Record<string, string> }));
    },
    async channel(id) {
      return (await one("select 1 from channels where tenant_id = $1 and id = $2 and deleted_at is null for share", [id])) !== null;
    },
    async placement(channelId, id) {
      const r = await one(
        "select 1 from placements where tenant_id = $1 and channel_id = $2 and id = $3 and deleted_at is null for share",
        [channelId, id],
      );
      return r !== null;
    },
    async creative(id) {
      const r = await one(
        "select offer_id, channel_id, status from creatives where tenant_id = $1 and id = $2 and deleted_at is null for share",
        [id],
      );
      return r ? { offerId: r.offer_id as string, channelId: r.channel_id as string, status: r.status as string } : null;
    },
    async missing(table, ids) {
      if (ids.length === 0) return [];
      const found = await tx.query<{ id: string }>(
        `select id from ${table} where tenant_id = $1 and id = any($2::text[]) and deleted_at is null for share`,
        [tenantId, ids],
      );
      const have = new Set(found.map((r) => r.id));
      return [...new Set(ids)].filter((id) => !have.has(id));
    },
  };
}
