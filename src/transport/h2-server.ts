// HTTP/2 in cleartext with prior knowledge (h2c, RFC 9113) on Bun.listen, for native gRPC on GRPC_PORT.
// Bun.serve cannot send trailers, and Bun's node:http2 costs ~20 µs of CPU per stream before any of our
// code runs; this server parses frames straight off the socket and costs a few. It serves what gRPC
// clients use: streams opened by the client, flow control both ways, CONTINUATION, padding, PING,
// SETTINGS, RST_STREAM and GOAWAY; never server push. Every size and count is bounded: frame size, header
// list, open streams per connection, connections, unsent bytes, streams a client may reset per second.
// Nothing a client sends, and no callback of ours, throws out of a socket handler.

import type { Socket, TCPSocketListener } from "bun";
import type { Logger } from "../log.ts";
import { encodeHeaderFields, HpackDecoder } from "./hpack.ts";

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

const DATA = 0x0;
const HEADERS = 0x1;
const PRIORITY = 0x2;
const RST_STREAM = 0x3;
const SETTINGS = 0x4;
const PUSH_PROMISE = 0x5;
const PING = 0x6;
const GOAWAY = 0x7;
const WINDOW_UPDATE = 0x8;
const CONTINUATION = 0x9;

const FLAG_END_STREAM = 0x1;
const FLAG_ACK = 0x1;
const FLAG_END_HEADERS = 0x4;
const FLAG_PADDED = 0x8;
const FLAG_PRIORITY = 0x20;

/** HTTP/2 error codes (RFC 9113 §7). */
export const H2_ERROR = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  ENHANCE_YOUR_CALM: 0xb,
} as const;

/** The largest frame payload a client may send: the protocol's default, never raised. */
const MAX_FRAME_SIZE = 16_384;
/** The receive window of each stream, and of the connection as a whole. */
const STREAM_WINDOW = 1 << 20;
const CONNECTION_WINDOW = 4 << 20;
const MAX_HEADER_LIST_BYTES = 64 * 1024;
/** A header block longer than this, encoded, is refused before it is decoded. */
const MAX_HEADER_BLOCK_BYTES = 2 * MAX_HEADER_LIST_BYTES;
/** Bytes the socket has not taken yet beyond which no stream's data is framed until it drains. */
const SOCKET_HIGH_WATER = 1 << 20;
/** A connection's output buffer: its first size, and the size beyond which it is not kept after a flush. */
const OUT_INITIAL_BYTES = 16 * 1024;
const OUT_KEEP_BYTES = 256 * 1024;
/** A stream's queued answer bytes beyond which write() asks the writer to wait for drain. */
const STREAM_HIGH_WATER = 64 * 1024;
/** Streams a client may reset in one second on one connection before it is sent away. */
const RESETS_PER_SECOND = 200;
const MAX_WINDOW = 2 ** 31 - 1;

/** Header fields of an answer or its trailers; undefined values are left out. */
export type HeaderFields = Record<string, string | number | undefined>;

const PSEUDO_HEADERS = new Set([":method", ":scheme", ":path", ":authority"]);
const CONNECTION_HEADERS = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"]);

function hasUpperCase(name: string): boolean {
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c >= 65 && c <= 90) return true;
  }
  return false;
}

/** A request's decoded header list as one object (repeated fields joined), or null when it is malformed. */
function requestHeaders(list: [string, string][]): Record<string, string> | null {
  const headers: Record<string, string> = Object.create(null);
  let regular = false;
  for (const [name, value] of list) {
    if (name.charCodeAt(0) === 58 /* : */) {
      if (regular || !PSEUDO_HEADERS.has(name) || headers[name] !== undefined) return null;
    } else {
      regular = true;
      if (hasUpperCase(name) || CONNECTION_HEADERS.has(name)) return null;
      const seen = headers[name];
      if (seen !== undefined) {
        headers[name] = `${seen}${name === "cookie" ? "; " : ", "}${value}`;
        continue;
      }
    }
    headers[name] = value;
  }
  if (headers[":method"] === undefined || headers[":path"] === undefined || headers[":scheme"] === undefined) return null;
  return headers;
}

/** One request stream: its headers, its body as it arrives, and the answer written back. */
export class H2Stream {
  /** Whether the answer's headers went out. */
  headersSent = false;
  /** Whether the client finished sending (END_STREAM). */
  remoteEnded = false;
  /** Whether the answer ended (END_STREAM sent). */
  localEnded = false;
  /** Whether the stream is over: ended both ways, reset by either side, or its connection gone. */
  closed = false;
  /** The error code of a reset by the client, if that is how the stream ended. */
  resetCode: number | null = null;
  /** @internal */ sendWindow: number;
  /** @internal */ recvWindow = STREAM_WINDOW;
  /** @internal */ pending: Uint8Array[] = [];
  /** @internal */ pendingBytes = 0;
  /** @internal */ endRequested = false;
  /** @internal */ trailers: HeaderFields | undefined;
  private inbox: Uint8Array[] = [];
  private onChunk: ((chunk: Uint8Array) => void) | null = null;
  private onEnd: (() => void) | null = null;
  private waiter: (() => void) | null = null;
  private closeListeners: (() => void)[] = [];
  private drainListener: (() => void) | null = null;
  private unacknowledged = 0;

