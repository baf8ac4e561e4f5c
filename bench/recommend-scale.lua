-- wrk script of the scale benchmark: POST /api/v1/recommend for a random customer of the scale data set
-- (bench/scale-generate.ts) on every request, and a check of every answer.
--
-- Environment: KAIREON_API_KEY (required), KAIREON_TENANT (scale), PROFILES (1000000: customers
-- cust_0000001 … cust_<PROFILES>), CHANNEL (ch_web), PLACEMENT (none), MAX_OFFERS (5).
-- At the end it prints one line: "checked: <answers> answers, <n> without offers, <n> not HTTP 200".

local key = os.getenv("KAIREON_API_KEY")
if key == nil or key == "" then
  error("KAIREON_API_KEY is not set")
end
local tenant = os.getenv("KAIREON_TENANT") or "scale"
local profiles = tonumber(os.getenv("PROFILES") or "1000000")
local channel = os.getenv("CHANNEL") or "ch_web"
local placement = os.getenv("PLACEMENT") or ""
local maxOffers = tonumber(os.getenv("MAX_OFFERS") or "5")

local tail = '","channelId":"' .. channel .. '","maxOffers":' .. maxOffers
if placement ~= "" then
  tail = tail .. ',"placement":"' .. placement .. '"'
end
tail = tail .. '}'

wrk.method = "POST"
wrk.path = "/api/v1/recommend"
wrk.headers["content-type"] = "application/json"
wrk.headers["x-tenant-id"] = tenant
wrk.headers["x-api-key"] = key

-- Threads are separate Lua states: each counts its own answers, done() adds them up.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_no", #threads)
end

function init(args)
  math.randomseed(os.time() * 1000 + (thread_no or 0) * 7919)
  answers, empty, failed = 0, 0, 0
end

function request()
  local body = '{"customerId":"cust_' .. string.format("%07d", math.random(1, profiles)) .. tail
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  answers = answers + 1
  if status ~= 200 then
    failed = failed + 1
  elseif not string.find(body, '"offerId"', 1, true) then
    empty = empty + 1
  end
end

function done(summary, latency, requests)
  local a, e, f = 0, 0, 0
  for _, t in ipairs(threads) do
    a = a + (t:get("answers") or 0)
    e = e + (t:get("empty") or 0)
    f = f + (t:get("failed") or 0)
  end
  io.write(string.format("checked: %d answers, %d without offers, %d not HTTP 200\n", a, e, f))
end
