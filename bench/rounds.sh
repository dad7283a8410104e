#!/usr/bin/env bash
# CPU time per request of nginx, cutover and (optionally) a baseline cutover, measured in
# interleaved rounds, with each server's low, high and median. On a shared machine one
# run moves by 10–20% from the next, nginx included; interleaving the servers round by
# round spreads that noise over all of them, and the medians compare them. Run by hand:
#
#   bench/rounds.sh [whole|stream]      # default: whole
#
# Environment:
#   BENCH_ROUNDS=3          rounds; each measures every server once, in the same order
#   BENCH_DURATION=6s       length of each measured run (after a 2 s warm-up)
#   BENCH_CONNECTIONS=32    wrk connections (2 threads)
#   BENCH_PORT_BASE=18950   ports BASE+1, +2 (mocks), +10, +11 (cutover), +12, +13
#                           (baseline), +20 (nginx)
#   BENCH_BIN=PATH          the cutover binary (default target/release/cutover, built
#                           unless BENCH_SKIP_BUILD=1)
#   BENCH_BASELINE_BIN=PATH another cutover binary, measured beside it
#   BENCH_KEEP=1            keep the temp dir
#
# cutover runs at weight 0% (every request to the primary, as nginx forwards them), with
# gateway keys and metrics on. CPU time is user + system of the server's processes
# (nginx: master and workers), from /proc, divided by the requests wrk completed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MODE=${1:-whole}
[[ $MODE == whole || $MODE == stream ]] || { echo "usage: bench/rounds.sh [whole|stream]" >&2; exit 2; }
ROUNDS=${BENCH_ROUNDS:-3}
DURATION=${BENCH_DURATION:-6s}
CONNECTIONS=${BENCH_CONNECTIONS:-32}
BASE=${BENCH_PORT_BASE:-18950}
MOCK_A=$((BASE + 1)) MOCK_B=$((BASE + 2)) PROXY=$((BASE + 10)) ADMIN=$((BASE + 11)) NGINX_PORT=$((BASE + 20))
BASE_PROXY=$((BASE + 12)) BASE_ADMIN=$((BASE + 13))
BASELINE_BIN=${BENCH_BASELINE_BIN:-}
GATEWAY_KEY=bench-gateway-key
ADMIN_TOKEN=bench-admin-token
LUA="$ROOT/bench/chat.lua"

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

for tool in wrk curl; do
  command -v "$tool" >/dev/null || die "$tool is not installed: apt-get install $tool"
done
for port in $MOCK_A $MOCK_B $PROXY $ADMIN $BASE_PROXY $BASE_ADMIN $NGINX_PORT; do
  port_in_use "$port" && die "port $port is in use; set BENCH_PORT_BASE to another range"
done
release_binary

export CUTOVER_LOG=warn
start mock-primary "$BIN" mock --listen "127.0.0.1:$MOCK_A" --name primary --latency 0
start mock-candidate "$BIN" mock --listen "127.0.0.1:$MOCK_B" --name candidate --latency 0
gateway_config "$PROXY" "$ADMIN" bench.db >"$TMP/cutover.toml"
start cutover env BENCH_GATEWAY_KEY=$GATEWAY_KEY BENCH_ADMIN_TOKEN=$ADMIN_TOKEN "$BIN" serve -c "$TMP/cutover.toml"
SERVERS=(cutover)
URLS=("http://127.0.0.1:$PROXY/v1/chat/completions")
if [[ -n $BASELINE_BIN ]]; then
  [[ -x $BASELINE_BIN ]] || die "BENCH_BASELINE_BIN=$BASELINE_BIN is not an executable"
  gateway_config "$BASE_PROXY" "$BASE_ADMIN" bench-baseline.db >"$TMP/baseline.toml"
  start baseline env BENCH_GATEWAY_KEY=$GATEWAY_KEY BENCH_ADMIN_TOKEN=$ADMIN_TOKEN "$BASELINE_BIN" serve -c "$TMP/baseline.toml"
  SERVERS+=(baseline)
  URLS+=("http://127.0.0.1:$BASE_PROXY/v1/chat/completions")
fi
start_nginx "$NGINX_PORT" "$MOCK_A"
[[ -n $NGINX ]] || die "nginx is not installed: apt-get install nginx"
SERVERS=(nginx "${SERVERS[@]}")
URLS=("http://127.0.0.1:$NGINX_PORT/v1/chat/completions" "${URLS[@]}")