  constructor(
    private readonly conn: Connection,
    readonly id: number,
    readonly headers: Record<string, string>,
    sendWindow: number,
  ) {
    this.sendWindow = sendWindow;
  }

  /**
   * Delivers the body chunk by chunk, then calls `onEnd` when the client finished sending. Chunks that
   * came before the call are delivered first.
   */
  read(onChunk: (chunk: Uint8Array) => void, onEnd: () => void): void {
    this.onChunk = onChunk;
    this.onEnd = onEnd;
    const queued = this.inbox;
    this.inbox = [];
    for (const chunk of queued) {
      if (this.onChunk !== onChunk) return;
      this.consumed(chunk.byteLength);
      this.conn.call(onChunk, chunk);
    }
    if (this.remoteEnded && this.onEnd === onEnd) this.conn.call(onEnd);
  }

  /** Stops delivering the body; what arrives after is dropped. */
  stopReading(): void {
    this.onChunk = null;
    this.onEnd = null;
  }

  /** The body as an async iterable; the client may send more only as it is read. */
  async *chunks(): AsyncGenerator<Uint8Array> {
    for (;;) {
      const chunk = this.inbox.shift();
      if (chunk) {
        this.consumed(chunk.byteLength);
        yield chunk;
        continue;
      }
      if (this.remoteEnded) return;
      if (this.closed) throw new Error(this.resetCode === null ? "the stream closed" : `the client reset the stream (${this.resetCode})`);
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
      });
    }
  }

  /** Calls `listener` once the stream is over, at once when it already is. */
  onClose(listener: () => void): void {
    if (this.closed) this.conn.call(listener);
    else this.closeListeners.push(listener);
  }

  /** Calls `listener` once when the answer's queued bytes fall low enough to write more. */
  onDrain(listener: () => void): void {
    this.drainListener = listener;
  }

  /** Sends the answer's headers; with `endStream`, the answer is only headers (gRPC "trailers-only"). */
  respond(fields: HeaderFields, endStream = false): void {
    if (this.closed || this.headersSent) return;
    this.headersSent = true;
    this.conn.sendHeaders(this.id, fields, endStream);
    if (endStream) this.finished();
  }

  /** Queues answer bytes; false when the writer should wait for onDrain. */
  write(data: Uint8Array): boolean {
    if (this.closed || this.endRequested) return false;
    if (!this.headersSent) this.respond({ ":status": 200 });
    if (data.byteLength > 0) {
      this.pending.push(data);
      this.pendingBytes += data.byteLength;
      this.conn.pump(this);
    }
    return this.pendingBytes < STREAM_HIGH_WATER;
  }

  /** Ends the answer, after `data` when given, with `trailers` when given. */
  end(data?: Uint8Array, trailers?: HeaderFields): void {
    if (this.closed || this.endRequested) return;
    if (!this.headersSent) this.respond({ ":status": 200 });
    if (data && data.byteLength > 0) {
      this.pending.push(data);
      this.pendingBytes += data.byteLength;
    }
    this.endRequested = true;
    this.trailers = trailers;
    this.conn.pump(this);
  }

  /** Resets the stream (RST_STREAM); CANCEL unless another code is given. */
  reset(code: number = H2_ERROR.CANCEL): void {
    if (this.closed) return;
    this.conn.sendReset(this.id, code);
    this.close();
  }

  /** @internal The answer's END_STREAM went out. */
  finished(): void {
    this.localEnded = true;
    // Answered before the client finished sending: the rest of its body is not wanted (RFC 9113 §8.1).
    if (!this.remoteEnded) this.conn.sendReset(this.id, H2_ERROR.NO_ERROR);
    this.close();
  }

  /** @internal Body bytes from the client. */
  received(chunk: Uint8Array): void {
    if (this.onChunk) {
      this.consumed(chunk.byteLength);
      this.conn.call(this.onChunk, chunk);
      return;
    }
    this.inbox.push(chunk);
    this.wake();
  }

  /** @internal The client finished sending. */
  ended(): void {
    this.remoteEnded = true;
    if (this.onEnd) this.conn.call(this.onEnd);
    this.wake();
  }

  /** @internal Bytes that left the window without reaching the reader (padding). */
  consumed(bytes: number): void {
    this.unacknowledged += bytes;
    if (this.unacknowledged >= STREAM_WINDOW / 2 && !this.remoteEnded && !this.closed) {
      this.conn.sendWindowUpdate(this.id, this.unacknowledged);
      this.recvWindow += this.unacknowledged;
      this.unacknowledged = 0;
    }
  }

  /** @internal */
  drained(): void {
    const listener = this.drainListener;
    if (listener && this.pendingBytes < STREAM_HIGH_WATER) {
      this.drainListener = null;
      this.conn.call(listener);
    }
  }

  /** @internal The stream is over: forgotten by its connection, its listeners told. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.pending = [];
    this.pendingBytes = 0;
    this.onChunk = null;
    this.conn.forget(this);
    this.wake();
    const listeners = this.closeListeners;
    this.closeListeners = [];
    for (const listener of listeners) this.conn.call(listener);
    const drain = this.drainListener;
    this.drainListener = null;
    if (drain) this.conn.call(drain);
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = null;
    waiter?.();
  }
}

export interface H2Options {
  hostname: string;
  port: number;
  maxConnections: number;
  maxConcurrentStreams: number;
  /** A connection with no open stream and no frame for this long is sent away. */
  idleTimeoutSeconds: number;
  /** Serves one new stream; a throw resets it. */
  onStream(stream: H2Stream): void;
  log: Logger;
}

