// Text no database can store: a NUL character or a lone surrogate anywhere a request carries text (a
// field, a map key, a path id, a query value, a cursor, an NDJSON line), on every transport, is a 400
// (`invalid_argument`) naming the field, not a 500; and ids never are the dot segments "." or "..".

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { RecommendRequestSchema } from "../gen/kaireon/v1/recommend_pb.ts";
import { create, toBinary } from "@bufbuild/protobuf";
import { authHeaders, DEMO_KEY, postJson, startTestService, type TestService } from "./harness.ts";
import { sendConnectJson, sendGrpc, sendGrpcWeb } from "./wire.ts";

let svc: TestService;
const NUL = "\u0000";
const LONE = "\ud800";

beforeAll(async () => {
  svc = await startTestService();
});
afterAll(async () => {
  await svc.stop();
});

const fields = (json: { details?: { field: string }[] }) => (json.details ?? []).map((d) => d.field);
const get = async (path: string) => {
  const res = await fetch(`${svc.http}${path}`, { headers: authHeaders() });
  return { status: res.status, json: (await res.json()) as { code: string; details?: { field: string }[] } };
};

describe("REST", () => {
  test.each([
    ["customerId", { customerId: `a${NUL}b`, channelId: "ch_email" }, "customerId"],
    ["a lone surrogate", { customerId: `a${LONE}b`, channelId: "ch_email" }, "customerId"],
    ["an attribute value", { customerId: "c", channelId: "ch_email", attributes: { tier: `gold${NUL}` } }, "attributes.tier"],
    ["an attribute key", { customerId: "c", channelId: "ch_email", attributes: { [`ti${NUL}er`]: "gold" } }, "attributes"],
    [
      "a nested value",
      { customerId: "c", channelId: "ch_email", attributes: { deep: { list: ["ok", `x${NUL}`] } } },
      "attributes.deep.list[1]",
    ],
  ])("Recommend with NUL or a lone surrogate in %s is 400 naming the field", async (_, body, field) => {
    const res = await postJson(svc.http, "/api/v1/recommend", body);
    expect(res.status).toBe(400);
    expect(res.json.code).toBe("VALIDATION_ERROR");
    expect(fields(res.json)).toContain(field);
  });

  test("a lone surrogate written as a JSON escape is refused too", async () => {
    const res = await postJson(svc.http, "/api/v1/recommend", '{"customerId": "a\\ud800", "channelId": "ch_email"}');
    expect(res.status).toBe(400);
    expect(fields(res.json)).toEqual(["customerId"]);
  });

  test("admin writes: names, fields and ids", async () => {
    const category = await postJson(svc.http, "/api/v1/categories", { categoryId: "cat_x", name: `Bad${NUL}name` });
    expect(category.status).toBe(400);
    expect(fields(category.json)).toContain("name");
    const offer = await postJson(svc.http, "/api/v1/offers", {
      offerId: "off_x",
      categoryId: "cat_credit_cards",
      name: "X",
      fields: { note: `x${NUL}` },
    });
    expect(offer.status).toBe(400);
    expect(fields(offer.json)).toContain("fields.note");
  });

  test("a path id, a query value and a cursor", async () => {
    const path = await get("/api/v1/offers/a%00b");
    expect(path.status).toBe(400);
    expect(fields(path.json)).toContain("offerId");
    const query = await get("/api/v1/audit-log?resourceId=a%00b");
    expect(query.status).toBe(400);
    expect(fields(query.json)).toContain("resourceId");
    const cursor = Buffer.from(JSON.stringify([`a${NUL}b`])).toString("base64url");
    const paged = await get(`/api/v1/offers?cursor=${cursor}`);
    expect(paged.status).toBe(400);
    expect(fields(paged.json)).toEqual(["cursor"]);
  });

  test("a path segment that is not percent-encoded UTF-8 (a lone surrogate, a stray byte, a bare %) is 400 naming it", async () => {
    for (const segment of ["%ED%A0%80", "%80", "%FF", "%"]) {
      const listed = await get(`/api/v1/channels/${segment}/placements`);
      expect(listed.status).toBe(400);
      expect(fields(listed.json)).toEqual(["channelId"]);
      const created = await postJson(svc.http, `/api/v1/channels/${segment}/placements`, "{}");
      expect(created.status).toBe(400);
    }
  });

  test('ids "." and ".." are refused; a dot inside an id is fine', async () => {
    for (const id of [".", ".."]) {
      const res = await postJson(svc.http, "/api/v1/channels", { channelId: id, name: "Dots", type: "web" });
      expect(res.status).toBe(400);
      expect(fields(res.json)).toContain("channelId");
    }
    const dotted = await postJson(svc.http, "/api/v1/channels", { channelId: "ch.dotted", name: "Dotted", type: "web" });
    expect(dotted.status).toBe(200);
    expect((await get("/api/v1/channels/ch.dotted")).status).toBe(200);
  });

  test("an NDJSON import reports the line with unstorable text and stores the others", async () => {
    const lines = [
      JSON.stringify({ customerId: "txt_1", attributes: { a: 1 } }),
      JSON.stringify({ customerId: `txt${NUL}2`, attributes: {} }),
      JSON.stringify({ customerId: "txt_3", attributes: { [`k${NUL}`]: 1 } }),
      JSON.stringify({ customerId: "txt_4", segments: [`s${LONE}`] }),
      JSON.stringify({ customerId: "txt_5" }),
    ];
    const res = await fetch(`${svc.http}/api/v1/customers/import`, {
      method: "POST",
      headers: { ...authHeaders(), "content-type": "application/x-ndjson" },
      body: `${lines.join("\n")}\n`,
    });
    expect(res.status).toBe(200);
    const report = (await res.json()) as { succeeded: number; failed: number; errors: { line: number; message: string }[] };
    expect(report.succeeded).toBe(2);
    expect(report.errors.map((e) => e.line)).toEqual([2, 3, 4]);
    expect(report.errors[0]?.message).toContain("customerId must not contain NUL");
  });
});