wait_http "http://127.0.0.1:$MOCK_A/v1/models"
wait_http "http://127.0.0.1:$MOCK_B/v1/models"
wait_http "http://127.0.0.1:$ADMIN/healthz"
[[ -n $BASELINE_BIN ]] && wait_http "http://127.0.0.1:$BASE_ADMIN/healthz"
wait_http "http://127.0.0.1:$NGINX_PORT/v1/models"
for admin in $ADMIN ${BASELINE_BIN:+$BASE_ADMIN}; do
  curl -sf -o /dev/null -X POST -H "authorization: Bearer $ADMIN_TOKEN" -d '{"weight": 0}' \
    "http://127.0.0.1:$admin/admin/rollouts/default/weight" || die "cannot set the weight to 0"
done

STREAM=0
[[ $MODE == stream ]] && STREAM=1
SAMPLES="$TMP/samples.tsv"
: >"$SAMPLES"

# sample SERVER URL: a warm-up, then one measured run; appends SERVER, its CPU µs per
# request and req/s to the samples.
sample() {
  local server=$1 url=$2 out="$TMP/wrk-$1.txt" ticks_before ticks requests
  BENCH_STREAM=$STREAM BENCH_KEY=$GATEWAY_KEY wrk -t2 -c"$CONNECTIONS" -d2s -s "$LUA" "$url" >/dev/null 2>&1 || true
  ticks_before=$(cpu_ticks "$server")
  BENCH_STREAM=$STREAM BENCH_KEY=$GATEWAY_KEY wrk -t2 -c"$CONNECTIONS" -d"$DURATION" -s "$LUA" "$url" >"$out" 2>&1 ||
    die "wrk failed against $url: $(cat "$out")
$(casualties)"
  ticks=$(($(cpu_ticks "$server") - ticks_before))
  requests=$(awk '/requests in/ { print $1 }' "$out")
  awk -v s="$server" -v t="$ticks" -v hz="$(getconf CLK_TCK)" -v n="$requests" \
    -v rps="$(awk '/^Requests\/sec:/ { print $2 }' "$out")" \
    'BEGIN { if (n > 0) printf "%s\t%.1f\t%.0f\n", s, t / hz / n * 1e6, rps }' >>"$SAMPLES"
}

for round in $(seq 1 "$ROUNDS"); do
  for i in "${!SERVERS[@]}"; do
    echo "bench: round $round of $ROUNDS, ${SERVERS[$i]} ($MODE, c=$CONNECTIONS, $DURATION)" >&2
    sample "${SERVERS[$i]}" "${URLS[$i]}"
  done
done

echo
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $MODE answers, c=$CONNECTIONS, $ROUNDS rounds of $DURATION"
echo "cutover $("$BIN" --version 2>/dev/null | awk '{ print $NF }') ($(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "no git")), $("$NGINX" -v 2>&1 | sed 's/^nginx version: //'), load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
echo
printf '| server | CPU µs per request, each round | low–high | median | median ÷ nginx | req/s median |\n|---|---|---|---:|---:|---:|\n'
for server in "${SERVERS[@]}"; do
  awk -F'\t' -v s="$server" '$1 == s { print $2 "\t" $3 }' "$SAMPLES"
  echo "--"
done | awk -F'\t' -v names="${SERVERS[*]}" '
  function median(list, n,   sorted, i, j, t) {
    for (i = 1; i <= n; i++) sorted[i] = list[i]
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (sorted[j] < sorted[i]) { t = sorted[i]; sorted[i] = sorted[j]; sorted[j] = t }
    return n % 2 ? sorted[(n + 1) / 2] : (sorted[n / 2] + sorted[n / 2 + 1]) / 2
  }
  BEGIN { split(names, name, " "); k = 1 }
  $0 == "--" {
    low = cpu[1]; high = cpu[1]; each = ""
    for (i = 1; i <= n; i++) { if (cpu[i] < low) low = cpu[i]; if (cpu[i] > high) high = cpu[i]; each = each (i > 1 ? ", " : "") cpu[i] }
    m = median(cpu, n); if (k == 1) nginx = m
    printf "| %s | %s | %.1f–%.1f | %.1f | %.2f | %.0f |\n", name[k], each, low, high, m, m / nginx, median(rps, n)
    k++; n = 0; next
  }
  { n++; cpu[n] = $1; rps[n] = $2 }'