export interface H2Listener {
  readonly port: number;
  /** Connections open now. */
  readonly connections: number;
  /** Stops accepting; each connection is sent GOAWAY and closes once its streams are over. */
  close(): void;
  /** Closes every connection now, its streams with it. */
  destroy(): void;
}

interface Shared {
  options: H2Options;
  settings: Uint8Array;
  connections: Set<Connection>;
}

/** One client connection: the frames it sends parsed as they arrive, the frames we send coalesced. */
class Connection {
  private readonly streams = new Map<number, H2Stream>();
  private readonly decoder = new HpackDecoder(MAX_HEADER_LIST_BYTES, 4096);
  private input: Uint8Array | null = null;
  private prefaceSeen = false;
  /** Frames queued this turn, written straight into one buffer that is reused from turn to turn. */
  private out: Buffer = Buffer.allocUnsafe(OUT_INITIAL_BYTES);
  private outBytes = 0;
  private unsent: Uint8Array | null = null;
  private flushQueued = false;
  private readonly flushNow = () => this.flush();
  private lastStreamId = 0;
  private continuing = 0;
  private continuingFlags = 0;
  private block: Uint8Array[] = [];
  private blockBytes = 0;
  private connSendWindow = 65_535;
  private connRecvWindow = CONNECTION_WINDOW;
  private peerInitialWindow = 65_535;
  private peerMaxFrame = 16_384;
  private readonly blocked = new Set<H2Stream>();
  private pumping = false;
  private resetsAt = 0;
  private resets = 0;
  /** GOAWAY sent: no new stream is served; the socket ends when the last one is over. */
  private goingAway = false;
  private endWhenFlushed = false;
  dead = false;
  lastActive = Date.now();

  constructor(
    private readonly socket: Socket<Connection>,
    private readonly shared: Shared,
  ) {
    this.out.set(shared.settings, 0);
    this.outBytes = shared.settings.byteLength;
    this.sendWindowUpdate(0, CONNECTION_WINDOW - 65_535);
  }

  get openStreams(): number {
    return this.streams.size;
  }

  /** Runs a callback of a stream's user; a throw is logged and goes no further. */
  call<A extends unknown[]>(fn: (...args: A) => void, ...args: A): void {
    try {
      fn(...args);
    } catch (err) {
      this.shared.options.log.error("an HTTP/2 stream callback threw", { err: err instanceof Error ? err.message : String(err) });
    }
  }

  // ---- input

  onData(chunk: Uint8Array): void {
    if (this.dead) return;
    this.lastActive = Date.now();
    let buf = chunk;
    if (this.input) {
      buf = Buffer.concat([this.input, chunk]);
      this.input = null;
    }
    let off = 0;
    if (!this.prefaceSeen) {
      const n = Math.min(buf.byteLength, PREFACE.byteLength);
      for (let i = 0; i < n; i++) {
        if (buf[i] !== PREFACE[i]) {
          this.fail(H2_ERROR.PROTOCOL_ERROR, "the connection did not start with the HTTP/2 preface");
          return;
        }
      }
      if (n < PREFACE.byteLength) {
        this.input = buf;
        return;
      }
      this.prefaceSeen = true;
      off = PREFACE.byteLength;
    }
    while (buf.byteLength - off >= 9) {
      const length = ((buf[off] as number) << 16) | ((buf[off + 1] as number) << 8) | (buf[off + 2] as number);
      if (length > MAX_FRAME_SIZE) {
        this.fail(H2_ERROR.FRAME_SIZE_ERROR, `a frame of ${length} bytes is over ${MAX_FRAME_SIZE}`);
        return;
      }
      if (buf.byteLength - off - 9 < length) break;
      const type = buf[off + 3] as number;
      const flags = buf[off + 4] as number;
      const id =
        ((((buf[off + 5] as number) & 0x7f) << 24) |
          ((buf[off + 6] as number) << 16) |
          ((buf[off + 7] as number) << 8) |
          (buf[off + 8] as number)) >>>
        0;
      const payload = buf.subarray(off + 9, off + 9 + length);
      off += 9 + length;
      this.onFrame(type, flags, id, payload);
      if (this.dead) return;
    }
    if (off < buf.byteLength) this.input = buf.subarray(off);
  }

