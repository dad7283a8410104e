#!/usr/bin/env bash
# Throughput and latency of cutover against the same load sent straight to the upstream
# (and through nginx, when it is installed), with wrk. Run by hand from anywhere:
#
#   bench/run.sh
#
# Environment:
#   BENCH_DURATION=10s      length of each measured run
#   BENCH_PORT_BASE=18700   ports BASE+1, +2 (mocks), +10, +11 (cutover), +20 (nginx),
#                           +30 (the floor: bench/floor, a bare hyper proxy)
#   BENCH_FLOOR_BIN=PATH    the floor proxy's binary (default: built into target/bench-floor)
#   BENCH_SKIP_BUILD=1      use the existing target/release/cutover
#   BENCH_BIN=PATH          measure that cutover binary instead (implies no build)
#   BENCH_KEEP=1            keep the temp dir (configs, logs, raw wrk output)
#   BENCH_BASELINE_BIN=PATH another cutover binary (e.g. the previous commit's release
#                           build), run beside this one on ports BASE+12, +13 and measured
#                           right after it, so that before and after share one run
#   BENCH_SHADOW_SHARE=0.1  the shadow share of the cutover-shadow rows (weight 0, that
#                           share of the users mirrored to the candidate mock)
#
# Everything listens on 127.0.0.1 only; every process started here is stopped on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${BENCH_DURATION:-10s}
BASE=${BENCH_PORT_BASE:-18700}
MOCK_A=$((BASE + 1)) MOCK_B=$((BASE + 2)) PROXY=$((BASE + 10)) ADMIN=$((BASE + 11)) NGINX_PORT=$((BASE + 20))
BASE_PROXY=$((BASE + 12)) BASE_ADMIN=$((BASE + 13))
BASELINE_BIN=${BENCH_BASELINE_BIN:-}
SHADOW_SHARE=${BENCH_SHADOW_SHARE:-0.1}
GATEWAY_KEY=bench-gateway-key
ADMIN_TOKEN=bench-admin-token
LUA="$ROOT/bench/chat.lua"

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

command -v wrk >/dev/null || die "wrk is not installed: apt-get install wrk (or build it from https://github.com/wg/wrk)"
command -v curl >/dev/null || die "curl is not installed: apt-get install curl"

for port in $MOCK_A $MOCK_B $PROXY $ADMIN $NGINX_PORT $BASE_PROXY $BASE_ADMIN $((BASE + 30)); do
  port_in_use "$port" && die "port $port is in use; set BENCH_PORT_BASE to another range"
done

release_binary

# The floor: a bare hyper proxy (bench/floor), built here unless BENCH_SKIP_BUILD=1.
FLOOR_PORT=$((BASE + 30))
FLOOR_BIN=${BENCH_FLOOR_BIN:-$ROOT/target/bench-floor/release/cutover-floor}
if [[ ${BENCH_SKIP_BUILD:-0} != 1 && -z ${BENCH_FLOOR_BIN:-} ]]; then
  echo "bench: building the floor proxy (bench/floor)" >&2
  CARGO_TARGET_DIR=$ROOT/target/bench-floor cargo build --release --quiet --manifest-path "$ROOT/bench/floor/Cargo.toml" ||
    die "the floor proxy's build failed"
fi
[[ -x $FLOOR_BIN ]] || FLOOR_BIN=""

# --- the servers -----------------------------------------------------------------------
export CUTOVER_LOG=warn
start mock-primary "$BIN" mock --listen "127.0.0.1:$MOCK_A" --name primary --latency 0
start mock-candidate "$BIN" mock --listen "127.0.0.1:$MOCK_B" --name candidate --latency 0

gateway_config "$PROXY" "$ADMIN" bench.db >"$TMP/cutover.toml"
start cutover env BENCH_GATEWAY_KEY=$GATEWAY_KEY BENCH_ADMIN_TOKEN=$ADMIN_TOKEN "$BIN" serve -c "$TMP/cutover.toml"
if [[ -n $BASELINE_BIN ]]; then
  [[ -x $BASELINE_BIN ]] || die "BENCH_BASELINE_BIN=$BASELINE_BIN is not an executable"
  gateway_config "$BASE_PROXY" "$BASE_ADMIN" bench-baseline.db >"$TMP/baseline.toml"
  start baseline env BENCH_GATEWAY_KEY=$GATEWAY_KEY BENCH_ADMIN_TOKEN=$ADMIN_TOKEN "$BASELINE_BIN" serve -c "$TMP/baseline.toml"
fi

[[ -n $FLOOR_BIN ]] && start floor "$FLOOR_BIN" "127.0.0.1:$FLOOR_PORT" "127.0.0.1:$MOCK_A"

start_nginx "$NGINX_PORT" "$MOCK_A"

