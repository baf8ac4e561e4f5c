// The HPACK codec of transport/hpack.ts: the examples of RFC 7541 Appendix C decode to the RFC's lists
// and dynamic tables, Huffman coding matches the RFC and round-trips every octet, response blocks decode
// back, blocks from a real HTTP/2 client (dynamic table, Huffman, CONTINUATION) decode to what it sent,
// and malformed or oversized blocks are refused with HpackError.

import { describe, expect, test } from "bun:test";
import net from "node:net";
import http2 from "node:http2";
import { encodeHeaderFields, encodeHeaders, HpackDecoder, HpackError, huffmanEncode } from "../src/transport/hpack.ts";

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"));
const toHex = (b: Uint8Array) => Buffer.from(b).toString("hex");

/** An HPACK integer: `flags` in the first octet, an N-bit prefix given as its mask (RFC 7541 §5.1). */
function integer(value: number, mask: number, flags = 0): number[] {
  if (value < mask) return [flags | value];
  const out = [flags | mask];
  let v = value - mask;
  while (v >= 128) {
    out.push((v % 128) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return out;
}

/** A literal field without indexing, name "x", the value Huffman-coded. */
function huffmanLiteral(value: string): Uint8Array {
  const coded = huffmanEncode(value);
  return Uint8Array.from([0x00, 0x01, 0x78, ...integer(coded.length, 0x7f, 0x80), ...coded]);
}

/** A deterministic generator, so that a failure can be replayed. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** Probes the dynamic table: indexed fields 62.. decode to its entries, newest first. */
function table(decoder: HpackDecoder, entries: number): [string, string][] {
  return decoder.decode(Uint8Array.from(Array.from({ length: entries }, (_, i) => 0x80 | (62 + i))));
}

describe("RFC 7541 C.2: header field representations", () => {
  test("C.2.1 literal with indexing", () => {
    const d = new HpackDecoder();
    expect(d.decode(hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"))).toEqual([["custom-key", "custom-header"]]);
    expect(table(d, 1)).toEqual([["custom-key", "custom-header"]]);
    expect(() => table(d, 2)).toThrow(HpackError);
  });

  test("C.2.2 literal without indexing", () => {
    const d = new HpackDecoder();
    expect(d.decode(hex("040c 2f73 616d 706c 652f 7061 7468"))).toEqual([[":path", "/sample/path"]]);
    expect(() => table(d, 1)).toThrow(HpackError);
  });

  test("C.2.3 literal never indexed", () => {
    const d = new HpackDecoder();
    expect(d.decode(hex("1008 7061 7373 776f 7264 0673 6563 7265 74"))).toEqual([["password", "secret"]]);
    expect(() => table(d, 1)).toThrow(HpackError);
  });

  test("C.2.4 indexed", () => {
    const d = new HpackDecoder();
    expect(d.decode(hex("82"))).toEqual([[":method", "GET"]]);
    expect(() => table(d, 1)).toThrow(HpackError);
  });
});

const REQUESTS: [string, string][][] = [
  [
    [":method", "GET"],
    [":scheme", "http"],
    [":path", "/"],
    [":authority", "www.example.com"],
  ],
  [
    [":method", "GET"],
    [":scheme", "http"],
    [":path", "/"],
    [":authority", "www.example.com"],
    ["cache-control", "no-cache"],
  ],
  [
    [":method", "GET"],
    [":scheme", "https"],
    [":path", "/index.html"],
    [":authority", "www.example.com"],
    ["custom-key", "custom-value"],
  ],
];
const REQUEST_TABLES: [string, string][][] = [
  [[":authority", "www.example.com"]],
  [
    ["cache-control", "no-cache"],
    [":authority", "www.example.com"],
  ],
  [
    ["custom-key", "custom-value"],
    ["cache-control", "no-cache"],
    [":authority", "www.example.com"],
  ],
];

const RESPONSES: [string, string][][] = [
  [
    [":status", "302"],
    ["cache-control", "private"],
    ["date", "Mon, 21 Oct 2013 20:13:21 GMT"],
    ["location", "https://www.example.com"],
  ],
  [
    [":status", "307"],
    ["cache-control", "private"],
    ["date", "Mon, 21 Oct 2013 20:13:21 GMT"],
    ["location", "https://www.example.com"],
  ],
  [
    [":status", "200"],
    ["cache-control", "private"],
    ["date", "Mon, 21 Oct 2013 20:13:22 GMT"],
    ["location", "https://www.example.com"],
    ["content-encoding", "gzip"],
    ["set-cookie", "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"],
  ],
];
const RESPONSE_TABLES: [string, string][][] = [
  [
    ["location", "https://www.example.com"],
    ["date", "Mon, 21 Oct 2013 20:13:21 GMT"],
    ["cache-control", "private"],
    [":status", "302"],
  ],
  [
    [":status", "307"],
    ["location", "https://www.example.com"],
    ["date", "Mon, 21 Oct 2013 20:13:21 GMT"],
    ["cache-control", "private"],
  ],
  [
    ["set-cookie", "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"],
    ["content-encoding", "gzip"],
    ["date", "Mon, 21 Oct 2013 20:13:22 GMT"],
  ],
];

/** Decodes the blocks in order on one decoder, checking each list and the table it leaves. */
function decodeSequence(d: HpackDecoder, blocks: string[], lists: [string, string][][], tables: [string, string][][]) {
  for (const [i, block] of blocks.entries()) {
    expect(d.decode(hex(block))).toEqual(lists[i] as [string, string][]);
    const entries = tables[i] as [string, string][];
    expect(table(d, entries.length)).toEqual(entries);
    // Nothing beyond the entries the RFC lists.
    expect(() => table(d, entries.length + 1)).toThrow(HpackError);
  }
}

describe("RFC 7541 C.3 to C.6: lists of header fields on one connection", () => {
  test("C.3 requests without Huffman coding", () => {
    decodeSequence(
      new HpackDecoder(),
      [
        "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
        "8286 84be 5808 6e6f 2d63 6163 6865",
        "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
      ],
      REQUESTS,
      REQUEST_TABLES,
    );
  });

  test("C.4 requests with Huffman coding", () => {
    decodeSequence(
      new HpackDecoder(),
      [
        "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
        "8286 84be 5886 a8eb 1064 9cbf",
        "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
      ],
      REQUESTS,
      REQUEST_TABLES,
    );
  });

  test("C.5 responses without Huffman coding, a 256-octet table", () => {
    decodeSequence(
      new HpackDecoder(65536, 256),
      [
        `4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474
         7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d`,
        "4803 3330 37c1 c0bf",
        `88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a
         4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31`,
      ],
      RESPONSES,
      RESPONSE_TABLES,
    );
  });

  test("C.6 responses with Huffman coding, a 256-octet table", () => {
    decodeSequence(
      new HpackDecoder(65536, 256),
      [
        `4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae
         82ae 43d3`,
        "4883 640e ffc1 c0bf",
        `88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960
         d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07`,
      ],
      RESPONSES,
      RESPONSE_TABLES,
    );
  });
});

describe("Huffman coding", () => {
  test("matches the RFC's examples", () => {
    const vectors: [string, string][] = [
      ["www.example.com", "f1e3 c2e5 f23a 6ba0 ab90 f4ff"],
      ["no-cache", "a8eb 1064 9cbf"],
      ["custom-key", "25a8 49e9 5ba9 7d7f"],
      ["custom-value", "25a8 49e9 5bb8 e8b4 bf"],
      ["302", "6402"],
      ["307", "640e ff"],
      ["private", "aec3 771a 4b"],
      ["Mon, 21 Oct 2013 20:13:21 GMT", "d07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff"],
      ["Mon, 21 Oct 2013 20:13:22 GMT", "d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff"],
      ["https://www.example.com", "9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3"],
      ["gzip", "9bd9 ab"],
      [
        "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
        "94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07",
      ],
      ["", ""],
    ];
    for (const [s, h] of vectors) expect(toHex(huffmanEncode(s))).toBe(toHex(hex(h)));
  });

  test("the code is canonical and complete, EOS last", () => {
    // Eight copies of a symbol fill a whole number of octets: its length in octets is the code's in
    // bits, and the code is the first of them.
    const codes = Array.from({ length: 256 }, (_, sym) => {
      const bytes = huffmanEncode(String.fromCharCode(sym).repeat(8));
      const len = bytes.length;
      let bits = 0n;
      for (const b of bytes) bits = (bits << 8n) | BigInt(b);
      return { sym, len, code: bits >> BigInt(7 * len) };
    });
    codes.push({ sym: 256, len: 30, code: 0x3fffffffn });
    codes.sort((a, b) => a.len - b.len || a.sym - b.sym);
    let expected = 0n;
    let previous = codes[0]?.len ?? 0;
    let kraft = 0;
    for (const c of codes) {
      expected <<= BigInt(c.len - previous);
      previous = c.len;
      expect({ sym: c.sym, code: c.code }).toEqual({ sym: c.sym, code: expected });
      expected++;
      kraft += 2 ** -c.len;
    }
    expect(kraft).toBe(1);
    expect(codes.at(-1)?.sym).toBe(256);
  });

  test("decodes what it encodes: every octet, random latin1 strings", () => {
    const d = new HpackDecoder(1 << 20);
    const all = Array.from({ length: 256 }, (_, i) => String.fromCharCode(i)).join("");
    const samples = [all, all.split("").reverse().join(""), "", "a", "\u00ff", "\u0000"];
    for (let i = 0; i < 256; i++) samples.push(String.fromCharCode(i), String.fromCharCode(i).repeat(7));
    const next = random(7541);
    for (let i = 0; i < 300; i++) {
      const len = Math.floor(next() * 300);
      let s = "";
      for (let j = 0; j < len; j++) s += String.fromCharCode(Math.floor(next() * 256));
      samples.push(s);
    }
    for (const s of samples) expect(d.decode(huffmanLiteral(s))).toEqual([["x", s]]);
  });
});

describe("encodeHeaders", () => {
  test("a static field whose name and value match is one octet", () => {
    expect(toHex(encodeHeaders([[":status", "200"]]))).toBe("88");
    expect(toHex(encodeHeaders([[":status", "404"]]))).toBe("8d");
    expect(toHex(encodeHeaders([[":authority", ""]]))).toBe("81");
  });

  test("literals without indexing, static names by index, no Huffman", () => {
    // content-type is static index 31: 0000 1111, then 31 - 15.
    expect(toHex(encodeHeaders([["content-type", "application/grpc"]]))).toBe(
      `0f10 10${Buffer.from("application/grpc").toString("hex")}`.replace(/ /g, ""),
    );
    expect(toHex(encodeHeaders([[":status", "201"]]))).toBe(`0803${Buffer.from("201").toString("hex")}`);
    expect(toHex(encodeHeaders([["grpc-status", "0"]]))).toBe(`000b${Buffer.from("grpc-status").toString("hex")}0130`);
  });

  test("decodes back to the same list, repeatedly on one decoder", () => {
    const fields: [string, string][] = [
      [":status", "200"],
      ["content-type", "application/grpc"],
      ["grpc-encoding", "gzip"],
      ["date", "Mon, 21 Oct 2013 20:13:21 GMT"],
      ["grpc-status", "0"],
      ["grpc-message", "caf\u00e9 \u00ff\u0080"],
      ["x-long", "v".repeat(200)],
      ["x-longer", "w".repeat(20000)],
      [`x-${"n".repeat(150)}`, ""],
      ["www-authenticate", "Bearer"],
    ];
    const block = encodeHeaders(fields);
    const d = new HpackDecoder(1 << 20);
    for (let i = 0; i < 3; i++) expect(d.decode(block)).toEqual(fields);
    // Nothing was added to the table.
    expect(() => table(d, 1)).toThrow(HpackError);
    expect(encodeHeaders([])).toEqual(new Uint8Array(0));
  });

  test("from an object: :status first, numbers in decimal, undefined left out, blocks not shared", () => {
    const first = encodeHeaderFields({ "grpc-status": 0, ":status": 200, "x-skip": undefined, "x-request-id": "r1" });
    expect(new HpackDecoder(4096).decode(first)).toEqual([
      [":status", "200"],
      ["grpc-status", "0"],
      ["x-request-id", "r1"],
    ]);
    // Each block is its own copy: encoding the next one leaves the first as it was.
    const copy = Uint8Array.from(first);
    const big = encodeHeaderFields({ ":status": 404, "x-big": "z".repeat(10_000) });
    expect(first).toEqual(copy);
    expect(new HpackDecoder(1 << 20).decode(big)).toEqual([
      [":status", "404"],
      ["x-big", "z".repeat(10_000)],
    ]);
    expect(encodeHeaderFields({ ":status": 200, "content-type": "application/grpc" })).toEqual(
      encodeHeaders([
        [":status", "200"],
        ["content-type", "application/grpc"],
      ]),
    );
  });
});

/** Header blocks a node:http2 client sends to a bare TCP server, in the order sent. */
async function clientBlocks(requests: http2.OutgoingHttpHeaders[]): Promise<{ blocks: Uint8Array[]; authority: string }> {
  const blocks: Uint8Array[] = [];
  const sockets = new Set<net.Socket>();
  let done: () => void = () => {};
  const all = new Promise<void>((resolve) => {
    done = resolve;
  });
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => {});
    // The server preface: an empty SETTINGS frame.
    socket.write(Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]));
    let buffered = Buffer.alloc(0);
    let prefaceRead = false;
    let fragments: Buffer[] = [];
    socket.on("data", (data: Buffer) => {
      buffered = Buffer.concat([buffered, data]);
      if (!prefaceRead) {
        if (buffered.length < 24) return;
        expect(buffered.subarray(0, 24).toString("latin1")).toBe("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        buffered = buffered.subarray(24);
        prefaceRead = true;
      }
      while (buffered.length >= 9) {
        const length = buffered.readUIntBE(0, 3);
        if (buffered.length < 9 + length) break;
        const type = buffered[3] as number;
        const flags = buffered[4] as number;
        let payload = buffered.subarray(9, 9 + length);
        buffered = buffered.subarray(9 + length);
        if (type === 4 && (flags & 1) === 0) socket.write(Buffer.from([0, 0, 0, 4, 1, 0, 0, 0, 0]));
        if (type !== 1 && type !== 9) continue;
        if (type === 1) {
          let padding = 0;
          if (flags & 0x8) {
            padding = payload[0] as number;
            payload = payload.subarray(1);
          }
          if (flags & 0x20) payload = payload.subarray(5);
          payload = payload.subarray(0, payload.length - padding);
        }
        fragments.push(payload);
        if (flags & 0x4) {
          blocks.push(new Uint8Array(Buffer.concat(fragments)));
          fragments = [];
          if (blocks.length === requests.length) done();
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  const client = http2.connect(`http://127.0.0.1:${port}`);
  client.on("error", () => {});
  try {
    for (const headers of requests) client.request(headers, { endStream: true }).on("error", () => {});
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`only ${blocks.length} of ${requests.length} header blocks arrived`)), 20_000);
    });
    await Promise.race([all, timeout]).finally(() => clearTimeout(timer));
  } finally {
    client.destroy();
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
  return { blocks, authority: `127.0.0.1:${port}` };
}

describe("against a real HTTP/2 client", () => {
  test("decodes the blocks of one connection to the headers sent", async () => {
    const next = random(2024);
    const text = (n: number) => {
      const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~+/=";
      let s = "";
      for (let i = 0; i < n; i++) s += alphabet[Math.floor(next() * alphabet.length)];
      return s;
    };
    // Every octet a header value may hold: tab, visible ASCII, and 0x80 to 0xff.
    let octets = "\t";
    for (let c = 0x20; c < 0x7f; c++) octets += String.fromCharCode(c);
    for (let c = 0x80; c <= 0xff; c++) octets += String.fromCharCode(c);
    // The same octets among frequent ones, so that the client codes them with Huffman.
    const mixed = octets
      .split("")
      .map((c) => `eeeeeeee${c}`)
      .join("");
    const token = text(40);
    const grpc = (path: string, timeout: string): http2.OutgoingHttpHeaders => ({
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
      "user-agent": "grpc-node-js/1.12",
      "grpc-timeout": timeout,
      authorization: `Bearer ${token}`,
      "grpc-accept-encoding": "identity,deflate,gzip",
    });
    const long = text(3000);
    const churn = Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`x-churn-${i}`, text(20 + i)]));
    const requests: http2.OutgoingHttpHeaders[] = [
      { ...grpc("/nba.v1.DecisionService/Recommend", "5S"), "x-octets": octets, "x-long": long },
      { ...grpc("/nba.v1.DecisionService/Recommend", "5S"), "x-octets": octets, "x-long": long },
      { ...grpc("/nba.v1.DecisionService/Respond", "4S"), "x-request-id": text(16), "x-long": long },
      { ":method": "GET", ":path": `/huge?q=${text(10)}`, "x-huge": text(30000), "accept-encoding": "gzip, deflate" },
      { ...grpc("/nba.v1.DecisionService/Recommend", "5S"), "x-octets": octets },
      { ...grpc("/nba.v1.DecisionService/Recommend", "3S"), ...churn },
      { ...grpc("/nba.v1.DecisionService/Recommend", "2S"), ...churn, "x-churn-7": "changed" },
      { ...grpc("/nba.v1.DecisionService/Recommend", "5S"), "x-octets": octets, "x-long": long },
      grpc("/nba.v1.DecisionService/Recommend", "5S"),
      { ...grpc("/nba.v1.DecisionService/Recommend", "5S"), "x-mixed": mixed },
      grpc("/nba.v1.DecisionService/Recommend", "5S"),
    ];
    const { blocks, authority } = await clientBlocks(requests);
    expect(blocks.length).toBe(requests.length);
    const d = new HpackDecoder(1 << 20);
    for (const [i, block] of blocks.entries()) {
      const decoded = d.decode(block);
      const sent = { ":scheme": "http", ":authority": authority, ...(requests[i] as Record<string, string>) };
      expect(Object.fromEntries(decoded)).toEqual(sent);
      expect(decoded.length).toBe(Object.keys(sent).length);
    }
    const [first, second, , huge] = blocks as [Uint8Array, Uint8Array, Uint8Array, Uint8Array];
    // The client used its dynamic table (a repeated request is a few dozen octets), Huffman coding
    // (the 3,000-character value took fewer octets), and a block longer than one frame.
    expect(second.length).toBeLessThan(first.length / 20);
    expect(first.length).toBeLessThan(3000 + octets.length);
    expect(huge.length).toBeGreaterThan(16384);
    expect(blocks[9]?.length).toBeLessThan(mixed.length);
  }, 30_000);
});