  private onFrame(type: number, flags: number, id: number, payload: Uint8Array): void {
    if (this.continuing !== 0 && type !== CONTINUATION) {
      this.fail(H2_ERROR.PROTOCOL_ERROR, "a header block was interrupted by another frame");
      return;
    }
    switch (type) {
      case DATA:
        this.onDataFrame(flags, id, payload);
        return;
      case HEADERS:
        this.onHeadersFrame(flags, id, payload);
        return;
      case PRIORITY:
        if (id === 0) {
          this.fail(H2_ERROR.PROTOCOL_ERROR, "PRIORITY on stream 0");
          return;
        }
        if (payload.byteLength !== 5) this.sendReset(id, H2_ERROR.FRAME_SIZE_ERROR);
        return;
      case RST_STREAM:
        this.onResetFrame(id, payload);
        return;
      case SETTINGS:
        this.onSettingsFrame(flags, id, payload);
        return;
      case PUSH_PROMISE:
        this.fail(H2_ERROR.PROTOCOL_ERROR, "a client may not send PUSH_PROMISE");
        return;
      case PING:
        if (id !== 0) {
          this.fail(H2_ERROR.PROTOCOL_ERROR, "PING on a stream");
          return;
        }
        if (payload.byteLength !== 8) {
          this.fail(H2_ERROR.FRAME_SIZE_ERROR, "PING payload is not 8 bytes");
          return;
        }
        if ((flags & FLAG_ACK) === 0) this.frame(PING, FLAG_ACK, 0, payload);
        return;
      case GOAWAY:
        if (id !== 0) {
          this.fail(H2_ERROR.PROTOCOL_ERROR, "GOAWAY on a stream");
          return;
        }
        this.goingAway = true;
        if (this.streams.size === 0) this.endSocket();
        return;
      case WINDOW_UPDATE:
        this.onWindowUpdateFrame(id, payload);
        return;
      case CONTINUATION:
        this.onContinuationFrame(flags, id, payload);
        return;
      default:
        // Unknown frame types are ignored (RFC 9113 §4.1).
        return;
    }
  }

  private onDataFrame(flags: number, id: number, payload: Uint8Array): void {
    if (id === 0) {
      this.fail(H2_ERROR.PROTOCOL_ERROR, "DATA on stream 0");
      return;
    }
    const length = payload.byteLength;
    this.connRecvWindow -= length;
    if (this.connRecvWindow < 0) {
      this.fail(H2_ERROR.FLOW_CONTROL_ERROR, "DATA beyond the connection's window");
      return;
    }
    // The connection's window is given back as data arrives; each stream's holds back its own reader.
    if (this.connRecvWindow <= CONNECTION_WINDOW / 2) {
      this.sendWindowUpdate(0, CONNECTION_WINDOW - this.connRecvWindow);
      this.connRecvWindow = CONNECTION_WINDOW;
    }
    let start = 0;
    let end = length;
    if (flags & FLAG_PADDED) {
      if (length < 1) {
        this.fail(H2_ERROR.PROTOCOL_ERROR, "a padded frame without its pad length");
        return;
      }
      start = 1;
      end = length - (payload[0] as number);
      if (end < start) {
        this.fail(H2_ERROR.PROTOCOL_ERROR, "padding longer than the frame");
        return;
      }
    }
    const stream = this.streams.get(id);
    if (!stream) {
      if (id > this.lastStreamId) {
        this.fail(H2_ERROR.PROTOCOL_ERROR, "DATA on a stream never opened");
        return;
      }
      // A stream already over (answered, reset): what was in flight is dropped.
      return;
    }
    if (stream.remoteEnded) {
      stream.reset(H2_ERROR.STREAM_CLOSED);
      return;
    }
    stream.recvWindow -= length;
    if (stream.recvWindow < 0) {
      stream.reset(H2_ERROR.FLOW_CONTROL_ERROR);
      return;
    }
    if (end - start < length) stream.consumed(length - (end - start));
    if (end > start) stream.received(payload.subarray(start, end));
    if (flags & FLAG_END_STREAM && !stream.closed) stream.ended();
  }

