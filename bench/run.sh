#!/usr/bin/env bash
# Load benchmark of the Recommend call over REST (wrk) and native gRPC (h2load).
#
# Creates a fresh database on the local PostgreSQL and, for each scenario, starts the service on free ports
# with the local Redis, waits for /readyz, checks that the scenario's request really succeeds, warms up,
# measures for DURATION seconds and stops the service again. Each scenario gets its own process, so no run
# pays for the previous one's leftovers (e.g. a decision-trace backlog). One summary table at the end.
# The service is stopped and the database dropped on exit, whatever happens.
#
#   npm run bench                         # or: bash bench/run.sh
#   DURATION=60 CONNECTIONS=100 bash bench/run.sh
#   SCENARIOS="rest grpc" bash bench/run.sh
#
# Environment (all optional):
#   DURATION      seconds per measured run (20)          WARMUP       seconds of warm-up before each run (5)
#   CONNECTIONS   concurrent connections (50)            THREADS      wrk / h2load threads (2)
#   STREAMS       h2load concurrent streams per connection, i.e. -m (10)
#   DATABASE_URL  PostgreSQL server to use; only its host, port and credentials count: the benchmark
#                 always works in its own database BENCH_DB (postgres://postgres@127.0.0.1:5432/postgres)
#   BENCH_DB      name of that database (kaireon_bench); it is dropped first if it exists, and at the end
#   REDIS_URL     Redis (redis://127.0.0.1:6379)
#   SCENARIOS     space-separated subset, run in this order, of: healthz rest rest_trace grpc grpc_trace
#                 grpc1 grpc10 (default: the first five; healthz is the framework baseline, a GET that
#                 touches nothing; grpc1 and grpc10 are grpc at 1 and at 10 streams per connection,
#                 whatever STREAMS says, for the comparison with REST in one run)
#   TRACE_WAIT    seconds to wait after a trace run for its traces to reach the database (15)
#   PRIME         seconds of unmeasured REST load on the fresh database before the first scenario (10; 0: none)
#   STOP_WAIT     seconds the service gets to exit on SIGTERM before it is killed (10)
#   BENCH_OUT     directory for raw outputs and the summary (a new temporary directory)
#   CPU_PROF=1    run the service under `bun --cpu-prof --cpu-prof-md`; one profile per scenario in BENCH_OUT
#                 (written only when the service exits on SIGTERM within STOP_WAIT)
#   LIMITER=off   run without the per-tenant rate limiter (on by default, with limits the load cannot reach)
#   BUN           the bun binary (node_modules/.bin/bun)
#   SERVICE_CPU   core the service is pinned to (0)      LOAD_CPU     core of wrk / h2load (1)
#   BENCH_LOG_LEVEL  the service's LOG_LEVEL (warn); info also logs every refused call with its reason
#   PORT_MIN / PORT_MAX  the service's REST and gRPC ports: the first free pair in this range (3400 / 3499)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

BUN="${BUN:-$ROOT/node_modules/.bin/bun}"
DURATION="${DURATION:-20}"
DURATION="${DURATION%s}"
WARMUP="${WARMUP:-5}"
WARMUP="${WARMUP%s}"
CONNECTIONS="${CONNECTIONS:-50}"
THREADS="${THREADS:-2}"
STREAMS="${STREAMS:-10}"
SERVER_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
BENCH_DB="${BENCH_DB:-kaireon_bench}"
REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
SCENARIOS="${SCENARIOS:-healthz rest rest_trace grpc grpc_trace}"
TRACE_WAIT="${TRACE_WAIT:-15}"
PRIME="${PRIME:-10}"
PRIME="${PRIME%s}"
STOP_WAIT="${STOP_WAIT:-10}"
CPU_PROF="${CPU_PROF:-0}"
LIMITER="${LIMITER:-on}"
SERVICE_CPU="${SERVICE_CPU:-0}"
LOAD_CPU="${LOAD_CPU:-1}"
PORT_MIN="${PORT_MIN:-3400}"
PORT_MAX="${PORT_MAX:-3499}"
OUT="${BENCH_OUT:-$(mktemp -d /tmp/kaireon-bench.XXXXXX)}"
mkdir -p "$OUT"

