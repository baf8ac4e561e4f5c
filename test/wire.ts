// Raw protocol senders for tests that must send what a typed client never would (malformed messages,
// wrong wire types, oversized bodies), and read back the status each protocol reports.

import http2 from "node:http2";

export interface WireResult {
  /** HTTP status for REST and Connect; the gRPC status code for gRPC and gRPC-Web. */
  status: number;
  /** REST error code, Connect error code, or gRPC status name. */
  code: string;
  message: string;
  headers: Record<string, string>;
  body: string;
}

const GRPC_NAMES = [
  "OK",
  "CANCELLED",
  "UNKNOWN",
  "INVALID_ARGUMENT",
  "DEADLINE_EXCEEDED",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "PERMISSION_DENIED",
  "RESOURCE_EXHAUSTED",
  "FAILED_PRECONDITION",
  "ABORTED",
  "OUT_OF_RANGE",
  "UNIMPLEMENTED",
  "INTERNAL",
  "UNAVAILABLE",
  "DATA_LOSS",
  "UNAUTHENTICATED",
];

export function grpcFrame(message: Uint8Array): Uint8Array {
  const frame = new Uint8Array(5 + message.length);
  new DataView(frame.buffer).setUint32(1, message.length);
  frame.set(message, 5);
  return frame;
}

function headersOf(h: Headers): Record<string, string> {
  return Object.fromEntries([...h.entries()]);
}

export async function sendRest(base: string, path: string, body: string, headers: Record<string, string>): Promise<WireResult> {
  const res = await fetch(`${base}${path}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body });
  const text = await res.text();
  const json = JSON.parse(text);
  return { status: res.status, code: json.code ?? "OK", message: json.error ?? "", headers: headersOf(res.headers), body: text };
}

export async function sendConnectJson(base: string, path: string, body: string, headers: Record<string, string>): Promise<WireResult> {
  const res = await fetch(`${base}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", "connect-protocol-version": "1", ...headers },
    body,
  });
  const text = await res.text();
  const json = JSON.parse(text);
  return { status: res.status, code: res.ok ? "OK" : json.code, message: json.message ?? "", headers: headersOf(res.headers), body: text };
}

/** gRPC-Web: the status travels in headers (trailers-only answers) or in a trailer frame at the end of the body. */
export async function sendGrpcWeb(base: string, path: string, message: Uint8Array, headers: Record<string, string>): Promise<WireResult> {
  const res = await fetch(`${base}${path}`, {
    method: "POST",
    headers: { "content-type": "application/grpc-web+proto", "x-grpc-web": "1", ...headers },
    body: grpcFrame(message),
  });
  const bytes = new Uint8Array(await res.arrayBuffer());
  const fields: Record<string, string> = headersOf(res.headers);
  let offset = 0;
  while (offset + 5 <= bytes.length) {
    const flag = bytes[offset] as number;
    const len = new DataView(bytes.buffer, bytes.byteOffset + offset + 1, 4).getUint32(0);
    const payload = bytes.subarray(offset + 5, offset + 5 + len);
    if (flag & 0x80) {
      for (const line of new TextDecoder().decode(payload).split("\r\n")) {
        const i = line.indexOf(":");
        if (i > 0) fields[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
    }
    offset += 5 + len;
  }
  const status = Number(fields["grpc-status"] ?? "-1");
  return { status, code: GRPC_NAMES[status] ?? "?", message: decodeURIComponent(fields["grpc-message"] ?? ""), headers: fields, body: "" };
}

export function sendGrpc(base: string, path: string, message: Uint8Array, headers: Record<string, string>): Promise<WireResult> {
  return new Promise((resolve, reject) => {
    const client = http2.connect(base);
    client.on("error", reject);
    const req = client.request({
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc+proto",
      te: "trailers",
      ...headers,
    });
    const fields: Record<string, string> = {};
    req.on("response", (h) => {
      for (const [k, v] of Object.entries(h)) if (typeof v === "string") fields[k] = v;
    });
    req.on("trailers", (h) => {
      for (const [k, v] of Object.entries(h)) if (typeof v === "string") fields[k] = v;
    });
    req.on("data", () => {});
    req.on("error", (err) => {
      client.close();
      reject(err);
    });
    req.on("end", () => {
      client.close();
      const status = Number(fields["grpc-status"] ?? "-1");
      resolve({
        status,
        code: GRPC_NAMES[status] ?? "?",
        message: decodeURIComponent(fields["grpc-message"] ?? ""),
        headers: fields,
        body: "",
      });
    });
    req.end(grpcFrame(message));
  });
}