  private onHeadersFrame(flags: number, id: number, payload: Uint8Array): void {
    if (id === 0 || (id & 1) === 0) {
      this.fail(H2_ERROR.PROTOCOL_ERROR, "HEADERS on a stream a client may not open");
      return;
    }
    let start = 0;
    let end = payload.byteLength;
    if (flags & FLAG_PADDED) {
      if (end < 1) {
        this.fail(H2_ERROR.PROTOCOL_ERROR, "a padded frame without its pad length");
        return;
      }
      start = 1;
      end -= payload[0] as number;
    }
    if (flags & FLAG_PRIORITY) start += 5;
    if (end < start) {
      this.fail(H2_ERROR.PROTOCOL_ERROR, "padding or priority longer than the frame");
      return;
    }
    const fragment = payload.subarray(start, end);
    if (flags & FLAG_END_HEADERS) {
      this.onHeaderBlock(id, (flags & FLAG_END_STREAM) !== 0, fragment);
      return;
    }
    this.continuing = id;
    this.continuingFlags = flags;
    this.block = [fragment];
    this.blockBytes = fragment.byteLength;
  }

  private onContinuationFrame(flags: number, id: number, payload: Uint8Array): void {
    if (this.continuing === 0 || id !== this.continuing) {
      this.fail(H2_ERROR.PROTOCOL_ERROR, "CONTINUATION out of place");
      return;
    }
    this.blockBytes += payload.byteLength;
    if (this.blockBytes > MAX_HEADER_BLOCK_BYTES) {
      this.fail(H2_ERROR.ENHANCE_YOUR_CALM, "a header block beyond the limit");
      return;
    }
    this.block.push(payload);
    if ((flags & FLAG_END_HEADERS) === 0) return;
    const block = Buffer.concat(this.block, this.blockBytes);
    this.continuing = 0;
    this.block = [];
    this.blockBytes = 0;
    this.onHeaderBlock(id, (this.continuingFlags & FLAG_END_STREAM) !== 0, block);
  }

  private onHeaderBlock(id: number, endStream: boolean, block: Uint8Array): void {
    let list: [string, string][];
    try {
      list = this.decoder.decode(block);
    } catch (err) {
      this.fail(H2_ERROR.COMPRESSION_ERROR, err instanceof Error ? err.message : "undecodable header block");
      return;
    }
    const existing = this.streams.get(id);
    if (existing) {
      // Trailers from the client: they end its side of the stream; gRPC servers do not read them.
      if (!endStream) existing.reset(H2_ERROR.PROTOCOL_ERROR);
      else if (!existing.remoteEnded) existing.ended();
      return;
    }
    if (id <= this.lastStreamId) {
      this.fail(H2_ERROR.STREAM_CLOSED, "HEADERS on a stream already over");
      return;
    }
    this.lastStreamId = id;
    if (this.goingAway) {
      this.sendReset(id, H2_ERROR.REFUSED_STREAM);
      return;
    }
    if (this.streams.size >= this.shared.options.maxConcurrentStreams) {
      this.sendReset(id, H2_ERROR.REFUSED_STREAM);
      return;
    }
    const headers = requestHeaders(list);
    if (!headers) {
      this.sendReset(id, H2_ERROR.PROTOCOL_ERROR);
      return;
    }
    const stream = new H2Stream(this, id, headers, this.peerInitialWindow);
    this.streams.set(id, stream);
    if (endStream) stream.remoteEnded = true;
    try {
      this.shared.options.onStream(stream);
    } catch (err) {
      this.shared.options.log.error("serving an HTTP/2 stream threw", { err: err instanceof Error ? err.message : String(err) });
      stream.reset(H2_ERROR.INTERNAL_ERROR);
    }
  }

  private onResetFrame(id: number, payload: Uint8Array): void {
    if (id === 0) {
      this.fail(H2_ERROR.PROTOCOL_ERROR, "RST_STREAM on stream 0");
      return;
    }
    if (payload.byteLength !== 4) {
      this.fail(H2_ERROR.FRAME_SIZE_ERROR, "RST_STREAM payload is not 4 bytes");
      return;
    }
    if (id > this.lastStreamId) {
      this.fail(H2_ERROR.PROTOCOL_ERROR, "RST_STREAM on a stream never opened");
      return;
    }
    const stream = this.streams.get(id);
    if (!stream) return;
    const now = Date.now();
    if (now - this.resetsAt >= 1000) {
      this.resetsAt = now;
      this.resets = 0;
    }
    if (++this.resets > RESETS_PER_SECOND) {
      this.fail(H2_ERROR.ENHANCE_YOUR_CALM, "too many streams reset");
      return;
    }
    stream.resetCode = new DataView(payload.buffer, payload.byteOffset, 4).getUint32(0);
    stream.close();
  }

