// Splits a streamed body into NDJSON lines without buffering more than one line: bytes are consumed as
// they arrive, and a line longer than the limit is skipped to its end and reported as an error for
// that line instead of being kept.

import type { ImportLine } from "../services/customers.ts";

const NEWLINE = 0x0a;

export async function* ndjsonLines(body: ReadableStream<Uint8Array> | null, maxLineBytes: number): AsyncGenerator<ImportLine> {
  if (!body) return;
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let parts: Uint8Array[] = [];
  let size = 0;
  let tooLong = false;
  let line = 1;
  const finish = (): ImportLine => {
    const n = line++;
    if (tooLong) return { line: n, error: `line exceeds ${maxLineBytes} bytes` };
    const bytes = parts.length === 1 ? (parts[0] as Uint8Array) : Buffer.concat(parts, size);
    try {
      return { line: n, text: decoder.decode(bytes).replace(/\r$/, "") };
    } catch {
      return { line: n, error: "line is not valid UTF-8" };
    }
  };
  const reset = () => {
    parts = [];
    size = 0;
    tooLong = false;
  };
  const append = (bytes: Uint8Array) => {
    if (tooLong || bytes.length === 0) return;
    if (size + bytes.length > maxLineBytes) {
      tooLong = true;
      parts = [];
      return;
    }
    parts.push(bytes);
    size += bytes.length;
  };
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      let start = 0;
      for (let i = value.indexOf(NEWLINE); i !== -1; i = value.indexOf(NEWLINE, start)) {
        append(value.subarray(start, i));
        yield finish();
        reset();
        start = i + 1;
      }
      // Copied: the rest of the chunk is kept while later chunks arrive.
      append(value.slice(start));
    }
    if (size > 0 || tooLong) yield finish();
  } finally {
    reader.releaseLock();
  }
}
