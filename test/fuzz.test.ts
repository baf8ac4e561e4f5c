// Property-based fuzzing of everything a client can reach: every REST route of the route table, every
// procedure of the Connect router over native gRPC (raw frames on GRPC_PORT) and gRPC-Web, and over Connect
// unary, with generated bodies, path ids, query strings, headers and credentials. What it proves: whatever a
// client sends, the answer is never a server error (HTTP 5xx, gRPC `internal` or `unknown`); a REST error is
// always the documented `{error, code, details, requestId}` with the status of its code; broken credentials
// never succeed; and the process keeps serving afterwards.
//
// Runs are reproducible: the seed is fixed (FUZZ_SEED overrides it) and a failure names it with fast-check's
// counterexample, shrunk. FUZZ_RUNS multiplies the number of runs for a longer hunt.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import http2 from "node:http2";
import { brotliCompressSync, gzipSync } from "node:zlib";
import { create, type DescEnum, type DescField, type DescMessage, fromJson, ScalarType, toBinary } from "@bufbuild/protobuf";
import { createConnectRouter } from "@connectrpc/connect";
import fc from "fast-check";
import { CustomerSchema } from "../gen/kaireon/v1/customer_pb.ts";
import { type ErrorCode, httpStatusOf } from "../src/errors.ts";
import { registerServices } from "../src/transport/connect.ts";
import { createRestApp } from "../src/transport/rest.ts";
import { pathOf, ruleOf } from "../src/transport/call-rules.ts";
import { apiRoutes, type RestRoute, ruleOfRoute } from "../src/transport/routes/index.ts";
import { authHeaders, createTenantWithKey, DEMO_KEY, startTestService, type TestService } from "./harness.ts";
import { sendGrpc } from "./wire.ts";

const DEFAULT_SEED = 20_240_611;
const SEED = process.env.FUZZ_SEED ? Number.parseInt(process.env.FUZZ_SEED, 10) | 0 : DEFAULT_SEED;
const SCALE = Math.max(1, Number.parseInt(process.env.FUZZ_RUNS ?? "1", 10) || 1);
/** Runs per REST route: every route gets its own property, so that none can be missed by chance. */
const RUNS_PER_ROUTE = { withBody: 16 * SCALE, withoutBody: 8 * SCALE };
const RUNS = {
  grpcPlain: 300 * SCALE,
  grpcCompressed: 150 * SCALE,
  connectJson: 300 * SCALE,
  connectBinary: 200 * SCALE,
  connectCompressed: 150 * SCALE,
};
/** No single call may take longer than this: a hang is a failure too. */
const CALL_TIMEOUT_MS = 10_000;
const TEST_TIMEOUT_MS = 120_000;

let svc: TestService;
let routes: RestRoute[];
/** Every procedure the Connect router serves (gRPC, gRPC-Web and Connect share it). */
let procedures: { path: string; input: DescMessage }[];
let decideOnlyKey: string;
/** One HTTP/2 connection to GRPC_PORT for the whole run, replaced when the server or an error closes it. */
let grpcClient: http2.ClientHttp2Session | null = null;

beforeAll(async () => {
  svc = await startTestService();
  routes = apiRoutes(svc.app.deps);
  const router = createConnectRouter();
  registerServices(svc.app.deps, { ready: async () => ({}) })(router);
  procedures = router.handlers.map((h) => ({ path: h.requestPath, input: h.method.input }));
  decideOnlyKey = await createTenantWithKey(svc, "fuzz_decide", ["decide"]);
});
afterAll(async () => {
  grpcClient?.close();
  await svc.stop();
});

// ---------------------------------------------------------------------------------------------------------
// Encoding helpers

/** UTF-8, except that a lone surrogate is encoded as its three bytes (WTF-8), as a careless client would. */
function wtf8(s: string): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    const next = s.charCodeAt(i + 1);
    if (c >= 0xd800 && c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
      c = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
      i++;
    }
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
  }
  return Uint8Array.from(out);
}

/** Percent-encodes bytes (any bytes, so invalid UTF-8 and WTF-8 surrogates too), keeping unreserved ASCII. */
function percent(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) {
    const c = String.fromCharCode(b);
    out += /[A-Za-z0-9._~-]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

const bytesOf = (body: string | Uint8Array): Uint8Array => (typeof body === "string" ? wtf8(body) : body);

/** JSON text that JSON.stringify cannot write (1e400, deep nesting), spliced in verbatim by jsonText. */
class RawJson {
  constructor(readonly text: string) {}
}

function jsonText(value: unknown): string {
  if (value instanceof RawJson) return value.text;
  if (Array.isArray(value)) return `[${value.map(jsonText).join(",")}]`;
  if (value !== null && typeof value === "object") {
    return `{${Object.entries(value)
      .map(([k, v]) => `${JSON.stringify(k)}:${jsonText(v)}`)
      .join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h | 0;
}

// ---------------------------------------------------------------------------------------------------------
// Generators of client input

/** Text that has broken text handling before: NUL, lone surrogates, dot segments, escapes, template syntax. */
const NASTY = [
  "\u0000",
  "\ud800",
  "\udc00",
  "\ud83d",
  "\ufffd",
  "\ufeff",
  "\u2028",
  "\u{10ffff}",
  "\u{1f600}",
  "é",
  ".",
  "..",
  "/",
  "\\",
  "%",
  "%00",
  '"',
  "'",
  "`",
  "\u0024{x}", // a template placeholder
  "{{x}}",
  "__proto__",
  "constructor",
  " ",
  "\t",
  "\n",
  "\r\n",
  "NaN",
  "-0",
];
const textUnit = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: "binary", minLength: 1, maxLength: 1 }) },
  { weight: 1, arbitrary: fc.constantFrom(...NASTY) },
);
const hostileText = fc.oneof(
  { weight: 6, arbitrary: fc.string({ unit: textUnit, maxLength: 24 }) },
  { weight: 2, arbitrary: fc.constantFrom(...NASTY) },
  // Past the id limit (128), the idempotency-key limit (255) and a creative field's limit (8,192).
  { weight: 1, arbitrary: fc.string({ unit: "grapheme-ascii", minLength: 129, maxLength: 9000 }) },
);
const hugeNumber = fc
  .constantFrom(
    "1e400",
    "-1e400",
    "1e-400",
    "-0",
    "123456789012345678901234567890",
    "9007199254740993",
    "18446744073709551616",
    "-9223372036854775809",
    "2147483648",
    "4294967296",
    "1.5",
    "0.1e1",
  )
  .map((t) => new RawJson(t));
/** Nesting below and beyond the decoders' limits (shape checks 32, text checks 64, protobuf 100). */
const deepNesting = fc
  .tuple(fc.oneof(fc.integer({ min: 1, max: 130 }), fc.integer({ min: 130, max: 3000 })), fc.boolean())
  .map(
    ([depth, arrays]) => new RawJson(arrays ? "[".repeat(depth) + "]".repeat(depth) : `${'{"a":'.repeat(depth)}null${"}".repeat(depth)}`),
  );