  private onSettingsFrame(flags: number, id: number, payload: Uint8Array): void {
    if (id !== 0) {
      this.fail(H2_ERROR.PROTOCOL_ERROR, "SETTINGS on a stream");
      return;
    }
    if (flags & FLAG_ACK) {
      if (payload.byteLength !== 0) this.fail(H2_ERROR.FRAME_SIZE_ERROR, "a SETTINGS acknowledgement with a payload");
      return;
    }
    if (payload.byteLength % 6 !== 0) {
      this.fail(H2_ERROR.FRAME_SIZE_ERROR, "SETTINGS payload is not a multiple of 6 bytes");
      return;
    }
    const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
    for (let off = 0; off < payload.byteLength; off += 6) {
      const key = view.getUint16(off);
      const value = view.getUint32(off + 2);
      if (key === 0x2 && value > 1) {
        this.fail(H2_ERROR.PROTOCOL_ERROR, "SETTINGS_ENABLE_PUSH is neither 0 nor 1");
        return;
      }
      if (key === 0x4) {
        if (value > MAX_WINDOW) {
          this.fail(H2_ERROR.FLOW_CONTROL_ERROR, "SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1");
          return;
        }
        const delta = value - this.peerInitialWindow;
        this.peerInitialWindow = value;
        for (const stream of this.streams.values()) {
          stream.sendWindow += delta;
          if (stream.sendWindow > MAX_WINDOW) {
            this.fail(H2_ERROR.FLOW_CONTROL_ERROR, "a stream window above 2^31-1");
            return;
          }
        }
      }
      if (key === 0x5) {
        if (value < 16_384 || value > 16_777_215) {
          this.fail(H2_ERROR.PROTOCOL_ERROR, "SETTINGS_MAX_FRAME_SIZE out of range");
          return;
        }
        this.peerMaxFrame = value;
      }
    }
    this.frame(SETTINGS, FLAG_ACK, 0);
    this.pumpBlocked();
  }

  private onWindowUpdateFrame(id: number, payload: Uint8Array): void {
    if (payload.byteLength !== 4) {
      this.fail(H2_ERROR.FRAME_SIZE_ERROR, "WINDOW_UPDATE payload is not 4 bytes");
      return;
    }
    const increment = new DataView(payload.buffer, payload.byteOffset, 4).getUint32(0) & 0x7fffffff;
    if (id === 0) {
      if (increment === 0) {
        this.fail(H2_ERROR.PROTOCOL_ERROR, "a WINDOW_UPDATE of 0");
        return;
      }
      this.connSendWindow += increment;
      if (this.connSendWindow > MAX_WINDOW) {
        this.fail(H2_ERROR.FLOW_CONTROL_ERROR, "the connection window above 2^31-1");
        return;
      }
      this.pumpBlocked();
      return;
    }
    const stream = this.streams.get(id);
    if (!stream) {
      if (id > this.lastStreamId) this.fail(H2_ERROR.PROTOCOL_ERROR, "WINDOW_UPDATE on a stream never opened");
      return;
    }
    if (increment === 0) {
      stream.reset(H2_ERROR.PROTOCOL_ERROR);
      return;
    }
    stream.sendWindow += increment;
    if (stream.sendWindow > MAX_WINDOW) {
      stream.reset(H2_ERROR.FLOW_CONTROL_ERROR);
      return;
    }
    this.pump(stream);
  }

  // ---- output

