#!/usr/bin/env bash
# Catalog-scale benchmark: what a REST Recommend costs as the catalog grows from the demo's 15 offers to
# 100, 1,000 and 10,000, and at 10,000 while an offer changes every second. Then (MICRO=1) the pure
# engine's microbenchmark, bench/decide-micro.ts. See "Catalog scale" in bench/README.md.
#
#   npm run bench:scale                       # = bash bench/catalog-scale.sh; about 3 minutes
#   DURATION=5 WARMUP=1 MICRO=0 npm run bench:scale
#   SIZES="1000" SCENARIOS="demo 1000 1000_changing" npm run bench:scale
#
# What it does:
#   1. Creates a fresh database BENCH_DB on the local PostgreSQL, starts the service once (which seeds the
#      demo tenant), and for each size n of SIZES: creates tenant scale_<n> (enterprise, its own very high
#      rate limit and monthly quota) and an admin key with the operator CLI (src/cli.ts), then builds the
#      catalog through the service's own import, POST /api/v1/catalog/import (bench/catalog-build.ts:
#      n offers, one creative each on ch_web, a computed formula on the category, qualification on 30%
#      of them, one tenant rule, a default published PRIE flow), upserts the bench customer and checks
#      that Recommend answers with offers. Then VACUUM ANALYZE, so autovacuum stays out of the runs.
#   2. Per scenario, a fresh service process (`bun src/main.ts`, NODE_ENV=production LOG_LEVEL=warn) pinned
#      to core SERVICE_CPU; checks that the scenario's request answers 200 with offers; waits for the
#      machine to settle (SETTLE); warms up for WARMUP s and measures for DURATION s with wrk
#      (bench/catalog-scale.lua, which also checks every answer) pinned to core LOAD_CPU. PostgreSQL and
#      Redis are not pinned.
#      Scenarios: demo (tenant demo, the API tutorial's request, as `npm run bench`), <n> (tenant
#      scale_<n>: cust_12345 on ch_web/hero, maxOffers 3), <n>_changing (the same while a background loop,
#      `catalog-build.ts change`, PATCHes one offer's priority every CHANGE_INTERVAL_MS through the admin
#      API: each change is a NOTIFY and a reload of the tenant's catalog), <n>_policies (flow
#      df_scale_policies: a frequency cap and an outcome suppression, so every decision also reads the
#      customer's contact history; an answer without offers there is a history read given up) and
#      <n>_thompson (flow df_scale_thompson: Thompson sampling, every offer scored on every decision).
#   3. Prints one table (req/s, ratio to demo, p50/p99/max, errors) and writes it to BENCH_OUT/summary.txt,
#      with nproc and the load average before and after.
# Everything it starts is stopped on exit (trap), the database dropped and its Redis keys deleted.
#
# Environment (defaults):
#   DURATION     15               seconds per measured run
#   WARMUP       3                seconds of warm-up before each run (0: none)
#   CONNECTIONS  50               wrk connections
#   THREADS      1                wrk threads (wrk has one core to itself)
#   SIZES        "100 1000 10000" catalog sizes to build, one tenant scale_<n> each
#   SCENARIOS    "demo <SIZES…> 10000_changing 10000_policies 10000_thompson"   (the last three only when
#                10000 is in SIZES), in this order; any of: demo, <n>, <n>_changing, <n>_policies,
#                <n>_thompson, with n in SIZES
#   CHANGE_INTERVAL_MS  1000      one offer change per this many ms in the *_changing scenarios
#   MICRO        1                0: skip bench/decide-micro.ts at the end (it reads MICRO_SIZES
#                                 "1000 10000", BATCHES 9, BATCH_MS 200, WARMUP_MS 1000)
#   BENCH_OUT    a new temporary directory: raw outputs, service logs and summary.txt
#   DATABASE_URL postgres://postgres@127.0.0.1:5432/postgres   the server (host, port, user) only: the run
#                works in its own database BENCH_DB
#   BENCH_DB     kaireon_bench_scale   dropped first if it exists, and at the end
#   REDIS_URL    redis://127.0.0.1:6379   keys under REDIS_KEY_PREFIX kaireon-bench-scale-<pid>
#   SERVICE_CPU  0                core of the service (and of the microbenchmark)
#   LOAD_CPU     1                core of wrk and of the offer changer
#   PORT_MIN / PORT_MAX  4100 / 4199   the service's REST and gRPC ports: the first free pair in this range
#   STOP_WAIT    10               seconds the service gets to exit on SIGTERM before it is killed
#   SETTLE       20               before each scenario, wait up to this many seconds for the machine to be
#   SETTLE_BUSY  15                 at most SETTLE_BUSY % busy (autovacuum after the imports, other work)
#   BUN          node_modules/.bin/bun
# Refuses a PostgreSQL or Redis host other than 127.0.0.1/localhost. Needs wrk, curl, taskset, timeout.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

