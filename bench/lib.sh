# Shared pieces of the benchmark scripts (sourced, not run): logging and stopping the service under test.
# The caller sets STOP_WAIT, keeps the service's pid in SVC_PID, and collects remarks in the NOTES array.

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# SIGTERM, then SIGKILL after STOP_WAIT seconds (noted, since a clean exit is part of what is measured).
stop_service() {
  [[ -n "$SVC_PID" ]] || return 0
  if kill -0 "$SVC_PID" 2>/dev/null; then
    kill -TERM "$SVC_PID" 2>/dev/null || true
    local i
    for ((i = 0; i < STOP_WAIT * 5; i++)); do kill -0 "$SVC_PID" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$SVC_PID" 2>/dev/null; then
      NOTES+=("${CURRENT:-service}: did not exit within ${STOP_WAIT}s of SIGTERM; killed")
      kill -KILL "$SVC_PID" 2>/dev/null || true
    fi
  fi
  wait "$SVC_PID" 2>/dev/null || true
  SVC_PID=""
}
