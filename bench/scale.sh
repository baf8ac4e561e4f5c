#!/usr/bin/env bash
# Scale benchmark: Recommend over a catalog of 10,000 offers, 1,000,000 customer profiles and 10,000,000
# interactions (bench/scale-generate.ts). Checks that the answers are right first, shows the plans of the
# profile lookup and the contact-history read, then loads the service with wrk (a random customer per
# request) and prints req/s, p50 and p99 per scenario. See the "Scale" section of bench/README.md.
#
#   bash bench/scale.sh                                  generate (minutes), check, measure
#   SKIP_GENERATE=1 bash bench/scale.sh                  reuse the database of an earlier run
#   OFFERS=500 PROFILES=20000 INTERACTIONS=200000 bash bench/scale.sh   a small try first
#
# Environment (defaults):
#   DATABASE_URL   postgres://postgres@127.0.0.1:5432/postgres   the server; the data lives in SCALE_DB
#   SCALE_DB       kaireon_scale    kept after the run (generating takes minutes) unless DROP=1
#   REDIS_URL      redis://127.0.0.1:6379
#   OFFERS / PROFILES / INTERACTIONS   sizes for the generator (10000 / 1000000 / 10000000)
#   SKIP_GENERATE  0                1: keep the database, only register a new API key for this run
#   DROP           0                1: drop the database at the end
#   SCENARIOS      "web email"      web: ch_web, no placement; email: ch_email, placement hero_offer
#   DURATION 30, WARMUP 5, CONNECTIONS 50, THREADS 2, MAX_OFFERS 5
#   STATS_WAIT     11               seconds to wait after a run before reading PostgreSQL's scan counters
#                                   (idle backends report theirs within 10 s)
#   STOP_WAIT      10               seconds to wait for the service to exit on SIGTERM
#   CPU_PROF       0                1: bun --cpu-prof per scenario, summarised by bench/profile-summary.ts
#   SKIP_CHECK     0                1: no correctness checks and query plans (profiling runs)
#   SCALE_API_KEY / API_KEY_PEPPER  random per run when unset
#   BENCH_OUT      new temp dir     raw outputs and summary.txt
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

BUN="${BUN:-$ROOT/node_modules/.bin/bun}"
SERVER_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
SCALE_DB="${SCALE_DB:-kaireon_scale}"
REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
SKIP_GENERATE="${SKIP_GENERATE:-0}"
DROP="${DROP:-0}"
SCENARIOS="${SCENARIOS:-web email}"
DURATION="${DURATION:-30}"
DURATION="${DURATION%s}"
WARMUP="${WARMUP:-5}"
WARMUP="${WARMUP%s}"
CONNECTIONS="${CONNECTIONS:-50}"
THREADS="${THREADS:-2}"
MAX_OFFERS="${MAX_OFFERS:-5}"
STATS_WAIT="${STATS_WAIT:-11}"
STOP_WAIT="${STOP_WAIT:-10}"
CPU_PROF="${CPU_PROF:-0}"
OUT="${BENCH_OUT:-$(mktemp -d /tmp/kaireon-scale.XXXXXX)}"
mkdir -p "$OUT"

for n in DURATION WARMUP CONNECTIONS THREADS MAX_OFFERS STATS_WAIT STOP_WAIT; do
  [[ "${!n}" =~ ^[0-9]+$ ]] || { echo "$n must be a whole number, got '${!n}'" >&2; exit 2; }
done
(( DURATION > 0 && CONNECTIONS >= THREADS && THREADS > 0 )) || { echo "need DURATION > 0 and CONNECTIONS >= THREADS > 0" >&2; exit 2; }
for s in $SCENARIOS; do
  case "$s" in web | email) ;; *) echo "unknown scenario '$s' (web, email)" >&2; exit 2 ;; esac