  /** Queues one frame; the frames of one turn of the event loop go out in one socket write. */
  frame(type: number, flags: number, id: number, payload?: Uint8Array): void {
    if (this.dead) return;
    const length = payload ? payload.byteLength : 0;
    const at = this.outBytes;
    const needed = at + 9 + length;
    if (needed > this.out.byteLength) {
      const grown = Buffer.allocUnsafe(Math.max(needed, this.out.byteLength * 2));
      grown.set(this.out.subarray(0, at), 0);
      this.out = grown;
    }
    const out = this.out;
    out[at] = length >>> 16;
    out[at + 1] = (length >>> 8) & 0xff;
    out[at + 2] = length & 0xff;
    out[at + 3] = type;
    out[at + 4] = flags;
    out.writeUInt32BE(id, at + 5);
    if (payload && length > 0) out.set(payload, at + 9);
    this.outBytes = needed;
    if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(this.flushNow);
    }
  }

  sendHeaders(id: number, fields: HeaderFields, endStream: boolean): void {
    const block = encodeHeaderFields(fields);
    const max = this.peerMaxFrame;
    const end = endStream ? FLAG_END_STREAM : 0;
    if (block.byteLength <= max) {
      this.frame(HEADERS, end | FLAG_END_HEADERS, id, block);
      return;
    }
    this.frame(HEADERS, end, id, block.subarray(0, max));
    for (let off = max; off < block.byteLength; off += max) {
      const last = off + max >= block.byteLength;
      this.frame(CONTINUATION, last ? FLAG_END_HEADERS : 0, id, block.subarray(off, off + max));
    }
  }

  sendReset(id: number, code: number): void {
    const payload = Buffer.allocUnsafe(4);
    payload.writeUInt32BE(code, 0);
    this.frame(RST_STREAM, 0, id, payload);
  }

  sendWindowUpdate(id: number, increment: number): void {
    const payload = Buffer.allocUnsafe(4);
    payload.writeUInt32BE(increment, 0);
    this.frame(WINDOW_UPDATE, 0, id, payload);
  }

  /**
   * Frames a stream's queued answer as far as the windows allow (at most `frames` DATA frames), then its
   * end once it is all out. Streams waiting for the connection's window take turns a frame at a time, so
   * one busy stream cannot starve the others.
   */
  pump(stream: H2Stream, frames = Number.POSITIVE_INFINITY): void {
    if (frames === Number.POSITIVE_INFINITY && stream.pendingBytes > 0 && (this.pumping || this.blocked.size > 0)) {
      this.blocked.add(stream);
      return;
    }
    let sent = 0;
    while (stream.pendingBytes > 0) {
      if (sent >= frames || this.connSendWindow <= 0 || this.backlog() >= SOCKET_HIGH_WATER) {
        this.blocked.add(stream);
        return;
      }
      const room = Math.min(this.connSendWindow, stream.sendWindow, this.peerMaxFrame);
      // Out of its own window: the client's WINDOW_UPDATE for the stream pumps it again.
      if (room <= 0) return;
      const chunk = stream.pending[0] as Uint8Array;
      const n = Math.min(room, chunk.byteLength);
      const last = n === chunk.byteLength && stream.pending.length === 1 && stream.endRequested && !stream.trailers;
      this.frame(DATA, last ? FLAG_END_STREAM : 0, stream.id, n === chunk.byteLength ? chunk : chunk.subarray(0, n));
      if (n === chunk.byteLength) stream.pending.shift();
      else stream.pending[0] = chunk.subarray(n);
      stream.pendingBytes -= n;
      stream.sendWindow -= n;
      this.connSendWindow -= n;
      sent++;
      if (last) {
        stream.finished();
        return;
      }
    }
    if (stream.endRequested && !stream.localEnded) {
      if (stream.trailers) this.sendHeaders(stream.id, stream.trailers, true);
      else this.frame(DATA, FLAG_END_STREAM, stream.id);
      stream.finished();
      return;
    }
    stream.drained();
  }

  /** Streams waiting for the connection's window or the socket, a frame each per turn while there is room. */
  private pumpBlocked(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.blocked.size > 0 && this.connSendWindow > 0 && this.backlog() < SOCKET_HIGH_WATER) {
        const streams = [...this.blocked];
        this.blocked.clear();
        const before = this.connSendWindow;
        for (const stream of streams) if (!stream.closed) this.pump(stream, 1);
        if (this.connSendWindow === before) break;
      }
    } finally {
      this.pumping = false;
    }
  }

  private backlog(): number {
    return this.outBytes + (this.unsent ? this.unsent.byteLength : 0);
  }

  private flush(): void {
    this.flushQueued = false;
    if (this.outBytes === 0 || this.socket.readyState <= 0) return;
    const frames = this.out.subarray(0, this.outBytes);
    this.outBytes = 0;
    // A buffer grown by one large turn is not kept for the connection's life.
    if (this.out.byteLength > OUT_KEEP_BYTES) this.out = Buffer.allocUnsafe(OUT_INITIAL_BYTES);
    if (this.unsent) {
      this.unsent = Buffer.concat([this.unsent, frames]);
      return;
    }
    this.write(frames);
  }

  private write(data: Uint8Array): void {
    const n = this.socket.write(data);
    if (n < 0) return;
    // What the socket did not take is copied out: `data` may be the buffer the next turn writes into.
    this.unsent = n < data.byteLength ? Buffer.from(data.subarray(n)) : null;
    if (this.unsent) return;
    if (this.endWhenFlushed) this.socket.end();
    // Streams held back only because the frames not yet flushed were many.
    else if (this.blocked.size > 0 && this.connSendWindow > 0) this.pumpBlocked();
  }

  /** The socket took what it could not before. */
  onDrain(): void {
    if (this.unsent) this.write(this.unsent);
    if (!this.unsent) this.pumpBlocked();
  }

  /** @internal A stream is over. */
  forget(stream: H2Stream): void {
    this.streams.delete(stream.id);
    this.blocked.delete(stream);
    if (this.goingAway && this.streams.size === 0) this.endSocket();
  }

  /** Sends GOAWAY; the connection closes once its open streams are over. */
  goAway(): void {
    if (this.goingAway || this.dead) return;
    this.goingAway = true;
    this.sendGoAway(H2_ERROR.NO_ERROR, "");
    if (this.streams.size === 0) this.endSocket();
  }

  private sendGoAway(code: number, debug: string): void {
    const text = Buffer.from(debug.slice(0, 200), "utf8");
    const payload = Buffer.allocUnsafe(8 + text.byteLength);
    payload.writeUInt32BE(this.lastStreamId, 0);
    payload.writeUInt32BE(code, 4);
    payload.set(text, 8);
    this.frame(GOAWAY, 0, 0, payload);
  }

  private endSocket(): void {
    this.flush();
    if (this.unsent) this.endWhenFlushed = true;
    else if (this.socket.readyState > 0) this.socket.end();
  }

  /** A connection error: GOAWAY with its code, every stream closed, the socket ended. */
  fail(code: number, reason: string): void {
    if (this.dead) return;
    this.shared.options.log.debug("HTTP/2 connection error", { code, reason });
    this.sendGoAway(code, reason);
    this.flush();
    this.dead = true;
    this.closeStreams();
    this.socket.end();
  }

  closeStreams(): void {
    for (const stream of [...this.streams.values()]) stream.close();
  }

  /** The socket closed, by either side. */
  onClose(): void {
    this.dead = true;
    this.closeStreams();
  }

  terminate(): void {
    this.dead = true;
    this.closeStreams();
    this.socket.terminate();
  }
}