describe("refusals", () => {
  const refuses = (block: number[] | Uint8Array, decoder = new HpackDecoder()) =>
    expect(() => decoder.decode(Uint8Array.from(block))).toThrow(HpackError);

  test("a header list larger than maxListBytes", () => {
    // 40 + 40 + 32 = 112 octets.
    const field = [0x00, 40, ...Buffer.from("a".repeat(40)), 40, ...Buffer.from("b".repeat(40))];
    expect(new HpackDecoder(112).decode(Uint8Array.from(field))).toEqual([["a".repeat(40), "b".repeat(40)]]);
    refuses(field, new HpackDecoder(111));
    refuses([...field, 0x82], new HpackDecoder(140));
    // One large entry referenced many times.
    const d = new HpackDecoder();
    expect(d.decode(Uint8Array.from([0x40, 0x01, 0x78, ...integer(4000, 0x7f), ...Buffer.from("y".repeat(4000))]))).toHaveLength(1);
    expect(d.decode(Uint8Array.from(new Array(15).fill(0xbe)))).toHaveLength(15);
    refuses(new Array(17).fill(0xbe), d);
  });

  test("a literal declaring a length of 1 GB, with or without Huffman coding", () => {
    const gb = 2 ** 30;
    const started = performance.now();
    refuses([0x00, ...integer(gb, 0x7f), 0x61]);
    refuses([0x00, ...integer(gb, 0x7f, 0x80), 0xff]);
    refuses([0x00, 0x01, 0x61, ...integer(gb, 0x7f), 0x61]);
    // With no list limit to stop it, the block is too short for the declared length.
    refuses([0x00, ...integer(gb, 0x7f), 0x61], new HpackDecoder(2 ** 31));
    refuses([0x00, ...integer(gb, 0x7f, 0x80), 0xff], new HpackDecoder(2 ** 31));
    expect(performance.now() - started).toBeLessThan(1000);
  });

  test("index 0 and indexes beyond the table", () => {
    refuses([0x80]);
    refuses([0xbe]);
    refuses([0xff, 0x80, 0x01]);
    // A literal whose name index is beyond the table.
    refuses([0x7e, 0x01, 0x61]);
    refuses([0x0f, 0x2f, 0x01, 0x61]);
    const d = new HpackDecoder();
    expect(d.decode(hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"))).toHaveLength(1);
    expect(d.decode(Uint8Array.from([0xbe]))).toEqual([["custom-key", "custom-header"]]);
    refuses([0xbf], d);
  });

  test("truncated and overflowing integers", () => {
    refuses([0xff]);
    refuses([0xff, 0x80]);
    refuses([0x00, 0x7f]);
    refuses([0x7f, ...new Array(10).fill(0xff)]);
    // 2^31 exactly is refused, and so is a run of zero continuation octets.
    refuses([0xff, ...integer(2 ** 31 - 127, 0x7f).slice(1)]);
    refuses([0xff, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]);
  });

  test("truncated strings", () => {
    refuses([0x00]);
    refuses([0x00, 0x05, 0x61]);
    refuses([0x00, 0x01, 0x61]);
    refuses([0x00, 0x01, 0x61, 0x02, 0x62]);
    refuses([0x04]);
  });

  test("invalid Huffman padding and EOS", () => {
    // 'a' is 00011: padded with ones it decodes, with zeros it does not.
    expect(new HpackDecoder().decode(Uint8Array.from([0x00, 0x81, 0x1f, 0x00]))).toEqual([["a", ""]]);
    refuses([0x00, 0x81, 0x18, 0x00]);
    refuses([0x00, 0x81, 0x1e, 0x00]);
    // Padding of eight or more bits.
    refuses([0x00, 0x81, 0xff, 0x00]);
    refuses([0x00, 0x82, 0x1f, 0xff, 0x00]);
    // EOS (thirty ones) inside a string.
    refuses([0x00, 0x84, 0xff, 0xff, 0xff, 0xff, 0x00]);
    refuses([0x00, 0x01, 0x61, 0x85, 0x1f, 0xff, 0xff, 0xff, 0xff]);
  });

  test("dynamic table size updates: within the maximum and only at the start of a block", () => {
    const d = new HpackDecoder();
    // Up to 4,096 is accepted, more is not.
    expect(d.decode(Uint8Array.from([0x3f, 0xe1, 0x1f, 0x82]))).toEqual([[":method", "GET"]]);
    refuses([0x3f, 0xe2, 0x1f]);
    refuses([0x3f, 0xe1, 0x1f], new HpackDecoder(65536, 256));
    refuses([0x82, 0x20]);
    refuses([0x82, 0x3f, 0xe1, 0x1f]);
    // Honoured: lowering the size evicts, and a smaller table keeps only what fits.
    expect(d.decode(hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"))).toHaveLength(1);
    expect(table(d, 1)).toEqual([["custom-key", "custom-header"]]);
    expect(d.decode(Uint8Array.from([0x20, 0x3f, 0xe1, 0x1f]))).toEqual([]);
    refuses([0xbe], d);
    expect(d.decode(Uint8Array.from([0x3f, 0x19, 0x40, 0x01, 0x61, 0x01, 0x62, 0x40, 0x01, 0x63, 0x01, 0x64]))).toHaveLength(2);
    // 56 octets hold one 34-octet entry: the newer.
    expect(table(d, 1)).toEqual([["c", "d"]]);
    refuses([0xbf], d);
  });
});
