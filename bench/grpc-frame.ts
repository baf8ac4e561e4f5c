// Writes one length-prefixed gRPC message (1-byte compressed flag 0 + 4-byte big-endian length +
// protobuf bytes) holding a RecommendRequest, for `h2load -d <file>`.
//
//   bun bench/grpc-frame.ts <out-file> [--trace]

import { writeFileSync } from "node:fs";
import { create, toBinary } from "@bufbuild/protobuf";
import { RecommendRequestSchema } from "../gen/kaireon/v1/recommend_pb.ts";

const out = process.argv[2];
if (!out) {
  process.stderr.write("usage: bun bench/grpc-frame.ts <out-file> [--trace]\n");
  process.exit(2);
}
const trace = process.argv.includes("--trace");

const message = create(RecommendRequestSchema, {
  customerId: "cust_12345",
  channelId: "ch_email",
  decisionFlowId: "df_credit_cards",
  maxOffers: 3,
  placement: "hero_offer",
  attributes: { tier: "gold", source: "campaign_q1", device: "mobile" },
  trace,
});
const payload = toBinary(RecommendRequestSchema, message);
const frame = new Uint8Array(5 + payload.length);
const view = new DataView(frame.buffer);
view.setUint8(0, 0); // not compressed
view.setUint32(1, payload.length, false); // big-endian length
frame.set(payload, 5);
writeFileSync(out, frame);
process.stdout.write(`${out}: ${frame.length} bytes (protobuf ${payload.length} bytes)\n`);