wait_http "http://127.0.0.1:$MOCK_A/v1/models"
wait_http "http://127.0.0.1:$MOCK_B/v1/models"
wait_http "http://127.0.0.1:$ADMIN/healthz"
[[ -n $BASELINE_BIN ]] && wait_http "http://127.0.0.1:$BASE_ADMIN/healthz"
[[ -n $NGINX ]] && wait_http "http://127.0.0.1:$NGINX_PORT/v1/models"
[[ -n $FLOOR_BIN ]] && wait_http "http://127.0.0.1:$FLOOR_PORT/v1/models"

# set_weight PCT [ADMIN_PORT]
set_weight() {
  curl -sf -o /dev/null -X POST -H "authorization: Bearer $ADMIN_TOKEN" -d "{\"weight\": $1}" \
    "http://127.0.0.1:${2:-$ADMIN}/admin/rollouts/default/weight" || die "cannot set the weight to $1"
}

# --- the runs --------------------------------------------------------------------------
set_shadow() {
  curl -sf -o /dev/null -X POST -H "authorization: Bearer $ADMIN_TOKEN" -d "{\"share\": $1}" \
    "http://127.0.0.1:$ADMIN/admin/rollouts/default/shadow" || die "cannot set the shadow share to $1"
}

RESULTS="$TMP/results.tsv"
: >"$RESULTS"

# run TARGET MODE THREADS CONNECTIONS URL [PROCESS]: one measured wrk run, appended to
# the results, with the CPU time PROCESS (the proxy under test) spent per request.
run() {
  local target=$1 mode=$2 threads=$3 conns=$4 url=$5 process=${6:-}
  local ticks_before=0
  [[ -n $process ]] && ticks_before=$(cpu_ticks "$process")
  local out="$TMP/wrk-$target-$mode-c$conns.txt" stream=0
  [[ $mode == stream ]] && stream=1
  echo "bench: $target $mode c=$conns t=$threads ($DURATION)" >&2
  BENCH_STREAM=$stream BENCH_KEY=$GATEWAY_KEY wrk -t"$threads" -c"$conns" -d"$DURATION" --latency -s "$LUA" "$url" >"$out" 2>&1 ||
    die "wrk failed against $url: $(cat "$out")
$(casualties)"
  local rps p50 p99 non2xx socket
  rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
  p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$out")")
  p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$out")")
  non2xx=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$out")
  socket=$(awk '/Socket errors:/ { gsub(",", ""); print $4 + $6 + $8 + $10 }' "$out")
  local cpu_us="-"
  if [[ -n $process ]]; then
    local ticks requests
    ticks=$(($(cpu_ticks "$process") - ticks_before))
    requests=$(awk '/requests in/ { print $1 }' "$out")
    cpu_us=$(awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" -v n="$requests" \
      'BEGIN { if (n > 0) printf "%.1f", t / hz / n * 1e6; else printf "-" }')
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$target" "$mode" "$threads" "$conns" "$rps" "$p50" "$p99" \
    "$((${non2xx:-0} + ${socket:-0}))" "$cpu_us" >>"$RESULTS"
}

warm_up() {
  BENCH_STREAM=0 BENCH_KEY=$GATEWAY_KEY wrk -t2 -c32 -d2s -s "$LUA" "$1" >/dev/null 2>&1 || true
}

# measure TARGET PROCESS URL MODES...: warm up, then c=1 (1 thread) and c=32 (2 threads)
# per mode; PROCESS is the server whose CPU time is charged to the requests.
measure() {
  local target=$1 process=$2 url=$3 mode
  shift 3
  warm_up "$url"
  for mode in "$@"; do
    run "$target" "$mode" 1 1 "$url" "$process"
    run "$target" "$mode" 2 32 "$url" "$process"
  done
}

PATH_CHAT=/v1/chat/completions
measure direct mock-primary "http://127.0.0.1:$MOCK_A$PATH_CHAT" whole stream
[[ -n $NGINX ]] && measure nginx nginx "http://127.0.0.1:$NGINX_PORT$PATH_CHAT" whole stream
[[ -n $FLOOR_BIN ]] && measure floor floor "http://127.0.0.1:$FLOOR_PORT$PATH_CHAT" whole stream
set_weight 0
[[ -n $BASELINE_BIN ]] && set_weight 0 "$BASE_ADMIN"
for mode in whole stream; do
  measure cutover-w0 cutover "http://127.0.0.1:$PROXY$PATH_CHAT" "$mode"
  [[ -n $BASELINE_BIN ]] && measure baseline-w0 baseline "http://127.0.0.1:$BASE_PROXY$PATH_CHAT" "$mode"
