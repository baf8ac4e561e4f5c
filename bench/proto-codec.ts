// In-process microbenchmark of the binary encoding of a Recommend answer: toBinary of @bufbuild/protobuf
// against the compiled encoder native gRPC answers with (src/transport/proto-binary.ts), side by side in
// rounds, on the answer the service gave to the tutorial request (bench/fixtures/recommend-response.json,
// as `bench/run.sh` captures it with buf curl).
//
//   bun bench/proto-codec.ts            # ROUNDS (5), ROUND_MS (500)

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fromJson, toBinary } from "@bufbuild/protobuf";
import { RecommendResponseSchema } from "../gen/kaireon/v1/recommend_pb.ts";
import { binaryEncoder } from "../src/transport/proto-binary.ts";

const ROUNDS = Number(process.env.ROUNDS ?? 5);
const ROUND_MS = Number(process.env.ROUND_MS ?? 500);
const answer = fromJson(
  RecommendResponseSchema,
  JSON.parse(readFileSync(join(import.meta.dir, "fixtures", "recommend-response.json"), "utf8")),
);
const encode = binaryEncoder(RecommendResponseSchema);
if (Buffer.compare(encode(answer), toBinary(RecommendResponseSchema, answer)) !== 0) throw new Error("the encoders disagree");

function time(fn: () => Uint8Array): number {
  let n = 0;
  let bytes = 0;
  const end = performance.now() + ROUND_MS;
  const started = performance.now();
  while (performance.now() < end) {
    for (let i = 0; i < 100; i++) bytes += fn().byteLength;
    n += 100;
  }
  if (bytes === 0) throw new Error("nothing encoded");
  return ((performance.now() - started) * 1000) / n;
}

const rows: { round: number; toBinary: number; compiled: number }[] = [];
for (let round = 0; round <= ROUNDS; round++) {
  const a = time(() => toBinary(RecommendResponseSchema, answer));
  const b = time(() => encode(answer));
  if (round > 0) rows.push({ round, toBinary: a, compiled: b }); // round 0 warms up
}
const bytes = encode(answer).byteLength;
console.log(`Recommend answer, ${bytes} bytes, ${answer.recommendations.length} recommendations; µs per encoding`);
console.log("round  toBinary  compiled  ratio");
for (const r of rows)
  console.log(
    `${String(r.round).padStart(5)}  ${r.toBinary.toFixed(2).padStart(8)}  ${r.compiled.toFixed(2).padStart(8)}  ${(r.toBinary / r.compiled).toFixed(2).padStart(5)}`,
  );
const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] as number;
console.log(`median ${median(rows.map((r) => r.toBinary)).toFixed(2)} µs vs ${median(rows.map((r) => r.compiled)).toFixed(2)} µs`);
