// Readiness: whether the database and Redis answer. Serves GET /readyz and the gRPC health protocol.

import { create } from "@bufbuild/protobuf";
import {
  type HealthCheckRequest,
  type HealthCheckResponse,
  HealthCheckResponse_ServingStatus as ServingStatus,
  HealthCheckResponseSchema,
} from "../../gen/grpc/health/v1/health_pb.ts";
import { DecisionTraceService } from "../../gen/kaireon/v1/decision_trace_pb.ts";
import { RecommendService } from "../../gen/kaireon/v1/recommend_pb.ts";
import { RespondService } from "../../gen/kaireon/v1/respond_pb.ts";

export interface Probe {
  /** "ok" per dependency, or what went wrong. */
  ready(): Promise<Record<string, string>>;
  /** State worth knowing that does not make the instance unready (how rate limits are counted now). */
  details?(): Record<string, string>;
}

const SERVICES = new Set(["", RecommendService.typeName, RespondService.typeName, DecisionTraceService.typeName]);

export async function checkHealth(probe: Probe, req: HealthCheckRequest): Promise<HealthCheckResponse> {
  if (!SERVICES.has(req.service)) return create(HealthCheckResponseSchema, { status: ServingStatus.SERVICE_UNKNOWN });
  const checks = await probe.ready();
  const ok = Object.values(checks).every((c) => c === "ok");
  return create(HealthCheckResponseSchema, { status: ok ? ServingStatus.SERVING : ServingStatus.NOT_SERVING });
}