for n in DURATION WARMUP CONNECTIONS THREADS STREAMS TRACE_WAIT PRIME STOP_WAIT SERVICE_CPU LOAD_CPU PORT_MIN PORT_MAX; do
  [[ "${!n}" =~ ^[0-9]+$ ]] || { echo "$n must be a whole number, got '${!n}'" >&2; exit 2; }
done
(( DURATION > 0 && CONNECTIONS >= THREADS && THREADS > 0 )) || { echo "need DURATION > 0 and CONNECTIONS >= THREADS > 0" >&2; exit 2; }
for s in $SCENARIOS; do
  case "$s" in healthz | rest | rest_trace | grpc | grpc_trace | grpc1 | grpc10) ;; *) echo "unknown scenario '$s'" >&2; exit 2 ;; esac
done
(( PORT_MIN < PORT_MAX )) || { echo "need PORT_MIN < PORT_MAX" >&2; exit 2; }
(( SERVICE_CPU < $(nproc) && LOAD_CPU < $(nproc) )) || { echo "SERVICE_CPU/LOAD_CPU must be below the $(nproc) cores" >&2; exit 2; }
for tool in wrk h2load curl taskset; do
  command -v "$tool" >/dev/null || { echo "$tool is not installed" >&2; exit 2; }
done
[[ -x "$BUN" ]] || { echo "bun not found at $BUN (set BUN)" >&2; exit 2; }

# Every load run is bounded: the tools' own duration, and a hard kill shortly after as a safety net.
HARD_LIMIT=$((DURATION + WARMUP + 30))

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

SVC_PID=""
DB_CREATED=0
NOTES=()


