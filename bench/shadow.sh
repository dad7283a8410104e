#!/usr/bin/env bash
# The primary's latency with shadow off and at 100%, side by side in one run: three
# gateways in front of the same primary mock, identical but for their shadow share and
# candidate, measured in turn by wrk (c=8, chat completions at weight 0, so every request
# is the primary's and, with shadow on, every one is mirrored):
#
#   1. off:          shadow = 0;
#   2. fast:         shadow = 1.0 to a candidate as fast as the primary;
#   3. slow (5 s):   shadow = 1.0 to a candidate that takes 5 s per answer (the 64 mirror
#                    slots stay full, further mirrors are dropped as `full`);
#   4. off again, as a control for drift on the shared cores;
#
# whole answers, then streams. Then a fourth gateway mirrors to a candidate that disagrees
# on purpose (mock quirks: another tool, a wrong model, inflated prompt tokens) and the
# script prints `cutover rollout status` with its agreement table.
#
#   bench/shadow.sh
#
# Environment: BENCH_DURATION=10s per phase, BENCH_PORT_BASE=19300, BENCH_SKIP_BUILD=1,
# BENCH_BIN=PATH (default target/release/cutover), BENCH_KEEP=1. Needs wrk and curl.
# Everything listens on 127.0.0.1 only and is stopped on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${BENCH_DURATION:-10s}
BASE=${BENCH_PORT_BASE:-19300}
PRIMARY=$((BASE + 1)) FAST=$((BASE + 2)) SLOW=$((BASE + 3)) QUIRKY=$((BASE + 4))
GATEWAY_KEY=bench-gateway-key
ADMIN_TOKEN=bench-admin-token
LUA="$ROOT/bench/chat.lua"
# Each gateway's proxy port; its admin port is the next one.
declare -A PROXY_OF=([off]=$((BASE + 10)) [fast]=$((BASE + 12)) [slow]=$((BASE + 14)) [quirky]=$((BASE + 16)))
declare -A CANDIDATE_OF=([off]=$FAST [fast]=$FAST [slow]=$SLOW [quirky]=$QUIRKY)
declare -A SHARE_OF=([off]=0.0 [fast]=1.0 [slow]=1.0 [quirky]=1.0)

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

for tool in wrk curl; do
  command -v "$tool" >/dev/null || die "$tool is not installed: apt-get install $tool"
done
for port in $PRIMARY $FAST $SLOW $QUIRKY "${PROXY_OF[@]}"; do
  port_in_use "$port" && die "port $port is in use; set BENCH_PORT_BASE to another range"
  port_in_use "$((port + 1))" && die "port $((port + 1)) is in use; set BENCH_PORT_BASE to another range"
done

release_binary

export CUTOVER_LOG=warn
start mock-primary "$BIN" mock --listen "127.0.0.1:$PRIMARY" --name primary
start mock-fast "$BIN" mock --listen "127.0.0.1:$FAST" --name fast
start mock-slow "$BIN" mock --listen "127.0.0.1:$SLOW" --name slow --latency 5000
start mock-quirky "$BIN" mock --listen "127.0.0.1:$QUIRKY" --name quirky \
  --quirk wrong-tool --quirk echo-model=gpt-4o-mini --quirk inflate-prompt-tokens=2

# gateway NAME: writes its config (the shared one, its candidate and shadow share) and
# starts it as cutover-NAME.
gateway() {
  local name=$1 proxy=${PROXY_OF[$1]}
  {
    MOCK_A=$PRIMARY MOCK_B=${CANDIDATE_OF[$name]} gateway_config "$proxy" "$((proxy + 1))" "$TMP/$name.db"
    echo "shadow = ${SHARE_OF[$name]}"
    [[ $name == quirky ]] && echo "shadow_keep_diffs = 20"
  } >"$TMP/$name.toml"
  start "cutover-$name" env BENCH_GATEWAY_KEY=$GATEWAY_KEY BENCH_ADMIN_TOKEN=$ADMIN_TOKEN "$BIN" serve -c "$TMP/$name.toml"
}

for name in off fast slow quirky; do gateway "$name"; done
for port in $PRIMARY $FAST $SLOW $QUIRKY; do wait_http "http://127.0.0.1:$port/v1/models"; done
for name in off fast slow quirky; do wait_http "http://127.0.0.1:$((PROXY_OF[$name] + 1))/healthz"; done

SECONDS_PER_PHASE=$(awk -v d="$DURATION" 'BEGIN { n = d + 0; if (d ~ /m$/) n *= 60; print int(n) }')

# shadow_count NAME SERIES LABEL: the value of SERIES{…LABEL…} on gateway NAME.
shadow_count() {
  curl -s "http://127.0.0.1:$((PROXY_OF[$1] + 1))/metrics" |
    awk -v s="$2" -v l="$3" 'index($0, s "{") == 1 && index($0, l) { n += $2 } END { print n + 0 }'
}