const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: fc.jsonValue({ maxDepth: 2, stringUnit: textUnit }) },
  { weight: 3, arbitrary: hostileText },
  { weight: 1, arbitrary: hugeNumber },
  { weight: 1, arbitrary: deepNesting },
  { weight: 1, arbitrary: fc.constantFrom<unknown>(null, true, false, 0, -1, 1.5, "", [], {}) },
  { weight: 1, arbitrary: fc.array(hostileText, { maxLength: 3 }) },
  { weight: 1, arbitrary: fc.dictionary(hostileText, hostileText, { maxKeys: 3 }) },
);

/** Ids of the demo tenant's catalog, so that some generated requests reach past "not found". */
const REAL_IDS: Record<string, string> = {
  customerId: "cust_12345",
  channelId: "ch_email",
  placementId: "hero_offer",
  placement: "hero_offer",
  decisionFlowId: "df_credit_cards",
  offerId: "act_platinum_cc",
  categoryId: "cat_credit_cards",
  creativeId: "treat_platinum_email",
  experimentId: "exp_cc_cta_test",
  outcomeType: "click",
  traceId: "trace_abc123",
};
/**
 * The tenant's own rate limits beat the harness's override: a generated settings write that set one low
 * would throttle the rest of the run into 429s, so these fields are never generated.
 */
const THROTTLING = new Set(["rateLimitPerMinute", "respondRateLimitPerMinute", "adminRateLimitPerMinute", "monthlyDecisionQuota"]);
const DROP = Symbol("drop");
const WRAPPERS = new Set(
  ["Int32Value", "UInt32Value", "Int64Value", "UInt64Value", "DoubleValue", "FloatValue", "BoolValue", "StringValue", "BytesValue"].map(
    (n) => `google.protobuf.${n}`,
  ),
);

type Leaf = { kind: "scalar"; scalar: ScalarType } | { kind: "enum"; desc: DescEnum } | { kind: "message"; desc: DescMessage };

/** What one value of a field is (the element of a list, the value of a map). */
function leafOf(f: DescField): Leaf {
  switch (f.fieldKind) {
    case "scalar":
      return { kind: "scalar", scalar: f.scalar };
    case "enum":
      return { kind: "enum", desc: f.enum };
    case "message":
      return { kind: "message", desc: f.message };
    case "list":
      if (f.listKind === "scalar") return { kind: "scalar", scalar: f.scalar };
      if (f.listKind === "enum") return { kind: "enum", desc: f.enum };
      return { kind: "message", desc: f.message };
    case "map":
      if (f.mapKind === "scalar") return { kind: "scalar", scalar: f.scalar };
      if (f.mapKind === "enum") return { kind: "enum", desc: f.enum };
      return { kind: "message", desc: f.message };
  }
}

const plainJson = fc.oneof(fc.string({ maxLength: 8 }), fc.integer({ min: -5, max: 100 }), fc.boolean(), fc.constant(null));

/** A plausible value for a field, as a well-meaning client would write it in JSON. */
function typicalLeaf(leaf: Leaf, name: string, depth: number, hostile: boolean): fc.Arbitrary<unknown> {
  if (leaf.kind === "enum") return fc.constantFrom(...leaf.desc.values.map((v) => v.name));
  if (leaf.kind === "message") {
    const t = leaf.desc.typeName;
    if (t === "google.protobuf.Timestamp") return fc.constantFrom("2030-01-01T00:00:00Z", "2000-01-01T00:00:00.5Z");
    if (t === "google.protobuf.Duration") return fc.constantFrom("1s", "0.5s");
    if (t === "google.protobuf.FieldMask") return fc.constantFrom("name", "name,priority", "");
    if (t === "google.protobuf.Struct") {
      return fc.dictionary(fc.constantFrom("tier", "base_rate", "a", "segment"), hostile ? hostileValue : plainJson, { maxKeys: 3 });
    }
    if (t === "google.protobuf.Value") return hostile ? hostileValue : plainJson;
    if (WRAPPERS.has(t)) {
      const inner = leaf.desc.fields[0];
      return inner?.fieldKind === "scalar"
        ? typicalLeaf({ kind: "scalar", scalar: inner.scalar }, name, depth, hostile)
        : fc.constant(null);
    }
    if (t.startsWith("google.protobuf.") || depth >= 2) return fc.constant({});
    return shapedObject(leaf.desc, depth + 1, hostile);
  }
  switch (leaf.scalar) {
    case ScalarType.STRING: {
      const fuzzIds = fc.nat(20).map((n) => `fz_${n}`);
      const real = REAL_IDS[name];
      if (real) return fc.oneof(fc.constant(real), fuzzIds);
      if (/Ids?$/.test(name)) return fuzzIds;
      return fc.constantFrom("fuzz", "Fuzz name", "");
    }
    case ScalarType.BYTES:
      return fc.constantFrom("", "AAEC");
    case ScalarType.BOOL:
      return fc.boolean();
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return fc.constantFrom(0, 0.5, 1, 100);
    default:
      // Versions 1 to 3 match the demo catalog's, so some writes pass the version check and go deeper.
      return name === "version" ? fc.nat(3) : fc.constantFrom(0, 1, 3, 50, 100);
  }
}

function typicalField(f: DescField, depth: number, hostile: boolean): fc.Arbitrary<unknown> {
  const leaf = typicalLeaf(leafOf(f), f.jsonName, depth, hostile);
  if (f.fieldKind === "list") return fc.array(leaf, { maxLength: 2 });
  if (f.fieldKind === "map") {
    const key =
      f.mapKey === ScalarType.STRING
        ? hostile
          ? hostileText
          : fc.constantFrom("a", "tier", "base_rate")
        : fc.constantFrom("1", "-1", "x");
    return fc.dictionary(key, leaf, { maxKeys: 2 });
  }
  return leaf;
}

/**
 * An object shaped like a request message: each field typical, absent, or (when hostile) replaced by an
 * arbitrary value, so that the checks behind the first type check are reached too.
 */
function shapedObject(schema: DescMessage, depth: number, hostile: boolean): fc.Arbitrary<Record<string, unknown>> {
  const parts: Record<string, fc.Arbitrary<unknown>> = {};
  for (const f of schema.fields) {
    if (THROTTLING.has(f.jsonName)) continue;
    const typical = typicalField(f, depth, hostile);
    parts[f.jsonName] = hostile
      ? fc.oneof({ weight: 6, arbitrary: typical }, { weight: 1, arbitrary: hostileValue }, { weight: 2, arbitrary: fc.constant(DROP) })
      : fc.oneof({ weight: 3, arbitrary: typical }, { weight: 1, arbitrary: fc.constant(DROP) });
  }
  return fc.record(parts).map((o) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== DROP)));
}

/** Bytes that are not well-formed UTF-8 text: lone surrogates (WTF-8), overlong NUL, past U+10FFFF, stray bytes. */
const badUtf8 = fc.constantFrom(
  [0xed, 0xa0, 0x80],
  [0xed, 0xbf, 0xbf],
  [0xc0, 0x80],
  [0x00],
  [0xff, 0xfe],
  [0xf4, 0x90, 0x80, 0x80],
  [0x80],
  [0xe2, 0x82],
);

