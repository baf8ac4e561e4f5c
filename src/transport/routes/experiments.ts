// Experiments: created and changed through requests of their own, read as a resource, and their results.

import { create } from "@bufbuild/protobuf";
import {
  CreateExperimentRequestSchema,
  ExperimentSchema,
  ExperimentService,
  GetExperimentResultsRequestSchema,
  GetExperimentResultsResponseSchema,
  UpdateExperimentRequestSchema,
} from "../../../gen/kaireon/v1/experiment_pb.ts";
import type { ServiceDeps } from "../../services/context.ts";
import { createExperiment, getExperimentResults, updateExperiment } from "../../services/experiments.ts";
import { experimentKind } from "../../services/kinds/index.ts";
import { decodeJsonMessage } from "../json.ts";
import { json, type RestRoute, wholeParam } from "./binding.ts";
import { resourceRoutes } from "./resources.ts";

/** Experiments and their results. */
export function experimentRoutes(deps: ServiceDeps): RestRoute[] {
  const v1 = "/api/v1";
  return [
    {
      method: "POST",
      path: `${v1}/experiments`,
      operationId: "createExperiment",
      rpc: ExperimentService.method.createExperiment,
      summary: "Create an experiment",
      tag: "Experiments",
      body: CreateExperimentRequestSchema,
      response: ExperimentSchema,
      run: async (ctx, { body }) =>
        json(ExperimentSchema, (await createExperiment(deps, ctx, decodeJsonMessage(CreateExperimentRequestSchema, body))).experiment),
    },
    {
      method: "PATCH",
      path: `${v1}/experiments/:experimentId`,
      operationId: "updateExperiment",
      rpc: ExperimentService.method.updateExperiment,
      summary: "Change an experiment's status or variants (send the version you read)",
      tag: "Experiments",
      body: UpdateExperimentRequestSchema,
      response: ExperimentSchema,
      run: async (ctx, { body, params }) => {
        const req = { ...decodeJsonMessage(UpdateExperimentRequestSchema, body), experimentId: params.experimentId ?? "" };
        return json(ExperimentSchema, (await updateExperiment(deps, ctx, req)).experiment);
      },
    },
    ...resourceRoutes(deps, {
      kind: experimentKind,
      collection: `${v1}/experiments`,
      tag: "Experiments",
      plural: "experiments",
      only: ["list", "get", "delete"],
    }),
    {
      method: "GET",
      path: `${v1}/experiments/:experimentId/results`,
      operationId: "getExperimentResults",
      rpc: ExperimentService.method.getExperimentResults,
      summary: "Per-variant results of a phase, with significance and a sample-ratio check",
      tag: "Experiments",
      query: [{ name: "phase", type: "integer", description: "the phase to report (the current one when absent)" }],
      response: GetExperimentResultsResponseSchema,
      run: async (ctx, { params, query }) =>
        json(
          GetExperimentResultsResponseSchema,
          await getExperimentResults(
            deps,
            ctx,
            create(GetExperimentResultsRequestSchema, { experimentId: params.experimentId ?? "", phase: wholeParam(query, "phase") }),
          ),
        ),
    },
  ];
}