done
set_weight 50
measure cutover-w50 cutover "http://127.0.0.1:$PROXY$PATH_CHAT" whole
[[ -n $BASELINE_BIN ]] && set_weight 50 "$BASE_ADMIN" && measure baseline-w50 baseline "http://127.0.0.1:$BASE_PROXY$PATH_CHAT" whole

# Shadow on: weight 0 again, and SHADOW_SHARE of the (primary) users mirrored to the
# candidate mock, which answers on the same cores.
set_weight 0
set_shadow "$SHADOW_SHARE"
measure "cutover-shadow" cutover "http://127.0.0.1:$PROXY$PATH_CHAT" whole stream
set_shadow null
MIRRORED=$(curl -s "http://127.0.0.1:$ADMIN/metrics" | awk '/^cutover_shadow_requests_total\{/ && /outcome="mirrored"/ { n += $NF } END { printf "%d", n }')

# Which upstream served the gateway's requests: proves the w50 run used both arms.
SPLIT=$(curl -s "http://127.0.0.1:$ADMIN/metrics" | awk '/^cutover_requests_total\{/ && /outcome="ok"/' | sed 's/^/    /')

# --- the table -------------------------------------------------------------------------
{
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), $DURATION per run"
  # `--version` names the release and the commit the binary was built from, which is the
  # binary measured even when BENCH_BIN points outside this checkout.
  echo "$("$BIN" --version 2>/dev/null || echo "cutover (no --version)")$([[ -n $BASELINE_BIN ]] && echo ", baseline $("$BASELINE_BIN" --version 2>/dev/null)"), $(wrk -v 2>&1 | awk 'NR == 1 { print $1, $2 }'), $([[ -n $NGINX ]] && "$NGINX" -v 2>&1 | sed 's/^nginx version: //'), Linux $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
  echo "wrk, the mocks, cutover and nginx share these cores: absolute numbers describe this machine, ratios compare the proxies."
  echo
  awk -F'\t' '
    { key = $2 "/" $4; if ($1 == "direct") { drps[key] = $5; dp50[key] = $6; dp99[key] = $7 } row[NR] = $0 }
    END {
      printf "| target | body | c | threads | req/s | p50 ms | p99 ms | errors | req/s vs direct | p50 vs direct | p99 vs direct | p50 added ms | server CPU µs/req |\n"
      printf "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
      for (i = 1; i <= NR; i++) {
        split(row[i], f, "\t"); key = f[2] "/" f[4]
        r = (drps[key] > 0) ? sprintf("%.2f", f[5] / drps[key]) : "-"
        a = (dp50[key] > 0) ? sprintf("%.2f", f[6] / dp50[key]) : "-"
        b = (dp99[key] > 0) ? sprintf("%.2f", f[7] / dp99[key]) : "-"
        d = (key in dp50) ? sprintf("%+.3f", f[6] - dp50[key]) : "-"
        printf "| %s | %s | %s | %s | %.0f | %.3f | %.3f | %s | %s | %s | %s | %s | %s |\n", f[1], f[2], f[4], f[3], f[5], f[6], f[7], f[8], r, a, b, d, f[9]
      }
    }' "$RESULTS"
  if [[ -n $NGINX ]]; then
    echo
    echo "Against nginx at the same body and concurrency (targets: req/s ≥ 1.0, added p50 ≤ 1.0, CPU ≤ 1.0, p99 ≤ 1.2):"
    echo
    awk -F'\t' '
      { key = $2 "/" $4; row[NR] = $0
        if ($1 == "direct") dp50[key] = $6
        if ($1 == "nginx") { nrps[key] = $5; np50[key] = $6; np99[key] = $7; ncpu[key] = $9 } }
      END {
        printf "| target | body | c | req/s ÷ nginx | added p50 ÷ nginx | p99 ÷ nginx | CPU/req ÷ nginx |\n"
        printf "|---|---|---:|---:|---:|---:|---:|\n"
        for (i = 1; i <= NR; i++) {
          split(row[i], f, "\t"); key = f[2] "/" f[4]
          if (f[1] == "direct" || f[1] == "nginx" || !(key in nrps)) continue
          added = f[6] - dp50[key]; nadded = np50[key] - dp50[key]
          a = (nadded > 0) ? sprintf("%.2f", added / nadded) : sprintf("%+.3f vs %+.3f ms", added, nadded)
          c = (ncpu[key] > 0 && f[9] != "-") ? sprintf("%.2f", f[9] / ncpu[key]) : "-"
          printf "| %s | %s | %s | %.2f | %s | %.2f | %s |\n", f[1], f[2], f[4], f[5] / nrps[key], a, f[7] / np99[key], c
        }
      }' "$RESULTS"
  fi
  echo
  echo "cutover's successful requests per upstream (all runs):"
  echo "$SPLIT"
  echo "mirrored in the cutover-shadow runs (share $SHADOW_SHARE of the users): $MIRRORED"
}