done
[[ "$SCALE_DB" =~ ^[a-z_][a-z0-9_]*$ ]] || { echo "SCALE_DB must match [a-z_][a-z0-9_]*" >&2; exit 2; }
# This benchmark loads whatever it points at: only ever the local machine.
for url in "$SERVER_URL" "$REDIS_URL"; do
  host="$(sed -E 's#^[a-z]+://([^@/]*@)?(\[[^]]*\]|[^:/?]*).*#\2#' <<<"$url")"
  case "$host" in 127.0.0.1 | localhost | "[::1]") ;; *) echo "refusing to run against '$host' ($url): 127.0.0.1 only" >&2; exit 2 ;; esac
done
for tool in wrk curl; do
  command -v "$tool" >/dev/null || { echo "$tool is not installed" >&2; exit 2; }
done
[[ -x "$BUN" ]] || { echo "bun not found at $BUN (set BUN)" >&2; exit 2; }

HARD_LIMIT=$((DURATION + WARMUP + 60))

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

SVC_PID=""
NOTES=()


cleanup() {
  local rc=$?
  set +e
  if [[ -n "$SVC_PID" ]]; then log "stopping the service (pid $SVC_PID)"; stop_service; fi
  if [[ "$DROP" == 1 ]]; then
    log "dropping database $SCALE_DB"
    "$BUN" bench/db.ts drop "$SERVER_URL" "$SCALE_DB" || echo "could not drop $SCALE_DB" >&2
  else
    echo "database $SCALE_DB kept (DROP=1 drops it; SKIP_GENERATE=1 reuses it)" >&2
  fi
  echo "raw outputs: $OUT" >&2
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------------------------
# Data

DB_URL="$("$BUN" bench/db.ts url "$SERVER_URL" "$SCALE_DB")"
SCALE_API_KEY="${SCALE_API_KEY:-$("$BUN" -e 'const a="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";console.log("krn_"+Array.from(crypto.getRandomValues(new Uint8Array(40)),b=>a[b%62]).join(""))')}"
API_KEY_PEPPER="${API_KEY_PEPPER:-scale-pepper-$("$BUN" -e 'console.log(crypto.randomUUID())')}"
export SCALE_API_KEY API_KEY_PEPPER

if [[ "$SKIP_GENERATE" == 1 ]]; then
  log "reusing database $SCALE_DB; registering this run's API key"
  "$BUN" bench/scale-generate.ts --key-only "$SERVER_URL" "$SCALE_DB"
else
  log "generating the data set in $SCALE_DB (OFFERS=${OFFERS:-10000} PROFILES=${PROFILES:-1000000} INTERACTIONS=${INTERACTIONS:-10000000})"
  "$BUN" bench/scale-generate.ts "$SERVER_URL" "$SCALE_DB" 2>&1 | tee "$OUT/generate.txt" >&2
fi
read -r PROFILE_COUNT OFFER_COUNT INTERACTION_COUNT < <("$BUN" bench/scale-check.ts size "$DB_URL")
(( PROFILE_COUNT > 0 )) || { echo "no profiles of tenant scale in $SCALE_DB" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------------------
# The service

start_service() { # <name> [profile: 0|1]
  local s="$1" prof="${2:-0}" i
  read -r PORT GRPC_PORT < <("$BUN" -e '
const net = require("node:net");
const free = () => new Promise((ok) => { const s = net.createServer(); s.listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => ok(p)); }); });
const a = await free(); let b = await free(); while (b === a) b = await free();
console.log(a, b);')
  local flags=()
  [[ "$prof" == 1 ]] && flags=(--cpu-prof --cpu-prof-md --cpu-prof-dir="$OUT" --cpu-prof-name="$s")
  log "$s: starting the service (REST :$PORT, gRPC :$GRPC_PORT)"
  env NODE_ENV=production HOST=127.0.0.1 PORT="$PORT" GRPC_PORT="$GRPC_PORT" SEED_DEMO=false \
    DATABASE_URL="$DB_URL" REDIS_URL="$REDIS_URL" API_KEY_PEPPER="$API_KEY_PEPPER" LOG_LEVEL=warn \
    "$BUN" "${flags[@]}" src/main.ts >"$OUT/$s.service.log" 2>&1 &
  SVC_PID=$!
  BASE="http://127.0.0.1:$PORT"
  for ((i = 1; ; i++)); do
    if ! kill -0 "$SVC_PID" 2>/dev/null; then
      echo "the service exited during start; its log:" >&2; cat "$OUT/$s.service.log" >&2; exit 1
    fi
    curl -sf -m 2 "$BASE/readyz" >/dev/null 2>&1 && break
    (( i >= 300 )) && { echo "service not ready after 60 s; its log:" >&2; cat "$OUT/$s.service.log" >&2; exit 1; }
    sleep 0.2
  done
}

