// One table of client mistakes and failures, sent over every transport: each must give the same error
// code everywhere (REST status and code, Connect and gRPC status), and never leak internals.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { ErrorDetailSchema } from "../gen/kaireon/v1/errors_pb.ts";
import { RecommendRequestSchema, RecommendService } from "../gen/kaireon/v1/recommend_pb.ts";
import { createTenantWithKey, DEMO_KEY, startTestService, type TestService } from "./harness.ts";
import { sendConnectJson, sendGrpc, sendGrpcWeb, sendRest, type WireResult } from "./wire.ts";

let svc: TestService;
let acmeKey: string;
let brokenKey: string;
beforeAll(async () => {
  svc = await startTestService();
  acmeKey = await createTenantWithKey(svc, "acme");
  brokenKey = await createTenantWithKey(svc, "broken");
});
afterAll(async () => {
  await svc.stop();
});

const PATH = "/kaireon.v1.RecommendService/Recommend";
const valid = { customerId: "cust_12345", channelId: "ch_email" };
const demoAuth = { "x-tenant-id": "demo", "x-api-key": DEMO_KEY };

interface Case {
  name: string;
  headers?: Record<string, string>;
  /** The JSON body for REST and Connect. */
  json: string;
  /** The protobuf message for gRPC and gRPC-Web (defaults to the JSON body encoded). */
  binary?: Uint8Array;
  rest: [number, string];
  grpc: string;
  connect: string;
  before?: () => Promise<void>;
  after?: () => Promise<void>;
}

const encode = (json: string) => toBinary(RecommendRequestSchema, create(RecommendRequestSchema, JSON.parse(json)));
const big = JSON.stringify({ ...valid, attributes: { blob: "x".repeat(300 * 1024) } });

const cases: Case[] = [
  {
    name: "missing customerId",
    json: JSON.stringify({ channelId: "ch_email" }),
    rest: [400, "VALIDATION_ERROR"],
    grpc: "INVALID_ARGUMENT",
    connect: "invalid_argument",
  },
  {
    name: "wrong type",
    json: JSON.stringify({ customerId: 12345, channelId: "ch_email" }),
    // Field 1 (customerId, a string) sent with the varint wire type.
    binary: new Uint8Array([0x08, 0x01, 0x12, 0x08, ...new TextEncoder().encode("ch_email")]),
    rest: [400, "VALIDATION_ERROR"],
    grpc: "INVALID_ARGUMENT",
    connect: "invalid_argument",
  },
  {
    name: "malformed body",
    json: '{"customerId": "cust_12345", "channelId": ',
    binary: new Uint8Array([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]),
    rest: [400, "VALIDATION_ERROR"],
    grpc: "INVALID_ARGUMENT",
    connect: "invalid_argument",
  },
  { name: "body over the limit", json: big, rest: [413, "PAYLOAD_TOO_LARGE"], grpc: "RESOURCE_EXHAUSTED", connect: "resource_exhausted" },
  {
    name: "no key",
    headers: { "x-tenant-id": "demo" },
    json: JSON.stringify(valid),
    rest: [401, "UNAUTHORIZED"],
    grpc: "UNAUTHENTICATED",
    connect: "unauthenticated",
  },
  {
    name: "wrong key",
    headers: { "x-tenant-id": "demo", "x-api-key": "krn_0000000000000000000000000000000000000000" },
    json: JSON.stringify(valid),
    rest: [401, "UNAUTHORIZED"],
    grpc: "UNAUTHENTICATED",
    connect: "unauthenticated",
  },
  {
    name: "key of another tenant",
    headers: { "x-tenant-id": "demo", "x-api-key": "" },
    json: JSON.stringify(valid),
    rest: [401, "UNAUTHORIZED"],
    grpc: "UNAUTHENTICATED",
    connect: "unauthenticated",
  },
  {
    name: "unknown decisionFlowId",
    json: JSON.stringify({ ...valid, decisionFlowId: "df_nope" }),
    rest: [404, "NOT_FOUND"],
    grpc: "NOT_FOUND",
    connect: "not_found",
  },
  {
    name: "internal failure",
    headers: { "x-tenant-id": "broken", "x-api-key": "" },
    json: JSON.stringify(valid),
    rest: [500, "INTERNAL_ERROR"],
    grpc: "INTERNAL",
    connect: "internal",
    // The tenant's catalog cannot be read: a real database failure, not a simulated one.
    before: async () => {
      await svc.db.sql`alter table categories rename to categories_moved`;
    },
    after: async () => {
      await svc.db.sql`alter table categories_moved rename to categories`;
    },
  },
];

function headersFor(c: Case): Record<string, string> {
  if (c.name === "key of another tenant") return { "x-tenant-id": "demo", "x-api-key": acmeKey };
  if (c.name === "internal failure") return { "x-tenant-id": "broken", "x-api-key": brokenKey };
  return c.headers ?? demoAuth;
}

