// The HTTP/2 server under GRPC_PORT, on its own: a real HTTP/2 client (node:http2) moving bodies far
// larger than every window, headers split over CONTINUATION, padded frames and trailers; and raw frames
// a client may send by mistake or on purpose, each answered as RFC 9113 says.

import { afterAll, afterEach, describe, expect, test } from "bun:test";
import http2 from "node:http2";
import net from "node:net";
import { createLogger } from "../src/log.ts";
import { H2_ERROR, type H2Listener, type H2Options, type H2Stream, listenH2 } from "../src/transport/h2-server.ts";
import { encodeHeaders } from "../src/transport/hpack.ts";
import { waitFor } from "./harness.ts";

const log = createLogger("error");
const listeners: H2Listener[] = [];
const sessions: http2.ClientHttp2Session[] = [];
const sockets: net.Socket[] = [];

afterEach(() => {
  for (const s of sessions.splice(0)) s.destroy();
  for (const s of sockets.splice(0)) s.destroy();
  for (const l of listeners.splice(0)) l.destroy();
});
afterAll(() => {
  for (const l of listeners) l.destroy();
});

/** Echoes the body back with a header and trailers; `open` counts streams not yet closed. */
function echoServer(extra: Partial<H2Options> = {}) {
  const state = { open: 0, streams: [] as H2Stream[] };
  const listener = listenH2({
    hostname: "127.0.0.1",
    port: 0,
    maxConnections: 100,
    maxConcurrentStreams: 100,
    idleTimeoutSeconds: 60,
    log,
    onStream(stream) {
      state.open++;
      state.streams.push(stream);
      stream.onClose(() => state.open--);
      const chunks: Uint8Array[] = [];
      stream.read(
        (c) => chunks.push(c),
        () => {
          const body = Buffer.concat(chunks);
          stream.respond({ ":status": 200, "x-path": stream.headers[":path"] });
          stream.end(body, { "x-bytes": body.byteLength, "x-echo": stream.headers["x-echo"] ?? "" });
        },
      );
    },
    ...extra,
  });
  listeners.push(listener);
  return { listener, state, url: `http://127.0.0.1:${listener.port}` };
}

function connect(url: string, options: http2.ClientSessionOptions = {}) {
  const session = http2.connect(url, options);
  session.on("error", () => {});
  sessions.push(session);
  return session;
}

interface Answer {
  headers: http2.IncomingHttpHeaders;
  body: Buffer;
  trailers: http2.IncomingHttpHeaders;
}

function request(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: Uint8Array): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ":method": "POST", ":path": "/echo", ...headers });
    const chunks: Buffer[] = [];
    let head: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    req.on("response", (h) => {
      head = h;
    });
    req.on("trailers", (t) => {
      trailers = t;
    });
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve({ headers: head, body: Buffer.concat(chunks), trailers }));
    req.on("error", reject);
    req.end(body);
  });
}