# Sum of a metric family in /metrics, optionally only the series whose labels contain <match>.
metric_sum() { # <name> [label-match]
  curl -sf -m 5 "$BASE/metrics" | awk -v n="$1" -v m="${2:-}" '($1 == n || index($1, n "{") == 1) && (m == "" || index($1, m) > 0) { s += $NF } END { printf "%d\n", s }'
}
svc_ticks() { awk '{ print $14 + $15 }' "/proc/$SVC_PID/stat"; }
CLK_TCK="$(getconf CLK_TCK)"
cpu_sample() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat; }
busy_between() { # <sample-a> <sample-b>: % of all cores busy in between
  awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " "); t = y[2] - x[2]; printf "%.0f%%", (t > 0 ? 100 * (y[1] - x[1]) / t : 0) }'
}
to_ms() { awk -v v="$1" 'BEGIN {
  if (v ~ /us$/) printf "%.2f", v / 1000; else if (v ~ /ms$/) printf "%.2f", v + 0;
  else if (v ~ /m$/) printf "%.2f", v * 60000; else if (v ~ /s$/) printf "%.2f", v * 1000; else print "?" }'; }

run_wrk() { # <out-file> <duration> <channel> <placement>
  env KAIREON_API_KEY="$SCALE_API_KEY" PROFILES="$PROFILE_COUNT" CHANNEL="$3" PLACEMENT="$4" MAX_OFFERS="$MAX_OFFERS" \
    timeout -k 5 "$HARD_LIMIT" wrk -t "$THREADS" -c "$CONNECTIONS" -d "${2}s" --timeout 10s --latency \
    -s bench/recommend-scale.lua "$BASE" >"$1" 2>&1
}

# ---------------------------------------------------------------------------------------------------------
# Correctness first, then the query plans

if [[ "${SKIP_CHECK:-0}" == 1 ]]; then
  NOTES+=("correctness checks and query plans SKIPPED (SKIP_CHECK=1)")
else
CURRENT=check
start_service check
log "checking Recommend answers"
set +e
KAIREON_API_KEY="$SCALE_API_KEY" "$BUN" bench/scale-check.ts check "$BASE" "$DB_URL" | tee "$OUT/check.txt" >&2
check_rc=${PIPESTATUS[0]}
set -e
case "$check_rc" in
  0) NOTES+=("correctness: every check passed (bench/scale-check.ts; details in $OUT/check.txt)") ;;
  3) NOTES+=("correctness: core checks passed, CONTACT-POLICY CHECKS FAILED (see $OUT/check.txt)") ;;
  *) echo "correctness checks failed (exit $check_rc); not measuring a service that answers wrongly" >&2; exit 1 ;;
esac
log "query plans"
set +e
"$BUN" bench/scale-check.ts explain "$DB_URL" | tee "$OUT/explain.txt" >&2
explain_rc=${PIPESTATUS[0]}
set -e
plans_ok="$(grep -c '^INDEX ' "$OUT/explain.txt" || true)"
plans_all="$(grep -c -E '^(INDEX|NOT INDEX-BACKED) ' "$OUT/explain.txt" || true)"
if ((explain_rc == 0)); then
  NOTES+=("query plans: $plans_ok of $plans_all index-backed (details in $OUT/explain.txt)")