RESULTS="$TMP/results.tsv"
: >"$RESULTS"

# phase LABEL NAME STREAM: one measured wrk run on gateway NAME's proxy.
phase() {
  local label=$1 name=$2 stream=$3 out="$TMP/proxy-$1-$3.txt" ticks_before mirrored_before dropped_before
  mirrored_before=$(shadow_count "$name" cutover_shadow_requests_total 'outcome="mirrored"')
  dropped_before=$(shadow_count "$name" cutover_shadow_dropped_total 'reason="full"')
  ticks_before=$(cpu_ticks "cutover-$name")
  echo "bench: $label, $( ((stream)) && echo streams || echo whole answers) ($DURATION)" >&2
  BENCH_STREAM=$stream BENCH_KEY=$GATEWAY_KEY wrk -t2 -c8 -d"$DURATION" --latency -s "$LUA" \
    "http://127.0.0.1:${PROXY_OF[$name]}/v1/chat/completions" >"$out" 2>&1 || die "wrk failed: $(cat "$out")
$(casualties)"
  local gateway_cpu
  gateway_cpu=$(awk -v t="$(($(cpu_ticks "cutover-$name") - ticks_before))" -v hz="$(getconf CLK_TCK)" -v s="$SECONDS_PER_PHASE" \
    'BEGIN { printf "%.0f%%", t / hz / s * 100 }')
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$( ((stream)) && echo stream || echo whole)" \
    "$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$out")" \
    "$(to_ms "$(awk '$1 == "50%" { print $2 }' "$out")")" \
    "$(to_ms "$(awk '$1 == "99%" { print $2 }' "$out")")" \
    "$(awk '/Non-2xx or 3xx responses:/ { n = $NF } /Socket errors:/ { gsub(",", ""); s = $4 + $6 + $8 + $10 } END { print n + s }' "$out")" \
    "$(($(shadow_count "$name" cutover_shadow_requests_total 'outcome="mirrored"') - mirrored_before))" \
    "$(($(shadow_count "$name" cutover_shadow_dropped_total 'reason="full"') - dropped_before))" \
    "$gateway_cpu" >>"$RESULTS"
}

# Warm-up: connections and pools.
for name in off fast slow; do
  BENCH_KEY=$GATEWAY_KEY wrk -t1 -c2 -d1s -s "$LUA" "http://127.0.0.1:${PROXY_OF[$name]}/v1/chat/completions" >/dev/null 2>&1 || true
done

for stream in 0 1; do
  phase off off "$stream"
  phase "100% fast candidate" fast "$stream"
  phase "100% slow candidate (5 s)" slow "$stream"
  phase "off again" off "$stream"
done

{
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average before the run: $(cut -d' ' -f1-3 /proc/loadavg), $DURATION per phase"
  echo "primary: wrk -t2 -c8, POST /v1/chat/completions (16 tokens) through a gateway at weight 0 to a mock"
  echo "mirrored/dropped: mirrors sent and mirrors dropped with every slot busy during the phase"
  echo
  echo "| phase | answers | primary req/s | p50 ms | p99 ms | errors | mirrored | dropped (full) | gateway CPU (of one core) |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
  awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9 }' "$RESULTS"
}

# --- the agreement table against a disagreeing candidate ---------------------------------
QUIRKY_URL="http://127.0.0.1:${PROXY_OF[quirky]}/v1/chat/completions"
TOOLS='"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}},{"type":"function","function":{"name":"get_time","parameters":{"type":"object","properties":{"zone":{"type":"string"}},"required":["zone"]}}}]'
ask() {
  curl -s -o /dev/null -H "authorization: Bearer $GATEWAY_KEY" -H 'content-type: application/json' \
    -H "x-user-id: user-$1" -d "$2" "$QUIRKY_URL"
}
for user in $(seq 1 40); do
  ask "$user" '{"model":"gpt-4.1","messages":[{"role":"user","content":"Weather in Paris?"}],'"$TOOLS"',"tool_choice":"required"}'
  ask "$user" '{"model":"gpt-4.1","messages":[{"role":"user","content":"Say hi."}],"stream":true}'
  ask "$user" '{"model":"gpt-4.1","messages":[{"role":"user","content":"A JSON greeting."}],"response_format":{"type":"json_object"}}'
done
sleep 1
echo
echo "cutover rollout status, candidate with --quirk wrong-tool --quirk echo-model=gpt-4o-mini --quirk inflate-prompt-tokens=2:"
echo
CUTOVER_ADMIN_TOKEN=$ADMIN_TOKEN BENCH_GATEWAY_KEY=$GATEWAY_KEY BENCH_ADMIN_TOKEN=$ADMIN_TOKEN \
  "$BIN" rollout status -c "$TMP/quirky.toml" | sed '/^$/q'
