// Decision flows as a resource: the flow's row (name, default) plus its definition, which a write saves
// as the flow's draft. Publishing, versions and rollback are in services/decision-flows.ts.

import { create, type JsonObject } from "@bufbuild/protobuf";
import { DecisionFlowSchema, DecisionFlowService } from "../../../gen/kaireon/v1/decision_flow_pb.ts";
import type { FlowDefinition } from "../../decisioning/definitions.ts";
import { validateFlowDefinition } from "../../decisioning/flow-validation.ts";
import type { Queryable } from "../../store/db.ts";
import { flowHeads, saveDraft } from "../../store/flows.ts";
import type { CatalogRefs } from "../refs.ts";
import { AppError } from "../../errors.ts";
import { canonicalJson, type Resource, type ResourceKind } from "../resources.ts";
import type { Violations } from "../validate.ts";
import { referencesExist, requireText } from "./checks.ts";
import { checkPolicyReferences } from "./contact-policy.ts";

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);
const ids = (x: unknown): string[] => (Array.isArray(x) ? x.filter((i): i is string => typeof i === "string") : []);

/** Checks a flow definition: its shape, then that what it names exists. Fields are under `definition.`. */
export async function checkFlowDefinition(v: Violations, refs: CatalogRefs, definition: unknown): Promise<void> {
  const problems = validateFlowDefinition(definition);
  for (const p of problems) {
    const field = p.field === "definition" ? "definition" : `definition.${p.field}`;
    v.add(field, p.message.startsWith(p.field) ? `definition.${p.message}` : `${field}: ${p.message}`);
  }
  if (problems.length > 0 || !isObject(definition)) return;
  const candidates = isObject(definition.candidates) ? definition.candidates : {};
  await referencesExist(v, refs, "definition.candidates.categoryIds", "categories", ids(candidates.categoryIds), "category");
  await referencesExist(v, refs, "definition.candidates.offerIds", "offers", ids(candidates.offerIds), "offer");
  const policies = Array.isArray(definition.policies) ? definition.policies : [];
  for (const [i, p] of policies.entries()) if (isObject(p)) await checkPolicyReferences(v, refs, `definition.policies[${i}].`, p);
}

export const decisionFlowKind: ResourceKind = {
  noun: "decision_flow",
  label: "Decision flow",
  schema: DecisionFlowSchema,
  service: DecisionFlowService,
  table: { table: "decision_flows", keys: ["id"], columns: ["name", "is_default"] },
  keyFields: ["decisionFlowId"],
  readOnly: ["draftVersion", "publishedVersion", "publishedDefinition"],
  keepWhenAbsent: ["definition"],
  normalize(r) {
    r.definition ??= {};
  },
  async validate(r, v, refs) {
    requireText(v, "name", r.name);
    await checkFlowDefinition(v, refs, r.definition);
  },
  toRow: (r) => ({ id: r.decisionFlowId, name: r.name, is_default: r.isDefault }),
  fromRowFields: (row) =>
    create(DecisionFlowSchema, { decisionFlowId: row.id as string, name: row.name as string, isDefault: row.is_default as boolean }),
  async decorate(db: Queryable, tenantId: string, items: Resource[]) {
    const heads = await flowHeads(
      db,
      tenantId,
      items.map((f) => f.decisionFlowId),
    );
    for (const f of items) {
      const head = heads.get(f.decisionFlowId);
      f.draftVersion = head?.draft?.version ?? 0;
      f.publishedVersion = head?.published?.version ?? 0;
      f.publishedDefinition = head?.published ? (head.published.definition as JsonObject) : undefined;
      f.definition = ((head?.draft ?? head?.published)?.definition ?? {}) as JsonObject;
    }
  },
  async beforeWrite(tx, tenantId, next, prev) {
    // One default per tenant: making this one the default takes it from the other.
    if (next.isDefault && !prev?.isDefault) {
      await tx.query(
        `update decision_flows set is_default = false, version = version + 1, updated_at = now()
          where tenant_id = $1 and is_default and deleted_at is null and id <> $2`,
        [tenantId, next.decisionFlowId],
      );
    }
  },
  async afterWrite(tx, tenantId, next, prev) {
    if (prev && canonicalJson(prev.definition ?? {}) === canonicalJson(next.definition)) return;
    await saveDraft(tx, tenantId, next.decisionFlowId, next.definition as FlowDefinition);
  },
  async beforeDelete(_tx, _tenantId, current) {
    if (current.isDefault) {
      throw new AppError(
        "CONFLICT",
        `decision flow ${current.decisionFlowId} is the tenant's default; make another flow the default before deleting it`,
      );
    }
    return undefined;
  },
};
