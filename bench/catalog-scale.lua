-- wrk script of the catalog-scale benchmark (bench/catalog-scale.sh): POST /api/v1/recommend with one fixed
-- body, and a check of every answer.
--
-- Environment: KAIREON_API_KEY (required), KAIREON_TENANT (required), BENCH_BODY (required: the JSON body).
-- At the end it prints one line: "checked: <answers> answers, <n> without offers, <n> not HTTP 200".

local key = os.getenv("KAIREON_API_KEY")
local tenant = os.getenv("KAIREON_TENANT")
local body = os.getenv("BENCH_BODY")
if key == nil or key == "" or tenant == nil or tenant == "" or body == nil or body == "" then
  error("KAIREON_API_KEY, KAIREON_TENANT and BENCH_BODY must be set")
end

wrk.method = "POST"
wrk.path = "/api/v1/recommend"
wrk.body = body
wrk.headers["content-type"] = "application/json"
wrk.headers["x-tenant-id"] = tenant
wrk.headers["x-api-key"] = key

-- No request() function: wrk builds the request once and sends the same bytes every time. Threads are
-- separate Lua states: each counts its own answers, done() adds them up.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  answers, empty, failed = 0, 0, 0
end

function response(status, headers, resbody)
  answers = answers + 1
  if status ~= 200 then
    failed = failed + 1
  elseif not string.find(resbody, '"offerId"', 1, true) then
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