BUN="${BUN:-$ROOT/node_modules/.bin/bun}"
DURATION="${DURATION:-15}"
DURATION="${DURATION%s}"
WARMUP="${WARMUP:-3}"
WARMUP="${WARMUP%s}"
CONNECTIONS="${CONNECTIONS:-50}"
THREADS="${THREADS:-1}"
SIZES="${SIZES:-100 1000 10000}"
CHANGE_INTERVAL_MS="${CHANGE_INTERVAL_MS:-1000}"
MICRO="${MICRO:-1}"
SERVER_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
BENCH_DB="${BENCH_DB:-kaireon_bench_scale}"
REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
REDIS_KEY_PREFIX="kaireon-bench-scale-$$"
SERVICE_CPU="${SERVICE_CPU:-0}"
LOAD_CPU="${LOAD_CPU:-1}"
PORT_MIN="${PORT_MIN:-4100}"
PORT_MAX="${PORT_MAX:-4199}"
STOP_WAIT="${STOP_WAIT:-10}"
SETTLE="${SETTLE:-20}"
SETTLE_BUSY="${SETTLE_BUSY:-15}"
OUT="${BENCH_OUT:-$(mktemp -d /tmp/kaireon-catalog-scale.XXXXXX)}"
mkdir -p "$OUT"

for n in DURATION WARMUP CONNECTIONS THREADS CHANGE_INTERVAL_MS SERVICE_CPU LOAD_CPU PORT_MIN PORT_MAX STOP_WAIT SETTLE SETTLE_BUSY; do
  [[ "${!n}" =~ ^[0-9]+$ ]] || { echo "$n must be a whole number, got '${!n}'" >&2; exit 2; }
done
(( DURATION > 0 && CONNECTIONS >= THREADS && THREADS > 0 && CHANGE_INTERVAL_MS > 0 )) ||
  { echo "need DURATION > 0, CONNECTIONS >= THREADS > 0 and CHANGE_INTERVAL_MS > 0" >&2; exit 2; }
(( PORT_MIN >= 4100 && PORT_MAX <= 4199 && PORT_MIN < PORT_MAX )) || { echo "PORT_MIN/PORT_MAX must lie within 4100-4199" >&2; exit 2; }
for n in $SIZES; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] && (( n <= 100000 )) || { echo "SIZES: '$n' is not a whole number from 1 to 100000" >&2; exit 2; }
done
has_size() { local n; for n in $SIZES; do [[ "$n" == "$1" ]] && return 0; done; return 1; }
if [[ -z "${SCENARIOS:-}" ]]; then
  SCENARIOS="demo $SIZES"
  has_size 10000 && SCENARIOS="$SCENARIOS 10000_changing 10000_policies 10000_thompson"
fi
for s in $SCENARIOS; do
  case "$s" in
    demo) ;;
    *_changing | *_policies | *_thompson)
      has_size "${s%_*}" || { echo "scenario $s: ${s%_*} is not in SIZES ($SIZES)" >&2; exit 2; } ;;
    *) has_size "$s" || { echo "unknown scenario '$s' (demo, <n>, <n>_changing, <n>_policies or <n>_thompson with n in SIZES: $SIZES)" >&2; exit 2; } ;;
  esac
done
[[ "$BENCH_DB" =~ ^[a-z_][a-z0-9_]*$ ]] || { echo "BENCH_DB must match [a-z_][a-z0-9_]*" >&2; exit 2; }
# This benchmark loads whatever it points at: only ever the local machine.
for url in "$SERVER_URL" "$REDIS_URL"; do
  host="$(sed -E 's#^[a-z]+://([^@/]*@)?(\[[^]]*\]|[^:/?]*).*#\2#' <<<"$url")"
  case "$host" in 127.0.0.1 | localhost) ;; *) echo "refusing to run against '$host' ($url): 127.0.0.1 only" >&2; exit 2 ;; esac
