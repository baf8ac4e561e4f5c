// Every REST route under /api/v1, as data: method, path, the contract's RPC it serves, the messages it
// reads and answers, and the service function it calls. The REST app mounts these, admits each call by
// its RPC's rule, and the OpenAPI document is generated from the same list, so none of them can disagree.

import type { ServiceDeps } from "../../services/context.ts";
import type { RestRoute } from "./binding.ts";
import { catalogRoutes } from "./catalog.ts";
import { customerRoutes } from "./customers.ts";
import { decisionFlowRoutes } from "./decision-flows.ts";
import { decisionRoutes } from "./decisions.ts";
import { experimentRoutes } from "./experiments.ts";
import { operatorRoutes } from "./operator.ts";
import { tenantRoutes } from "./tenant.ts";
import { webhookRoutes } from "./webhooks.ts";

export type { HttpMethod, QueryParam, RestRoute, RouteInput } from "./binding.ts";
export { ruleOfRoute } from "./binding.ts";

export function apiRoutes(deps: ServiceDeps): RestRoute[] {
  return [
    ...decisionRoutes(deps),
    ...catalogRoutes(deps),
    ...decisionFlowRoutes(deps),
    ...experimentRoutes(deps),
    ...customerRoutes(deps),
    ...tenantRoutes(deps),
    ...webhookRoutes(deps),
    ...operatorRoutes(deps),
  ];
}
