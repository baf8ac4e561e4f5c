// In-process microbenchmark of the binary codec of a Recommend call, side by side in rounds: toBinary of
// @bufbuild/protobuf against the compiled encoder native gRPC answers with (src/transport/proto-binary.ts),
// on the answer the service gave to the tutorial request (bench/fixtures/recommend-response.json, as
// `bench/run.sh` captures it with buf curl); and fromBinary against the compiled decoder it reads requests
// with (src/transport/proto-binary-decode.ts), on the request `bench/run.sh` sends (bench/grpc-frame.ts).
//
//   bun bench/proto-codec.ts            # ROUNDS (5), ROUND_MS (500)

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { create, fromBinary, fromJson, toBinary } from "@bufbuild/protobuf";
import { type RecommendRequest, RecommendRequestSchema, RecommendResponseSchema } from "../gen/kaireon/v1/recommend_pb.ts";
import { binaryEncoder } from "../src/transport/proto-binary.ts";
import { binaryDecoder } from "../src/transport/proto-binary-decode.ts";

const ROUNDS = Number(process.env.ROUNDS ?? 5);
const ROUND_MS = Number(process.env.ROUND_MS ?? 500);
const answer = fromJson(
  RecommendResponseSchema,
  JSON.parse(readFileSync(join(import.meta.dir, "fixtures", "recommend-response.json"), "utf8")),
);
const encode = binaryEncoder(RecommendResponseSchema);
if (Buffer.compare(encode(answer), toBinary(RecommendResponseSchema, answer)) !== 0) throw new Error("the encoders disagree");
const request = toBinary(
  RecommendRequestSchema,
  create(RecommendRequestSchema, {
    customerId: "cust_12345",
    channelId: "ch_email",
    decisionFlowId: "df_credit_cards",
    maxOffers: 3,
    placement: "hero_offer",
    attributes: { tier: "gold", source: "campaign_q1", device: "mobile" },
  }),
);
const decode = binaryDecoder<RecommendRequest>(RecommendRequestSchema);
if (!Bun.deepEquals(decode(request), fromBinary(RecommendRequestSchema, request), true)) throw new Error("the decoders disagree");

/** µs per call of `fn`, over one round; `fn` returns something of the result so that it is not optimised away. */
function time(fn: () => unknown): number {
  let n = 0;
  let seen = 0;
  const end = performance.now() + ROUND_MS;
  const started = performance.now();
  while (performance.now() < end) {
    for (let i = 0; i < 100; i++) if (fn()) seen++;
    n += 100;
  }
  if (seen === 0) throw new Error("nothing done");
  return ((performance.now() - started) * 1000) / n;
}

const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] as number;

function compare(title: string, library: string, a: () => unknown, b: () => unknown): void {
  const rows: { round: number; library: number; compiled: number }[] = [];
  for (let round = 0; round <= ROUNDS; round++) {
    const x = time(a);
    const y = time(b);
    if (round > 0) rows.push({ round, library: x, compiled: y }); // round 0 warms up
  }
  console.log(title);
  console.log(`round  ${library.padStart(10)}  compiled  ratio`);
  for (const r of rows)
    console.log(
      `${String(r.round).padStart(5)}  ${r.library.toFixed(2).padStart(10)}  ${r.compiled.toFixed(2).padStart(8)}  ${(r.library / r.compiled).toFixed(2).padStart(5)}`,
    );
  console.log(`median ${median(rows.map((r) => r.library)).toFixed(2)} µs vs ${median(rows.map((r) => r.compiled)).toFixed(2)} µs\n`);
}

compare(
  `Recommend answer, ${encode(answer).byteLength} bytes, ${answer.recommendations.length} recommendations; µs per encoding`,
  "toBinary",
  () => toBinary(RecommendResponseSchema, answer).byteLength,
  () => encode(answer).byteLength,
);
compare(
  `Recommend request, ${request.byteLength} bytes; µs per decoding`,
  "fromBinary",
  () => fromBinary(RecommendRequestSchema, request).customerId,
  () => decode(request).customerId,
);