else
  NOTES+=("query plans: ONLY $plans_ok of $plans_all index-backed (see $OUT/explain.txt)")
fi
stop_service
CURRENT=""
fi

# ---------------------------------------------------------------------------------------------------------
# Load

ROWS=()
FORMAT='%-6s %8s %8s %8s %8s %7s %6s %8s %8s %9s %12s %14s'
add_row() { ROWS+=("$(printf "$FORMAT" "$@")"); }

scenario() { # <name>
  local s="$1" raw="$OUT/$1.txt" channel placement
  case "$s" in
    web) channel=ch_web placement="" ;;
    email) channel=ch_email placement=hero_offer ;;
  esac
  CURRENT="$s"
  start_service "$s" "$CPU_PROF"
  if ((WARMUP > 0)); then
    log "$s: warming up for ${WARMUP}s"
    run_wrk "$OUT/$s.warmup.txt" "$WARMUP" "$channel" "$placement"
    sleep 1
  fi
  local c0 c1 t0 t1 m0 m1 err0 err1 dec0 dec1 empty0 empty1 miss0 miss1 hits0 hits1
  sleep "$STATS_WAIT" # the warm-up's scan counters reach the statistics first
  c0="$("$BUN" bench/scale-check.ts counters "$DB_URL")"
  err0="$(metric_sum kaireon_errors_total)"; dec0="$(metric_sum kaireon_decisions_total)"; empty0="$(metric_sum kaireon_decisions_total 'outcome="empty"')"
  miss0="$(metric_sum kaireon_cache_lookups_total 'cache="profile",result="miss"')"; hits0="$(metric_sum kaireon_cache_lookups_total 'cache="profile",result="hit"')"
  local hist0; hist0="$(grep -c 'contact history' "$OUT/$s.service.log" || true)"
  local idle0 idle1 idle
  idle0="$(cpu_sample)"; sleep 1; idle1="$(cpu_sample)"
  idle="$(busy_between "$idle0" "$idle1")"
  log "$s: measuring for ${DURATION}s ($channel${placement:+/$placement}, maxOffers $MAX_OFFERS, random customer of $PROFILE_COUNT, $CONNECTIONS connections)"
  m0="$(cpu_sample)"; t0="$(svc_ticks)"
  run_wrk "$raw" "$DURATION" "$channel" "$placement"
  t1="$(svc_ticks)"; m1="$(cpu_sample)"
  err1="$(metric_sum kaireon_errors_total)"; dec1="$(metric_sum kaireon_decisions_total)"; empty1="$(metric_sum kaireon_decisions_total 'outcome="empty"')"
  miss1="$(metric_sum kaireon_cache_lookups_total 'cache="profile",result="miss"')"; hits1="$(metric_sum kaireon_cache_lookups_total 'cache="profile",result="hit"')"
  local hist1; hist1="$(grep -c 'contact history' "$OUT/$s.service.log" || true)"
  log "$s: waiting ${STATS_WAIT}s for PostgreSQL's scan counters"
  sleep "$STATS_WAIT"
  c1="$("$BUN" bench/scale-check.ts counters "$DB_URL")"

  local rps p50 p99 max fails cpu machine checked reqs
  rps="$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$raw")"
  reqs="$(awk '/requests in/ { print $1; exit }' "$raw")"
  p50="$(to_ms "$(awk '$1 == "50%" { print $2 }' "$raw")")"
  p99="$(to_ms "$(awk '$1 == "99%" { print $2 }' "$raw")")"
  max="$(to_ms "$(awk '$1 == "Latency" && NF >= 4 { print $4; exit }' "$raw")")"
  fails="$(awk '/Non-2xx or 3xx/ { n += $NF } /Socket errors/ { gsub(",", ""); n += $4 + $6 + $8 + $10 } END { print n + 0 }' "$raw")"
  # wrk's non-2xx and the service's error counter see the same REST failures: take the larger, not the sum.
  if ((err1 - err0 > fails)); then fails=$((err1 - err0)); fi
  cpu="$(awk -v a="$t0" -v b="$t1" -v hz="$CLK_TCK" -v d="$DURATION" 'BEGIN { printf "%.0f%%", 100 * (b - a) / hz / d }')"
  machine="$(busy_between "$m0" "$m1")"
  checked="$(grep '^checked:' "$raw" || echo 'checked: ?')"
  local empty=$((empty1 - empty0))
  # Scans during the run: profile index scans / seq scans (rows read); history index scans / seq scans of
  # non-empty partitions (rows read).
  local d
  d="$(awk -v a="$c0" -v b="$c1" 'BEGIN { split(a, x, " "); split(b, y, " "); for (i = 1; i <= 6; i++) printf "%d ", y[i] - x[i] }')"
  local pidx pseq pseqtup hidx hseq hseqtup
  read -r pidx pseq pseqtup hidx hseq hseqtup <<<"$d"
  add_row "$s" "${rps:-?}" "${p50:-?}" "${p99:-?}" "${max:-?}" "$fails" "$empty" "$cpu" "$machine" "$idle" "$pidx/$pseq" "$hidx/$hseq"
  NOTES+=("$s: $reqs requests; wrk $checked; decisions $((dec1 - dec0)) (empty $empty); profile cache $((hits1 - hits0)) hits / $((miss1 - miss0)) misses; contact-history warnings in the service log: $((hist1 - hist0))")
  NOTES+=("$s: PostgreSQL scans during the run — customer_profiles: $pidx index scans, $pseq seq scans ($pseqtup rows); interactions: $hidx scans of interactions_customer, $hseq seq scans of non-empty partitions ($hseqtup rows)")
  log "$s: stopping the service"
  stop_service
  if [[ "$CPU_PROF" == 1 ]]; then
    local prof
    prof="$(ls -t "$OUT"/"$s"*.cpuprofile 2>/dev/null | head -1 || true)"
    if [[ -n "$prof" ]]; then
      "$BUN" bench/profile-summary.ts "$prof" 20 >"$OUT/$s.profile.txt" 2>&1 || true
      NOTES+=("$s: CPU profile summary in $OUT/$s.profile.txt")
    else
      NOTES+=("$s: no CPU profile was written (the service must exit on SIGTERM)")
    fi
  fi
  CURRENT=""
}

