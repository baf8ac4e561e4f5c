// The native gRPC path under clients that misbehave: streams reset or sessions destroyed at every point
// of a call, under load, leave the process serving and no stream open; and compression works both ways.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import http2 from "node:http2";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { RecommendRequestSchema, RecommendResponseSchema } from "../gen/kaireon/v1/recommend_pb.ts";
import { DEMO_KEY, postJson, startTestService, type TestService, TUTORIAL_RECOMMEND, waitFor } from "./harness.ts";

let svc: TestService;
beforeAll(async () => {
  svc = await startTestService();
});
afterAll(async () => {
  await svc.stop();
});

const PATH = "/kaireon.v1.RecommendService/Recommend";
/** This test's own client streams fail on purpose; their errors are not the service's. */
const quiet = (r: http2.ClientHttp2Stream) => {
  r.on("error", () => {});
  return r;
};
const message = toBinary(
  RecommendRequestSchema,
  create(RecommendRequestSchema, { customerId: "cust_12345", channelId: "ch_email", decisionFlowId: "df_credit_cards", maxOffers: 3 }),
);
const frame = (payload: Uint8Array, flag = 0) => {
  const out = Buffer.alloc(5 + payload.byteLength);
  out[0] = flag;
  out.writeUInt32BE(payload.byteLength, 1);
  out.set(payload, 5);
  return out;
};
const headers = (extra: Record<string, string> = {}) => ({
  ":method": "POST",
  ":path": PATH,
  "content-type": "application/grpc",
  te: "trailers",
  "x-tenant-id": "demo",
  "x-api-key": DEMO_KEY,
  ...extra,
});

describe("native gRPC", () => {
  test("clients that reset streams or drop connections at any point, under load: the process serves on, no stream stays open", async () => {
    const url = `http://127.0.0.1:${svc.app.listeners.grpcPort}`;
    const ways = [
      // before sending anything
      (s: http2.ClientHttp2Session) => quiet(s.request(headers())).close(http2.constants.NGHTTP2_CANCEL),
      // half a frame, then reset
      (s: http2.ClientHttp2Session) => {
        const r = quiet(s.request(headers()));
        r.write(frame(message).subarray(0, 7));
        setTimeout(() => r.close(http2.constants.NGHTTP2_CANCEL), 5);
      },
      // a whole request, reset before the answer is read
      (s: http2.ClientHttp2Session) => {
        const r = quiet(s.request(headers()));
        r.end(frame(message));
        setImmediate(() => r.close(http2.constants.NGHTTP2_CANCEL));
      },
      // a whole request, then the connection destroyed
      (s: http2.ClientHttp2Session) => {
        const r = quiet(s.request(headers()));
        r.end(frame(message));
        s.destroy();
      },
    ];
    const rounds = Array.from({ length: 40 }, async (_, i) => {
      const session = http2.connect(url);
      session.on("error", () => {});
      let current = session;
      for (let k = 0; k < 10; k++) {
        // The last way destroys its connection: the next call opens another.
        if (current.destroyed || current.closed) {
          current = http2.connect(url);
          current.on("error", () => {});
        }
        (ways[(i + k) % ways.length] as (s: http2.ClientHttp2Session) => void)(current);
        await Bun.sleep(1);
      }
      await Bun.sleep(50);
      current.destroy();
      session.destroy();
    });
    // Well-behaved calls meanwhile.
    const good = Array.from({ length: 50 }, () => postJson(svc.http, "/api/v1/recommend", TUTORIAL_RECOMMEND));
    await Promise.all(rounds);
    expect((await Promise.all(good)).every((r) => r.status === 200)).toBe(true);
    await waitFor(async () => svc.app.listeners.openGrpcStreams === 0, 10_000);
    expect(svc.app.listeners.pendingGrpcDeadlines).toBe(0);
    // And gRPC still answers.
    expect(await call(frame(message))).toMatchObject({ status: "0" });
  }, 60_000);

  test("gzip both ways: a compressed request is answered compressed when the caller accepts it", async () => {
    const big = toBinary(
      RecommendRequestSchema,
      create(RecommendRequestSchema, {
        customerId: "cust_12345",
        channelId: "ch_email",
        decisionFlowId: "df_credit_cards",
        maxOffers: 3,
        trace: true,
        attributes: { note: "x".repeat(2000) },
      }),
    );
    const res = await call(frame(Bun.gzipSync(big), 1), { "grpc-encoding": "gzip", "grpc-accept-encoding": "gzip" });
    expect(res.status).toBe("0");
    expect(res.encoding).toBe("gzip");
    const plain = await call(frame(message));
    expect(plain.encoding).toBeUndefined();
    expect(fromBinary(RecommendResponseSchema, plain.payload).recommendations.length).toBe(3);
    const unsupported = await call(frame(message, 1), { "grpc-encoding": "snappy" });
    expect(unsupported.status).toBe("12");
  });

  test("a deadline shorter than the call is DEADLINE_EXCEEDED; a malformed one is INVALID_ARGUMENT", async () => {
    expect((await call(frame(message), { "grpc-timeout": "1n" })).status).toBe("4");
    expect((await call(frame(message), { "grpc-timeout": "soon" })).status).toBe("3");
  });
});

async function call(body: Uint8Array, extra: Record<string, string> = {}) {
  const session = http2.connect(`http://127.0.0.1:${svc.app.listeners.grpcPort}`);
  try {
    const req = session.request(headers(extra));
    req.end(body);
    const chunks: Buffer[] = [];
    let encoding: string | undefined;
    let status: string | undefined;
    req.on("response", (h) => {
      encoding = h["grpc-encoding"] as string | undefined;
      if (h["grpc-status"] !== undefined) status = String(h["grpc-status"]);
    });
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("trailers", (t) => {
      status = String(t["grpc-status"]);
    });
    await new Promise((resolve, reject) => {
      req.on("close", resolve);
      req.on("error", reject);
    });
    const bytes = Buffer.concat(chunks);
    let payload = bytes.subarray(5);
    if (bytes[0] === 1) payload = Buffer.from(Bun.gunzipSync(payload));
    return { status, encoding, payload: new Uint8Array(payload) };
  } finally {
    session.close();
  }
}
