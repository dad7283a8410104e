#!/usr/bin/env bash
# Proxy latency while alerts fire and are posted to webhook receivers that misbehave,
# side by side in one run: three gateways between the same two mocks, identical but for
# their `[[notify]]`, each with four rules that always fire (success_rate >= 0, per
# upstream) and repeat every second, so that notifications keep coming while wrk (c=8,
# chat completions, whole answers, weight 0) measures each in turn:
#
#   1. none:  no notifier (the alerts fire, nothing is posted);
#   2. hang:  three notifiers posting to a receiver that reads each post and never answers
#             (every post waits out its 5 s timeout, the queues fill and drop);
#   3. 500:   three notifiers posting to a receiver that answers 500 at once (every
#             message is tried three times with backoff, then counted failed);
#   4. none again, as a control for drift on the shared cores.
#
#   bench/notify_load.sh
#
# Environment: BENCH_DURATION=10s per phase, BENCH_PORT_BASE=18900, BENCH_SKIP_BUILD=1,
# BENCH_BIN=PATH (default target/release/cutover), BENCH_KEEP=1. Needs wrk, curl and
# python3 (the receivers). Everything listens on 127.0.0.1 only and is stopped on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${BENCH_DURATION:-10s}
BASE=${BENCH_PORT_BASE:-18900}
MOCK_A=$((BASE + 1)) MOCK_B=$((BASE + 2)) HANG=$((BASE + 3)) FAIL=$((BASE + 4))
GATEWAY_KEY=bench-gateway-key
ADMIN_TOKEN=bench-admin-token
LUA="$ROOT/bench/chat.lua"
# Each gateway's proxy port; its admin port is the next one.
declare -A PROXY_OF=([none]=$((BASE + 10)) [hang]=$((BASE + 12)) [500]=$((BASE + 14)))
declare -A RECEIVER_OF=([hang]=$HANG [500]=$FAIL)

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

for tool in wrk curl python3; do
  command -v "$tool" >/dev/null || die "$tool is not installed: apt-get install $tool"
done
for port in $MOCK_A $MOCK_B $HANG $FAIL "${PROXY_OF[@]}"; do
  port_in_use "$port" && die "port $port is in use; set BENCH_PORT_BASE to another range"
  port_in_use "$((port + 1))" && die "port $((port + 1)) is in use; set BENCH_PORT_BASE to another range"
done

release_binary

# --- the receivers ---------------------------------------------------------------------
# receiver PORT hang|500: a threaded HTTP server that reads each POST, then never answers
# (hang) or answers 500 at once.
cat >"$TMP/receiver.py" <<'EOF'
import sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port, mode = int(sys.argv[1]), sys.argv[2]

class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        if mode == "hang":
            threading.Event().wait()
        self.send_response(500)
        self.send_header("content-length", "0")
        self.end_headers()

    def do_GET(self):
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass

ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
EOF

# --- the servers -----------------------------------------------------------------------
export CUTOVER_LOG=warn
start mock-primary "$BIN" mock --listen "127.0.0.1:$MOCK_A" --name primary
start mock-candidate "$BIN" mock --listen "127.0.0.1:$MOCK_B" --name candidate
start receiver-hang python3 "$TMP/receiver.py" "$HANG" hang
start receiver-500 python3 "$TMP/receiver.py" "$FAIL" 500

# gateway NAME: writes its config (rules that always fire; notifiers to its receiver, if
# any) and starts it as cutover-NAME.
gateway() {
  local name=$1 proxy=${PROXY_OF[$1]} rule notifier
  {
    gateway_config "$proxy" "$((proxy + 1))" "$TMP/$name.db"
    for rule in 1 2 3 4; do
      cat <<EOF

[[alerts]]
name = "always_firing_$rule"
metric = "success_rate"
op = ">="
threshold = 0
for = "1s"
window = "10s"
severity = "critical"
repeat_interval = "1s"
EOF
    done
    if [[ -n ${RECEIVER_OF[$name]:-} ]]; then
      for notifier in 1 2 3; do
        cat <<EOF

[[notify]]
name = "hook_$notifier"
url = "http://127.0.0.1:${RECEIVER_OF[$name]}/hook"
min_severity = "info"
EOF
      done
    fi
  } >"$TMP/$name.toml"
  start "cutover-$name" env BENCH_GATEWAY_KEY=$GATEWAY_KEY BENCH_ADMIN_TOKEN=$ADMIN_TOKEN "$BIN" serve -c "$TMP/$name.toml"
}

for name in none hang 500; do gateway "$name"; done
wait_http "http://127.0.0.1:$MOCK_A/v1/models"
wait_http "http://127.0.0.1:$MOCK_B/v1/models"
wait_http "http://127.0.0.1:$HANG/"
wait_http "http://127.0.0.1:$FAIL/"

