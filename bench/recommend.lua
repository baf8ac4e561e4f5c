-- wrk script: POST /api/v1/recommend with the demo tenant's headers.
-- Reads KAIREON_API_KEY (required) and BENCH_TRACE=1 (adds "trace": true to the body) from the environment.

local key = os.getenv("KAIREON_API_KEY")
if key == nil or key == "" then
  error("KAIREON_API_KEY is not set")
end
local tenant = os.getenv("KAIREON_TENANT") or "demo"
local trace = os.getenv("BENCH_TRACE") == "1"

local body = '{"customerId":"cust_12345","channelId":"ch_email","decisionFlowId":"df_credit_cards",'
  .. '"maxOffers":3,"placement":"hero_offer",'
  .. '"attributes":{"tier":"gold","source":"campaign_q1","device":"mobile"}'
if trace then
  body = body .. ',"trace":true'
end
body = body .. '}'

wrk.method = "POST"
wrk.path = "/api/v1/recommend"
wrk.body = body
wrk.headers["content-type"] = "application/json"
wrk.headers["x-tenant-id"] = tenant
wrk.headers["x-api-key"] = key

-- No request() function on purpose: wrk then builds the request once and sends the same bytes on every
-- call, so the script adds no per-request Lua cost to the load generator.