cleanup() {
  local rc=$?
  set +e
  if [[ -n "$SVC_PID" ]]; then log "stopping the service (pid $SVC_PID)"; stop_service; fi
  if (( DB_CREATED )); then
    log "dropping database $BENCH_DB"
    "$BUN" bench/db.ts drop "$SERVER_URL" "$BENCH_DB" || echo "could not drop $BENCH_DB" >&2
  fi
  echo "raw outputs: $OUT" >&2
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------------------------
# Database, key, requests

log "creating database $BENCH_DB"
DB_URL="$("$BUN" bench/db.ts url "$SERVER_URL" "$BENCH_DB")"
DB_CREATED=1
"$BUN" bench/db.ts create "$SERVER_URL" "$BENCH_DB"

# The demo tenant is seeded with this key by the first start (the database has no tenants yet).
API_KEY="$("$BUN" -e 'const a="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";console.log("krn_"+Array.from(crypto.getRandomValues(new Uint8Array(40)),b=>a[b%62]).join(""))')"
PEPPER="bench-pepper-$("$BUN" -e 'console.log(crypto.randomUUID())')"

BODY='{"customerId":"cust_12345","channelId":"ch_email","decisionFlowId":"df_credit_cards","maxOffers":3,"placement":"hero_offer","attributes":{"tier":"gold","source":"campaign_q1","device":"mobile"}}'
BODY_TRACE="${BODY%\}},\"trace\":true}"
"$BUN" bench/grpc-frame.ts "$OUT/recommend.grpc" >/dev/null
"$BUN" bench/grpc-frame.ts "$OUT/recommend-trace.grpc" --trace >/dev/null

# ---------------------------------------------------------------------------------------------------------
# The service

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_service() { # <scenario>
  local s="$1" i
  PORT="" GRPC_PORT=""
  for ((i = PORT_MIN; i <= PORT_MAX; i++)); do
    port_free "$i" || continue
    if [[ -z "$PORT" ]]; then PORT="$i"; else GRPC_PORT="$i"; break; fi
  done
  [[ -n "$GRPC_PORT" ]] || { echo "no two free ports in $PORT_MIN-$PORT_MAX" >&2; exit 1; }
  local flags=()
  [[ "$CPU_PROF" == "1" ]] && flags=(--cpu-prof --cpu-prof-md --cpu-prof-dir="$OUT" --cpu-prof-name="$s")
  log "$s: starting the service on core $SERVICE_CPU (REST :$PORT, gRPC :$GRPC_PORT)"
  # The rate limiter runs as in production (one Redis script per call), but with limits far above what
  # the load can reach, so the run measures decisions rather than 429s; LIMITER=off turns it off.
  local limiter=(RATE_LIMIT_OVERRIDE_PER_MINUTE=100000000 MONTHLY_DECISION_QUOTA_OVERRIDE=1000000000000 REDIS_KEY_PREFIX="kaireon-bench-$$-$s")
  [[ "$LIMITER" == "off" ]] && limiter=(RATE_LIMIT_ENABLED=false)
  env NODE_ENV=production HOST=127.0.0.1 PORT="$PORT" GRPC_PORT="$GRPC_PORT" "${limiter[@]}" \
    DATABASE_URL="$DB_URL" REDIS_URL="$REDIS_URL" DEMO_API_KEY="$API_KEY" API_KEY_PEPPER="$PEPPER" LOG_LEVEL="${BENCH_LOG_LEVEL:-warn}" \
    taskset -c "$SERVICE_CPU" "$BUN" "${flags[@]}" src/main.ts >"$OUT/$s.service.log" 2>&1 &
  SVC_PID=$!
  BASE="http://127.0.0.1:$PORT"
  for ((i = 1; ; i++)); do
    if ! kill -0 "$SVC_PID" 2>/dev/null; then
      echo "the service exited during start; its log:" >&2; cat "$OUT/$s.service.log" >&2; exit 1
    fi
    curl -sf -m 2 "$BASE/readyz" >"$OUT/$s.readyz.json" 2>/dev/null && break
    (( i >= 150 )) && { echo "service not ready after 30 s; its log:" >&2; cat "$OUT/$s.service.log" >&2; exit 1; }
    sleep 0.2
  done
}

# ---------------------------------------------------------------------------------------------------------
# Checks that a scenario's request succeeds (we benchmark answers, not errors)

check_rest() { # <name> <body> <want-trace>
  local status
  status="$(curl -sS -m 5 -o "$OUT/$1.check.json" -w '%{http_code}' "$BASE/api/v1/recommend" \
    -H 'content-type: application/json' -H 'x-tenant-id: demo' -H "x-api-key: $API_KEY" -d "$2")"
  if [[ "$status" != 200 ]] || ! grep -q '"offerId"' "$OUT/$1.check.json"; then
    echo "REST check ($1) failed: HTTP $status $(cat "$OUT/$1.check.json")" >&2; exit 1
  fi
  if [[ "$3" == 1 ]] && ! grep -q '"traceId":"[^"]' "$OUT/$1.check.json"; then
    echo "REST check ($1): no traceId in $(cat "$OUT/$1.check.json")" >&2; exit 1
  fi
  echo "  check: HTTP 200, $(grep -o '"offerId"' "$OUT/$1.check.json" | wc -l) offers" >&2
}

check_grpc() { # <name> <frame-file> <json-body> <want-trace>
  # 1. A reference client: buf curl reads the schema from proto/ and fails on any non-OK grpc-status.
  local buf="$ROOT/node_modules/.bin/buf"
  if [[ -x "$buf" ]]; then
    if ! timeout 30 "$buf" curl --schema proto --protocol grpc --http2-prior-knowledge \
      -H 'x-tenant-id: demo' -H "x-api-key: $API_KEY" -d "$3" \
      "http://127.0.0.1:$GRPC_PORT/kaireon.v1.RecommendService/Recommend" >"$OUT/$1.check.json" 2>"$OUT/$1.check.err"; then
      echo "gRPC check ($1) with buf curl failed: $(cat "$OUT/$1.check.err")" >&2; exit 1
    fi
    grep -q '"offerId"' "$OUT/$1.check.json" || { echo "gRPC check ($1): no offers in $(cat "$OUT/$1.check.json")" >&2; exit 1; }
    if [[ "$4" == 1 ]] && ! grep -q '"traceId"' "$OUT/$1.check.json"; then
      echo "gRPC check ($1): no traceId in $(cat "$OUT/$1.check.json")" >&2; exit 1
    fi
  fi
  # 2. The exact bytes h2load will send: grpc-status arrives in the trailers, which curl -D records.
  curl -sS -m 5 --http2-prior-knowledge -o "$OUT/$1.check.bin" -D "$OUT/$1.check.headers" \
    -H 'content-type: application/grpc' -H 'te: trailers' -H 'x-tenant-id: demo' -H "x-api-key: $API_KEY" \
    --data-binary "@$2" "http://127.0.0.1:$GRPC_PORT/kaireon.v1.RecommendService/Recommend"
  if ! tr -d '\r' <"$OUT/$1.check.headers" | grep -qi '^grpc-status: 0$'; then
    echo "gRPC check ($1) of the h2load frame failed:" >&2; cat "$OUT/$1.check.headers" >&2; exit 1
  fi
  echo "  check: buf curl OK, h2load frame -> grpc-status 0, $(wc -c <"$OUT/$1.check.bin") response bytes" >&2
}

# ---------------------------------------------------------------------------------------------------------
# Load runs

# Sum of a counter family in /metrics (0 when absent).
metric_sum() { curl -sf -m 5 "$BASE/metrics" | awk -v n="$1" '$1 == n || index($1, n "{") == 1 { s += $NF } END { printf "%d\n", s }'; }
# CPU time of the service process in clock ticks (user + system).
svc_ticks() { awk '{ print $14 + $15 }' "/proc/$SVC_PID/stat"; }
CLK_TCK="$(getconf CLK_TCK)"
# How busy the whole machine is over one second, in % of all cores: other work that competes for the CPUs.
machine_busy() {
  local a b
  a="$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat)"
  sleep 1
  b="$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat)"
  awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " "); t = y[2] - x[2]; printf "%.0f%%", (t > 0 ? 100 * (y[1] - x[1]) / t : 0) }'
}