/** A JSON body for a message: shaped, any JSON value, text that is not JSON, or bytes that are not UTF-8. */
function jsonBody(schema: DescMessage): fc.Arbitrary<string | Uint8Array> {
  const names = schema.fields.length > 0 ? schema.fields.map((f) => f.jsonName) : ["x"];
  const shaped = shapedObject(schema, 0, true);
  return fc.oneof(
    { weight: 5, arbitrary: shaped.map(jsonText) },
    { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)) },
    { weight: 1, arbitrary: hostileValue.map(jsonText) },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...names), fc.oneof(hugeNumber, deepNesting)).map(([k, v]) => `{"${k}":${v.text}}`) },
    {
      weight: 1,
      // Cut short anywhere: truncated JSON.
      arbitrary: fc.tuple(shaped.map(jsonText), fc.nat()).map(([t, n]) => t.slice(0, n % (t.length + 1))),
    },
    {
      weight: 1,
      arbitrary: fc.oneof(
        fc.string({ unit: textUnit, maxLength: 40 }),
        fc.constantFrom(
          "{",
          "[",
          '{"a":',
          "nul",
          '"open',
          "{}}",
          '{"a":1,}',
          "\u0000",
          '{"__proto__":{"x":1}}',
          '{"constructor":{"prototype":{}}}',
        ),
      ),
    },
    {
      weight: 1,
      // A field whose string holds bytes no JSON parser should turn into valid text.
      arbitrary: fc
        .tuple(fc.constantFrom(...names), badUtf8)
        .map(([k, bad]) => Uint8Array.from([...wtf8(`{"${k}":"a`), ...bad, ...wtf8('b"}')])),
    },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }) },
  );
}

/** Header values a client can put on the wire: printable ASCII and Latin-1, trimmed as fetch trims them. */
const headerText = fc
  .string({
    unit: fc.oneof(fc.integer({ min: 0x20, max: 0x7e }), fc.integer({ min: 0xa0, max: 0xff })).map((c) => String.fromCharCode(c)),
    maxLength: 300,
  })
  .map((s) => s.trim());
/** Only printable ASCII: node:http2 refuses to send anything else. */
const asciiHeaderText = fc.string({ unit: "grapheme-ascii", maxLength: 300 }).map((s) => s.trim());

interface Credentials {
  tenant?: string;
  key?: string;
  /** The key of a second tenant that may only decide (no admin scope). */
  decideOnly?: true;
}
/** The harness's demo credentials, as authHeaders() sends them. */
const VALID: Credentials = { tenant: authHeaders()["x-tenant-id"], key: authHeaders()["x-api-key"] };
const isValid = (c: Credentials) => c.tenant === VALID.tenant && c.key === VALID.key;
function credentials(text: fc.Arbitrary<string>): fc.Arbitrary<Credentials> {
  const broken = fc
    .oneof(
      fc.constant<Credentials>({}),
      fc.constant<Credentials>({ tenant: "demo" }),
      fc.constant<Credentials>({ key: DEMO_KEY }),
      fc.constant<Credentials>({ tenant: "demo", key: `${DEMO_KEY.slice(0, -1)}2` }),
      fc.constant<Credentials>({ tenant: "demo", key: DEMO_KEY.toLowerCase() }),
      fc.constant<Credentials>({ tenant: "fuzz_decide", key: DEMO_KEY }),
      text.map((key): Credentials => ({ tenant: "demo", key })),
      text.map((tenant): Credentials => ({ tenant, key: DEMO_KEY })),
    )
    .filter((c) => !isValid(c));
  return fc.oneof(
    { weight: 14, arbitrary: fc.constant(VALID) },
    { weight: 1, arbitrary: broken },
    { weight: 1, arbitrary: fc.constant<Credentials>({ tenant: "fuzz_decide", key: "", decideOnly: true }) },
  );
}

function credentialHeaders(c: Credentials): Record<string, string> {
  const h: Record<string, string> = {};
  if (c.decideOnly) return { "x-tenant-id": "fuzz_decide", "x-api-key": decideOnlyKey };
  if (c.tenant !== undefined) h["x-tenant-id"] = c.tenant;
  if (c.key !== undefined) h["x-api-key"] = c.key;
  return h;
}

/** Request ids the service echoes, and ones it must replace. */
const requestIdArb = (text: fc.Arbitrary<string>) => sometimes(fc.oneof(fc.stringMatching(/^[\w.:-]{1,128}$/), text));
const ECHOED_ID = /^[\w.:-]{1,128}$/;

/** A header most clients do not send: absent two times in three. */
const sometimes = <T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> =>
  fc.oneof({ weight: 2, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: arb });

// ---------------------------------------------------------------------------------------------------------
// Running properties

/** Runs one property; returns fast-check's report (seed, counterexample, shrunk) on failure, else null. */
async function runProperty<T>(
  label: string,
  seed: number,
  numRuns: number,
  arb: fc.Arbitrary<T>,
  check: (value: T) => Promise<void>,
): Promise<string | null> {
  try {
    await fc.assert(fc.asyncProperty(arb, check), { seed, numRuns, verbose: true });
    return null;
  } catch (err) {
    // fast-check keeps the property's own error as the cause; the report (seed, counterexample, the failures
    // met while shrinking) is cut short, as a counterexample may be a body of several kilobytes.
    const report = err instanceof Error ? err.message : String(err);
    const cause = err instanceof Error && err.cause instanceof Error ? err.cause.message : "";
    const cut = (s: string, n: number) => (s.length > n ? `${s.slice(0, n)}… (${s.length - n} more characters)` : s);
    return `${label} (rerun with FUZZ_SEED=${SEED}): ${cut(cause, 2000)}\n${cut(report, 6000)}`;
  }
}

/** After a property, the process still answers: health, readiness (the dependencies are up) and gRPC health. */
async function expectStillServing(): Promise<void> {
  const health = await fetch(`${svc.http}/healthz`, { signal: AbortSignal.timeout(CALL_TIMEOUT_MS) });
  expect(health.status).toBe(200);
  expect(await health.json()).toEqual({ status: "ok" });
  const ready = await fetch(`${svc.http}/readyz`, { signal: AbortSignal.timeout(CALL_TIMEOUT_MS) });
  expect(ready.status).toBe(200);
  const grpcHealth = await sendGrpc(svc.grpc, "/grpc.health.v1.Health/Check", new Uint8Array(0), {});
  expect(grpcHealth.code).toBe("OK");
}

/** Runs one property, then checks the process still serves whatever happened; throws the property's report. */
async function runAndCheckServing<T>(label: string, seed: number, numRuns: number, arb: fc.Arbitrary<T>, check: (v: T) => Promise<void>) {
  const failure = await runProperty(label, seed, numRuns, arb, check);
  await expectStillServing();
  if (failure) throw new Error(failure);
}

function fail(what: string, answer: { status: number; text: string }): never {
  throw new Error(`${what}; answered ${answer.status}: ${answer.text.slice(0, 600)}`);
}

// ---------------------------------------------------------------------------------------------------------
// REST

interface RestCase {
  /** Path params, already percent-encoded, in the order of the route's path. */
  params: string[];
  query: string;
  credentials: Credentials;
  contentType?: string;
  idempotencyKey?: string;
  requestId?: string;
  body?: string | Uint8Array;
  /** Sent without a content-length (chunked), so that the streaming size check runs. */
  chunked: boolean;
}

