// Customers: profiles one at a time, erasure, and the streamed NDJSON import.

import { create } from "@bufbuild/protobuf";
import {
  CustomerImportReportSchema,
  CustomerSchema,
  CustomerService,
  DeleteCustomerRequestSchema,
  DeleteCustomerResponseSchema,
  GetCustomerRequestSchema,
  UpsertCustomerRequestSchema,
} from "../../../gen/kaireon/v1/customer_pb.ts";
import { AppError } from "../../errors.ts";
import type { ServiceDeps } from "../../services/context.ts";
import { deleteCustomer, getCustomer, importCustomers, upsertCustomer } from "../../services/customers.ts";
import { decodeJsonMessage } from "../json.ts";
import { ndjsonLines } from "../ndjson.ts";
import { json, type RestRoute } from "./binding.ts";

/** The NDJSON content types the customer import accepts. */
const NDJSON_TYPES = ["application/x-ndjson", "application/ndjson", "application/jsonl"];

/** A streamed NDJSON body must say so: anything else is a client's mistake, answered 400. */
export function requireNdjson(request: Request): void {
  const type = (request.headers.get("content-type") ?? "").split(";", 1)[0]?.trim().toLowerCase() ?? "";
  if (!NDJSON_TYPES.includes(type)) {
    const message = `content-type must be ${NDJSON_TYPES[0]}`;
    throw new AppError("VALIDATION_ERROR", message, [{ field: "content-type", message }]);
  }
}

/** Customer profiles, their erasure and their bulk import. */
export function customerRoutes(deps: ServiceDeps): RestRoute[] {
  const v1 = "/api/v1";
  return [
    {
      method: "PUT",
      path: `${v1}/customers/:customerId`,
      operationId: "upsertCustomer",
      rpc: CustomerService.method.upsertCustomer,
      summary: "Create or replace a customer's profile",
      tag: "Customers",
      body: UpsertCustomerRequestSchema,
      response: CustomerSchema,
      run: async (ctx, { body, params }) => {
        const req = { ...decodeJsonMessage(UpsertCustomerRequestSchema, body), customerId: params.customerId ?? "" };
        return json(CustomerSchema, (await upsertCustomer(deps, ctx, req)).customer);
      },
    },
    {
      method: "GET",
      path: `${v1}/customers/:customerId`,
      operationId: "getCustomer",
      rpc: CustomerService.method.getCustomer,
      summary: "Get a customer's profile",
      tag: "Customers",
      response: CustomerSchema,
      run: async (ctx, { params }) =>
        json(
          CustomerSchema,
          (await getCustomer(deps, ctx, create(GetCustomerRequestSchema, { customerId: params.customerId ?? "" }))).customer,
        ),
    },
    {
      method: "DELETE",
      path: `${v1}/customers/:customerId`,
      operationId: "deleteCustomer",
      rpc: CustomerService.method.deleteCustomer,
      summary: "Erase a customer: profile, interactions, decision traces and opt-outs",
      tag: "Customers",
      response: DeleteCustomerResponseSchema,
      run: async (ctx, { params }) =>
        json(
          DeleteCustomerResponseSchema,
          await deleteCustomer(deps, ctx, create(DeleteCustomerRequestSchema, { customerId: params.customerId ?? "" })),
        ),
    },
    {
      method: "POST",
      path: `${v1}/customers/import`,
      operationId: "importCustomers",
      rpc: CustomerService.method.upsertCustomer,
      restOnly: true,
      summary: "Import profiles from NDJSON of any size, streamed; bad lines are reported by number",
      tag: "Customers",
      body: "ndjson",
      response: CustomerImportReportSchema,
      run: async (ctx, { request }) => {
        requireNdjson(request);
        const report = await importCustomers(deps, ctx, ndjsonLines(request.body, deps.config.importMaxLineBytes));
        return json(CustomerImportReportSchema, create(CustomerImportReportSchema, report));
      },
    },
  ];
}