run_wrk() { # <out-file> <duration> <path-or-empty-for-recommend> [env for recommend.lua...]
  local out="$1" dur="$2" path="$3"; shift 3
  if [[ -n "$path" ]]; then
    timeout -k 5 "$HARD_LIMIT" taskset -c "$LOAD_CPU" wrk -t "$THREADS" -c "$CONNECTIONS" -d "${dur}s" --timeout 10s --latency "$BASE$path" >"$out" 2>&1
  else
    env "$@" KAIREON_API_KEY="$API_KEY" timeout -k 5 "$HARD_LIMIT" \
      taskset -c "$LOAD_CPU" wrk -t "$THREADS" -c "$CONNECTIONS" -d "${dur}s" --timeout 10s --latency -s bench/recommend.lua "$BASE" >"$out" 2>&1
  fi
}

run_h2load() { # <out-file> <duration> <frame-file> [log-file] [streams per connection]
  local out="$1" dur="$2" frame="$3" logf="${4:-}" streams="${5:-$STREAMS}"
  local extra=()
  [[ -n "$logf" ]] && extra=(--log-file="$logf")
  timeout -k 5 "$HARD_LIMIT" taskset -c "$LOAD_CPU" h2load -t "$THREADS" -c "$CONNECTIONS" -m "$streams" -D "$dur" -N 10 \
    -d "$frame" -H 'content-type: application/grpc' -H 'te: trailers' \
    -H 'x-tenant-id: demo' -H "x-api-key: $API_KEY" "${extra[@]}" \
    "http://127.0.0.1:$GRPC_PORT/kaireon.v1.RecommendService/Recommend" >"$out" 2>&1
}

# wrk latency value ("850.00us", "1.23ms", "1.02s", "2.00m") in milliseconds.
to_ms() { awk -v v="$1" 'BEGIN {
  if (v ~ /us$/) printf "%.2f", v / 1000; else if (v ~ /ms$/) printf "%.2f", v + 0;
  else if (v ~ /m$/) printf "%.2f", v * 60000; else if (v ~ /s$/) printf "%.2f", v * 1000; else print "?" }'; }

ROWS=()
FORMAT='%-11s %-7s %9s %8s %8s %8s %7s %10s %8s %8s %10s'
add_row() { ROWS+=("$(printf "$FORMAT" "$@")"); }

