// A native gRPC client for kaireon.v1.RecommendService/Recommend, built the way a Node user of the
// contract would build one: @grpc/grpc-js with the .proto loaded at run time by @grpc/proto-loader (no
// generated code). test/transports.test.ts runs it under Node, not Bun, so the server is exercised by
// the reference HTTP/2 gRPC stack rather than by the runtime it is written in.
//
//   node grpc-js-recommend.mjs <host:port | http://host:port> <tenant> <api-key> <request-json>
//
// On success it prints {"metadata": <initial metadata>, "response": <RecommendResponse>} as JSON on
// stdout, the response in proto3 JSON shape (camelCase names, Struct as plain JSON, Timestamp as an
// RFC 3339 string) so it can be compared with the REST answer. On a failed call it prints
// {"code", "details", "metadata"} on stderr and exits with the gRPC status code (always 1-16).

import path from "node:path";
import { fileURLToPath } from "node:url";
import grpc from "@grpc/grpc-js";
import protoLoader from "@grpc/proto-loader";

const PROTO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../proto");

const [target, tenant, apiKey, requestJson] = process.argv.slice(2);
if (!target || !tenant || !apiKey || !requestJson) {
  process.stderr.write("usage: grpc-js-recommend.mjs <target> <tenant> <api-key> <request-json>\n");
  process.exit(64);
}

// google/protobuf/*.proto are not under proto/: protobufjs serves them from its bundled copies, but
// proto-loader's include-path resolver warns before falling back to them. That warning is expected
// here and would only clutter stderr, which carries this script's error report.
const emitWarning = process.emitWarning.bind(process);
process.emitWarning = (warning, ...rest) => {
  if (String(warning).includes("google/protobuf/")) return;
  emitWarning(warning, ...rest);
};

// keepCase false gives the camelCase names of proto3 JSON; defaults fills in unset scalars (as REST
// does); oneofs names the set member of Value's `kind` oneof, which the Struct converter relies on.
const definition = protoLoader.loadSync("kaireon/v1/recommend.proto", {
  includeDirs: [PROTO_ROOT],
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
});
const { RecommendService } = grpc.loadPackageDefinition(definition).kaireon.v1;

// --- google.protobuf.Struct / Value / Timestamp <-> JSON -----------------------------------------
// protobufjs has no JSON mapping for Struct: on the wire side it wants, and hands back, the raw
// message shape {fields: {name: {stringValue: "x"}}}.

function toValue(v) {
  if (v === null || v === undefined) return { nullValue: "NULL_VALUE" };
  if (typeof v === "number") return { numberValue: v };
  if (typeof v === "string") return { stringValue: v };
  if (typeof v === "boolean") return { boolValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(toValue) } };
  return { structValue: toStruct(v) };
}

function toStruct(obj) {
  return { fields: Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, toValue(v)])) };
}

function fromValue(v) {
  switch (v.kind) {
    case "nullValue":
      return null;
    case "numberValue":
    case "stringValue":
    case "boolValue":
      return v[v.kind];
    case "structValue":
      return fromStruct(v.structValue);
    case "listValue":
      return (v.listValue.values ?? []).map(fromValue);
    default:
      throw new Error(`google.protobuf.Value without a kind: ${JSON.stringify(v)}`);
  }
}

function fromStruct(s) {
  if (s === null || s === undefined) return s;
  return Object.fromEntries(Object.entries(s.fields ?? {}).map(([k, v]) => [k, fromValue(v)]));
}

function fromTimestamp(t) {
  if (t === null || t === undefined) return t;
  const iso = new Date(Number(t.seconds) * 1000).toISOString().replace(/\.000Z$/, "");
  // proto3 JSON prints 0, 3, 6 or 9 fractional digits.
  const nanos = String(t.nanos).padStart(9, "0");
  const fraction =
    t.nanos === 0 ? "" : `.${nanos.endsWith("000000") ? nanos.slice(0, 3) : nanos.endsWith("000") ? nanos.slice(0, 6) : nanos}`;
  return `${iso}${fraction}Z`;
}

function responseToJson(res) {
  // Wrapper types (google.protobuf.StringValue) arrive as { value } messages, or null when unset.
  const { traceId, ...rest } = res;
  return {
    ...rest,
    ...(traceId ? { traceId: traceId.value } : {}),
    processedAt: fromTimestamp(res.processedAt),
    recommendations: res.recommendations.map((r) => ({
      ...r,
      content: fromStruct(r.content),
      personalization: fromStruct(r.personalization),
    })),
  };
}

// --- the call ----------------------------------------------------------------------------------

const request = JSON.parse(requestJson);
if (request.attributes) request.attributes = toStruct(request.attributes);
if (request.maxOffers !== undefined) request.maxOffers = { value: request.maxOffers };

const metadata = new grpc.Metadata();
metadata.set("x-tenant-id", tenant);
metadata.set("x-api-key", apiKey);

const client = new RecommendService(target.replace(/^https?:\/\//, ""), grpc.credentials.createInsecure());
let initialMetadata = {};
const call = client.Recommend(request, metadata, { deadline: Date.now() + 10_000 }, (err, response) => {
  client.close();
  if (err) {
    process.stderr.write(`${JSON.stringify({ code: err.code, details: err.details, metadata: err.metadata?.getMap() ?? {} })}\n`);
    // The status code is the exit code; 0 (OK) cannot reach this branch.
    process.exit(err.code || 2);
  }
  process.stdout.write(`${JSON.stringify({ metadata: initialMetadata, response: responseToJson(response) })}\n`);
});
call.on("metadata", (md) => {
  initialMetadata = md.getMap();
});