function expectNoInternals(r: WireResult) {
  const text = `${r.message} ${r.body}`;
  for (const leak of ["categories", "relation", "select ", "at async", ".ts:", "postgres"]) expect(text).not.toContain(leak);
}

describe.each(cases)("$name", (c) => {
  test("gives the same code on REST, Connect, gRPC-Web and gRPC", async () => {
    await c.before?.();
    try {
      const headers = headersFor(c);
      const binary = c.binary ?? encode(c.json);
      const rest = await sendRest(svc.http, "/api/v1/recommend", c.json, headers);
      expect([rest.status, rest.code]).toEqual(c.rest);
      expect(rest.headers["x-request-id"]).toBeTruthy();
      expect(JSON.parse(rest.body)).toMatchObject({
        error: expect.any(String),
        code: c.rest[1],
        details: expect.any(Array),
        requestId: rest.headers["x-request-id"],
      });

      const connect = await sendConnectJson(svc.http, PATH, c.json, headers);
      expect(connect.code).toBe(c.connect);
      expect(connect.headers["x-request-id"]).toBeTruthy();

      const web = await sendGrpcWeb(svc.http, PATH, binary, headers);
      expect(web.code).toBe(c.grpc);

      const grpc = await sendGrpc(svc.grpc, PATH, binary, headers);
      expect(grpc.code).toBe(c.grpc);
      expect(grpc.headers["x-request-id"]).toBeTruthy();

      if (c.rest[0] === 500) for (const r of [rest, connect, web, grpc]) expectNoInternals(r);
    } finally {
      await c.after?.();
    }
  });
});

describe("field violations travel as a typed detail", () => {
  const transports = {
    connect: () => createConnectTransport({ baseUrl: svc.http, httpVersion: "1.1" }),
    "grpc-web": () => createGrpcWebTransport({ baseUrl: svc.http, httpVersion: "1.1" }),
    grpc: () => createGrpcTransport({ baseUrl: svc.grpc }),
  };
  test.each(Object.keys(transports))("%s names customerId like REST does", async (name) => {
    const client = createClient(RecommendService, transports[name as keyof typeof transports]());
    const err = await client.recommend({ channelId: "ch_email" }, { headers: demoAuth }).then(
      () => null,
      (e: unknown) => ConnectError.from(e),
    );
    expect(err).not.toBeNull();
    const [detail] = err?.findDetails(ErrorDetailSchema) ?? [];
    expect(detail?.code).toBe("VALIDATION_ERROR");
    expect(detail?.details).toEqual([expect.objectContaining({ field: "customerId", message: "customerId is required" })]);
    expect(detail?.requestId).toMatch(/^req_/);

    const rest = await sendRest(svc.http, "/api/v1/recommend", JSON.stringify({ channelId: "ch_email" }), demoAuth);
    expect(JSON.parse(rest.body).details).toEqual([{ field: "customerId", message: "customerId is required" }]);
  });

  test("out-of-range and oversized values are named by their JSON path", async () => {
    const attributes = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, i]));
    const rest = await sendRest(svc.http, "/api/v1/recommend", JSON.stringify({ ...valid, maxOffers: 51, attributes }), demoAuth);
    expect(rest.status).toBe(400);
    expect(
      JSON.parse(rest.body)
        .details.map((d: { field: string }) => d.field)
        .sort(),
    ).toEqual(["attributes", "maxOffers"]);
  });

  test("a caller's request id is echoed", async () => {
    const rest = await sendRest(svc.http, "/api/v1/recommend", JSON.stringify(valid), { ...demoAuth, "x-request-id": "trace-me-123" });
    expect(rest.headers["x-request-id"]).toBe("trace-me-123");
    const grpc = await sendGrpc(svc.grpc, PATH, encode(JSON.stringify(valid)), { ...demoAuth, "x-request-id": "trace-me-456" });
    expect(grpc.code).toBe("OK");
    expect(grpc.headers["x-request-id"]).toBe("trace-me-456");
  });

  test("an unknown route is a JSON 404", async () => {
    const res = await fetch(`${svc.http}/api/v1/nothing-here`);
    expect(res.status).toBe(404);
    expect(((await res.json()) as { code: string }).code).toBe("NOT_FOUND");
  });

  test("a path served for other methods is 405 METHOD_NOT_ALLOWED with Allow naming them", async () => {
    const res = await fetch(`${svc.http}/api/v1/recommend`, { method: "GET" });
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("POST");
    expect(((await res.json()) as { code: string }).code).toBe("METHOD_NOT_ALLOWED");
    const item = await fetch(`${svc.http}/api/v1/offers/act_cashback`, { method: "POST" });
    expect(item.status).toBe(405);
    expect(item.headers.get("allow")).toBe("DELETE, GET, PATCH, PUT");
  });

  test("the root says where the API, its description and the health checks are", async () => {
    const res = await fetch(`${svc.http}/`);
    expect(res.status).toBe(200);
    const index = (await res.json()) as Record<string, string>;
    expect(index).toMatchObject({ api: "/api/v1", docs: "/api/v1/docs", openapi: "/api/v1/openapi.json" });
    expect((await fetch(`${svc.http}${index.docs}`)).status).toBe(200);
  });
});