const paramNames = (path: string) => [...path.matchAll(/:([A-Za-z]+)/g)].map((m) => m[1] as string);

function pathParam(name: string, method: string): fc.Arbitrary<string> {
  const real = REAL_IDS[name];
  return fc.oneof(
    // Real ids reach the code behind "not found"; deletes never get them, so the demo catalog stays whole.
    { weight: real && method !== "DELETE" ? 3 : 0, arbitrary: fc.constant(real ?? "") },
    { weight: 3, arbitrary: fc.string({ unit: textUnit, maxLength: 40 }).map((s) => percent(wtf8(s))) },
    // Bytes that do not decode (invalid UTF-8, WTF-8 surrogates, bad escapes): the router cannot hand them over as text.
    {
      weight: 2,
      arbitrary: fc.tuple(fc.string({ maxLength: 4 }), badUtf8).map(([s, bad]) => percent(Uint8Array.from([...wtf8(s), ...bad]))),
    },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 12 }).map(percent) },
    {
      weight: 1,
      arbitrary: fc.constantFrom("%", "%G0", "%E0%A4", "%C0%80", "%ED%A0%80", "%00", ".", "..", "%2e%2E", "", "a%2Fb", "~", "a;b", "a+b"),
    },
    { weight: 1, arbitrary: fc.string({ unit: "grapheme-ascii", minLength: 129, maxLength: 400 }).map(encodeURIComponent) },
  );
}

/** A query string: the route's own parameters (and the usual ones) or any, with values of any text or bytes. */
function queryString(params: string[]): fc.Arbitrary<string> {
  const names = [...params, "limit", "cursor", "version"];
  const key = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...names) },
    { weight: 1, arbitrary: fc.string({ unit: textUnit, maxLength: 8 }).map((s) => percent(wtf8(s))) },
    { weight: 1, arbitrary: fc.constantFrom("__proto__", "constructor", "a[b]", "a[]", "%", "") },
  );
  const cursor = fc
    .oneof(fc.array(hostileText, { maxLength: 3 }), fc.jsonValue({ maxDepth: 2, stringUnit: textUnit }))
    .map((v) => Buffer.from(JSON.stringify(v) ?? "").toString("base64url"));
  const value = fc.oneof(
    {
      weight: 3,
      arbitrary: fc.constantFrom(
        "",
        "0",
        "1",
        "2",
        "50",
        "100",
        "101",
        "-1",
        "1.5",
        "1e3",
        "0x10",
        "999999999",
        "1000000000",
        "99999999999999999999",
        "abc",
      ),
    },
    { weight: 3, arbitrary: fc.string({ unit: textUnit, maxLength: 24 }).map((s) => percent(wtf8(s))) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 12 }).map(percent) },
    { weight: 1, arbitrary: fc.constantFrom("%", "%G0", "%E0%A4", "%C0%80", "%ED%A0%80", "%00", "+", "a+b", "=") },
    { weight: 1, arbitrary: cursor },
  );
  return fc
    .array(fc.tuple(key, value, fc.boolean()), { maxLength: 4 })
    .map((pairs) => pairs.map(([k, v, withValue]) => (withValue ? `${k}=${v}` : k)).join("&"));
}

const CONTENT_TYPES = [
  "application/json",
  "application/json; charset=utf-8",
  "APPLICATION/JSON",
  "application/merge-patch+json",
  "text/plain",
  "application/x-ndjson",
  "application/ndjson",
  "application/jsonl",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=x",
  "application/proto",
  "application/",
  ";",
  "*/*",
];

function restBody(route: RestRoute): fc.Arbitrary<string | Uint8Array | undefined> {
  if (route.body === "ndjson") {
    // Customer profiles, one a line: shaped, any JSON, or text and bytes that are not JSON or not UTF-8.
    const line = fc.oneof(
      { weight: 4, arbitrary: shapedObject(CustomerSchema, 0, true).map(jsonText) },
      { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v)) },
      { weight: 1, arbitrary: fc.string({ unit: textUnit, maxLength: 30 }) },
    );
    return fc.oneof(
      fc
        .tuple(fc.array(line, { maxLength: 5 }), fc.constantFrom("\n", "\r\n"), fc.boolean())
        .map(([lines, eol, last]) => lines.join(eol) + (last ? eol : "")),
      fc.uint8Array({ maxLength: 64 }),
    );
  }
  if (route.body !== undefined) return jsonBody(route.body);
  // No body is read here, but a client may send one anyway (fetch allows it on DELETE only).
  if (route.method === "DELETE")
    return fc.option(fc.oneof(fc.string({ maxLength: 20 }), fc.uint8Array({ maxLength: 20 })), { nil: undefined });
  return fc.constant(undefined);
}

function restCase(route: RestRoute): fc.Arbitrary<RestCase> {
  return fc.record({
    params: fc.tuple(...paramNames(route.path).map((n) => pathParam(n, route.method))),
    query: queryString((route.query ?? []).map((q) => q.name)),
    credentials: credentials(headerText),
    // Mostly JSON, so that most calls get past the content-type check to the checks behind it.
    contentType: fc.oneof(
      { weight: 12, arbitrary: fc.constant("application/json") },
      { weight: 3, arbitrary: fc.constant(undefined) },
      { weight: 3, arbitrary: fc.constantFrom(...CONTENT_TYPES) },
      { weight: 1, arbitrary: headerText },
    ),
    idempotencyKey: sometimes(headerText),
    requestId: requestIdArb(headerText),
    body: restBody(route),
    chunked: fc.boolean(),
  });
}

function streamOf(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      // Two chunks, so that the body is counted across reads.
      const half = Math.floor(bytes.length / 2);
      controller.enqueue(bytes.subarray(0, half));
      controller.enqueue(bytes.subarray(half));
      controller.close();
    },
  });
}

const ERROR_CODES = new Set(Object.keys(httpStatusOf));

/** The documented REST error shape, with the status of its code and the answer's request id. */
function checkErrorBody(answer: { status: number; text: string }, requestId: string): void {
  let body: unknown;
  try {
    body = JSON.parse(answer.text);
  } catch {
    fail("an error answer is not JSON", answer);
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) fail("an error answer is not a JSON object", answer);
  const e = body as Record<string, unknown>;
  if (Object.keys(e).sort().join(",") !== "code,details,error,requestId")
    fail("an error answer is not {error, code, details, requestId}", answer);
  if (typeof e.error !== "string" || e.error === "") fail("error is not a message", answer);
  if (typeof e.code !== "string" || !ERROR_CODES.has(e.code)) fail("code is not one of the documented codes", answer);
  if (httpStatusOf[e.code as ErrorCode] !== answer.status) fail(`code ${e.code} does not go with status ${answer.status}`, answer);
  const details = e.details;
  if (!Array.isArray(details)) fail("details is not an array", answer);
  for (const d of details as unknown[]) {
    const v = d as Record<string, unknown>;
    if (typeof d !== "object" || d === null || typeof v.field !== "string" || typeof v.message !== "string") {
      fail("a detail is not {field, message}", answer);
    }
  }
  if (e.requestId !== requestId) fail(`requestId ${String(e.requestId)} is not the x-request-id header ${requestId}`, answer);
}

