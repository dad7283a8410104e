#!/usr/bin/env bash
# Instructions the gateway executes per request, counted by callgrind: unlike req/s or
# latency, the count does not depend on what else the machine is doing, so two builds can
# be compared on a busy machine. Run by hand:
#
#   bench/instructions.sh [BINARY...]      # default: target/release/cutover
#
# For each binary: two mocks (not instrumented) and the gateway under callgrind, with
# instrumentation switched on only around N sequential requests per kind (whole and
# streamed chat completions, the bench's request) on one keep-alive connection, after a
# warm-up. Prints instructions
# per request. Environment: BENCH_REQUESTS (default 300), BENCH_PORT_BASE (default 18800),
# BENCH_CONTENT_KB (the user message padded to about that many KiB of prose with escaped
# newlines and quotes, as a conversation's history makes a request; default: one line),
# BENCH_PROFILE_DIR (keep each callgrind dump there, named BINARY-KIND.callgrind, for
# `callgrind_annotate --inclusive=yes FILE`: where the instructions go).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REQUESTS=${BENCH_REQUESTS:-300}
BASE=${BENCH_PORT_BASE:-18800}
MOCK=$((BASE + 1)) PROXY=$((BASE + 10)) ADMIN=$((BASE + 11))
PROFILE_DIR=${BENCH_PROFILE_DIR:-}
BINARIES=("$@")
[[ ${#BINARIES[@]} -gt 0 ]] || BINARIES=("$ROOT/target/release/cutover")

die() { echo "instructions: $*" >&2; exit 1; }
command -v valgrind >/dev/null || die "valgrind is not installed: apt-get install valgrind"
command -v curl >/dev/null || die "curl is not installed"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/cutover-instr.XXXXXX")
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT

wait_http() {
  local i
  for i in $(seq 1 600); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done
  die "nothing answers at $1"
}

CONTENT='Say hello.'
if [[ -n ${BENCH_CONTENT_KB:-} ]]; then
  # 128 bytes a line as JSON: a newline and a quoted word escaped in each.
  line='TCP is connection-oriented and \"reliable\"; UDP sends all of its datagrams without any handshake, ordering or retransmission.\n'
  CONTENT=$(for _ in $(seq 1 $((BENCH_CONTENT_KB * 8))); do printf '%s' "$line"; done)
fi
BODY_WHOLE='{"model":"gpt-4.1","max_tokens":16,"messages":[{"role":"user","content":"'"$CONTENT"'"}]}'
BODY_STREAM='{"model":"gpt-4.1","max_tokens":16,"stream":true,"messages":[{"role":"user","content":"'"$CONTENT"'"}]}'

# send N BODY: N requests through the gateway, one after the other on one keep-alive
# connection (as SDK clients send them), from one user.
send() {
  local i
  : >"$TMP/requests.curl"
  for i in $(seq 1 "$1"); do
    printf 'url = "http://127.0.0.1:%s/v1/chat/completions"\noutput = "/dev/null"\n' "$PROXY" >>"$TMP/requests.curl"
  done
  curl -sf -K "$TMP/requests.curl" -H 'content-type: application/json' -H 'x-user-id: bench-user' \
    -H 'authorization: Bearer bench-gateway-key' -d "$2" || die "a request failed"
}

# total_ir FILE: the instruction count of a callgrind dump.
total_ir() { awk '/^totals:/ { print $2; exit }' "$1"; }

# dump_file PID: waits for the numbered dump callgrind writes on request, and names it.
dump_file() {
  local i file
  for i in $(seq 1 600); do
    file=$(ls "$TMP/callgrind.$1".* 2>/dev/null | head -1)
    [[ -n $file && -s $file ]] && grep -q '^totals:' "$file" && { echo "$file"; return 0; }
    sleep 0.1
  done
  die "callgrind wrote no dump for pid $1"
}

printf '| binary | whole: instructions/request | stream: instructions/request |\n|---|---:|---:|\n'
for bin in "${BINARIES[@]}"; do
  [[ -x $bin ]] || die "$bin is not an executable"
  "$bin" mock --listen "127.0.0.1:$MOCK" --name primary --latency 0 2>/dev/null &
  PIDS+=($!)
  cat >"$TMP/cutover.toml" <<EOF
[server]
listen = "127.0.0.1:$PROXY"
admin_listen = "127.0.0.1:$ADMIN"
[auth]
keys = [{ name = "bench", key_env = "BENCH_GATEWAY_KEY" }]
[state]
path = "instr.db"
[upstreams.primary]
base_url = "http://127.0.0.1:$MOCK/v1"
[upstreams.candidate]
base_url = "http://127.0.0.1:$MOCK/v1"
[[routes]]
name = "default"
primary = "primary"
candidate = "candidate"
sticky = "header:x-user-id"
EOF
  rm -f "$TMP"/instr.db* "$TMP"/callgrind.*
  (cd "$TMP" && CUTOVER_LOG=warn BENCH_GATEWAY_KEY=bench-gateway-key CUTOVER_WORKERS=1 \
    exec valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$TMP/callgrind.%p" \
    "$bin" serve -c "$TMP/cutover.toml" 2>"$TMP/valgrind.log") &
  gateway=$!
  PIDS+=($gateway)
  wait_http "http://127.0.0.1:$MOCK/v1/models"
  wait_http "http://127.0.0.1:$ADMIN/healthz"
  row="| $(basename "$(dirname "$(dirname "$(dirname "$bin")")")")/$(basename "$bin") |"
  for kind in whole stream; do
    if [[ $kind == whole ]]; then body=$BODY_WHOLE; else body=$BODY_STREAM; fi
    send 20 "$body"
    callgrind_control -z "$gateway" >/dev/null 2>&1
    callgrind_control -i on "$gateway" >/dev/null 2>&1
    send "$REQUESTS" "$body"
    callgrind_control -i off "$gateway" >/dev/null 2>&1
    callgrind_control -d "$gateway" >/dev/null 2>&1
    dump=$(dump_file "$gateway")
    ir=$(total_ir "$dump")
    row="$row $(awk -v ir="$ir" -v n="$REQUESTS" 'BEGIN { printf "%.0f", ir / n }') |"
    if [[ -n $PROFILE_DIR ]]; then
      mkdir -p "$PROFILE_DIR"
      mv "$dump" "$PROFILE_DIR/$(basename "$bin")-$kind.callgrind"
    else
      rm -f "$dump"
    fi
  done
  echo "$row"
  kill "${PIDS[@]}" 2>/dev/null || true
  wait "${PIDS[@]}" 2>/dev/null || true
  PIDS=()
done