describe("what the log says about each request", () => {
  test("one info line per answered call on every transport: route, status, duration, request id, tenant", async () => {
    const { createTestDatabase, spawnService, processEnv, TUTORIAL_RECOMMEND, authHeaders } = await import("./harness.ts");
    const db = await createTestDatabase();
    const spawned = await spawnService(processEnv({ DATABASE_URL: db.url }));
    try {
      const rest = await fetch(`${spawned.http}/api/v1/recommend`, {
        method: "POST",
        headers: { ...authHeaders(), "x-request-id": "req_restlogline0000001" },
        body: TUTORIAL_RECOMMEND,
      });
      expect(rest.status).toBe(200);
      const request = create(RecommendRequestSchema, {
        customerId: "cust_12345",
        channelId: "ch_email",
        decisionFlowId: "df_credit_cards",
      });
      const headers = { "x-tenant-id": "demo", "x-api-key": DEMO_KEY };
      await createClient(RecommendService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${spawned.grpcPort}` })).recommend(request, {
        headers: { ...headers, "x-request-id": "req_grpclogline0000001" },
      });
      await createClient(RecommendService, createConnectTransport({ baseUrl: spawned.http, httpVersion: "1.1" })).recommend(request, {
        headers: { ...headers, "x-request-id": "req_connlogline0000001" },
      });
      await Bun.sleep(200);
      const lines = spawned
        .output()
        .split("\n")
        .filter((l) => l.includes('"msg":"request"'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      const byId = (id: string) => lines.find((l) => l.requestId === id);
      expect(byId("req_restlogline0000001")).toMatchObject({
        level: "info",
        transport: "rest",
        method: "POST",
        route: "/api/v1/recommend",
        status: 200,
        tenantId: "demo",
        durationMs: expect.any(Number),
      });
      for (const [id, transport] of [
        ["req_grpclogline0000001", "grpc"],
        ["req_connlogline0000001", "connect"],
      ]) {
        expect(byId(id as string)).toMatchObject({
          level: "info",
          transport,
          route: "/kaireon.v1.RecommendService/Recommend",
          status: "OK",
          tenantId: "demo",
          durationMs: expect.any(Number),
        });
      }
    } finally {
      spawned.proc.kill("SIGKILL");
      await spawned.exited;
      await db.drop();
    }
  }, 60_000);
});

describe("what the log says about refused calls", () => {
  test("one info line per refusal with its code and fields, no stack, at most ten a second; the rest are counted", async () => {
    const { createTestDatabase, spawnService, REDIS_URL, TEST_KEY_PREFIX, authHeaders } = await import("./harness.ts");
    const db = await createTestDatabase();
    const spawned = await spawnService({
      HOST: "127.0.0.1",
      PORT: "0",
      GRPC_PORT: "0",
      LOG_LEVEL: "info",
      DATABASE_URL: db.url,
      REDIS_URL,
      REDIS_KEY_PREFIX: TEST_KEY_PREFIX,
      DEMO_API_KEY: DEMO_KEY,
      API_KEY_PEPPER: "refusal-log-pepper-0123",
      RATE_LIMIT_OVERRIDE_PER_MINUTE: "10000000",
    });
    try {
      const bad = JSON.stringify({ customerId: "cust\u0000x", channelId: "ch_email" });
      const send = () => fetch(`${spawned.http}/api/v1/recommend`, { method: "POST", headers: authHeaders(), body: bad });
      const answers = await Promise.all(Array.from({ length: 60 }, send));
      expect(answers.map((r) => r.status)).toEqual(Array(60).fill(400));
      await Bun.sleep(1_100);
      expect((await send()).status).toBe(400);
      await Bun.sleep(200);
      const lines = spawned
        .output()
        .split("\n")
        .filter((l) => l.includes('"msg":"request refused"'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines.length).toBeGreaterThanOrEqual(2);
      // 61 refusals, of which at most ten a second were written.
      expect(lines.length).toBeLessThanOrEqual(30);
      for (const line of lines) {
        expect(line).toMatchObject({ level: "info", code: "VALIDATION_ERROR", status: 400, fields: ["customerId"] });
        expect(JSON.stringify(line)).not.toContain("stack");
      }
      const counted = lines.map((l) => Number(l.refusalsNotLogged ?? 0)).reduce((a, b) => a + b, 0);
      expect(counted + lines.length).toBe(61);
    } finally {
      spawned.proc.kill("SIGKILL");
      await spawned.exited;
      await db.drop();
    }
  }, 60_000);
});
