// HPACK (RFC 7541), the header compression of HTTP/2: a decoder that keeps the dynamic table of one
// connection and refuses malformed blocks and oversized header lists, and a stateless encoder for
// responses (static table references and plain literals, never the dynamic table, never Huffman).
// The static table and the Huffman code are RFC 7541 Appendix A and B; Huffman strings are decoded
// four bits at a time by a state machine built from the code table when the module loads.

/** A header block that cannot be decoded, or a header list larger than allowed: a COMPRESSION_ERROR. */
export class HpackError extends Error {}

/** RFC 7541 Appendix A: the static table, index 1 to 61. */
const STATIC_TABLE: readonly (readonly [string, string])[] = [
  [":authority", ""],
  [":method", "GET"],
  [":method", "POST"],
  [":path", "/"],
  [":path", "/index.html"],
  [":scheme", "http"],
  [":scheme", "https"],
  [":status", "200"],
  [":status", "204"],
  [":status", "206"],
  [":status", "304"],
  [":status", "400"],
  [":status", "404"],
  [":status", "500"],
  ["accept-charset", ""],
  ["accept-encoding", "gzip, deflate"],
  ["accept-language", ""],
  ["accept-ranges", ""],
  ["accept", ""],
  ["access-control-allow-origin", ""],
  ["age", ""],
  ["allow", ""],
  ["authorization", ""],
  ["cache-control", ""],
  ["content-disposition", ""],
  ["content-encoding", ""],
  ["content-language", ""],
  ["content-length", ""],
  ["content-location", ""],
  ["content-range", ""],
  ["content-type", ""],
  ["cookie", ""],
  ["date", ""],
  ["etag", ""],
  ["expect", ""],
  ["expires", ""],
  ["from", ""],
  ["host", ""],
  ["if-match", ""],
  ["if-modified-since", ""],
  ["if-none-match", ""],
  ["if-range", ""],
  ["if-unmodified-since", ""],
  ["last-modified", ""],
  ["link", ""],
  ["location", ""],
  ["max-forwards", ""],
  ["proxy-authenticate", ""],
  ["proxy-authorization", ""],
  ["range", ""],
  ["referer", ""],
  ["refresh", ""],
  ["retry-after", ""],
  ["server", ""],
  ["set-cookie", ""],
  ["strict-transport-security", ""],
  ["transfer-encoding", ""],
  ["user-agent", ""],
  ["vary", ""],
  ["via", ""],
  ["www-authenticate", ""],
];
const STATIC_COUNT = STATIC_TABLE.length;
/** Index 0 unused, so that STATIC_NAMES[i] is the name of static index i. */
const STATIC_NAMES: string[] = ["", ...STATIC_TABLE.map((e) => e[0])];
const STATIC_VALUES: string[] = ["", ...STATIC_TABLE.map((e) => e[1])];