# Warm each gateway up, then wait until its rules fire (they need traffic in the window).
for name in none hang 500; do
  wait_http "http://127.0.0.1:$((PROXY_OF[$name] + 1))/healthz"
  BENCH_STREAM=0 BENCH_KEY=$GATEWAY_KEY wrk -t2 -c8 -d2s -s "$LUA" "http://127.0.0.1:${PROXY_OF[$name]}/v1/chat/completions" \
    >/dev/null 2>&1 || true
done

SECONDS_PER_PHASE=$(awk -v d="$DURATION" 'BEGIN { n = d + 0; if (d ~ /m$/) n *= 60; print int(n) }')

# notifications NAME OUTCOME: cutover_notifications_total{outcome=OUTCOME} of gateway NAME,
# summed over its notifiers.
notifications() {
  curl -s "http://127.0.0.1:$((PROXY_OF[$1] + 1))/metrics" |
    awk -v o="outcome=\"$2\"" '/^cutover_notifications_total/ && index($0, o) { n += $2 } END { print n + 0 }'
}

# firing NAME: how many alerts gateway NAME has firing.
firing() {
  curl -s -H "authorization: Bearer $ADMIN_TOKEN" "http://127.0.0.1:$((PROXY_OF[$1] + 1))/admin/alerts" |
    grep -o '"state":"firing"' | wc -l
}

RESULTS="$TMP/results.tsv"
: >"$RESULTS"

# phase LABEL NAME: one measured wrk run on gateway NAME's proxy while its rules fire,
# appended to the results with the notifications it posted meanwhile.
phase() {
  local label=$1 name=$2 out="$TMP/proxy-$1.txt" ticks_before i
  for i in $(seq 1 200); do
    [[ $(firing "$name") -gt 0 ]] && break
    BENCH_STREAM=0 BENCH_KEY=$GATEWAY_KEY wrk -t1 -c2 -d1s -s "$LUA" "http://127.0.0.1:${PROXY_OF[$name]}/v1/chat/completions" \
      >/dev/null 2>&1 || true
  done
  [[ $(firing "$name") -gt 0 ]] || die "no alert fires on gateway $name
$(casualties)"
  local sent_before failed_before dropped_before
  sent_before=$(notifications "$name" sent) failed_before=$(notifications "$name" failed)
  dropped_before=$(notifications "$name" dropped)
  ticks_before=$(cpu_ticks "cutover-$name")
  echo "bench: $label ($DURATION)" >&2
  BENCH_STREAM=0 BENCH_KEY=$GATEWAY_KEY wrk -t2 -c8 -d"$DURATION" --latency -s "$LUA" \
    "http://127.0.0.1:${PROXY_OF[$name]}/v1/chat/completions" >"$out" 2>&1 || die "wrk failed: $(cat "$out")
$(casualties)"
  local gateway_cpu
  gateway_cpu=$(awk -v t="$(($(cpu_ticks "cutover-$name") - ticks_before))" -v hz="$(getconf CLK_TCK)" -v s="$SECONDS_PER_PHASE" \
    'BEGIN { printf "%.0f%%", t / hz / s * 100 }')
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$label" \
    "$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$out")" \
    "$(to_ms "$(awk '$1 == "50%" { print $2 }' "$out")")" \
    "$(to_ms "$(awk '$1 == "99%" { print $2 }' "$out")")" \
    "$(awk '/Non-2xx or 3xx responses:/ { n = $NF } /Socket errors:/ { gsub(",", ""); s = $4 + $6 + $8 + $10 } END { print n + s }' "$out")" \
    "$(firing "$name")" \
    "$(($(notifications "$name" sent) - sent_before))" \
    "$(($(notifications "$name" failed) - failed_before))" \
    "$(($(notifications "$name" dropped) - dropped_before))" \
    "$gateway_cpu" >>"$RESULTS"
}

phase none none
phase "hang (receiver never answers)" hang
phase "500 (receiver fails at once)" 500
phase none-again none

{
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average before the run: $(cut -d' ' -f1-3 /proc/loadavg), $DURATION per phase"
  echo "proxy: wrk -t2 -c8, POST /v1/chat/completions (whole answers) through a gateway at weight 0 to a mock"
  echo "alerts: 4 rules always firing on each upstream with traffic, repeat_interval 1s; 3 notifiers per gateway (none in 'none')"
  echo
  echo "| phase | proxy req/s | p50 ms | p99 ms | proxy errors | alerts firing | posts sent | failed | dropped | gateway CPU (of one core) |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 }' "$RESULTS"
}
