// A caller's deadline beyond MAX_DEADLINE_MS is cut down to the ceiling, not refused, on native gRPC,
// gRPC-Web and Connect; a malformed one is still the protocol's invalid_argument.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { RecommendRequestSchema } from "../gen/kaireon/v1/recommend_pb.ts";
import { capDeadline } from "../src/transport/connect-dispatch.ts";
import { DEMO_KEY, startTestService, type TestService } from "./harness.ts";
import { sendConnectJson, sendGrpc, sendGrpcWeb } from "./wire.ts";

let svc: TestService;
const PATH = "/kaireon.v1.RecommendService/Recommend";
const meta = { "x-tenant-id": "demo", "x-api-key": DEMO_KEY };
const message = () => toBinary(RecommendRequestSchema, create(RecommendRequestSchema, { customerId: "cust_12345", channelId: "ch_email" }));

beforeAll(async () => {
  svc = await startTestService({ MAX_DEADLINE_MS: "30000" });
});
afterAll(async () => {
  await svc.stop();
});

describe("deadlines", () => {
  test("capDeadline cuts grpc-timeout and connect-timeout-ms to the ceiling and leaves the rest alone", () => {
    const cases: [string, string, string][] = [
      ["grpc-timeout", "60S", "30000m"],
      ["grpc-timeout", "2H", "30000m"],
      ["grpc-timeout", "20S", "20S"],
      ["grpc-timeout", "oops", "oops"],
      ["connect-timeout-ms", "600000", "30000"],
      ["connect-timeout-ms", "1500", "1500"],
    ];
    for (const [name, sent, kept] of cases) {
      const h = new Headers({ [name]: sent });
      capDeadline(h, 30_000);
      expect(h.get(name)).toBe(kept);
    }
    // A call without a deadline gets the ceiling, in its protocol's header.
    const grpc = new Headers({ "content-type": "application/grpc+proto" });
    capDeadline(grpc, 30_000);
    expect(grpc.get("grpc-timeout")).toBe("30000m");
    const connect = new Headers({ "content-type": "application/json" });
    capDeadline(connect, 30_000);
    expect(connect.get("connect-timeout-ms")).toBe("30000");
  });

  test("a deadline of an hour is served, on every protocol", async () => {
    expect((await sendGrpc(svc.grpc, PATH, message(), { ...meta, "grpc-timeout": "1H" })).code).toBe("OK");
    expect((await sendGrpcWeb(svc.http, PATH, message(), { ...meta, "grpc-timeout": "3600S" })).code).toBe("OK");
    const body = JSON.stringify({ customerId: "cust_12345", channelId: "ch_email" });
    expect((await sendConnectJson(svc.http, PATH, body, { ...meta, "connect-timeout-ms": "3600000" })).status).toBe(200);
  });

  test("a malformed deadline is invalid_argument", async () => {
    expect((await sendGrpc(svc.grpc, PATH, message(), { ...meta, "grpc-timeout": "soon" })).code).toBe("INVALID_ARGUMENT");
  });
});
