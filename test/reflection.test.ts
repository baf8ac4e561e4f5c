// gRPC server reflection on GRPC_PORT (grpc.reflection.v1 and v1alpha): tools list every service and
// call any method with no proto files, and the descriptors they get are the contract's own.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { createClient, createRouterTransport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { ServerReflection } from "../gen/grpc/reflection/v1/reflection_pb.ts";
import { ServerReflection as ServerReflectionAlpha } from "../gen/grpc/reflection/v1alpha/reflection_pb.ts";
import { registerServices } from "../src/transport/connect.ts";
import { DEMO_KEY, ROOT, startTestService, type TestService } from "./harness.ts";

let svc: TestService;
beforeAll(async () => {
  svc = await startTestService();
});
afterAll(async () => {
  await svc.stop();
});

async function bufCurl(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const proc = Bun.spawn([`${ROOT}/node_modules/.bin/buf`, "curl", "--http2-prior-knowledge", ...args], { stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

/** Every service the server registers, from the same registration the listeners use. */
function registeredServices(): string[] {
  const names = new Set<string>();
  createRouterTransport((router) => {
    registerServices(svc.app.deps, { ready: async () => ({}) })(router);
    for (const h of router.handlers) names.add(h.service.typeName);
  });
  return [...names].sort();
}

describe("server reflection", () => {
  test("buf curl lists every service and method with no schema, over v1 and v1alpha", async () => {
    const base = `http://127.0.0.1:${svc.app.listeners.grpcPort}`;
    const services = await bufCurl("--list-services", base);
    expect(services.code).toBe(0);
    const listed = services.stdout.trim().split("\n");
    expect(listed).toEqual(registeredServices());
    expect(listed).toContain("kaireon.v1.RecommendService");
    expect(listed).toContain("kaireon.v1.OperatorService");
    for (const protocol of ["grpc-v1", "grpc-v1alpha"]) {
      const methods = await bufCurl("--list-methods", "--reflect-protocol", protocol, base);
      expect(methods.code).toBe(0);
      expect(methods.stdout).toContain("kaireon.v1.RecommendService/Recommend\n");
      expect(methods.stdout).toContain("kaireon.v1.RespondService/Respond\n");
      expect(methods.stdout).toContain("grpc.health.v1.Health/Check\n");
    }
  });

  test("buf curl calls Recommend and the health check from what reflection tells it", async () => {
    const base = `http://127.0.0.1:${svc.app.listeners.grpcPort}`;
    const rec = await bufCurl(
      "-H",
      "x-tenant-id: demo",
      "-H",
      `x-api-key: ${DEMO_KEY}`,
      "-d",
      JSON.stringify({ customerId: "cust_12345", channelId: "ch_email", decisionFlowId: "df_credit_cards", maxOffers: 2 }),
      `${base}/kaireon.v1.RecommendService/Recommend`,
    );
    expect(rec.stderr).toBe("");
    const answer = JSON.parse(rec.stdout) as { recommendations: { offerId: string }[] };
    expect(answer.recommendations.length).toBe(2);
    const health = await bufCurl("-d", "{}", `${base}/grpc.health.v1.Health/Check`);
    expect(JSON.parse(health.stdout)).toEqual({ status: "SERVING" });
    // Reflection tells the contract, not the data: a call still needs its key.
    const refused = await bufCurl("-d", "{}", `${base}/kaireon.v1.OfferService/ListOffers`);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain("unauthenticated");
  });

  test("files by symbol and by name, with their imports; unknown ones are not found", async () => {
    const transport = createGrpcTransport({ baseUrl: svc.grpc });
    for (const service of [ServerReflection, ServerReflectionAlpha]) {
      const client = createClient(service, transport);
      async function* requests() {
        yield { messageRequest: { case: "fileContainingSymbol" as const, value: "kaireon.v1.RecommendService.Recommend" } };
        yield { messageRequest: { case: "fileByFilename" as const, value: "kaireon/v1/respond.proto" } };
        yield { messageRequest: { case: "fileContainingSymbol" as const, value: "kaireon.v1.NoSuchThing" } };
        yield { messageRequest: { case: "listServices" as const, value: "*" } };
      }
      const answers = [];
      for await (const res of client.serverReflectionInfo(requests())) answers.push(res);
      expect(answers.length).toBe(4);
      const [bySymbol, byName, unknown, list] = answers;
      if (bySymbol?.messageResponse.case !== "fileDescriptorResponse") throw new Error("expected file descriptors");
      const files = bySymbol.messageResponse.value.fileDescriptorProto.map((b) => fromBinary(FileDescriptorProtoSchema, b));
      expect(files[0]?.name).toBe("kaireon/v1/recommend.proto");
      expect(files[0]?.service.map((s) => s.name)).toEqual(["RecommendService"]);
      // Every import of every file sent is sent too, so a client can resolve all types.
      const sent = new Set(files.map((f) => f.name));
      for (const f of files) for (const dep of f.dependency) expect(sent.has(dep)).toBe(true);
      expect(byName?.messageResponse.case).toBe("fileDescriptorResponse");
      expect(unknown?.messageResponse).toMatchObject({ case: "errorResponse", value: { errorCode: 5 } });
      expect(list?.messageResponse.case).toBe("listServicesResponse");
    }
  });
});

describe("a streaming call's messages are checked as they come", () => {
  /** The grpc-status of a reflection stream whose request bytes are exactly `body`. */
  async function streamStatus(body: Uint8Array, headers: Record<string, string> = {}): Promise<string> {
    const { connect } = await import("node:http2");
    const session = connect(svc.grpc);
    try {
      const stream = session.request({
        ":method": "POST",
        ":path": "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        "content-type": "application/grpc",
        te: "trailers",
        ...headers,
      });
      stream.end(body);
      return await new Promise<string>((resolve, reject) => {
        stream.on("response", (h) => h["grpc-status"] !== undefined && resolve(String(h["grpc-status"])));
        stream.on("trailers", (t) => resolve(String(t["grpc-status"])));
        stream.on("data", () => {});
        stream.on("error", reject);
      });
    } finally {
      session.destroy();
    }
  }
  const list = new Uint8Array([0, 0, 0, 0, 3, 0x3a, 0x01, 0x2a]); // list_services: "*"

  test("good messages are answered; a bad one after them is INVALID_ARGUMENT, never internal", async () => {
    expect(await streamStatus(new Uint8Array([...list, ...list]))).toBe("0");
    expect(await streamStatus(new Uint8Array([...list, 1, 0, 0, 0, 0]))).toBe("3");
    expect(await streamStatus(new Uint8Array([...list, 0, 0, 0, 0, 2, 0xff, 0xff]))).toBe("3");
    expect(await streamStatus(new Uint8Array([...list, 0, 0, 0, 0, 9, 1]))).toBe("3");
    expect(await streamStatus(new Uint8Array([0x80, 0, 0, 0, 0]))).toBe("3");
  });

  test("over HTTP/1.1 a request-streaming procedure is not served (404), where it cannot work", async () => {
    const res = await fetch(`${svc.http}/grpc.reflection.v1.ServerReflection/ServerReflectionInfo`, {
      method: "POST",
      headers: { "content-type": "application/grpc-web+proto" },
      body: list,
    });
    expect(res.status).toBe(404);
  });
});