/** A percent-encoded path id that does not decode to well-formed UTF-8 text without NUL. */
function isBadPathText(encoded: string): boolean {
  let text: string;
  try {
    text = decodeURIComponent(encoded);
  } catch {
    return true;
  }
  return text.includes("\u0000") || !(text as unknown as { isWellFormed(): boolean }).isWellFormed();
}

async function sendRest(route: RestRoute, c: RestCase): Promise<void> {
  let i = 0;
  const path = route.path.replace(/:([A-Za-z]+)/g, () => c.params[i++] ?? "");
  const url = `${svc.http}${path}${c.query ? `?${c.query}` : ""}`;
  const headers: Record<string, string> = { ...credentialHeaders(c.credentials) };
  if (c.contentType !== undefined) headers["content-type"] = c.contentType;
  if (c.idempotencyKey !== undefined) headers["idempotency-key"] = c.idempotencyKey;
  if (c.requestId !== undefined) headers["x-request-id"] = c.requestId;
  const bytes = c.body === undefined ? undefined : bytesOf(c.body);
  let res: Response;
  try {
    res = await fetch(url, {
      method: route.method,
      headers,
      body: bytes === undefined ? undefined : c.chunked ? streamOf(bytes) : bytes,
      signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
    });
  } catch (err) {
    throw new Error(`${route.method} ${url}: no answer (${err instanceof Error ? err.message : String(err)})`);
  }
  const answer = { status: res.status, text: await res.text() };
  const where = `${route.method} ${url}`;
  if (answer.status >= 500) fail(`${where}: a server error`, answer);
  const requestId = res.headers.get("x-request-id");
  if (!requestId) fail(`${where}: no x-request-id`, answer);
  if (c.requestId !== undefined && ECHOED_ID.test(c.requestId) && requestId !== c.requestId) {
    fail(`${where}: x-request-id ${c.requestId} was not echoed (got ${requestId})`, answer);
  }
  if (answer.status >= 400) checkErrorBody(answer, requestId);
  else {
    try {
      JSON.parse(answer.text);
    } catch {
      fail(`${where}: a success that is not JSON`, answer);
    }
  }
  // README: a path id holding text no database can store is refused; one that does not even decode is no better.
  const badParam = c.params.find(isBadPathText);
  if (badParam !== undefined && answer.status < 400)
    fail(`${where}: the path id ${badParam} is not well-formed text, yet it was served`, answer);
  if (answer.status < 400 && !isValid(c.credentials) && !(c.credentials.decideOnly && ruleOfRoute(route).scope === "decide")) {
    fail(`${where}: credentials ${JSON.stringify(c.credentials)} were accepted`, answer);
  }
}

describe("REST", () => {
  test(
    "every route of the route table, fuzzed: never a 5xx, errors in the documented shape, bad credentials refused",
    async () => {
      // The table itself: a route added to it is fuzzed here without anyone listing it.
      expect(routes.length).toBeGreaterThan(70);
      const failures: string[] = [];
      for (const route of routes) {
        const label = `${route.method} ${route.path}`;
        const runs = route.body === undefined ? RUNS_PER_ROUTE.withoutBody : RUNS_PER_ROUTE.withBody;
        const failure = await runProperty(label, SEED ^ fnv1a(label), runs, restCase(route), (c) => sendRest(route, c));
        if (failure) failures.push(failure);
      }
      await expectStillServing();
      if (failures.length > 0) throw new Error(`${failures.length} of ${routes.length} routes failed:\n\n${failures.join("\n\n")}`);
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "the app's other routes (health, readiness, metrics, the API description) answer 200, a wrong method 405 and paths it does not serve 404",
    async () => {
      // The app as the service builds it: what it serves beyond the route table is fuzzed here too.
      const app = createRestApp(svc.app.deps, {} as never, { ready: async () => ({}) });
      const table = new Set(routes.map((r) => `${r.method} ${r.path}`));
      const others = app.routes.map((r) => `${r.method} ${r.path}`).filter((r) => !table.has(r));
      expect(others).toContain("GET /healthz");
      // Whether some route serves this method and concrete path (GET /api/v1/customers/import is getCustomer).
      const patterns = app.routes.map((r) => ({ method: r.method, re: new RegExp(`^${r.path.replace(/:[A-Za-z]+/g, "[^/]+")}$`) }));
      const isServed = (method: string, path: string) => patterns.some((p) => p.method === method && p.re.test(path));
      // A path of the table with a method it does not have, or a path under none of the routes.
      const wrongMethod = fc
        .tuple(fc.constantFrom(...routes.map((r) => r.path)), fc.constantFrom("GET", "POST", "PUT", "PATCH", "DELETE"))
        .map(([path, method]) => ({ method, path: path.replace(/:[A-Za-z]+/g, "x") }))
        .filter((t) => !isServed(t.method, t.path));
      const nowhere = fc
        .tuple(fc.constantFrom("/api/v1/zz", "/zz", "/api/v2/", "/kaireon.v1.NoService/"), fc.string({ unit: textUnit, maxLength: 30 }))
        .map(([prefix, rest]) => ({ method: "GET", path: `${prefix}${percent(wtf8(rest))}` }));
      const arb = fc.record({
        target: fc.oneof(
          {
            weight: 2,
            arbitrary: fc.constantFrom(...others).map((r) => ({ method: "GET", path: r.split(" ")[1] as string, served: true })),
          },
          { weight: 1, arbitrary: wrongMethod.map((t) => ({ ...t, served: false, status: 405 })) },
          { weight: 1, arbitrary: nowhere.map((t) => ({ ...t, served: false, status: 404 })) },
        ),
        query: queryString([]),
        credentials: credentials(headerText),
        requestId: requestIdArb(headerText),
      });
      await runAndCheckServing("REST, other routes and unknown paths", SEED ^ 5, 150 * SCALE, arb, async (c) => {
        const url = `${svc.http}${c.target.path}${c.query ? `?${c.query}` : ""}`;
        const headers: Record<string, string> = { ...credentialHeaders(c.credentials) };
        if (c.requestId !== undefined) headers["x-request-id"] = c.requestId;
        const res = await fetch(url, { method: c.target.method, headers, signal: AbortSignal.timeout(CALL_TIMEOUT_MS) });
        const answer = { status: res.status, text: await res.text() };
        const where = `${c.target.method} ${url}`;
        if (c.target.served) {
          // The dependencies are up, so readiness too is 200.
          if (answer.status !== 200) fail(`${where}: not 200`, answer);
          return;
        }
        const status = "status" in c.target ? c.target.status : 404;
        if (answer.status !== status) fail(`${where}: not ${status}`, answer);
        // A wrong method is told which ones the path takes.
        if (status === 405 && !(res.headers.get("allow") ?? "").split(", ").every((m) => isServed(m, c.target.path))) {
          fail(`${where}: Allow ${res.headers.get("allow")} names a method the path does not take`, answer);
        }
        checkErrorBody(answer, res.headers.get("x-request-id") ?? "");
      });
    },
    TEST_TIMEOUT_MS,
  );

  test("every REST route's RPC is a procedure the gRPC and Connect fuzzing below reaches", () => {
    const paths = new Set(procedures.map((p) => p.path));
    const missing = routes.filter((r) => !paths.has(pathOf(r.rpc))).map((r) => pathOf(r.rpc));
    expect(missing).toEqual([]);
    expect(procedures.length).toBeGreaterThan(60);
  });
});

// ---------------------------------------------------------------------------------------------------------
// Protobuf payloads for gRPC and Connect

function varint(n: bigint): number[] {
  const out: number[] = [];
  let v = BigInt.asUintN(70, n);
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) b |= 0x80;
    out.push(b);
  } while (v > 0n);
  return out;
}