describe("Connect, gRPC-Web and gRPC", () => {
  const message = () =>
    create(RecommendRequestSchema, { customerId: `a${NUL}b`, channelId: "ch_email", attributes: { [`k${LONE}`]: "v" } });
  const path = "/kaireon.v1.RecommendService/Recommend";
  const metadata = { "x-tenant-id": "demo", "x-api-key": DEMO_KEY };

  test("Connect JSON: invalid_argument", async () => {
    const res = await sendConnectJson(svc.http, path, JSON.stringify({ customerId: `a${NUL}b`, channelId: "ch_email" }), authHeaders());
    expect(res.status).toBe(400);
    expect(res.code).toBe("invalid_argument");
    expect(res.message).toContain("customerId");
  });

  test("gRPC-Web: INVALID_ARGUMENT", async () => {
    const res = await sendGrpcWeb(svc.http, path, toBinary(RecommendRequestSchema, message()), metadata);
    expect(res.code).toBe("INVALID_ARGUMENT");
    expect(res.message).toContain("customerId");
  });

  test("native gRPC: INVALID_ARGUMENT naming the field, for a value and for a map key", async () => {
    const res = await sendGrpc(svc.grpc, path, toBinary(RecommendRequestSchema, message()), metadata);
    expect(res.code).toBe("INVALID_ARGUMENT");
    expect(res.message).toContain("customerId");
    // (Binary protobuf carries UTF-8, which cannot hold a lone surrogate: NUL is what can arrive here.)
    const key = create(RecommendRequestSchema, { customerId: "c", channelId: "ch_email", attributes: { [`k${NUL}`]: "v" } });
    const byKey = await sendGrpc(svc.grpc, path, toBinary(RecommendRequestSchema, key), metadata);
    expect(byKey.code).toBe("INVALID_ARGUMENT");
    expect(byKey.message).toContain("attributes");
  });
});