done
for tool in wrk curl taskset timeout; do
  command -v "$tool" >/dev/null || { echo "$tool is not installed (Debian: apt-get install -y wrk curl util-linux coreutils)" >&2; exit 2; }
done
[[ -x "$BUN" ]] || { echo "bun not found at $BUN (set BUN)" >&2; exit 2; }
NPROC="$(nproc --all)"
(( SERVICE_CPU < NPROC && LOAD_CPU < NPROC )) || { echo "SERVICE_CPU/LOAD_CPU must be below the $NPROC cores" >&2; exit 2; }
(( SERVICE_CPU != LOAD_CPU )) || echo "warning: the service and wrk share core $SERVICE_CPU" >&2

# Every load run is bounded: wrk's own duration, and a hard kill shortly after as a safety net.
HARD_LIMIT=$((DURATION + WARMUP + 30))

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

SVC_PID=""
CHANGER_PID=""
DB_CREATED=0
NOTES=()
CURRENT=""

cleanup() {
  local rc=$?
  set +e
  if [[ -n "$CHANGER_PID" ]]; then kill -TERM "$CHANGER_PID" 2>/dev/null; wait "$CHANGER_PID" 2>/dev/null; CHANGER_PID=""; fi
  if [[ -n "$SVC_PID" ]]; then log "stopping the service (pid $SVC_PID)"; stop_service; fi
  if (( DB_CREATED )); then
    log "dropping database $BENCH_DB"
    timeout 60 "$BUN" bench/db.ts drop "$SERVER_URL" "$BENCH_DB" || echo "could not drop $BENCH_DB" >&2
  fi
  if command -v redis-cli >/dev/null; then
    # Only this run's keys (rate-limit windows, monthly quota counters).
    timeout 30 redis-cli -u "$REDIS_URL" --scan --pattern "$REDIS_KEY_PREFIX*" 2>/dev/null |
      timeout 30 xargs -r -n 500 redis-cli -u "$REDIS_URL" del >/dev/null 2>&1
  fi
  echo "raw outputs: $OUT" >&2
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
UPTIME_BEFORE="$(uptime)"

# ---------------------------------------------------------------------------------------------------------
# Database, keys

log "creating database $BENCH_DB"
DB_URL="$("$BUN" bench/db.ts url "$SERVER_URL" "$BENCH_DB")"
DB_CREATED=1
timeout 60 "$BUN" bench/db.ts create "$SERVER_URL" "$BENCH_DB"

DEMO_KEY="$("$BUN" -e 'const a="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";console.log("krn_"+Array.from(crypto.getRandomValues(new Uint8Array(40)),b=>a[b%62]).join(""))')"
PEPPER="bench-pepper-$("$BUN" -e 'console.log(crypto.randomUUID())')"
DEMO_BODY='{"customerId":"cust_12345","channelId":"ch_email","decisionFlowId":"df_credit_cards","maxOffers":3,"placement":"hero_offer","attributes":{"tier":"gold","source":"campaign_q1","device":"mobile"}}'
SCALE_BODY="$("$BUN" bench/catalog-build.ts request)"
POLICIES_BODY="$("$BUN" bench/catalog-build.ts request df_scale_policies)"
THOMPSON_BODY="$("$BUN" bench/catalog-build.ts request df_scale_thompson)"
declare -A KEYS OFFERS
KEYS[demo]="$DEMO_KEY"

# The service's (and the CLI's) environment: the rate limiter runs as in production, one Redis script per
# call, with limits the load cannot reach, so that the run measures decisions rather than 429s.
SVC_ENV=(NODE_ENV=production LOG_LEVEL=warn DATABASE_URL="$DB_URL" REDIS_URL="$REDIS_URL" REDIS_KEY_PREFIX="$REDIS_KEY_PREFIX"
  API_KEY_PEPPER="$PEPPER" DEMO_API_KEY="$DEMO_KEY"
  RATE_LIMIT_OVERRIDE_PER_MINUTE=100000000 MONTHLY_DECISION_QUOTA_OVERRIDE=1000000000000)

cli() { timeout 120 env "${SVC_ENV[@]}" "$BUN" src/cli.ts "$@"; }

# ---------------------------------------------------------------------------------------------------------
# The service

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_service() { # <name>
  local s="$1" i p
  PORT="" GRPC_PORT=""
  for ((p = PORT_MIN; p <= PORT_MAX; p++)); do
    port_free "$p" || continue
    if [[ -z "$PORT" ]]; then PORT="$p"; else GRPC_PORT="$p"; break; fi
  done
  [[ -n "$GRPC_PORT" ]] || { echo "no two free ports in $PORT_MIN-$PORT_MAX" >&2; exit 1; }
  log "$s: starting the service on core $SERVICE_CPU (REST :$PORT, gRPC :$GRPC_PORT)"
  env "${SVC_ENV[@]}" HOST=127.0.0.1 PORT="$PORT" GRPC_PORT="$GRPC_PORT" \
    taskset -c "$SERVICE_CPU" "$BUN" src/main.ts >"$OUT/$s.service.log" 2>&1 &
  SVC_PID=$!
  BASE="http://127.0.0.1:$PORT"
  for ((i = 1; ; i++)); do
    if ! kill -0 "$SVC_PID" 2>/dev/null; then
      echo "the service exited during start; its log:" >&2; cat "$OUT/$s.service.log" >&2; SVC_PID=""; exit 1
    fi
    curl -sf -m 2 "$BASE/readyz" >/dev/null 2>&1 && break
    (( i >= 300 )) && { echo "service not ready after 60 s; its log:" >&2; cat "$OUT/$s.service.log" >&2; exit 1; }
    sleep 0.2
  done
}

# ---------------------------------------------------------------------------------------------------------
# Catalogs

log "building the catalogs ($SIZES offers) through the catalog import"
CURRENT=setup
start_service setup
OFFERS[demo]="$(timeout 60 env KAIREON_API_KEY="$DEMO_KEY" "$BUN" bench/catalog-build.ts count "$BASE" demo)"
: >"$OUT/build.txt"
for n in $SIZES; do
  t="scale_$n"
  cli tenants create "$t" --name "Catalog scale $n" --plan enterprise >>"$OUT/build.txt"
  cli tenants set "$t" --rate-limit 100000000 --monthly-quota 1000000000000 >>"$OUT/build.txt"
  key="$(cli keys create "$t" --name catalog-scale --scopes decide,admin | grep -E '^krn_' || true)"
  [[ -n "$key" ]] || { echo "no API key created for $t" >&2; exit 1; }
  KEYS[$t]="$key"
  OFFERS[$t]="$n"
  KAIREON_API_KEY="$key" timeout 600 "$BUN" bench/catalog-build.ts import "$BASE" "$t" "$n" | tee -a "$OUT/build.txt" >&2
done
stop_service
timeout 300 "$BUN" bench/catalog-build.ts vacuum "$DB_URL" | tee -a "$OUT/build.txt" >&2
CURRENT=""

# ---------------------------------------------------------------------------------------------------------
# Load runs

# wrk latency value ("850.00us", "1.23ms", "1.02s", "2.00m") in milliseconds.
to_ms() { awk -v v="$1" 'BEGIN {
  if (v ~ /us$/) printf "%.2f", v / 1000; else if (v ~ /ms$/) printf "%.2f", v + 0;
  else if (v ~ /m$/) printf "%.2f", v * 60000; else if (v ~ /s$/) printf "%.2f", v * 1000; else print "?" }'; }
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
# Waits (at most SETTLE seconds) for the machine to be quiet: autovacuum after the imports, other work.
settle() {
  local start=$SECONDS b=0
  while (( SECONDS - start < SETTLE )); do
    b="$(machine_busy)"; b="${b%\%}"
    (( b <= SETTLE_BUSY )) && return 0
  done
  NOTES+=("$CURRENT: the machine was still ${b}% busy after waiting ${SETTLE}s for it to settle")
}
metric_sum() { curl -sf -m 5 "$BASE/metrics" | awk -v n="$1" '$1 == n || index($1, n "{") == 1 { s += $NF } END { printf "%d\n", s }'; }

run_wrk() { # <out-file> <duration> <tenant> <body>
  env KAIREON_API_KEY="${KEYS[$3]}" KAIREON_TENANT="$3" BENCH_BODY="$4" timeout -k 5 "$HARD_LIMIT" \
    taskset -c "$LOAD_CPU" wrk -t "$THREADS" -c "$CONNECTIONS" -d "${2}s" --timeout 10s --latency \
    -s bench/catalog-scale.lua "$BASE" >"$1" 2>&1 || { echo "wrk failed: $(cat "$1")" >&2; exit 1; }
}

check_rest() { # <scenario> <tenant> <body>
  local status
  status="$(curl -sS -m 60 -o "$OUT/$1.check.json" -w '%{http_code}' "$BASE/api/v1/recommend" \
    -H 'content-type: application/json' -H "x-tenant-id: $2" -H "x-api-key: ${KEYS[$2]}" -d "$3")"
  if [[ "$status" != 200 ]] || ! grep -q '"offerId"' "$OUT/$1.check.json"; then
    echo "check ($1) failed: HTTP $status $(head -c 2000 "$OUT/$1.check.json")" >&2; exit 1
  fi
  echo "  check: HTTP 200, $(grep -o '"offerId"' "$OUT/$1.check.json" | wc -l) offers:" \
    "$(grep -o '"offerId":"[^"]*"' "$OUT/$1.check.json" | cut -d'"' -f4 | paste -sd, -)" >&2
}

declare -A RPS
ROWS=()
FORMAT='%-15s %7s %8s %8s %9s %9s %9s %7s %6s %8s %9s'

scenario() { # <scenario>
  local s="$1" tenant body raw="$OUT/$1.txt" changing=0
  case "$s" in
    demo) tenant=demo body="$DEMO_BODY" ;;
    *_changing) tenant="scale_${s%_changing}" body="$SCALE_BODY" changing=1 ;;
    *_policies) tenant="scale_${s%_policies}" body="$POLICIES_BODY" ;;
    *_thompson) tenant="scale_${s%_thompson}" body="$THOMPSON_BODY" ;;
    *) tenant="scale_$s" body="$SCALE_BODY" ;;
  esac
  CURRENT="$s"
  start_service "$s"
  check_rest "$s" "$tenant" "$body"
  settle

  if (( changing )); then
    log "$s: changing one offer of $tenant every ${CHANGE_INTERVAL_MS} ms (core $LOAD_CPU)"
    env KAIREON_API_KEY="${KEYS[$tenant]}" INTERVAL_MS="$CHANGE_INTERVAL_MS" SECONDS_LIMIT="$HARD_LIMIT" \
      timeout -k 5 "$((HARD_LIMIT + 10))" taskset -c "$LOAD_CPU" "$BUN" bench/catalog-build.ts change "$BASE" "$tenant" "${OFFERS[$tenant]}" \
      >"$OUT/$s.changes.txt" 2>&1 &
    CHANGER_PID=$!
  fi
  if (( WARMUP > 0 )); then
    log "$s: warming up for ${WARMUP}s"
    run_wrk "$OUT/$s.warmup.txt" "$WARMUP" "$tenant" "$body"
    sleep 1
  fi

  local busy t0 t1 dec0 dec1 rps p50 p99 max non2xx sock empty cpu
  busy="$(machine_busy)"
  dec0="$(metric_sum kaireon_decisions_total)"; t0="$(svc_ticks)"
  log "$s: measuring for ${DURATION}s"
  run_wrk "$raw" "$DURATION" "$tenant" "$body"
  t1="$(svc_ticks)"; dec1="$(metric_sum kaireon_decisions_total)"
  if [[ -n "$CHANGER_PID" ]]; then
    kill -TERM "$CHANGER_PID" 2>/dev/null || true
    wait "$CHANGER_PID" 2>/dev/null || true
    CHANGER_PID=""
    NOTES+=("$s: $(cat "$OUT/$s.changes.txt") (warm-up and measurement)")
  fi
  cpu="$(awk -v a="$t0" -v b="$t1" -v hz="$CLK_TCK" -v d="$DURATION" 'BEGIN { printf "%.0f%%", 100 * (b - a) / hz / d }')"
  rps="$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$raw")"
  p50="$(to_ms "$(awk '$1 == "50%" { print $2 }' "$raw")")"
  p99="$(to_ms "$(awk '$1 == "99%" { print $2 }' "$raw")")"
  max="$(to_ms "$(awk '$1 == "Latency" && NF >= 4 { print $4; exit }' "$raw")")"
  non2xx="$(awk '/Non-2xx or 3xx/ { n += $NF } END { print n + 0 }' "$raw")"
  sock="$(awk '/Socket errors/ { gsub(",", ""); n += $4 + $6 + $8 + $10 } END { print n + 0 }' "$raw")"
  # "checked: <answers> answers, <n> without offers, <n> not HTTP 200" (bench/catalog-scale.lua)
  empty="$(awk '/^checked:/ { print $4 }' "$raw")"
  (( sock == 0 )) || NOTES+=("$s: $sock socket errors ($(grep 'Socket errors' "$raw" | sed 's/^ *//'))")
  (( dec1 > dec0 )) || NOTES+=("$s: the service counted no decisions during the run")
  RPS[$s]="${rps:-0}"
  ROWS+=("$s|${OFFERS[$tenant]}|${rps:-?}|${p50:-?}|${p99:-?}|${max:-?}|$((non2xx + sock))|${empty:-?}|$cpu|$busy")
  log "$s: ${rps:-?} req/s, p99 ${p99:-?} ms; stopping the service"
  stop_service
  CURRENT=""
}