/**
 * Protobuf wire data field by field: the message's own field numbers or any, every wire type (the invalid
 * 6 and 7, groups), varints past 64 bits, length prefixes that lie, strings that are not valid UTF-8.
 */
function fieldSoup(schema: DescMessage): fc.Arbitrary<Uint8Array> {
  const numbers = schema.fields.map((f) => f.number);
  const fieldNo = fc.oneof(
    { weight: numbers.length > 0 ? 4 : 0, arbitrary: fc.constantFrom(...(numbers.length > 0 ? numbers : [1])) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: 2 ** 29 - 1 }) },
  );
  const lengthDelimited = fc.oneof(
    fc.string({ unit: textUnit, maxLength: 16 }).map(wtf8),
    badUtf8.map((b) => Uint8Array.from(b)),
    fc.uint8Array({ maxLength: 16 }),
  );
  const field = fc.tuple(
    fieldNo,
    fc.integer({ min: 0, max: 7 }),
    lengthDelimited,
    fc.bigInt({ min: 0n, max: 2n ** 70n }),
    fc.integer({ min: -3, max: 3 }),
  );
  return fc.array(field, { maxLength: 6 }).map((fields) => {
    const out: number[] = [];
    for (const [no, wire, bytes, big, lie] of fields) {
      out.push(...varint((BigInt(no) << 3n) | BigInt(wire)));
      if (wire === 0) out.push(...varint(big));
      else if (wire === 1) out.push(...new Array(8).fill(0x41));
      else if (wire === 5) out.push(...new Array(4).fill(0x41));
      else if (wire === 2) out.push(...varint(BigInt(Math.max(0, bytes.length + lie))), ...bytes);
    }
    return Uint8Array.from(out);
  });
}

/** A well-formed message of the input type, encoded; and the same bytes with some flipped or cut short. */
function validBinary(schema: DescMessage): fc.Arbitrary<Uint8Array> {
  return shapedObject(schema, 0, false).map((o) => {
    try {
      return toBinary(schema, fromJson(schema, o as never, { ignoreUnknownFields: true }));
    } catch {
      return toBinary(schema, create(schema));
    }
  });
}

function binaryPayload(schema: DescMessage): fc.Arbitrary<Uint8Array> {
  const valid = validBinary(schema);
  const mutated = fc
    .tuple(valid, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 3 }), fc.option(fc.nat()))
    .map(([bytes, flips, cut]) => {
      const out = Uint8Array.from(bytes);
      if (out.length > 0) for (const [at, b] of flips) out[at % out.length] = b;
      return cut === null ? out : out.subarray(0, cut % (out.length + 1));
    });
  return fc.oneof(
    { weight: 2, arbitrary: valid },
    { weight: 3, arbitrary: fieldSoup(schema) },
    { weight: 2, arbitrary: mutated },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }) },
  );
}

const procedurePath = () => fc.constantFrom(...procedures.map((p) => p.path));
const inputOf = (path: string) => (procedures.find((p) => p.path === path) as { input: DescMessage }).input;
/** Whether a call with these credentials may legitimately succeed, by the method's call rule. */
const mayCall = (path: string, c: Credentials) => {
  const scope = ruleOf(path)?.scope;
  return scope === "public" || isValid(c) || (c.decideOnly === true && scope === "decide");
};

type Compression = "none" | "gzip" | "br" | "gzip-truncated" | "br-truncated";
function compress(data: Uint8Array, how: Compression): Uint8Array {
  switch (how) {
    case "none":
      return data;
    case "gzip":
      return gzipSync(data);
    case "br":
      return brotliCompressSync(data);
    case "gzip-truncated": {
      const z = gzipSync(data);
      return z.subarray(0, Math.floor(z.length / 2));
    }
    case "br-truncated": {
      const z = brotliCompressSync(data);
      return z.subarray(0, Math.floor(z.length / 2));
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// gRPC and gRPC-Web: raw frames

interface GrpcCase {
  path: string;
  /** gRPC-Web over fetch on PORT instead of native gRPC on GRPC_PORT. */
  web: boolean;
  contentType?: string;
  encoding?: string;
  timeout?: string;
  credentials: Credentials;
  requestId?: string;
  idempotencyKey?: string;
  flag: number;
  payload: string | Uint8Array;
  compression: Compression;
  /** The declared length: the real one (null), the real one off by some bytes, or any number. */
  length: null | { delta: number } | { exactly: number };
  /** Bytes after the envelope: nothing, part of a second envelope, or a whole one. */
  trailing: Uint8Array;
  /** The frame is written in two parts, split here. */
  splitAt: number;
}

const GRPC_TIMEOUTS = ["1n", "1u", "1m", "100m", "5S", "1M", "1H", "99999999H", "123456789m", "0m", "m", "-1S", "1x", "", "1S "];

function grpcCase(compressed: boolean): fc.Arbitrary<GrpcCase> {
  return procedurePath().chain((path) => {
    const input = inputOf(path);
    const payload = fc.oneof(
      { weight: 5, arbitrary: binaryPayload(input) },
      // For application/grpc+json, and as nonsense for the binary codec.
      { weight: 1, arbitrary: jsonBody(input) },
    );
    return fc.record({
      path: fc.constant(path),
      web: fc.boolean(),
      contentType: fc.option(
        fc.oneof(
          { weight: 8, arbitrary: fc.constantFrom("application/grpc", "application/grpc+proto") },
          {
            weight: 2,
            arbitrary: fc.constantFrom(
              "application/grpc+json",
              "application/grpc;charset=utf-8",
              "application/grpc+xml",
              "application/grpc-web+proto",
              "application/grpc-web-text",
              "application/json",
            ),
          },
          { weight: 1, arbitrary: asciiHeaderText },
        ),
        { nil: undefined, freq: 20 },
      ),
      encoding: compressed
        ? fc.option(fc.oneof(fc.constantFrom("gzip", "br", "identity", "deflate", "snappy", "gzip,br", ""), asciiHeaderText), {
            nil: undefined,
          })
        : sometimes(fc.constant("identity")),
      timeout: sometimes(fc.oneof(fc.constantFrom(...GRPC_TIMEOUTS), asciiHeaderText)),
      credentials: credentials(asciiHeaderText),
      requestId: requestIdArb(asciiHeaderText),
      idempotencyKey: sometimes(asciiHeaderText),
      flag: compressed
        ? fc.oneof({ weight: 4, arbitrary: fc.constant(1) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) })
        : fc.constant(0),
      payload,
      compression: compressed
        ? fc.constantFrom<Compression>("none", "gzip", "br", "gzip-truncated", "br-truncated")
        : fc.constant<Compression>("none"),
      length: fc.oneof(
        { weight: 6, arbitrary: fc.constant(null) },
        { weight: 2, arbitrary: fc.integer({ min: -8, max: 8 }).map((delta) => ({ delta })) },
        { weight: 1, arbitrary: fc.constantFrom(0, 1, 0x7fffffff, 0xffffffff, 256 * 1024, 256 * 1024 + 1).map((exactly) => ({ exactly })) },
      ),
      trailing: fc.oneof(
        { weight: 6, arbitrary: fc.constant(new Uint8Array(0)) },
        { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 8 }) },
        { weight: 1, arbitrary: fc.constant(Uint8Array.from([0, 0, 0, 0, 0])) },
      ),
      splitAt: fc.nat(),
    });
  });
}

