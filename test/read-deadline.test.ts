// A caller that never finishes sending its request is answered, not held: REQUEST_READ_TIMEOUT_MS after the
// request arrived, REST answers 408 REQUEST_TIMEOUT, Connect and native gRPC end the call canceled, and
// the service goes on serving everyone else.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import http2 from "node:http2";
import { connect as tcpConnect } from "node:net";
import { authHeaders, postJson, startTestService, type TestService, TUTORIAL_RECOMMEND } from "./harness.ts";

const READ_TIMEOUT_MS = 500;
let svc: TestService;
beforeAll(async () => {
  svc = await startTestService({ REQUEST_READ_TIMEOUT_MS: String(READ_TIMEOUT_MS) });
});
afterAll(async () => {
  await svc.stop();
});

/** Sends `head` and part of a body over a raw HTTP/1.1 connection; resolves with what came back and when. */
async function rawHttp(head: string, partialBody: string): Promise<{ text: string; ms: number }> {
  const started = performance.now();
  return await new Promise((resolve, reject) => {
    const socket = tcpConnect(svc.app.listeners.port, "127.0.0.1");
    let text = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk) => {
      text += chunk;
      // One answer is all this test waits for.
      if (/\r\n\r\n[\s\S]*\}$/.test(text)) {
        socket.destroy();
        resolve({ text, ms: performance.now() - started });
      }
    });
    socket.on("error", reject);
    socket.on("close", () => resolve({ text, ms: performance.now() - started }));
    socket.write(head + partialBody);
    setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer within 10 s; got: ${text}`));
    }, 10_000);
  });
}

const headerLines = (h: Record<string, string>) =>
  Object.entries(h)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join("");

describe("REQUEST_READ_TIMEOUT_MS", () => {
  test("REST: a body shorter than its content-length, or a chunked body that never ends, is 408 REQUEST_TIMEOUT", async () => {
    const short = await rawHttp(
      `POST /api/v1/recommend HTTP/1.1\r\nhost: 127.0.0.1\r\n${headerLines(authHeaders())}content-length: 400\r\n\r\n`,
      '{"customerId": "cust_1",',
    );
    expect(short.text).toStartWith("HTTP/1.1 408");
    expect(short.text).toContain('"code":"REQUEST_TIMEOUT"');
    expect(short.ms).toBeGreaterThanOrEqual(READ_TIMEOUT_MS - 50);
    const chunked = await rawHttp(
      `POST /api/v1/offers HTTP/1.1\r\nhost: 127.0.0.1\r\n${headerLines(authHeaders())}transfer-encoding: chunked\r\n\r\n`,
      '5\r\n{"off\r\n',
    );
    expect(chunked.text).toStartWith("HTTP/1.1 408");
    expect((await postJson(svc.http, "/api/v1/recommend", TUTORIAL_RECOMMEND)).status).toBe(200);
  });

  test("Connect: an unfinished body ends the call canceled, a 4xx", async () => {
    const res = await rawHttp(
      `POST /kaireon.v1.RecommendService/Recommend HTTP/1.1\r\nhost: 127.0.0.1\r\n${headerLines(authHeaders())}content-length: 400\r\n\r\n`,
      '{"customerId": "cust_1",',
    );
    expect(res.text).toMatch(/^HTTP\/1\.1 4\d\d/);
    expect(res.text).toContain('"code":"canceled"');
  });

  test("native gRPC: a stream whose message never ends gets grpc-status CANCELLED, and the connection keeps serving", async () => {
    const session = http2.connect(`http://127.0.0.1:${svc.app.listeners.grpcPort}`);
    try {
      const started = performance.now();
      const stream = session.request({
        ":method": "POST",
        ":path": "/kaireon.v1.RecommendService/Recommend",
        "content-type": "application/grpc",
        te: "trailers",
        "x-tenant-id": "demo",
        "x-api-key": authHeaders()["x-api-key"] as string,
      });
      // A frame that announces 100 bytes and sends 3, and a stream left open.
      stream.write(Buffer.from([0, 0, 0, 0, 100, 1, 2, 3]));
      const status = await new Promise<string>((resolve, reject) => {
        let got: string | undefined;
        stream.on("response", (headers) => {
          if (headers["grpc-status"] !== undefined) got = String(headers["grpc-status"]);
        });
        // The server ends its side with the trailers; the caller's side is still open, so wait no further.
        stream.on("trailers", (trailers) => resolve(String(trailers["grpc-status"])));
        stream.on("data", () => {});
        stream.on("close", () => (got === undefined ? reject(new Error("stream closed without a grpc-status")) : resolve(got)));
        stream.on("error", reject);
      });
      expect(status).toBe("1");
      expect(performance.now() - started).toBeGreaterThanOrEqual(READ_TIMEOUT_MS - 50);
      expect(session.closed || session.destroyed).toBe(false);
    } finally {
      // Our side of the stream was never ended: destroy rather than wait for it.
      session.destroy();
    }
    expect((await postJson(svc.http, "/api/v1/recommend", TUTORIAL_RECOMMEND)).status).toBe(200);
  });
});