scenario() { # <scenario>
  local s="$1" raw="$OUT/$1.txt" busy have
  CURRENT="$s"
  start_service "$s"
  case "$s" in
    healthz) ;;
    rest) check_rest "$s" "$BODY" 0 ;;
    rest_trace) check_rest "$s" "$BODY_TRACE" 1 ;;
    grpc | grpc1 | grpc10) check_grpc "$s" "$OUT/recommend.grpc" "$BODY" 0 ;;
    grpc_trace) check_grpc "$s" "$OUT/recommend-trace.grpc" "$BODY_TRACE" 1 ;;
  esac

  # Warm-up with the same transport (the trace scenarios warm up without trace, so that no trace backlog
  # is carried into the measured run).
  log "$s: warming up for ${WARMUP}s"
  if (( WARMUP > 0 )); then
    case "$s" in
      healthz) run_wrk "$OUT/$s.warmup.txt" "$WARMUP" /healthz ;;
      rest | rest_trace) run_wrk "$OUT/$s.warmup.txt" "$WARMUP" "" BENCH_TRACE=0 ;;
      grpc | grpc_trace) run_h2load "$OUT/$s.warmup.txt" "$WARMUP" "$OUT/recommend.grpc" ;;
      grpc1) run_h2load "$OUT/$s.warmup.txt" "$WARMUP" "$OUT/recommend.grpc" "" 1 ;;
      grpc10) run_h2load "$OUT/$s.warmup.txt" "$WARMUP" "$OUT/recommend.grpc" "" 10 ;;
    esac
    sleep 1
  fi

  local traces0=0 err0 dec0 t0 t1 err1 dec1 rps p50 p99 max fails cpu tool percall
  busy="$(machine_busy)"
  [[ "$s" == *_trace ]] && traces0="$("$BUN" bench/db.ts traces "$SERVER_URL" "$BENCH_DB")"
  err0="$(metric_sum kaireon_errors_total)"; dec0="$(metric_sum kaireon_decisions_total)"; t0="$(svc_ticks)"
  log "$s: measuring for ${DURATION}s"
  case "$s" in
    healthz) run_wrk "$raw" "$DURATION" /healthz ;;
    rest) run_wrk "$raw" "$DURATION" "" BENCH_TRACE=0 ;;
    rest_trace) run_wrk "$raw" "$DURATION" "" BENCH_TRACE=1 ;;
    grpc) run_h2load "$raw" "$DURATION" "$OUT/recommend.grpc" "$OUT/$s.h2load.log" ;;
    grpc_trace) run_h2load "$raw" "$DURATION" "$OUT/recommend-trace.grpc" "$OUT/$s.h2load.log" ;;
    grpc1) run_h2load "$raw" "$DURATION" "$OUT/recommend.grpc" "$OUT/$s.h2load.log" 1 ;;
    grpc10) run_h2load "$raw" "$DURATION" "$OUT/recommend.grpc" "$OUT/$s.h2load.log" 10 ;;
  esac
  t1="$(svc_ticks)"; err1="$(metric_sum kaireon_errors_total)"; dec1="$(metric_sum kaireon_decisions_total)"
  # The service's counters after the run, for a look at what the errors column counted.
  curl -sf -m 5 "$BASE/metrics" >"$OUT/$s.metrics.txt" || true
  cpu="$(awk -v a="$t0" -v b="$t1" -v hz="$CLK_TCK" -v d="$DURATION" 'BEGIN { printf "%.0f%%", 100 * (b - a) / hz / d }')"
  case "$s" in
    healthz | rest | rest_trace)
      tool="wrk"
      rps="$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$raw")"
      p50="$(to_ms "$(awk '$1 == "50%" { print $2 }' "$raw")")"
      p99="$(to_ms "$(awk '$1 == "99%" { print $2 }' "$raw")")"
      max="$(to_ms "$(awk '$1 == "Latency" && NF >= 4 { print $4; exit }' "$raw")")"
      fails="$(awk '/Non-2xx or 3xx/ { n += $NF } /Socket errors/ { gsub(",", ""); n += $4 + $6 + $8 + $10 } END { print n + 0 }' "$raw")"
      ;;
    *)
      tool="h2load"
      rps="$(awk '/^finished in/ { gsub(",", ""); printf "%.0f", $4 }' "$raw")"
      local reqs bad p90
      read -r reqs bad p50 p90 p99 max < <("$BUN" bench/percentiles.ts "$OUT/$s.h2load.log")
      fails="$(awk '/^requests:/ { print $10; exit }' "$raw")"
      fails=$((${fails:-0} + (bad > ${fails:-0} ? bad - ${fails:-0} : 0)))
      ;;
  esac
  # The service's CPU time per answered call, in µs.
  percall="$(awk -v a="$t0" -v b="$t1" -v hz="$CLK_TCK" -v r="${rps:-0}" -v d="$DURATION" \
    'BEGIN { if (r > 0) printf "%.0f", 1e6 * (b - a) / hz / (r * d); else print "?" }')"
  # Errors the service itself counted (a gRPC error still answers HTTP 200, so h2load cannot see it).
  fails=$((fails + err1 - err0))
  if [[ "$s" != healthz ]] && (( dec1 - dec0 == 0 )); then fails="$fails!"; NOTES+=("$s: no decisions were made"); fi
  add_row "$s" "$tool" "${rps:-?}" "${p50:-?}" "${p99:-?}" "${max:-?}" "$fails" "$((dec1 - dec0))" "$cpu" "$percall" "$busy"

  if [[ "$s" == *_trace ]]; then
    # Traces are written after the answer, in batches: see how many of this run's reach the database.
    local want=$((traces0 + dec1 - dec0)) have start=$SECONDS
    while :; do
      have="$("$BUN" bench/db.ts traces "$SERVER_URL" "$BENCH_DB")"
      (( have >= want || SECONDS - start >= TRACE_WAIT )) && break
      sleep 0.5
    done
    NOTES+=("$s: $((have - traces0)) of $((dec1 - dec0)) traces in the database $((SECONDS - start))s after the run; refused (buffer full, no traceId returned): $(metric_sum kaireon_traces_refused_total), given up after write failures: $(metric_sum kaireon_traces_dropped_total)")
  fi
  log "$s: stopping the service"
  stop_service
  if [[ "$s" == *_trace ]]; then
    have="$("$BUN" bench/db.ts traces "$SERVER_URL" "$BENCH_DB")"
    NOTES+=("$s: $((have - traces0)) of $((dec1 - dec0)) traces in the database after the service stopped")
  fi
  CURRENT=""
}