for s in $SCENARIOS; do scenario "$s"; done

LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"
{
  echo
  echo "Kaireon catalog-scale benchmark (REST Recommend) — $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "code: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(n="$(git -C "$ROOT" status --porcelain -- src 2>/dev/null | wc -l)"; (( n > 0 )) && echo " + $n uncommitted changes under src/")"
  echo "nproc $(nproc) ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)); bun $("$BUN" --version); $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2)"
  echo "load average before $LOAD_BEFORE, after $LOAD_AFTER (uptime before: $(sed 's/^ *//' <<<"$UPTIME_BEFORE"))"
  echo "service on core $SERVICE_CPU, wrk ($THREADS thread, $CONNECTIONS connections) on core $LOAD_CPU; PostgreSQL and Redis unpinned;" \
    "${DURATION}s per run after ${WARMUP}s warm-up"
  echo
  printf "$FORMAT\n" scenario offers "req/s" "vs demo" "p50 ms" "p99 ms" "max ms" errors empty "svc CPU" "idle-busy"
  for r in "${ROWS[@]}"; do
    IFS='|' read -r s offers rps p50 p99 max errs empty cpu busy <<<"$r"
    ratio="-"
    if [[ -n "${RPS[demo]:-}" && "${RPS[demo]}" != 0 && "$rps" =~ ^[0-9]+$ ]]; then
      ratio="$(awk -v a="$rps" -v b="${RPS[demo]}" 'BEGIN { r = a / b; printf (r >= 0.1 ? "%.2f" : "%.4f"), r }')"
    fi
    printf "$FORMAT\n" "$s" "$offers" "$rps" "$ratio" "$p50" "$p99" "$max" "$errs" "$empty" "$cpu" "$busy"
  done
  echo
  echo "errors: non-2xx answers + socket errors (wrk); empty: HTTP 200 without offers (bench/catalog-scale.lua)."
  echo "vs demo: req/s / the demo scenario's req/s. svc CPU: the service's CPU time over the run (100% = its one core)."
  echo "idle-busy: CPU use of the whole machine in the second before the run, with the load tool idle: other work"
  echo "  (for *_changing it includes the changes' own cost: writes, NOTIFY, catalog reloads)."
  echo "catalogs (bench/catalog-build.ts import):"
  grep '^scale_' "$OUT/build.txt" | sed 's/; recommend:.*//; s/^/  /'
  if (( ${#NOTES[@]} > 0 )); then printf '%s\n' "${NOTES[@]}"; fi
} | tee "$OUT/summary.txt"

if [[ "$MICRO" != 0 ]]; then
  log "engine microbenchmark (bench/decide-micro.ts, core $SERVICE_CPU)"
  echo | tee -a "$OUT/summary.txt"
  timeout 900 taskset -c "$SERVICE_CPU" "$BUN" bench/decide-micro.ts | tee -a "$OUT/summary.txt"
fi
