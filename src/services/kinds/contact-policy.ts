// Tenant-wide contact policies: frequency caps, cooldowns, outcome suppression, channel opt-outs and volume caps that
// every decision flow applies beside its own. Stored as the policy a flow definition would hold.

import { create } from "@bufbuild/protobuf";
import { type ContactPolicy, ContactPolicySchema, ContactPolicyService } from "../../../gen/kaireon/v1/contact_policy_pb.ts";
import { compileContactPolicies, type ContactPolicyDef } from "../../decisioning/policies.ts";
import type { CatalogRefs } from "../refs.ts";
import type { Resource, ResourceKind } from "../resources.ts";
import { OUTCOME_TYPES } from "../respond.ts";
import type { Violations } from "../validate.ts";
import { idList, oneOf, referencesExist, requireText } from "./checks.ts";

const TYPES = ["frequency_cap", "cooldown", "outcome_suppression", "opt_out", "volume_cap"];
/** The settings each type reads; any other one set is a mistake worth reporting. */
const SETTINGS: Record<string, string[]> = {
  frequency_cap: ["scope", "max", "window"],
  cooldown: ["hours"],
  outcome_suppression: ["days", "outcomes"],
  opt_out: [],
  volume_cap: ["scope", "max", "budget", "window", "timeZone", "pacing"],
};
const ALL_SETTINGS = ["scope", "max", "window", "hours", "days", "outcomes", "budget", "timeZone", "pacing"];

/** The policy as the engine reads it (decisioning/policies.ts), with only the settings that are set. */
export function policyDefinition(p: ContactPolicy): ContactPolicyDef {
  const def: Record<string, unknown> = { type: p.type };
  if (p.scope) def.scope = p.scope;
  if (p.max !== undefined) def.max = p.max;
  if (p.window) def.window = p.window;
  if (p.hours !== undefined) def.hours = p.hours;
  if (p.days !== undefined) def.days = p.days;
  if (p.outcomes.length > 0) def.outcomes = p.outcomes;
  if (p.budget !== undefined) def.budget = p.budget;
  if (p.timeZone) def.timeZone = p.timeZone;
  if (p.pacing) def.pacing = p.pacing;
  if (p.offerIds.length > 0) def.offerIds = p.offerIds;
  if (p.categoryIds.length > 0) def.categoryIds = p.categoryIds;
  if (p.channelIds.length > 0) def.channelIds = p.channelIds;
  return def as unknown as ContactPolicyDef;
}

const isSet = (p: Resource, setting: string) =>
  Array.isArray(p[setting]) ? p[setting].length > 0 : p[setting] !== undefined && p[setting] !== "";

/** The ids and outcome types a policy names exist; shared with the policies of flow definitions. */
export async function checkPolicyReferences(
  v: Violations,
  refs: CatalogRefs,
  prefix: string,
  policy: Record<string, unknown>,
): Promise<void> {
  const list = (k: string) => (Array.isArray(policy[k]) ? (policy[k] as unknown[]).filter((x): x is string => typeof x === "string") : []);
  await referencesExist(v, refs, `${prefix}offerIds`, "offers", list("offerIds"), "offer");
  await referencesExist(v, refs, `${prefix}categoryIds`, "categories", list("categoryIds"), "category");
  await referencesExist(v, refs, `${prefix}channelIds`, "channels", list("channelIds"), "channel");
  const outcomes = list("outcomes");
  const custom = outcomes.filter((o) => !(o in OUTCOME_TYPES));
  for (const o of await refs.missing("outcome_types", custom))
    v.add(`${prefix}outcomes[${outcomes.indexOf(o)}]`, `outcome type ${o} does not exist`);
}

export const contactPolicyKind: ResourceKind = {
  noun: "contact_policy",
  label: "Contact policy",
  schema: ContactPolicySchema,
  service: ContactPolicyService,
  table: { table: "contact_policies", keys: ["id"], columns: ["name", "status", "definition"] },
  keyFields: ["contactPolicyId"],
  normalize(r) {
    r.status ||= "active";
  },
  async validate(r, v, refs) {
    requireText(v, "name", r.name);
    oneOf(v, "status", r.status, ["active", "inactive"]);
    if (!TYPES.includes(r.type)) {
      v.add("type", `type must be one of ${TYPES.join(", ")}`);
      return;
    }
    const reads = SETTINGS[r.type] ?? [];
    for (const setting of ALL_SETTINGS) {
      if (isSet(r, setting) && !reads.includes(setting)) v.add(setting, `${setting} does not apply to ${r.type}`);
    }
    for (const issue of compileContactPolicies([policyDefinition(r as ContactPolicy)]).issues) {
      const message = issue.replace(/^policies\[0\]: /, "").replace(/; skipped$/, "");
      v.add(message.split(" ", 1)[0] ?? "type", message);
    }
    idList(v, "offerIds", r.offerIds);
    idList(v, "categoryIds", r.categoryIds);
    idList(v, "channelIds", r.channelIds);
    await checkPolicyReferences(v, refs, "", policyDefinition(r as ContactPolicy) as unknown as Record<string, unknown>);
  },
  toRow: (r) => ({ id: r.contactPolicyId, name: r.name, status: r.status, definition: policyDefinition(r as ContactPolicy) }),
  fromRowFields: (row) => {
    const d = row.definition as Record<string, unknown>;
    return create(ContactPolicySchema, {
      contactPolicyId: row.id as string,
      name: row.name as string,
      status: row.status as string,
      type: d.type as string,
      scope: (d.scope as string | undefined) ?? "",
      max: d.max as number | undefined,
      window: (d.window as string | undefined) ?? "",
      hours: d.hours as number | undefined,
      days: d.days as number | undefined,
      outcomes: (d.outcomes as string[] | undefined) ?? [],
      budget: d.budget as number | undefined,
      timeZone: (d.timeZone as string | undefined) ?? "",
      pacing: (d.pacing as string | undefined) ?? "",
      offerIds: (d.offerIds as string[] | undefined) ?? [],
      categoryIds: (d.categoryIds as string[] | undefined) ?? [],
      channelIds: (d.channelIds as string[] | undefined) ?? [],
    });
  },
};