/** RFC 7541 Appendix B: the Huffman code of symbols 0 to 255 and EOS (256), as [code, length in bits]. */
const HUFFMAN_CODES: readonly (readonly [number, number])[] = [
  [0x1ff8, 13], [0x7fffd8, 23], [0xfffffe2, 28], [0xfffffe3, 28], [0xfffffe4, 28], [0xfffffe5, 28], [0xfffffe6, 28], [0xfffffe7, 28],
  [0xfffffe8, 28], [0xffffea, 24], [0x3ffffffc, 30], [0xfffffe9, 28], [0xfffffea, 28], [0x3ffffffd, 30], [0xfffffeb, 28], [0xfffffec, 28],
  [0xfffffed, 28], [0xfffffee, 28], [0xfffffef, 28], [0xffffff0, 28], [0xffffff1, 28], [0xffffff2, 28], [0x3ffffffe, 30], [0xffffff3, 28],
  [0xffffff4, 28], [0xffffff5, 28], [0xffffff6, 28], [0xffffff7, 28], [0xffffff8, 28], [0xffffff9, 28], [0xffffffa, 28], [0xffffffb, 28],
  [0x14, 6], [0x3f8, 10], [0x3f9, 10], [0xffa, 12], [0x1ff9, 13], [0x15, 6], [0xf8, 8], [0x7fa, 11],
  [0x3fa, 10], [0x3fb, 10], [0xf9, 8], [0x7fb, 11], [0xfa, 8], [0x16, 6], [0x17, 6], [0x18, 6],
  [0x0, 5], [0x1, 5], [0x2, 5], [0x19, 6], [0x1a, 6], [0x1b, 6], [0x1c, 6], [0x1d, 6],
  [0x1e, 6], [0x1f, 6], [0x5c, 7], [0xfb, 8], [0x7ffc, 15], [0x20, 6], [0xffb, 12], [0x3fc, 10],
  [0x1ffa, 13], [0x21, 6], [0x5d, 7], [0x5e, 7], [0x5f, 7], [0x60, 7], [0x61, 7], [0x62, 7],
  [0x63, 7], [0x64, 7], [0x65, 7], [0x66, 7], [0x67, 7], [0x68, 7], [0x69, 7], [0x6a, 7],
  [0x6b, 7], [0x6c, 7], [0x6d, 7], [0x6e, 7], [0x6f, 7], [0x70, 7], [0x71, 7], [0x72, 7],
  [0xfc, 8], [0x73, 7], [0xfd, 8], [0x1ffb, 13], [0x7fff0, 19], [0x1ffc, 13], [0x3ffc, 14], [0x22, 6],
  [0x7ffd, 15], [0x3, 5], [0x23, 6], [0x4, 5], [0x24, 6], [0x5, 5], [0x25, 6], [0x26, 6],
  [0x27, 6], [0x6, 5], [0x74, 7], [0x75, 7], [0x28, 6], [0x29, 6], [0x2a, 6], [0x7, 5],
  [0x2b, 6], [0x76, 7], [0x2c, 6], [0x8, 5], [0x9, 5], [0x2d, 6], [0x77, 7], [0x78, 7],
  [0x79, 7], [0x7a, 7], [0x7b, 7], [0x7ffe, 15], [0x7fc, 11], [0x3ffd, 14], [0x1ffd, 13], [0xffffffc, 28],
  [0xfffe6, 20], [0x3fffd2, 22], [0xfffe7, 20], [0xfffe8, 20], [0x3fffd3, 22], [0x3fffd4, 22], [0x3fffd5, 22], [0x7fffd9, 23],
  [0x3fffd6, 22], [0x7fffda, 23], [0x7fffdb, 23], [0x7fffdc, 23], [0x7fffdd, 23], [0x7fffde, 23], [0xffffeb, 24], [0x7fffdf, 23],
  [0xffffec, 24], [0xffffed, 24], [0x3fffd7, 22], [0x7fffe0, 23], [0xffffee, 24], [0x7fffe1, 23], [0x7fffe2, 23], [0x7fffe3, 23],
  [0x7fffe4, 23], [0x1fffdc, 21], [0x3fffd8, 22], [0x7fffe5, 23], [0x3fffd9, 22], [0x7fffe6, 23], [0x7fffe7, 23], [0xffffef, 24],
  [0x3fffda, 22], [0x1fffdd, 21], [0xfffe9, 20], [0x3fffdb, 22], [0x3fffdc, 22], [0x7fffe8, 23], [0x7fffe9, 23], [0x1fffde, 21],
  [0x7fffea, 23], [0x3fffdd, 22], [0x3fffde, 22], [0xfffff0, 24], [0x1fffdf, 21], [0x3fffdf, 22], [0x7fffeb, 23], [0x7fffec, 23],
  [0x1fffe0, 21], [0x1fffe1, 21], [0x3fffe0, 22], [0x1fffe2, 21], [0x7fffed, 23], [0x3fffe1, 22], [0x7fffee, 23], [0x7fffef, 23],
  [0xfffea, 20], [0x3fffe2, 22], [0x3fffe3, 22], [0x3fffe4, 22], [0x7ffff0, 23], [0x3fffe5, 22], [0x3fffe6, 22], [0x7ffff1, 23],
  [0x3ffffe0, 26], [0x3ffffe1, 26], [0xfffeb, 20], [0x7fff1, 19], [0x3fffe7, 22], [0x7ffff2, 23], [0x3fffe8, 22], [0x1ffffec, 25],
  [0x3ffffe2, 26], [0x3ffffe3, 26], [0x3ffffe4, 26], [0x7ffffde, 27], [0x7ffffdf, 27], [0x3ffffe5, 26], [0xfffff1, 24], [0x1ffffed, 25],
  [0x7fff2, 19], [0x1fffe3, 21], [0x3ffffe6, 26], [0x7ffffe0, 27], [0x7ffffe1, 27], [0x3ffffe7, 26], [0x7ffffe2, 27], [0xfffff2, 24],
  [0x1fffe4, 21], [0x1fffe5, 21], [0x3ffffe8, 26], [0x3ffffe9, 26], [0xffffffd, 28], [0x7ffffe3, 27], [0x7ffffe4, 27], [0x7ffffe5, 27],
  [0xfffec, 20], [0xfffff3, 24], [0xfffed, 20], [0x1fffe6, 21], [0x3fffe9, 22], [0x1fffe7, 21], [0x1fffe8, 21], [0x7ffff3, 23],
  [0x3fffea, 22], [0x3fffeb, 22], [0x1ffffee, 25], [0x1ffffef, 25], [0xfffff4, 24], [0xfffff5, 24], [0x3ffffea, 26], [0x7ffff4, 23],
  [0x3ffffeb, 26], [0x7ffffe6, 27], [0x3ffffec, 26], [0x3ffffed, 26], [0x7ffffe7, 27], [0x7ffffe8, 27], [0x7ffffe9, 27], [0x7ffffea, 27],
  [0x7ffffeb, 27], [0xffffffe, 28], [0x7ffffec, 27], [0x7ffffed, 27], [0x7ffffee, 27], [0x7ffffef, 27], [0x7fffff0, 27], [0x3ffffee, 26],
  [0x3fffffff, 30],
];
const EOS = 256;