for s in $SCENARIOS; do scenario "$s"; done

{
  echo
  echo "Kaireon scale benchmark — $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "$(nproc) cores ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), bun $("$BUN" --version); database $SCALE_DB"
  echo "tenant scale: $OFFER_COUNT offers, $PROFILE_COUNT customer profiles, $INTERACTION_COUNT interactions"
  echo "${DURATION}s per run after ${WARMUP}s warm-up; $CONNECTIONS connections, $THREADS threads; random customer of $PROFILE_COUNT per request; maxOffers $MAX_OFFERS"
  echo "web: ch_web, no placement; email: ch_email, placement hero_offer"
  echo
  printf "$FORMAT\n" scen "req/s" "p50 ms" "p99 ms" "max ms" errors empty "svc CPU" "machine" "idle-busy" "profile i/s" "history i/s"
  printf '%s\n' "${ROWS[@]}"
  echo
  echo "errors: non-2xx + socket errors (wrk), or the growth of kaireon_errors_total if larger; empty: answers without offers."
  echo "svc CPU: the service's CPU time over the run (200% = both cores); machine: all CPU use during the run;"
  echo "idle-busy: all CPU use in the second before the run, with the service and wrk idle (other work on the machine)."
  echo "profile i/s, history i/s: PostgreSQL index scans / sequential scans during the run of customer_profiles and of"
  echo "  the interactions partitions that hold rows (interactions_customer index), from pg_stat_user_*."
  if (( ${#NOTES[@]} > 0 )); then printf '%s\n' "${NOTES[@]}"; fi
} | tee "$OUT/summary.txt"