# A fresh database makes the first run slower than the rest (empty caches, tables without statistics until
# autovacuum has looked at them, which it does while that run is measured): one unmeasured run of REST load
# first, so that the first scenario is measured like the others.
if (( PRIME > 0 )); then
  start_service prime
  log "prime: ${PRIME}s of REST load, not measured"
  run_wrk "$OUT/prime.txt" "$PRIME" "" BENCH_TRACE=0
  stop_service
  sleep 1
fi

for s in $SCENARIOS; do scenario "$s"; done

{
  echo
  echo "Kaireon Recommend load benchmark — $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "$(nproc) cores ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), bun $("$BUN" --version);" \
    "${DURATION}s per run after ${WARMUP}s warm-up (${PRIME}s of priming load first); $CONNECTIONS connections, $THREADS threads; h2load $STREAMS streams/connection;" \
    "service on core $SERVICE_CPU, load on core $LOAD_CPU"
  echo
  printf "$FORMAT\n" scenario tool "req/s" "p50 ms" "p99 ms" "max ms" errors decisions "svc CPU" "µs/call" "idle-busy"
  printf '%s\n' "${ROWS[@]}"
  echo
  echo "errors: non-2xx + socket errors (wrk), failed requests (h2load), plus kaireon_errors_total growth."
  echo "svc CPU: the service's CPU time over the run (200% = both cores); µs/call: that time per answered call."
  echo "idle-busy: CPU use of the whole machine in the second before the run, with the load tool idle (other work)."
  if (( ${#NOTES[@]} > 0 )); then printf '%s\n' "${NOTES[@]}"; fi
} | tee "$OUT/summary.txt"