// The decoding state machine. Its states are the 256 internal nodes of the code tree (0 is the root);
// one entry per state and four-bit nibble holds the state reached, the symbol completed on the way if
// any (codes are at least five bits long, so at most one), whether the bits read since the last
// symbol are valid padding there (at most seven, all ones), and whether EOS was met.
const HUFF_EMIT = 1 << 16;
const HUFF_ACCEPT = 1 << 17;
const HUFF_FAIL = 1 << 18;
const HUFF_TABLE = buildHuffmanTable();

function buildHuffmanTable(): Uint32Array {
  // The code tree: children[2n], children[2n+1] of internal node n; a child >= 0 is an internal node,
  // -1 is absent, and -2 - sym is the leaf of symbol sym.
  const children: number[] = [-1, -1];
  const depth: number[] = [0];
  const allOnes: boolean[] = [true];
  for (let sym = 0; sym <= EOS; sym++) {
    const [code, len] = HUFFMAN_CODES[sym] as readonly [number, number];
    let node = 0;
    for (let i = len - 1; i >= 0; i--) {
      const bit = Math.floor(code / 2 ** i) & 1;
      const slot = 2 * node + bit;
      const child = children[slot] as number;
      if (i === 0) {
        if (child !== -1) throw new Error(`the Huffman code of ${sym} is not prefix-free`);
        children[slot] = -2 - sym;
      } else if (child === -1) {
        const n = depth.length;
        children[slot] = n;
        children.push(-1, -1);
        depth.push((depth[node] as number) + 1);
        allOnes.push((allOnes[node] as boolean) && bit === 1);
        node = n;
      } else if (child < 0) {
        throw new Error(`the Huffman code of ${sym} is not prefix-free`);
      } else {
        node = child;
      }
    }
  }
  if (depth.length !== 256 || children.includes(-1)) throw new Error("the Huffman code table is not complete");
  const table = new Uint32Array(256 * 16);
  for (let state = 0; state < 256; state++) {
    for (let nibble = 0; nibble < 16; nibble++) {
      let node = state;
      let entry = 0;
      for (let i = 3; i >= 0; i--) {
        const child = children[2 * node + ((nibble >> i) & 1)] as number;
        if (child >= 0) {
          node = child;
        } else if (child === -2 - EOS) {
          entry |= HUFF_FAIL;
          node = 0;
        } else {
          entry |= HUFF_EMIT | ((-2 - child) << 8);
          node = 0;
        }
      }
      if (node === 0 || (allOnes[node] && (depth[node] as number) <= 7)) entry |= HUFF_ACCEPT;
      table[state * 16 + nibble] = entry | node;
    }
  }
  return table;
}

/** Huffman output of the decoder, grown as needed; decoding is synchronous, so one serves all. */
let scratch = Buffer.allocUnsafe(4096);

/** Bun's and Node's Buffer have latin1Slice, the fastest way from octets to a string; toString otherwise. */
type Latin1Buffer = Buffer & { latin1Slice?: (start: number, end: number) => string };
const latin1: (buf: Buffer, start: number, end: number) => string =
  typeof (Buffer.prototype as Latin1Buffer).latin1Slice === "function"
    ? (buf, start, end) => (buf as Required<Latin1Buffer>).latin1Slice(start, end)
    : (buf, start, end) => buf.toString("latin1", start, end);

const INT_LIMIT = 2 ** 31;