function settingsFrame(maxConcurrentStreams: number): Uint8Array {
  const entries: [number, number][] = [
    [0x3, maxConcurrentStreams],
    [0x4, STREAM_WINDOW],
    [0x6, MAX_HEADER_LIST_BYTES],
  ];
  const out = Buffer.alloc(9 + entries.length * 6);
  out.writeUIntBE(entries.length * 6, 0, 3);
  out[3] = SETTINGS;
  entries.forEach(([key, value], i) => {
    out.writeUInt16BE(key, 9 + i * 6);
    out.writeUInt32BE(value, 11 + i * 6);
  });
  return out;
}

/** Listens for h2c connections. */
export function listenH2(options: H2Options): H2Listener {
  const shared: Shared = { options, settings: settingsFrame(options.maxConcurrentStreams), connections: new Set() };
  const { log } = options;
  const guard = (what: string, fn: () => void) => {
    try {
      fn();
    } catch (err) {
      log.error(`HTTP/2 ${what} failed`, { err: err instanceof Error ? err.message : String(err) });
    }
  };
  const listener: TCPSocketListener<Connection> = Bun.listen<Connection>({
    hostname: options.hostname,
    port: options.port,
    socket: {
      open(socket) {
        if (shared.connections.size >= options.maxConnections) {
          socket.terminate();
          return;
        }
        socket.setNoDelay(true);
        const conn = new Connection(socket, shared);
        socket.data = conn;
        shared.connections.add(conn);
      },
      data(socket, data) {
        const conn = socket.data;
        if (conn) guard("read", () => conn.onData(data));
      },
      drain(socket) {
        const conn = socket.data;
        if (conn) guard("write", () => conn.onDrain());
      },
      close(socket) {
        const conn = socket.data;
        if (!conn) return;
        shared.connections.delete(conn);
        guard("close", () => conn.onClose());
      },
      error(socket, err) {
        log.debug("HTTP/2 socket error", { err: err.message });
        const conn = socket.data;
        if (conn) guard("close", () => conn.terminate());
      },
    },
  });
  // Idle connections (no open stream, no frame) are sent away; so is one that never sends its preface.
  const idleMs = options.idleTimeoutSeconds * 1000;
  const sweep = setInterval(
    () => {
      const now = Date.now();
      for (const conn of shared.connections) {
        if (conn.openStreams === 0 && now - conn.lastActive >= idleMs) guard("idle close", () => conn.goAway());
      }
    },
    Math.max(100, Math.min(1000, idleMs / 2)),
  );
  sweep.unref();
  return {
    port: listener.port,
    get connections() {
      return shared.connections.size;
    },
    close() {
      clearInterval(sweep);
      listener.stop(false);
      for (const conn of shared.connections) guard("close", () => conn.goAway());
    },
    destroy() {
      clearInterval(sweep);
      for (const conn of shared.connections) guard("close", () => conn.terminate());
      listener.stop(true);
    },
  };
}
