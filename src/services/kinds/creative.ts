// Creatives: an offer's content on one channel (and optionally one placement), with template fields.

import { create, type JsonObject } from "@bufbuild/protobuf";
import { CreativeSchema, CreativeService } from "../../../gen/kaireon/v1/creative_pb.ts";
import { type ResourceKind, stillReferenced } from "../resources.ts";
import { MAX_FIELDS, oneOf, requireText, templates, visibleNames } from "./checks.ts";
import { OFFER_STATUSES } from "./offer.ts";

export const creativeKind: ResourceKind = {
  noun: "creative",
  label: "Creative",
  schema: CreativeSchema,
  service: CreativeService,
  table: { table: "creatives", keys: ["id"], columns: ["offer_id", "channel_id", "placement_id", "name", "status", "content"] },
  keyFields: ["creativeId"],
  listFilters: { offerId: "offer_id" },
  normalize(r) {
    r.status ||= "active";
    r.content ??= {};
  },
  async validate(r, v, refs) {
    requireText(v, "name", r.name);
    oneOf(v, "status", r.status, OFFER_STATUSES);
    if (Object.keys(r.content).length > MAX_FIELDS) v.add("content", `content must have at most ${MAX_FIELDS} fields`);
    let known: Set<string> | null = null;
    if (!r.offerId) v.add("offerId", "offerId is required");
    else {
      const offer = await refs.offer(r.offerId);
      if (!offer) v.add("offerId", `offer ${r.offerId} does not exist`);
      else known = visibleNames(offer, offer.category);
    }
    if (!r.channelId) v.add("channelId", "channelId is required");
    else if (!(await refs.channel(r.channelId))) v.add("channelId", `channel ${r.channelId} does not exist`);
    else if (r.placementId && !(await refs.placement(r.channelId, r.placementId))) {
      v.add("placementId", `channel ${r.channelId} has no placement ${r.placementId}`);
    }
    // Without the offer its fields are unknown; the templates are still parsed.
    templates(v, "content", r.content, known ?? new Set());
  },
  toRow: (r) => ({
    id: r.creativeId,
    offer_id: r.offerId,
    channel_id: r.channelId,
    placement_id: r.placementId || null,
    name: r.name,
    status: r.status,
    content: r.content,
  }),
  fromRowFields: (row) =>
    create(CreativeSchema, {
      creativeId: row.id as string,
      offerId: row.offer_id as string,
      channelId: row.channel_id as string,
      placementId: (row.placement_id as string | null) ?? "",
      name: row.name as string,
      status: row.status as string,
      content: row.content as JsonObject,
    }),
  async beforeDelete(tx, tenantId, current) {
    const running = await tx.query<{ id: string }>(
      `select id from experiments where tenant_id = $1 and status = 'running' and deleted_at is null
          and variants @> jsonb_build_array(jsonb_build_object('creativeId', $2::text))`,
      [tenantId, current.creativeId],
    );
    if (running.length > 0) {
      throw stillReferenced(
        "Creative",
        current.creativeId,
        "running experiments",
        running.map((r) => r.id),
      );
    }
    return undefined;
  },
};