/** Decoder state of one connection. */
export class HpackDecoder {
  private readonly maxListBytes: number;
  private readonly maxTableBytes: number;
  /** The table size in force: maxTableBytes until the peer lowers it with a size update. */
  private tableMax: number;
  private tableSize = 0;
  /** The dynamic table, a ring: the newest entry at `head`, older ones after it. */
  private readonly names: string[];
  private readonly values: string[];
  private head = 0;
  private count = 0;
  /** Where the last integer or string read ended. */
  private pos = 0;
  /** The block being decoded as a Buffer, made when a plain string literal is first read from it. */
  private view: Buffer | undefined;

  constructor(maxListBytes = 65536, maxTableBytes = 4096) {
    this.maxListBytes = maxListBytes;
    this.maxTableBytes = maxTableBytes;
    this.tableMax = maxTableBytes;
    const capacity = Math.max(1, Math.floor(maxTableBytes / 32));
    this.names = new Array<string>(capacity).fill("");
    this.values = new Array<string>(capacity).fill("");
  }

  /** Decodes one complete header block (HEADERS + CONTINUATION payloads joined). Names are returned as sent. */
  decode(block: Uint8Array): [string, string][] {
    const out: [string, string][] = [];
    const end = block.length;
    const max = this.maxListBytes;
    let size = 0;
    let pos = 0;
    this.view = block instanceof Buffer ? block : undefined;
    while (pos < end) {
      const b = block[pos] as number;
      if (b & 0x80) {
        // Indexed header field (§6.1).
        let index = b & 0x7f;
        pos++;
        if (index === 0x7f) {
          index = this.integer(block, pos, 0x7f);
          pos = this.pos;
        } else if (index === 0) {
          throw new HpackError("header field index 0");
        }
        let name: string;
        let value: string;
        if (index <= STATIC_COUNT) {
          name = STATIC_NAMES[index] as string;
          value = STATIC_VALUES[index] as string;
        } else {
          const p = this.slot(index);
          name = this.names[p] as string;
          value = this.values[p] as string;
        }
        size += name.length + value.length + 32;
        if (size > max) throw listTooLarge(max);
        out.push([name, value]);
        continue;
      }
      let indexing = false;
      let index: number;
      if (b & 0x40) {
        // Literal header field with incremental indexing (§6.2.1).
        indexing = true;
        index = b & 0x3f;
        pos++;
        if (index === 0x3f) {
          index = this.integer(block, pos, 0x3f);
          pos = this.pos;
        }
      } else if (b & 0x20) {
        // Dynamic table size update (§6.3), only before the first field of a block.
        if (out.length > 0) throw new HpackError("dynamic table size update after a header field");
        let n = b & 0x1f;
        pos++;
        if (n === 0x1f) {
          n = this.integer(block, pos, 0x1f);
          pos = this.pos;
        }
        if (n > this.maxTableBytes) throw new HpackError(`dynamic table size update to ${n}, above ${this.maxTableBytes}`);
        this.tableMax = n;
        this.evictTo(n);
        continue;
      } else {
        // Literal header field without indexing or never indexed (§6.2.2, §6.2.3).
        index = b & 0x0f;
        pos++;
        if (index === 0x0f) {
          index = this.integer(block, pos, 0x0f);
          pos = this.pos;
        }
      }
      let name: string;
      if (index === 0) {
        name = this.string(block, pos, max - size - 32);
        pos = this.pos;
      } else if (index <= STATIC_COUNT) {
        name = STATIC_NAMES[index] as string;
      } else {
        name = this.names[this.slot(index)] as string;
      }
      const value = this.string(block, pos, max - size - 32 - name.length);
      pos = this.pos;
      size += name.length + value.length + 32;
      if (size > max) throw listTooLarge(max);
      out.push([name, value]);
      if (indexing) this.insert(name, value);
    }
    this.view = undefined;
    return out;
  }

  /** The ring position of dynamic table index `index` (above the static table). */
  private slot(index: number): number {
    const i = index - STATIC_COUNT - 1;
    if (i >= this.count) throw new HpackError(`header field index ${index} beyond the table`);
    const p = this.head + i;
    return p >= this.names.length ? p - this.names.length : p;
  }