describe("content types", () => {
  const recommend = (contentType: string | null) =>
    fetch(`${svc.http}/api/v1/recommend`, {
      method: "POST",
      headers: { "x-tenant-id": "demo", "x-api-key": DEMO_KEY, ...(contentType === null ? {} : { "content-type": contentType }) },
      body: JSON.stringify({ customerId: "cust_12345", channelId: "ch_email" }),
    });

  test("a body declared as something other than JSON is 415 UNSUPPORTED_MEDIA_TYPE", async () => {
    for (const type of ["text/plain", "application/x-www-form-urlencoded", "application/xml", "multipart/form-data; boundary=x"]) {
      const res = await recommend(type);
      expect(res.status).toBe(415);
      const body = (await res.json()) as { code: string; details: { field: string }[] };
      expect(body.code).toBe("UNSUPPORTED_MEDIA_TYPE");
      expect(body.details[0]?.field).toBe("content-type");
    }
  });

  test("no content type is read as JSON, and so is any JSON type with parameters", async () => {
    for (const type of [null, "application/json", "Application/JSON; charset=utf-8", "application/merge-patch+json"]) {
      expect((await recommend(type)).status).toBe(200);
    }
  });
});

describe("frames and compression the protocol layer would call internal", () => {
  const metadata = { "x-tenant-id": "demo", "x-api-key": DEMO_KEY };
  const valid = toBinary(RecommendRequestSchema, create(RecommendRequestSchema, { customerId: "c", channelId: "ch_email" }));
  const frame = (flag: number, payload: Uint8Array, declared = payload.byteLength) => {
    const out = new Uint8Array(5 + payload.byteLength);
    out[0] = flag;
    new DataView(out.buffer).setUint32(1, declared);
    out.set(payload, 5);
    return out;
  };
  const gzipped = Bun.gzipSync(valid);

  /** The grpc-status of a native gRPC call whose body is exactly `body`. */
  async function grpcStatus(path: string, body: Uint8Array, headers: Record<string, string> = {}): Promise<string> {
    const { connect } = await import("node:http2");
    const session = connect(svc.grpc);
    try {
      const stream = session.request({
        ":method": "POST",
        ":path": path,
        "content-type": "application/grpc",
        te: "trailers",
        ...metadata,
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

  const cases: [string, Uint8Array, Record<string, string>][] = [
    ["flagged compressed, no grpc-encoding", frame(1, valid), {}],
    ["flagged compressed, grpc-encoding identity", frame(1, valid), { "grpc-encoding": "identity" }],
    ["a second message after the first", new Uint8Array([...frame(0, valid), ...frame(0, new Uint8Array(0))]), {}],
    ["a declared length longer than the message", frame(0, valid, valid.byteLength + 3), {}],
    ["gzip cut short", frame(1, gzipped.subarray(0, 10)), { "grpc-encoding": "gzip" }],
    ["gzip of bytes that are not the message", frame(1, Bun.gzipSync(new Uint8Array([0]))), { "grpc-encoding": "gzip" }],
  ];
  for (const path of [
    "/kaireon.v1.RecommendService/Recommend",
    "/kaireon.v1.RespondService/Respond",
    "/kaireon.v1.OfferService/CreateOffer",
  ]) {
    test.each(cases)(`native gRPC ${path}: %s is INVALID_ARGUMENT`, async (_name, body, headers) => {
      expect(await grpcStatus(path, body, headers)).toBe("3");
    });
  }

  test("well-formed compressed messages still pass", async () => {
    expect(await grpcStatus("/kaireon.v1.RecommendService/Recommend", frame(1, gzipped), { "grpc-encoding": "gzip" })).toBe("0");
  });

  test("Connect: a binary body that does not decode, and compressed data cut short, are 400 invalid_argument", async () => {
    const connectCall = (body: Uint8Array, headers: Record<string, string>) =>
      fetch(`${svc.http}/kaireon.v1.RecommendService/Recommend`, { method: "POST", headers: { ...metadata, ...headers }, body });
    for (const [body, headers] of [
      [new Uint8Array([0]), { "content-type": "application/proto" }],
      [Bun.gzipSync(new Uint8Array([0])), { "content-type": "application/proto", "content-encoding": "gzip" }],
      [
        Bun.gzipSync(new TextEncoder().encode('{"customerId": "c"}')).subarray(0, 10),
        { "content-type": "application/json", "content-encoding": "gzip" },
      ],
    ] as const) {
      const res = await connectCall(body, headers);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { code: string }).code).toBe("invalid_argument");
    }
  });
});
