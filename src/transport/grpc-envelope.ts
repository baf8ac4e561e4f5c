// The gRPC message envelope (a flags byte, a four-byte length, the message), read the same way by the
// native gRPC path and by the screen in front of connect-es: flags it knows, a compressed flag only with
// an encoding, data that inflates within the size limit, one message of its declared length.

import { brotliDecompressSync, gunzipSync } from "node:zlib";

/** Why a message cannot be read: the caller's mistake, too large once inflated, or an unknown encoding. */
export type Unreadable = { problem: string } | { tooLarge: true } | { unknownEncoding: string };

export function isUnreadable(r: Uint8Array | Unreadable): r is Unreadable {
  return !(r instanceof Uint8Array);
}

/** The message encodings (grpc-encoding, content-encoding) this server inflates and answers in. */
export const MESSAGE_ENCODINGS = ["gzip", "br"];

/** Compressed data inflated, at most `maxBytes` of it. */
export function inflate(data: Uint8Array, encoding: string, maxBytes: number): Uint8Array | Unreadable {
  try {
    if (encoding === "gzip") return gunzipSync(data, { maxOutputLength: maxBytes });
    if (encoding === "br") return brotliDecompressSync(data, { maxOutputLength: maxBytes });
  } catch (err) {
    if (err instanceof RangeError) return { tooLarge: true };
    return { problem: `the message is not valid ${encoding} data` };
  }
  return { unknownEncoding: encoding };
}

/** The message of one envelope, from its flags byte and payload: inflated when flagged compressed. */
export function messageOf(flags: number, payload: Uint8Array, encoding: string, maxBytes: number): Uint8Array | Unreadable {
  if ((flags & ~1) !== 0) return { problem: `unknown message flags 0x${flags.toString(16)}` };
  if ((flags & 1) === 0) return payload;
  if (encoding === "identity") return { problem: "the message is flagged compressed but grpc-encoding names no compression" };
  return inflate(payload, encoding, maxBytes);
}

/** The length a message's envelope declares, from the first five bytes of `bytes`. */
export function declaredLength(bytes: Uint8Array): number {
  return new DataView(bytes.buffer, bytes.byteOffset + 1, 4).getUint32(0);
}

/** The one message of a whole unary request body: exactly one envelope, of its declared length. */
export function unaryMessageOf(body: Uint8Array, encoding: string, maxBytes: number): Uint8Array | Unreadable {
  if (body.byteLength < 5) return { problem: "a gRPC message needs its 5-byte prefix" };
  const length = declaredLength(body);
  if (5 + length > body.byteLength) return { problem: "the message is shorter than its declared length" };
  if (5 + length < body.byteLength) return { problem: "a unary call takes one message; more followed it" };
  return messageOf(body[0] as number, body.subarray(5), encoding, maxBytes);
}

/** Milliseconds per unit of a gRPC timeout (`grpc-timeout: 250m`). */
const TIMEOUT_UNITS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 1e-3, n: 1e-6 };

/** A `grpc-timeout` value in milliseconds; undefined when it is not one (at most 8 digits and a unit). */
export function grpcTimeoutMs(value: string): number | undefined {
  const m = /^(\d{1,8})([HMSmun])$/.exec(value);
  return m ? Number(m[1]) * (TIMEOUT_UNITS[m[2] as string] as number) : undefined;
}