function frameOf(c: GrpcCase): Uint8Array {
  const data = compress(bytesOf(c.payload), c.compression);
  const declared = c.length === null ? data.length : "delta" in c.length ? Math.max(0, data.length + c.length.delta) : c.length.exactly;
  const frame = new Uint8Array(5 + data.length + c.trailing.length);
  frame[0] = c.flag;
  new DataView(frame.buffer).setUint32(1, declared >>> 0);
  frame.set(data, 5);
  frame.set(c.trailing, 5 + data.length);
  return frame;
}

function grpcHeaders(c: GrpcCase): Record<string, string> {
  const h: Record<string, string> = { ...credentialHeaders(c.credentials) };
  if (c.contentType !== undefined) h["content-type"] = c.contentType;
  if (c.encoding !== undefined) h["grpc-encoding"] = c.encoding;
  if (c.timeout !== undefined) h["grpc-timeout"] = c.timeout;
  if (c.requestId !== undefined) h["x-request-id"] = c.requestId;
  if (c.idempotencyKey !== undefined) h["idempotency-key"] = c.idempotencyKey;
  return h;
}

interface GrpcAnswer {
  /** The HTTP status; 0 when the stream closed before any answer. */
  status: number;
  grpcStatus: number | null;
  message: string;
  text: string;
}

function grpcSession(): http2.ClientHttp2Session {
  if (!grpcClient || grpcClient.closed || grpcClient.destroyed) {
    const session = http2.connect(svc.grpc);
    // A broken connection fails the call in flight (it closes without an answer); the next call reconnects,
    // as it does after the server's GOAWAY (its idle timeout).
    session.on("error", () => {});
    session.on("goaway", () => {
      if (grpcClient === session) grpcClient = null;
    });
    grpcClient = session;
  }
  return grpcClient;
}

/**
 * Reads gRPC-Web trailer envelopes (flag 0x80) at the end of a body into `fields`: where gRPC-Web, on either
 * listener, puts the status when it is not in the headers (trailers-only answers).
 */
function readTrailerEnvelopes(bytes: Uint8Array, fields: Record<string, string>): void {
  let offset = 0;
  while (offset + 5 <= bytes.length) {
    const flag = bytes[offset] as number;
    const len = new DataView(bytes.buffer, bytes.byteOffset + offset + 1, 4).getUint32(0);
    if (flag & 0x80) {
      for (const line of new TextDecoder().decode(bytes.subarray(offset + 5, offset + 5 + len)).split("\r\n")) {
        const i = line.indexOf(":");
        if (i > 0) fields[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
    }
    offset += 5 + len;
  }
}

function statusOf(fields: Record<string, string>): { grpcStatus: number | null; message: string } {
  const grpcStatus = fields["grpc-status"] === undefined ? null : Number(fields["grpc-status"]);
  let message = fields["grpc-message"] ?? "";
  try {
    message = decodeURIComponent(message);
  } catch {
    // Not percent-encoded after all: shown as it came.
  }
  return { grpcStatus, message };
}

function sendNativeGrpc(c: GrpcCase): Promise<GrpcAnswer> {
  return new Promise((resolve) => {
    const fields: Record<string, string> = {};
    const body: Uint8Array[] = [];
    let status = 0;
    let streamError = "";
    let settled = false;
    const headers = { ":method": "POST", ":path": c.path, te: "trailers", ...grpcHeaders(c) };
    let req: http2.ClientHttp2Stream;
    try {
      req = grpcSession().request(headers);
    } catch {
      // The connection went away between two calls (its state is only seen on use): one fresh attempt.
      grpcClient = null;
      req = grpcSession().request(headers);
    }
    const finish = (why = "") => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      // A gRPC-Web content type on the native listener is answered as gRPC-Web: the status is in the body.
      if (fields["grpc-status"] === undefined) readTrailerEnvelopes(Buffer.concat(body), fields);
      const { grpcStatus, message } = statusOf(fields);
      resolve({ status, grpcStatus, message, text: `${why}${streamError} rst=${req.rstCode ?? "-"} grpc-status=${grpcStatus} ${message}` });
    };
    const timer = setTimeout(() => {
      req.close(http2.constants.NGHTTP2_CANCEL);
      finish(`no answer within ${CALL_TIMEOUT_MS} ms; `);
    }, CALL_TIMEOUT_MS);
    const take = (h: http2.IncomingHttpHeaders) => {
      for (const [k, v] of Object.entries(h)) if (typeof v === "string") fields[k] = v;
    };
    req.on("response", (h) => {
      status = Number(h[":status"] ?? 0);
      take(h);
    });
    req.on("trailers", take);
    req.on("data", (chunk: Buffer) => body.push(chunk));
    // A reset stream reports an error; what matters is whether an answer came first.
    req.on("error", (err) => {
      streamError = err.message;
    });
    req.on("close", () => finish());
    const frame = frameOf(c);
    const at = c.splitAt % (frame.length + 1);
    req.write(frame.subarray(0, at));
    req.end(frame.subarray(at));
  });
}

async function sendGrpcWeb(c: GrpcCase): Promise<GrpcAnswer> {
  const headers: Record<string, string> = { "x-grpc-web": "1", ...grpcHeaders(c) };
  // gRPC-Web names its own content types; the native ones are mapped to them.
  const type = c.contentType ?? "application/grpc-web+proto";
  headers["content-type"] =
    type.startsWith("application/grpc") && !type.startsWith("application/grpc-web")
      ? type.replace("application/grpc", "application/grpc-web")
      : type;
  const res = await fetch(`${svc.http}${c.path}`, {
    method: "POST",
    headers,
    body: frameOf(c),
    signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
  });
  const fields: Record<string, string> = Object.fromEntries(res.headers.entries());
  const bytes = new Uint8Array(await res.arrayBuffer());
  if (fields["grpc-status"] === undefined) readTrailerEnvelopes(bytes, fields);
  const { grpcStatus, message } = statusOf(fields);
  return { status: res.status, grpcStatus, message, text: `grpc-status=${grpcStatus} ${message}` };
}

const GRPC_UNKNOWN = 2;
const GRPC_INTERNAL = 13;

async function checkGrpc(c: GrpcCase): Promise<void> {
  const answer = c.web ? await sendGrpcWeb(c) : await sendNativeGrpc(c);
  const where = `${c.web ? "gRPC-Web" : "gRPC"} ${c.path}`;
  if (answer.status === 0) fail(`${where}: the stream closed without an answer`, answer);
  if (answer.status >= 500) fail(`${where}: an HTTP server error`, answer);
  // A 4xx without a gRPC status is how the protocol refuses a content type it does not speak.
  if (answer.status !== 200) return;
  if (answer.grpcStatus === null) fail(`${where}: no grpc-status`, answer);
  if (answer.grpcStatus === GRPC_INTERNAL || answer.grpcStatus === GRPC_UNKNOWN) fail(`${where}: gRPC status ${answer.grpcStatus}`, answer);
  if (answer.grpcStatus === 0 && !mayCall(c.path, c.credentials))
    fail(`${where}: credentials ${JSON.stringify(c.credentials)} were accepted`, answer);
}

describe("gRPC and gRPC-Web", () => {
  test(
    "uncompressed frames of any bytes, with lengths that lie: never internal or unknown",
    () => runAndCheckServing("gRPC, uncompressed frames", SEED, RUNS.grpcPlain, grpcCase(false), checkGrpc),
    TEST_TIMEOUT_MS,
  );

  test(
    "compressed flags with and without grpc-encoding, and broken compressed data: never internal or unknown",
    () => runAndCheckServing("gRPC, compressed frames", SEED ^ 1, RUNS.grpcCompressed, grpcCase(true), checkGrpc),
    TEST_TIMEOUT_MS,
  );
});

// ---------------------------------------------------------------------------------------------------------
// Connect unary

interface ConnectCase {
  path: string;
  /** A GET with the message in the query, as Connect allows for side-effect-free methods. */
  get: boolean;
  contentType?: string;
  protocolVersion?: string;
  timeout?: string;
  encoding?: string;
  compression: Compression;
  credentials: Credentials;
  requestId?: string;
  idempotencyKey?: string;
  body: string | Uint8Array;
}

const CONNECT_TIMEOUTS = ["0", "1", "100", "30000", "99999999999", "-1", "1.5", "abc", "", "5 "];

function connectCase(kind: "json" | "binary" | "compressed"): fc.Arbitrary<ConnectCase> {
  return procedurePath().chain((path) => {
    const input = inputOf(path);
    const json = kind !== "binary";
    const contentTypes = json
      ? [
          "application/json",
          "application/json; charset=utf-8",
          "application/json;charset=UTF-8",
          "application/connect+json",
          "text/plain",
          "",
        ]
      : ["application/proto", "application/connect+proto", "application/x-protobuf"];
    return fc.record({
      path: fc.constant(path),
      // Seldom: the contract marks no method free of side effects, so a GET is mostly refused (405).
      get:
        kind === "json"
          ? fc.oneof({ weight: 9, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) })
          : fc.constant(false),
      contentType: fc.option(
        fc.oneof(
          { weight: 8, arbitrary: fc.constant(contentTypes[0] as string) },
          { weight: 2, arbitrary: fc.constantFrom(...contentTypes) },
          { weight: 1, arbitrary: headerText },
        ),
        { nil: undefined, freq: 20 },
      ),
      protocolVersion: fc.oneof(
        { weight: 6, arbitrary: fc.constant("1") },
        { weight: 3, arbitrary: fc.constant(undefined) },
        { weight: 1, arbitrary: fc.constantFrom("2", "", "0") },
      ),
      timeout: sometimes(fc.oneof(fc.constantFrom(...CONNECT_TIMEOUTS), headerText)),
      encoding:
        kind === "compressed"
          ? fc.oneof(fc.constantFrom("gzip", "br", "identity", "deflate", "zstd", "gzip, br", ""), headerText)
          : fc.constant(undefined),
      compression:
        kind === "compressed"
          ? fc.constantFrom<Compression>("none", "gzip", "br", "gzip-truncated", "br-truncated")
          : fc.constant<Compression>("none"),
      credentials: credentials(headerText),
      requestId: requestIdArb(headerText),
      idempotencyKey: sometimes(headerText),
      body: json ? jsonBody(input) : binaryPayload(input),
    });
  });
}

