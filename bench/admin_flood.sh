#!/usr/bin/env bash
# Proxy latency while the admin port is flooded and while the state file is locked by
# another process, side by side in one run: wrk at c=8 on the proxy (chat completions,
# whole answers, through a gateway at weight 0 to a mock)
#
#   1. alone;
#   2. with a concurrent flood of `GET /admin/rollouts` (wrk, c=8, with the admin token),
#      and, as a control for the CPU the flood itself takes from the shared cores, a
#      flood of `GET /healthz` (no lock, no state) at the same concurrency;
#   3. with the state file locked by another process: `sqlite3` holding a write
#      transaction (`BEGIN EXCLUSIVE`) on it while the controller wants to save each second;
#   4. both at once.
#
#   bench/admin_flood.sh
#
# Environment: BENCH_DURATION=10s per phase, BENCH_PORT_BASE=18800 (mocks on +1, +2,
# gateway on +10, +11), BENCH_SKIP_BUILD=1, BENCH_BIN=PATH (default target/release/cutover),
# BENCH_KEEP=1. Everything listens on 127.0.0.1 only and is stopped on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${BENCH_DURATION:-10s}
BASE=${BENCH_PORT_BASE:-18800}
MOCK_A=$((BASE + 1)) MOCK_B=$((BASE + 2)) PROXY=$((BASE + 10)) ADMIN=$((BASE + 11))
GATEWAY_KEY=bench-gateway-key
ADMIN_TOKEN=bench-admin-token
LUA="$ROOT/bench/chat.lua"

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

for tool in wrk curl sqlite3; do
  command -v "$tool" >/dev/null || die "$tool is not installed: apt-get install $tool"
done
for port in $MOCK_A $MOCK_B $PROXY $ADMIN; do
  port_in_use "$port" && die "port $port is in use; set BENCH_PORT_BASE to another range"
done

release_binary

# --- the servers -----------------------------------------------------------------------
export CUTOVER_LOG=warn
start mock-primary "$BIN" mock --listen "127.0.0.1:$MOCK_A" --name primary
start mock-candidate "$BIN" mock --listen "127.0.0.1:$MOCK_B" --name candidate
STATE="$TMP/bench.db"
{
  gateway_config "$PROXY" "$ADMIN" "$STATE"
  # The controller saves the step's evidence to the state file while the phases run.
  held_plan
} >"$TMP/cutover.toml"
start cutover env BENCH_GATEWAY_KEY=$GATEWAY_KEY BENCH_ADMIN_TOKEN=$ADMIN_TOKEN "$BIN" serve -c "$TMP/cutover.toml"
wait_http "http://127.0.0.1:$MOCK_A/v1/models"
wait_http "http://127.0.0.1:$MOCK_B/v1/models"
wait_http "http://127.0.0.1:$ADMIN/healthz"
BENCH_STREAM=0 BENCH_KEY=$GATEWAY_KEY wrk -t2 -c8 -d2s -s "$LUA" "http://127.0.0.1:$PROXY/v1/chat/completions" \
  >/dev/null 2>&1 || true

SECONDS_PER_PHASE=$(awk -v d="$DURATION" 'BEGIN { n = d + 0; if (d ~ /m$/) n *= 60; print int(n) }')

# lock_state: another process (sqlite3, fed through a fifo) holds a write transaction on
# the state file until unlock_state.
lock_state() {
  mkfifo "$TMP/lock.fifo"
  sqlite3 "$STATE" <"$TMP/lock.fifo" >"$TMP/sqlite3.log" 2>&1 &
  LOCK_PID=$!
  PIDS+=("$LOCK_PID") NAMES+=(sqlite3-lock)
  exec 4>"$TMP/lock.fifo"
  echo 'BEGIN EXCLUSIVE;' >&4
  # Held once a second writer is refused at once.
  local i
  for i in $(seq 1 100); do
    sqlite3 -cmd '.timeout 0' "$STATE" 'BEGIN IMMEDIATE; ROLLBACK;' >/dev/null 2>&1 || return 0
    sleep 0.05
  done
  die "sqlite3 did not take the write lock on $STATE"
}
unlock_state() {
  echo 'ROLLBACK;' >&4
  exec 4>&-
  wait "$LOCK_PID" 2>/dev/null || true
}

# admin_flood PHASE [PATH]: wrk on GET PATH (default /admin/rollouts) of the admin port for
# a little longer than a phase; its output in $TMP/admin-PHASE.txt.
admin_flood() {
  wrk -t1 -c8 -d"$((SECONDS_PER_PHASE + 2))s" -H "authorization: Bearer $ADMIN_TOKEN" \
    "http://127.0.0.1:$ADMIN${2:-/admin/rollouts}" >"$TMP/admin-$1.txt" 2>&1 &
  FLOOD=$!
  sleep 1
}

RESULTS="$TMP/results.tsv"
: >"$RESULTS"

# phase NAME: one measured wrk run on the proxy (8 connections), with the admin flood's
# rate if one ran beside it, appended to the results.
phase() {
  local name=$1 measured rps p50 p99 errors gateway_cpu
  measured=$(proxy_phase "$name" 8) # a failed run ends the script (set -e), as before
  IFS=$'\t' read -r rps p50 p99 errors gateway_cpu <<<"$measured"
  local admin_rps="-"
  if [[ -n ${FLOOD:-} ]]; then
    wait "$FLOOD" || true
    FLOOD=""
    admin_rps=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$TMP/admin-$name.txt")
    local admin_non2xx
    admin_non2xx=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$TMP/admin-$name.txt")
    [[ -n $admin_non2xx ]] && admin_rps="$admin_rps ($admin_non2xx non-2xx)"
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$rps" "$p50" "$p99" "$errors" "$admin_rps" "$gateway_cpu" >>"$RESULTS"
}

phase alone
admin_flood admin-flood
phase admin-flood
admin_flood healthz-flood /healthz
phase healthz-flood
lock_state
phase state-locked
admin_flood locked+flood
phase locked+flood
unlock_state
phase alone-again

WRITE_FAILURES=$(curl -s "http://127.0.0.1:$ADMIN/metrics" | awk '/^cutover_state_write_failures_total/ { n += $2 } END { print n + 0 }')

{
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average before the run: $(cut -d' ' -f1-3 /proc/loadavg), $DURATION per phase"
  echo "proxy: wrk -t2 -c8, POST /v1/chat/completions (whole answers) through a gateway at weight 0 to a mock"
  echo "admin flood: wrk -t1 -c8, GET /admin/rollouts (healthz-flood: GET /healthz) with the admin token, on the same cores"
  echo
  echo "| phase | proxy req/s | p50 ms | p99 ms | proxy errors | admin req/s | gateway CPU (of one core) |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7 }' "$RESULTS"
  echo
  echo "state writes that failed while the file was locked (cutover_state_write_failures_total): $WRITE_FAILURES"
}