  /** An integer whose prefix (all ones, `mask`) is in block[pos - 1], its continuation from `pos` (§5.1). */
  private integer(block: Uint8Array, pos: number, mask: number): number {
    let value = mask;
    let shift = 1;
    for (let i = 0; ; i++) {
      if (pos >= block.length) throw new HpackError("truncated integer");
      if (i === 5) throw new HpackError("integer too large");
      const b = block[pos++] as number;
      value += (b & 0x7f) * shift;
      if (value >= INT_LIMIT) throw new HpackError("integer too large");
      if ((b & 0x80) === 0) break;
      shift *= 128;
    }
    this.pos = pos;
    return value;
  }

  /** A string literal at block[pos] (§5.2) of at most `budget` octets once decoded. */
  private string(block: Uint8Array, pos: number, budget: number): string {
    if (pos >= block.length) throw new HpackError("truncated string");
    const b = block[pos++] as number;
    let len = b & 0x7f;
    if (len === 0x7f) {
      len = this.integer(block, pos, 0x7f);
      pos = this.pos;
    }
    const huffman = (b & 0x80) !== 0;
    // A Huffman code is at most 30 bits, so len octets decode to at least (8 len - 7) / 30 of them.
    const least = huffman ? Math.floor((8 * len - 7) / 30) : len;
    if (least > budget) throw listTooLarge(this.maxListBytes);
    const end = pos + len;
    if (end > block.length) throw new HpackError("truncated string");
    this.pos = end;
    if (!huffman) {
      if (this.view === undefined) this.view = Buffer.from(block.buffer, block.byteOffset, block.byteLength);
      return latin1(this.view, pos, end);
    }
    const n = huffmanDecode(block, pos, end);
    if (n > budget) throw listTooLarge(this.maxListBytes);
    return latin1(scratch, 0, n);
  }

  private insert(name: string, value: string): void {
    const s = name.length + value.length + 32;
    if (s > this.tableMax) {
      // An entry larger than the table empties it and is not added (§4.4).
      this.evictTo(0);
      return;
    }
    this.evictTo(this.tableMax - s);
    const capacity = this.names.length;
    this.head = this.head === 0 ? capacity - 1 : this.head - 1;
    this.names[this.head] = name;
    this.values[this.head] = value;
    this.count++;
    this.tableSize += s;
  }

  /** Evicts the oldest entries until the table holds at most `bytes`. */
  private evictTo(bytes: number): void {
    const capacity = this.names.length;
    while (this.tableSize > bytes) {
      let p = this.head + this.count - 1;
      if (p >= capacity) p -= capacity;
      this.tableSize -= (this.names[p] as string).length + (this.values[p] as string).length + 32;
      this.names[p] = "";
      this.values[p] = "";
      this.count--;
    }
  }
}

function listTooLarge(max: number): HpackError {
  return new HpackError(`header list larger than ${max} bytes`);
}

/** Huffman-decodes block[start, end) into `scratch`, returning the number of octets. */
function huffmanDecode(block: Uint8Array, start: number, end: number): number {
  // Each octet decodes to at most 8 / 5 of one.
  const most = Math.ceil(((end - start) * 8) / 5);
  if (scratch.length < most) scratch = Buffer.allocUnsafe(Math.max(most, scratch.length * 2));
  const out = scratch;
  const table = HUFF_TABLE;
  let state = 0;
  let accept = HUFF_ACCEPT;
  let n = 0;
  for (let i = start; i < end; i++) {
    const b = block[i] as number;
    let e = table[(state << 4) | (b >> 4)] as number;
    if (e & HUFF_FAIL) throw new HpackError("EOS in a Huffman-coded string");
    if (e & HUFF_EMIT) out[n++] = (e >> 8) & 0xff;
    state = e & 0xff;
    e = table[(state << 4) | (b & 0x0f)] as number;
    if (e & HUFF_FAIL) throw new HpackError("EOS in a Huffman-coded string");
    if (e & HUFF_EMIT) out[n++] = (e >> 8) & 0xff;
    state = e & 0xff;
    accept = e & HUFF_ACCEPT;
  }
  if (accept === 0) throw new HpackError("invalid Huffman padding");
  return n;
}

/** Huffman-encodes a string (RFC 7541 Appendix B), one octet per character (latin1). */
export function huffmanEncode(s: string): Uint8Array {
  let bits = 0;
  for (let i = 0; i < s.length; i++) bits += (HUFFMAN_CODES[s.charCodeAt(i) & 0xff] as readonly [number, number])[1];
  const out = new Uint8Array(Math.ceil(bits / 8));
  // acc holds fewer than 8 pending bits before each code is added, so at most 37: exact in a double.
  let acc = 0;
  let pending = 0;
  let o = 0;
  for (let i = 0; i < s.length; i++) {
    const [code, len] = HUFFMAN_CODES[s.charCodeAt(i) & 0xff] as readonly [number, number];
    acc = acc * 2 ** len + code;
    pending += len;
    while (pending >= 8) {
      pending -= 8;
      const unit = 2 ** pending;
      const byte = Math.floor(acc / unit);
      out[o++] = byte;
      acc -= byte * unit;
    }
  }
  // Padding: the most significant bits of EOS, all ones.
  if (pending > 0) out[o] = (acc << (8 - pending)) | ((1 << (8 - pending)) - 1);
  return out;
}

