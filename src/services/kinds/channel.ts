// Channels, and the placements that belong to them.

import { create } from "@bufbuild/protobuf";
import { ChannelSchema, ChannelService } from "../../../gen/kaireon/v1/channel_pb.ts";
import { PlacementSchema, PlacementService } from "../../../gen/kaireon/v1/placement_pb.ts";
import { liveReferences, softDeleteWhere } from "../../store/resources.ts";
import { type ResourceKind, stillReferenced } from "../resources.ts";
import { requireText } from "./checks.ts";

export const channelKind: ResourceKind = {
  noun: "channel",
  label: "Channel",
  schema: ChannelSchema,
  service: ChannelService,
  table: { table: "channels", keys: ["id"], columns: ["name", "type", "implicit_impressions"] },
  keyFields: ["channelId"],
  normalize(r) {
    r.type ||= "digital";
  },
  async validate(r, v) {
    requireText(v, "name", r.name);
    v.maxLength("type", r.type, 64);
  },
  toRow: (r) => ({ id: r.channelId, name: r.name, type: r.type, implicit_impressions: r.implicitImpressions }),
  fromRowFields: (row) =>
    create(ChannelSchema, {
      channelId: row.id as string,
      name: row.name as string,
      type: row.type as string,
      implicitImpressions: row.implicit_impressions as boolean,
    }),
  async beforeDelete(tx, tenantId, current) {
    const creatives = await liveReferences(tx, "creatives", tenantId, { channel_id: current.channelId });
    if (creatives.length > 0) throw stillReferenced("Channel", current.channelId, "creatives", creatives);
    const placements = await softDeleteWhere(tx, "placements", tenantId, { channel_id: current.channelId });
    return placements.length > 0 ? { deletedPlacements: placements } : undefined;
  },
};

export const placementKind: ResourceKind = {
  noun: "placement",
  label: "Placement",
  schema: PlacementSchema,
  service: PlacementService,
  table: { table: "placements", keys: ["channel_id", "id"], columns: ["name"] },
  keyFields: ["channelId", "placementId"],
  listFilters: { channelId: "channel_id" },
  normalize() {},
  async validate(r, v, refs) {
    requireText(v, "name", r.name);
    if (r.channelId && !(await refs.channel(r.channelId))) v.add("channelId", `channel ${r.channelId} does not exist`);
  },
  toRow: (r) => ({ channel_id: r.channelId, id: r.placementId, name: r.name }),
  fromRowFields: (row) =>
    create(PlacementSchema, { channelId: row.channel_id as string, placementId: row.id as string, name: row.name as string }),
  async beforeDelete(tx, tenantId, current) {
    const creatives = await liveReferences(tx, "creatives", tenantId, { channel_id: current.channelId, placement_id: current.placementId });
    if (creatives.length > 0) throw stillReferenced("Placement", `${current.channelId}/${current.placementId}`, "creatives", creatives);
    return undefined;
  },
};
