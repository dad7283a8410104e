#!/usr/bin/env bash
# CPU time per request of nginx, cutover and (optionally) a baseline cutover, measured in
# interleaved rounds, with each server's low, high and median, for each case (bench/cases.sh:
# whole and streamed answers, 16 and 64 KiB requests, a stream of 200 events). On a shared
# machine one run moves by 10–20% from the next, nginx included; interleaving the servers
# round by round spreads that noise over all of them, and the medians compare them. Run by
# hand:
#
#   bench/rounds.sh [CASE...]      # default: $BENCH_CASES, else the standard cases
#
# Environment:
#   BENCH_CASES="whole stream"  the cases to measure (the standard ones: whole whole-16k
#                           whole-64k stream stream-16k stream-200ev)
#   BENCH_ROUNDS=3          rounds; each measures every case on every server once, in the
#                           same order
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
# (nginx: master and workers), from /proc, divided by the requests wrk completed. A run
# with a non-2xx answer stops the script: its CPU per request would not be the case's.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
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
# shellcheck source=bench/cases.sh
source "$ROOT/bench/cases.sh"
select_cases "$@"

for tool in wrk curl; do
  command -v "$tool" >/dev/null || die "$tool is not installed: apt-get install $tool"
done
for port in $MOCK_A $MOCK_B $PROXY $ADMIN $BASE_PROXY $BASE_ADMIN $NGINX_PORT; do
  port_in_use "$port" && die "port $port is in use; set BENCH_PORT_BASE to another range"
done
release_binary

export CUTOVER_LOG=warn
start mock-primary "$BIN" mock --listen "127.0.0.1:$MOCK_A" --name primary --latency 0 --tokens "$MOCK_TOKENS"
start mock-candidate "$BIN" mock --listen "127.0.0.1:$MOCK_B" --name candidate --latency 0 --tokens "$MOCK_TOKENS"
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

mkdir -p "$TMP/cases"
write_case_bodies "$TMP/cases"
SAMPLES="$TMP/samples.tsv"
: >"$SAMPLES"

# answer_of CASE: what the client receives for CASE through cutover: "whole", or the
# number of events of the stream.
answer_of() {
  case_parse "$1"
  if [[ $CASE_STREAM == 0 ]]; then echo whole; return; fi
  echo "$(curl -sfN -H "authorization: Bearer $GATEWAY_KEY" -H 'content-type: application/json' \
    --data-binary "@$TMP/cases/$1.json" "${URLS[1]}" | grep -c '^data:') events"
}

# sample CASE SERVER URL: a warm-up, then one measured run; appends CASE, SERVER, its CPU
# µs per request and req/s to the samples.
sample() {
  local name=$1 server=$2 url=$3 out="$TMP/wrk-$1-$2.txt" ticks_before ticks requests non2xx
  BENCH_BODY_FILE="$TMP/cases/$name.json" BENCH_KEY=$GATEWAY_KEY wrk -t2 -c"$CONNECTIONS" -d2s -s "$LUA" "$url" >/dev/null 2>&1 || true
  ticks_before=$(cpu_ticks "$server")
  BENCH_BODY_FILE="$TMP/cases/$name.json" BENCH_KEY=$GATEWAY_KEY wrk -t2 -c"$CONNECTIONS" -d"$DURATION" -s "$LUA" "$url" >"$out" 2>&1 ||
    die "wrk failed against $url: $(cat "$out")
$(casualties)"
  ticks=$(($(cpu_ticks "$server") - ticks_before))
  non2xx=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$out")
  [[ -z $non2xx ]] || die "$server answered $non2xx requests of $name with a non-2xx status: $(cat "$out")
$(casualties)"
  requests=$(awk '/requests in/ { print $1 }' "$out")
  awk -v c="$name" -v s="$server" -v t="$ticks" -v hz="$(getconf CLK_TCK)" -v n="$requests" \
    -v rps="$(awk '/^Requests\/sec:/ { print $2 }' "$out")" \
    'BEGIN { if (n > 0) printf "%s\t%s\t%.1f\t%.0f\n", c, s, t / hz / n * 1e6, rps }' >>"$SAMPLES"
}

