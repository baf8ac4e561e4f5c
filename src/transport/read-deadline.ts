// How long a caller may take to send its request: REQUEST_READ_TIMEOUT_MS from the moment the request
// arrives until its body has been read, on both listeners. A body that never completes would otherwise
// hold a handler (and its memory) until the connection's idle timeout, and a trickle of bytes would hold
// it forever. Streamed imports (NDJSON customers) are exempt: they read for as long as lines arrive.

import { Code, ConnectError } from "@connectrpc/connect";
import { AppError } from "../errors.ts";

function message(ms: number): string {
  return `The request was not received within ${ms} ms (REQUEST_READ_TIMEOUT_MS)`;
}

/** A timer that rejects with `err` unless cleared; its promise never rejects unhandled. */
function deadline(ms: number, err: () => Error): { expired: Promise<never>; clear: () => void } {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(err()), ms);
  });
  expired.catch(() => {});
  return { expired, clear: () => clearTimeout(timer) };
}

/** REST: `read` (the body) within `ms`, else 408 REQUEST_TIMEOUT. */
export async function readWithin<T>(read: Promise<T>, ms: number): Promise<T> {
  const d = deadline(ms, () => new AppError("REQUEST_TIMEOUT", message(ms)));
  try {
    return await Promise.race([read, d.expired]);
  } finally {
    d.clear();
  }
}

/** Connect, gRPC-Web and gRPC: the message body within `ms`, else the call ends canceled (as REQUEST_TIMEOUT is). */
export async function* bodyWithin(body: AsyncIterable<Uint8Array>, ms: number): AsyncIterable<Uint8Array> {
  const it = body[Symbol.asyncIterator]();
  const d = deadline(ms, () => new ConnectError(message(ms), Code.Canceled));
  try {
    for (;;) {
      const next = await Promise.race([it.next(), d.expired]);
      if (next.done) return;
      yield next.value;
    }
  } finally {
    // The source is not told to stop (return()): on an HTTP/2 stream that would destroy the stream, and
    // with it the answer this refusal is about to send. The answer ends the exchange instead.
    d.clear();
  }
}