async function checkConnect(c: ConnectCase): Promise<void> {
  const headers: Record<string, string> = { ...credentialHeaders(c.credentials) };
  if (c.contentType !== undefined) headers["content-type"] = c.contentType;
  if (c.protocolVersion !== undefined) headers["connect-protocol-version"] = c.protocolVersion;
  if (c.timeout !== undefined) headers["connect-timeout-ms"] = c.timeout;
  if (c.encoding !== undefined) headers["content-encoding"] = c.encoding;
  if (c.requestId !== undefined) headers["x-request-id"] = c.requestId;
  if (c.idempotencyKey !== undefined) headers["idempotency-key"] = c.idempotencyKey;
  const body = compress(bytesOf(c.body), c.compression);
  const url = c.get ? `${svc.http}${c.path}?connect=v1&encoding=json&message=${percent(body)}` : `${svc.http}${c.path}`;
  let res: Response;
  try {
    res = await fetch(url, {
      method: c.get ? "GET" : "POST",
      headers,
      body: c.get ? undefined : body,
      signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
    });
  } catch (err) {
    throw new Error(`Connect ${c.path}: no answer (${err instanceof Error ? err.message : String(err)})`);
  }
  const answer = { status: res.status, text: await res.text() };
  const where = `Connect ${c.get ? "GET" : "POST"} ${c.path}`;
  // 431: Bun itself refuses a request line too long (a big message in a GET's query) before any handler runs.
  if (answer.status !== 431 && !res.headers.get("x-request-id")) fail(`${where}: no x-request-id`, answer);
  let code: unknown;
  if (answer.status !== 200 && (res.headers.get("content-type") ?? "").startsWith("application/json")) {
    // A Connect error: {code, message, details}, with a code that is the caller's to fix.
    try {
      code = (JSON.parse(answer.text) as { code?: unknown }).code;
    } catch {
      fail(`${where}: an error that is not JSON`, answer);
    }
    if (typeof code !== "string") fail(`${where}: an error without a code`, answer);
    if (code === "internal" || code === "unknown") fail(`${where}: code ${code}`, answer);
  }
  // 501 is the Connect protocol's fixed status for `unimplemented` (an encoding it does not support), the
  // counterpart of gRPC's status 12, which is the caller's to change; any other 5xx is a server error.
  if (answer.status >= 500 && !(answer.status === 501 && code === "unimplemented")) fail(`${where}: a server error`, answer);
  if (answer.status === 200 && !mayCall(c.path, c.credentials))
    fail(`${where}: credentials ${JSON.stringify(c.credentials)} were accepted`, answer);
}

describe("Connect", () => {
  test(
    "JSON bodies (and GET with the message in the query): never a 5xx",
    () => runAndCheckServing("Connect, JSON", SEED ^ 2, RUNS.connectJson, connectCase("json"), checkConnect),
    TEST_TIMEOUT_MS,
  );

  test(
    "binary protobuf bodies of any bytes: never a 5xx",
    () => runAndCheckServing("Connect, binary", SEED ^ 3, RUNS.connectBinary, connectCase("binary"), checkConnect),
    TEST_TIMEOUT_MS,
  );

  test(
    "compressed bodies, declared or not, whole or cut short: never a 5xx",
    () => runAndCheckServing("Connect, compressed", SEED ^ 4, RUNS.connectCompressed, connectCase("compressed"), checkConnect),
    TEST_TIMEOUT_MS,
  );
});