declare -A ANSWER
for name in "${CASES[@]}"; do ANSWER[$name]=$(answer_of "$name"); done

for round in $(seq 1 "$ROUNDS"); do
  for name in "${CASES[@]}"; do
    for i in "${!SERVERS[@]}"; do
      echo "bench: round $round of $ROUNDS, $name, ${SERVERS[$i]} (c=$CONNECTIONS, $DURATION)" >&2
      sample "$name" "${SERVERS[$i]}" "${URLS[$i]}"
    done
  done
done

# STATS: one line per case and server: case, server, each round's CPU µs per request,
# low, high, median, median ÷ nginx's (nginx comes first in each case), req/s median.
STATS="$TMP/stats.tsv"
for name in "${CASES[@]}"; do
  for server in "${SERVERS[@]}"; do
    awk -F'\t' -v c="$name" -v s="$server" '$1 == c && $2 == s { print $3 "\t" $4 }' "$SAMPLES"
    echo "-- $name $server"
  done
done | awk -F'\t' '
  function median(list, n,   sorted, i, j, t) {
    for (i = 1; i <= n; i++) sorted[i] = list[i]
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (sorted[j] < sorted[i]) { t = sorted[i]; sorted[i] = sorted[j]; sorted[j] = t }
    return n % 2 ? sorted[(n + 1) / 2] : (sorted[n / 2] + sorted[n / 2 + 1]) / 2
  }
  /^-- / {
    split($0, id, " ")
    low = cpu[1]; high = cpu[1]; each = ""
    for (i = 1; i <= n; i++) { if (cpu[i] < low) low = cpu[i]; if (cpu[i] > high) high = cpu[i]; each = each (i > 1 ? ", " : "") cpu[i] }
    m = median(cpu, n); if (id[3] == "nginx") nginx = m
    printf "%s\t%s\t%s\t%.1f\t%.1f\t%.1f\t%.2f\t%.0f\n", id[2], id[3], each, low, high, m, m / nginx, median(rps, n)
    n = 0; next
  }
  { n++; cpu[n] = $1; rps[n] = $2 }' >"$STATS"

echo
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), c=$CONNECTIONS, $ROUNDS rounds of $DURATION"
# Each binary's own `--version` (its release and the commit it was built from): the
# checkout's HEAD is not the binary's when BENCH_BIN points at another build.
echo "$("$BIN" --version 2>/dev/null || echo "cutover (no --version)")$([[ -n $BASELINE_BIN ]] && echo ", baseline $("$BASELINE_BIN" --version 2>/dev/null)"), $("$NGINX" -v 2>&1 | sed 's/^nginx version: //'), load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
echo
echo "Medians of the rounds, CPU µs per request:"
echo
header="| case | request bytes | answer | nginx | cutover | cutover ÷ nginx |" rule="|---|---:|---|---:|---:|---:|"
[[ -n $BASELINE_BIN ]] && header="$header baseline | baseline ÷ nginx |" rule="$rule---:|---:|"
printf '%s\n%s\n' "$header" "$rule"
for name in "${CASES[@]}"; do
  row="| $name | $(wc -c <"$TMP/cases/$name.json") | ${ANSWER[$name]} |"
  for server in "${SERVERS[@]}"; do
    row="$row $(awk -F'\t' -v c="$name" -v s="$server" '$1 == c && $2 == s {
      if (s == "nginx") printf "%s |", $6; else printf "%s | %s |", $6, $7 }' "$STATS")"
  done
  echo "$row"
done
echo
printf '| case | server | CPU µs per request, each round | low–high | median | median ÷ nginx | req/s median |\n|---|---|---|---|---:|---:|---:|\n'
awk -F'\t' '{ printf "| %s | %s | %s | %s–%s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8 }' "$STATS"
