#!/usr/bin/env bash
# Proxy latency with the dashboard closed and open, side by side in one run: wrk at c=32
# on the proxy (chat completions, whole answers, through a gateway at 10% on a plan that
# never advances), in phases
#
#   1. closed: nobody looks;
#   2. open: headless Chromium (Debian's chromium, driven by chromedriver) on /dashboard,
#      signed in with the admin token, refreshing every 2 s as it does for a person;
#   3. polled: no browser, but the page's requests every 2 s by curl (the same five admin
#      endpoints), to tell the gateway's share from the browser's own CPU;
#   4. closed again.
#
#   bench/dashboard.sh
#
# Environment: BENCH_DURATION=10s per phase, BENCH_PORT_BASE=18900 (mocks on +1, +2,
# gateway on +10, +11, chromedriver on +20), BENCH_SKIP_BUILD=1, BENCH_BIN=PATH (default
# target/release/cutover), BENCH_KEEP=1. Everything listens on 127.0.0.1 only and is
# stopped on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${BENCH_DURATION:-10s}
BASE=${BENCH_PORT_BASE:-18900}
MOCK_A=$((BASE + 1)) MOCK_B=$((BASE + 2)) PROXY=$((BASE + 10)) ADMIN=$((BASE + 11)) DRIVER=$((BASE + 20))
GATEWAY_KEY=bench-gateway-key
ADMIN_TOKEN=bench-admin-token
LUA="$ROOT/bench/chat.lua"

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

for tool in wrk curl python3 chromium chromedriver; do
  command -v "$tool" >/dev/null || die "$tool is not installed (apt-get install wrk curl chromium chromium-driver)"
done
for port in $MOCK_A $MOCK_B $PROXY $ADMIN $DRIVER; do
  port_in_use "$port" && die "port $port is in use; set BENCH_PORT_BASE to another range"
done

release_binary

# --- the servers -----------------------------------------------------------------------
export CUTOVER_LOG=warn
start mock-primary "$BIN" mock --listen "127.0.0.1:$MOCK_A" --name primary
start mock-candidate "$BIN" mock --listen "127.0.0.1:$MOCK_B" --name candidate
{
  gateway_config "$PROXY" "$ADMIN" "$TMP/bench.db"
  held_plan
} >"$TMP/cutover.toml"
start cutover env BENCH_GATEWAY_KEY=$GATEWAY_KEY BENCH_ADMIN_TOKEN=$ADMIN_TOKEN "$BIN" serve -c "$TMP/cutover.toml"
start chromedriver chromedriver --port="$DRIVER"
wait_http "http://127.0.0.1:$MOCK_A/v1/models"
wait_http "http://127.0.0.1:$MOCK_B/v1/models"
wait_http "http://127.0.0.1:$ADMIN/healthz"
wait_http "http://127.0.0.1:$DRIVER/status"
BENCH_STREAM=0 BENCH_KEY=$GATEWAY_KEY wrk -t2 -c32 -d2s -s "$LUA" "http://127.0.0.1:$PROXY/v1/chat/completions" \
  >/dev/null 2>&1 || true

SECONDS_PER_PHASE=$(awk -v d="$DURATION" 'BEGIN { n = d + 0; if (d ~ /m$/) n *= 60; print int(n) }')

# --- the browser (W3C WebDriver over HTTP) ---------------------------------------------
WD="http://127.0.0.1:$DRIVER"
json_field() { python3 -c "import json, sys; v = json.load(sys.stdin)['value']; print($1)"; }
open_dashboard() {
  mkdir -p "$TMP/profile"
  local capabilities
  capabilities=$(printf '{"capabilities":{"alwaysMatch":{"browserName":"chrome","goog:chromeOptions":{"binary":"/usr/bin/chromium","args":[%s]}}}}' \
    "\"--headless\",\"--no-sandbox\",\"--disable-gpu\",\"--disable-quic\",\"--no-first-run\",\"--disable-background-networking\",\"--disable-component-update\",\"--disable-sync\",\"--user-data-dir=$TMP/profile\",\"--window-size=1400,2000\"")
  SESSION=$(curl -s -X POST "$WD/session" -H 'content-type: application/json' -d "$capabilities" | json_field "v['sessionId']")
  local base="$WD/session/$SESSION" element
  curl -s -X POST "$base/url" -d "{\"url\":\"http://127.0.0.1:$ADMIN/dashboard\"}" >/dev/null
  element=$(curl -s -X POST "$base/element" -d '{"using":"css selector","value":"#token"}' | json_field "list(v.values())[0]")
  curl -s -X POST "$base/element/$element/value" -d "{\"text\":\"$ADMIN_TOKEN\"}" >/dev/null
  element=$(curl -s -X POST "$base/element" -d '{"using":"css selector","value":"#sign-in"}' | json_field "list(v.values())[0]")
  curl -s -X POST "$base/element/$element/click" -d '{}' >/dev/null
  sleep 3
  local points
  points=$(curl -s -X POST "$base/execute/sync" -d '{"script":"return document.querySelectorAll(\"[data-points]\").length","args":[]}' | json_field v)
  [[ $points -ge 4 ]] || die "the dashboard did not draw its charts in Chromium"
}
close_dashboard() { curl -s -X DELETE "$WD/session/$SESSION" >/dev/null; }

# poll_like_the_page: the page's five requests every 2 s, until killed.
poll_like_the_page() {
  local auth="authorization: Bearer $ADMIN_TOKEN" path
  while true; do
    for path in /admin/rollouts /admin/dashboard /admin/upstreams /admin/alerts "/admin/events?route=default&limit=200"; do
      curl -s -o /dev/null -H "$auth" "http://127.0.0.1:$ADMIN$path" &
    done
    wait
    sleep 2
  done
}

RESULTS="$TMP/results.tsv"
: >"$RESULTS"

# phase NAME: one measured wrk run on the proxy (32 connections), appended to the results.
phase() {
  local measured
  measured=$(proxy_phase "$1" 32) # a failed run ends the script (set -e), as before
  printf '%s\t%s\n' "$1" "$measured" >>"$RESULTS"
}

phase closed
open_dashboard
phase open
close_dashboard
poll_like_the_page &
POLLER=$!
PIDS+=("$POLLER") NAMES+=(poller)
phase polled
kill "$POLLER" 2>/dev/null || true
wait "$POLLER" 2>/dev/null || true
phase closed-again

{
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average before the run: $(cut -d' ' -f1-3 /proc/loadavg), $DURATION per phase"
  echo "proxy: wrk -t2 -c32, POST /v1/chat/completions (whole answers) through a gateway at 10% between two mocks"
  echo "open: headless Chromium on /dashboard, signed in, refreshing every 2 s; polled: the page's requests by curl every 2 s"
  echo
  echo "| phase | proxy req/s | p50 ms | p99 ms | proxy errors | gateway CPU (of one core) |"
  echo "|---|---:|---:|---:|---:|---:|"
  awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6 }' "$RESULTS"
}