/** Static index of each name (its first entry), and of each exact value by name. */
const STATIC_NAME_INDEX = new Map<string, number>();
const STATIC_FIELD_INDEX = new Map<string, Map<string, number>>();
for (let i = STATIC_COUNT; i >= 1; i--) {
  const name = STATIC_NAMES[i] as string;
  STATIC_NAME_INDEX.set(name, i);
  const values = STATIC_FIELD_INDEX.get(name) ?? new Map<string, number>();
  values.set(STATIC_VALUES[i] as string, i);
  STATIC_FIELD_INDEX.set(name, values);
}

function integerLength(value: number, mask: number): number {
  if (value < mask) return 1;
  let n = 2;
  for (let v = value - mask; v >= 128; v = Math.floor(v / 128)) n++;
  return n;
}

function writeInteger(out: Uint8Array, o: number, value: number, mask: number, flags: number): number {
  if (value < mask) {
    out[o++] = flags | value;
    return o;
  }
  out[o++] = flags | mask;
  let v = value - mask;
  while (v >= 128) {
    out[o++] = (v % 128) | 0x80;
    v = Math.floor(v / 128);
  }
  out[o++] = v;
  return o;
}

function writeString(out: Uint8Array, o: number, s: string): number {
  o = writeInteger(out, o, s.length, 0x7f, 0);
  for (let i = 0; i < s.length; i++) out[o++] = s.charCodeAt(i);
  return o;
}

/** Most octets one field can take: the longest integer prefixes (5 octets each) and both strings. */
function fieldBound(name: string, value: string): number {
  return 11 + name.length + value.length;
}

/** Writes one field at `o`; see encodeHeaders. */
function writeField(out: Uint8Array, o: number, name: string, value: string): number {
  const index = STATIC_NAME_INDEX.get(name);
  if (index === undefined) {
    out[o++] = 0;
    o = writeString(out, o, name);
    return writeString(out, o, value);
  }
  const field = STATIC_FIELD_INDEX.get(name)?.get(value);
  if (field !== undefined) {
    out[o++] = 0x80 | field;
    return o;
  }
  o = writeInteger(out, o, index, 0x0f, 0);
  return writeString(out, o, value);
}

// Blocks are written here first, then copied out at their exact length: one pass over the fields.
let encodeScratch = new Uint8Array(4096);

function scratchFor(bound: number): Uint8Array {
  if (bound > encodeScratch.byteLength) encodeScratch = new Uint8Array(Math.max(bound, encodeScratch.byteLength * 2));
  return encodeScratch;
}

/**
 * Encodes a header list for a response: a field whose name and value are in the static table as an
 * index, any other as a literal without indexing (the name as a static index when it is there), string
 * literals as latin1 octets without Huffman coding. No dynamic table, so blocks can be cached and reused.
 */
export function encodeHeaders(fields: readonly (readonly [string, string])[]): Uint8Array {
  let bound = 0;
  for (const [name, value] of fields) bound += fieldBound(name, value);
  const out = scratchFor(bound);
  let o = 0;
  for (const [name, value] of fields) o = writeField(out, o, name, value);
  return out.slice(0, o);
}

/**
 * encodeHeaders for fields held as one object, numbers written in decimal and undefined ones left out;
 * `:status` goes first, as pseudo-header fields must.
 */
export function encodeHeaderFields(fields: Readonly<Record<string, string | number | undefined>>): Uint8Array {
  let bound = 0;
  for (const name in fields) {
    const value = fields[name];
    if (value !== undefined) bound += fieldBound(name, typeof value === "string" ? value : String(value));
  }
  const out = scratchFor(bound);
  let o = 0;
  const status = fields[":status"];
  if (status !== undefined) o = writeField(out, o, ":status", String(status));
  for (const name in fields) {
    const value = fields[name];
    if (value === undefined || name === ":status") continue;
    o = writeField(out, o, name, typeof value === "string" ? value : String(value));
  }
  return out.slice(0, o);
}