describe("HTTP/2 server with a real client", () => {
  test("bodies larger than every window, both ways; many streams on one connection; trailers", async () => {
    const { url, state } = echoServer();
    // The client's window is the protocol's smallest default, so the answer waits on its updates.
    const session = connect(url, { settings: { initialWindowSize: 16_384 } });
    const big = Buffer.alloc(5 * 1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
    const answers = await Promise.all([
      request(session, { "x-echo": "big" }, big),
      ...Array.from({ length: 20 }, (_, i) => request(session, { "x-echo": `small-${i}` }, Buffer.from(`hello ${i}`))),
    ]);
    const [first, ...rest] = answers as [Answer, ...Answer[]];
    expect(Number(first.headers[":status"])).toBe(200);
    expect(first.body.equals(big)).toBe(true);
    expect(first.trailers["x-bytes"]).toBe(String(big.length));
    rest.forEach((a, i) => {
      expect(a.body.toString()).toBe(`hello ${i}`);
      expect(a.trailers["x-echo"]).toBe(`small-${i}`);
    });
    await waitFor(async () => state.open === 0, 5000);
  }, 60_000);

  test("header blocks over CONTINUATION frames both ways, and padded frames", async () => {
    const long = "v".repeat(40_000);
    const { url } = echoServer({
      onStream(stream) {
        stream.read(
          () => {},
          () => {
            stream.respond({ ":status": 200, "x-long": stream.headers["x-long"]?.length ?? 0, "x-big": "b".repeat(30_000) });
            stream.end(Buffer.from("ok"));
          },
        );
      },
    });
    const session = connect(url, { paddingStrategy: http2.constants.PADDING_STRATEGY_MAX });
    const a = await request(session, { "x-long": long }, Buffer.from("padded body"));
    expect(a.headers["x-long"]).toBe("40000");
    expect(String(a.headers["x-big"]).length).toBe(30_000);
    expect(a.body.toString()).toBe("ok");
  }, 30_000);

  test("a client that resets a stream mid-answer, or drops the connection: the stream is closed, nothing stays open", async () => {
    let writes = 0;
    const state = { open: 0 };
    const { listener, url } = echoServer({
      onStream(stream) {
        state.open++;
        stream.onClose(() => state.open--);
        stream.respond({ ":status": 200 });
        // An answer that never ends, written as fast as the client takes it.
        const pump = () => {
          while (!stream.closed && stream.write(Buffer.alloc(16_384, 1))) writes++;
          if (!stream.closed) stream.onDrain(pump);
        };
        pump();
      },
    });
    for (let i = 0; i < 5; i++) {
      const session = connect(url);
      const reqs = Array.from({ length: 10 }, () => session.request({ ":method": "GET", ":path": "/forever" }));
      for (const r of reqs) r.on("error", () => {});
      await Promise.all(reqs.map((r) => new Promise((resolve) => r.once("data", resolve))));
      for (const r of reqs.slice(0, 5)) r.close(http2.constants.NGHTTP2_CANCEL);
      await Bun.sleep(20);
      session.destroy();
    }
    await waitFor(async () => state.open === 0 && listener.connections === 0, 10_000);
    expect(writes).toBeGreaterThan(0);
  }, 30_000);

  test("close() sends GOAWAY: a stream already open is answered, then the connection ends", async () => {
    let release: () => void = () => {};
    const { listener, url } = echoServer({
      onStream(stream) {
        release = () => stream.end(Buffer.from("late"), { "x-done": "1" });
        stream.respond({ ":status": 200 });
      },
    });
    const session = connect(url);
    const goaway = new Promise((resolve) => session.once("goaway", resolve));
    const answer = request(session, {}, Buffer.from("x"));
    await waitFor(async () => listener.connections === 1, 5000);
    await Bun.sleep(50);
    listener.close();
    await goaway;
    release();
    expect((await answer).body.toString()).toBe("late");
    await waitFor(async () => listener.connections === 0, 5000);
  }, 30_000);
});

// ---- raw frames

function frame(type: number, flags: number, id: number, payload: Uint8Array = new Uint8Array(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.byteLength, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(id, 5);
  return Buffer.concat([head, payload]);
}
const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
const SETTINGS = frame(4, 0, 0);
const requestBlock = (path = "/x") =>
  encodeHeaders([
    [":method", "POST"],
    [":scheme", "http"],
    [":path", path],
    [":authority", "127.0.0.1"],
  ]);

interface Frame {
  type: number;
  flags: number;
  id: number;
  payload: Buffer;
}

/** A raw TCP client collecting the frames the server sends, and whether the server closed. */
async function raw(port: number) {
  const socket = net.connect(port, "127.0.0.1");
  sockets.push(socket);
  await new Promise((resolve) => socket.once("connect", resolve));
  const frames: Frame[] = [];
  let buf = Buffer.alloc(0);
  let ended = false;
  socket.on("data", (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 9) {
      const length = buf.readUIntBE(0, 3);
      if (buf.length < 9 + length) break;
      frames.push({
        type: buf[3] as number,
        flags: buf[4] as number,
        id: buf.readUInt32BE(5) & 0x7fffffff,
        payload: buf.subarray(9, 9 + length),
      });
      buf = buf.subarray(9 + length);
    }
  });
  socket.on("close", () => {
    ended = true;
  });
  socket.on("error", () => {});
  return {
    send: (...chunks: Buffer[]) => socket.write(Buffer.concat(chunks)),
    frames,
    get ended() {
      return ended;
    },
    async goaway(): Promise<number> {
      const f = await waitFor(async () => frames.find((f) => f.type === 7), 10_000);
      return f.payload.readUInt32BE(4);
    },
  };
}

describe("HTTP/2 server with raw frames", () => {
  test("a connection that does not open with the preface is sent away with PROTOCOL_ERROR", async () => {
    const { listener } = echoServer();
    const c = await raw(listener.port);
    c.send(Buffer.from("GET / HTTP/1.1\r\nhost: x\r\n\r\n"));
    expect(await c.goaway()).toBe(H2_ERROR.PROTOCOL_ERROR);
    await waitFor(async () => c.ended, 5000);
  });

  test("PING is answered with its payload; SETTINGS acknowledged; our SETTINGS first", async () => {
    const { listener } = echoServer({ maxConcurrentStreams: 7 });
    const c = await raw(listener.port);
    const payload = Buffer.from("12345678");
    c.send(PREFACE, SETTINGS, frame(6, 0, 0, payload));
    const pong = await waitFor(async () => c.frames.find((f) => f.type === 6), 5000);
    expect(pong.flags & 1).toBe(1);
    expect(pong.payload.equals(payload)).toBe(true);
    const first = c.frames[0] as Frame;
    expect(first.type).toBe(4);
    // SETTINGS_MAX_CONCURRENT_STREAMS carries the configured value.
    const settings = new Map<number, number>();
    for (let off = 0; off < first.payload.length; off += 6)
      settings.set(first.payload.readUInt16BE(off), first.payload.readUInt32BE(off + 2));
    expect(settings.get(3)).toBe(7);
    expect(c.frames.some((f) => f.type === 4 && (f.flags & 1) === 1)).toBe(true);
  });

  test("a frame over the maximum size is FRAME_SIZE_ERROR", async () => {
    const { listener } = echoServer();
    const c = await raw(listener.port);
    c.send(PREFACE, SETTINGS, frame(0, 0, 1, Buffer.alloc(20_000)));
    expect(await c.goaway()).toBe(H2_ERROR.FRAME_SIZE_ERROR);
  });

  test("a header block that is not HPACK is COMPRESSION_ERROR; DATA on a stream never opened is PROTOCOL_ERROR", async () => {
    const { listener } = echoServer();
    const a = await raw(listener.port);
    a.send(PREFACE, SETTINGS, frame(1, 0x5, 1, Buffer.from([0x80])));
    expect(await a.goaway()).toBe(H2_ERROR.COMPRESSION_ERROR);
    const b = await raw(listener.port);
    b.send(PREFACE, SETTINGS, frame(0, 0, 9, Buffer.from("x")));
    expect(await b.goaway()).toBe(H2_ERROR.PROTOCOL_ERROR);
  });

  test("a header block interrupted by another frame is PROTOCOL_ERROR", async () => {
    const { listener } = echoServer();
    const c = await raw(listener.port);
    const block = requestBlock();
    c.send(PREFACE, SETTINGS, frame(1, 0, 1, block.subarray(0, 3)), frame(6, 0, 0, Buffer.alloc(8)));
    expect(await c.goaway()).toBe(H2_ERROR.PROTOCOL_ERROR);
  });

  test("streams beyond the concurrent limit are refused with REFUSED_STREAM; the open ones are served", async () => {
    const held: H2Stream[] = [];
    const { listener } = echoServer({
      maxConcurrentStreams: 2,
      onStream(stream) {
        held.push(stream);
      },
    });
    const c = await raw(listener.port);
    c.send(PREFACE, SETTINGS, frame(1, 0x5, 1, requestBlock()), frame(1, 0x5, 3, requestBlock()), frame(1, 0x5, 5, requestBlock()));
    const refused = await waitFor(async () => c.frames.find((f) => f.type === 3), 5000);
    expect(refused.id).toBe(5);
    expect(refused.payload.readUInt32BE(0)).toBe(H2_ERROR.REFUSED_STREAM);
    expect(held.map((s) => s.id)).toEqual([1, 3]);
    for (const s of held) s.respond({ ":status": 204 }, true);
    await waitFor(async () => c.frames.filter((f) => f.type === 1).length === 2, 5000);
    expect(c.ended).toBe(false);
  });

  test("a flood of streams opened and reset at once is sent away with ENHANCE_YOUR_CALM", async () => {
    const { listener, state } = echoServer();
    const c = await raw(listener.port);
    const frames: Buffer[] = [PREFACE, SETTINGS];
    const cancel = Buffer.alloc(4);
    cancel.writeUInt32BE(H2_ERROR.CANCEL);
    for (let i = 0; i < 400; i++) {
      const id = 1 + 2 * i;
      frames.push(frame(1, 0x4, id, requestBlock()), frame(3, 0, id, cancel));
    }
    c.send(...frames);
    expect(await c.goaway()).toBe(H2_ERROR.ENHANCE_YOUR_CALM);
    await waitFor(async () => c.ended && state.open === 0, 5000);
  });

  test("DATA beyond a stream's window is refused with FLOW_CONTROL_ERROR on that stream", async () => {
    const { listener } = echoServer({ onStream() {} });
    const c = await raw(listener.port);
    const chunks = [PREFACE, SETTINGS, frame(1, 0x4, 1, requestBlock())];
    // 65 frames of 16 KiB: just over the 1 MiB stream window, within the connection's.
    for (let i = 0; i < 65; i++) chunks.push(frame(0, 0, 1, Buffer.alloc(16_384)));
    c.send(...chunks);
    const reset = await waitFor(async () => c.frames.find((f) => f.type === 3 && f.id === 1), 5000);
    expect(reset.payload.readUInt32BE(0)).toBe(H2_ERROR.FLOW_CONTROL_ERROR);
  });

  test("an idle connection, and one that never sends the preface, are sent away", async () => {
    const { listener } = echoServer({ idleTimeoutSeconds: 1 });
    const quiet = await raw(listener.port);
    const silent = await raw(listener.port);
    quiet.send(PREFACE, SETTINGS);
    expect(await quiet.goaway()).toBe(H2_ERROR.NO_ERROR);
    await waitFor(async () => quiet.ended && silent.ended, 10_000);
  }, 20_000);

  test("connections beyond the limit are closed as they arrive", async () => {
    const { listener } = echoServer({ maxConnections: 2 });
    const a = await raw(listener.port);
    const b = await raw(listener.port);
    await waitFor(async () => listener.connections === 2, 5000);
    const extra = await raw(listener.port);
    await waitFor(async () => extra.ended, 5000);
    expect(a.ended || b.ended).toBe(false);
  });
});
