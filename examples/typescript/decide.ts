// A decision, its response and a refused call with the typed client (@kaireon/client), over native gRPC
// or Connect, from Node.js or Bun.
//
//   KAIREON_API_KEY=krn_... bun decide.ts grpc       # native gRPC on KAIREON_GRPC_URL
//   KAIREON_API_KEY=krn_... bun decide.ts connect    # Connect (HTTP/1.1) on KAIREON_URL
//
// KAIREON_URL (default http://127.0.0.1:3000), KAIREON_GRPC_URL (default http://127.0.0.1:50051),
// KAIREON_TENANT (default demo), KAIREON_API_KEY.

import { Code, ConnectError } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { createKaireonClient, errorDetailOf } from "@kaireon/client";

const protocol = process.argv[2] ?? "grpc";
const apiKey = process.env.KAIREON_API_KEY;
if (!apiKey) throw new Error("set KAIREON_API_KEY");
const transport =
  protocol === "grpc"
    ? createGrpcTransport({ baseUrl: process.env.KAIREON_GRPC_URL ?? "http://127.0.0.1:50051" })
    : protocol === "connect"
      ? createConnectTransport({ baseUrl: process.env.KAIREON_URL ?? "http://127.0.0.1:3000", httpVersion: "1.1" })
      : undefined;
if (!transport) throw new Error(`unknown protocol ${protocol}: grpc or connect`);

const kaireon = createKaireonClient({ transport, tenantId: process.env.KAIREON_TENANT ?? "demo", apiKey });

const answer = await kaireon.recommend.recommend(
  { customerId: "cust_12345", channelId: "ch_email", maxOffers: 3, placement: "hero_offer", attributes: { tier: "gold" } },
  { timeoutMs: 5000 },
);
console.log(`${answer.recommendations.length} offers for ${answer.customerId} from ${answer.decisionFlowId} over ${protocol}`);
for (const r of answer.recommendations) console.log(`  ${r.rank}. ${r.offerId} score ${r.score.toFixed(3)} creative ${r.creativeId}`);
const top = answer.recommendations[0];
if (!top) throw new Error("no offer was recommended");

const recorded = await kaireon.respond.respond(
  { customerId: answer.customerId, offerId: top.offerId, channelId: top.channelId, creativeId: top.creativeId, outcomeType: "click" },
  // The same idempotency key records the interaction once, however often the call is retried.
  { headers: { "idempotency-key": `ts-example-${protocol}-${Date.now()}` }, timeoutMs: 5000 },
);
console.log(`recorded ${recorded.outcomeType} on ${recorded.offerId} as ${recorded.id}`);

try {
  await kaireon.recommend.recommend({ channelId: "ch_email" });
  throw new Error("a Recommend without customerId was accepted");
} catch (err) {
  if (!(err instanceof ConnectError)) throw err;
  const detail = errorDetailOf(err);
  console.log(`refused: ${Code[err.code]} ${err.rawMessage}`);
  if (detail) {
    console.log(`  code ${detail.code}, request ${detail.requestId}`);
    for (const v of detail.details) console.log(`  ${v.field}: ${v.message}`);
  }
}
