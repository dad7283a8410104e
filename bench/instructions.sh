#!/usr/bin/env bash
# Instructions the gateway executes per request, counted by callgrind: unlike req/s or
# latency, the count does not depend on what else the machine is doing, so two builds can
# be compared on a busy machine. Run by hand:
#
#   bench/instructions.sh [BINARY...]      # default: target/release/cutover
#
# For each binary: a mock (not instrumented) and the gateway under callgrind, with
# instrumentation switched on only around N sequential requests per case on one
# keep-alive connection, after a warm-up; then the same for the floor (bench/floor, a bare
# hyper proxy), when it is built. The cases (bench/cases.sh): whole and streamed answers
# to the bench's one-line request, to 16 and 64 KiB requests, and a stream of 200 events.
# Prints instructions per request, each case a row, and each binary's ÷ the floor's.
# Environment:
#   BENCH_CASES="whole stream"  the cases to measure (the standard ones: whole whole-16k
#                           whole-64k stream stream-16k stream-200ev)
#   BENCH_REQUESTS=300      measured requests per case
#   BENCH_PORT_BASE=18800   ports BASE+1 (mock), +10, +11 (gateway), +30 (floor)
#   BENCH_FLOOR_BIN=PATH    the floor's binary (default target/bench-floor/release/cutover-floor,
#                           as bench/run.sh builds it; measured when it exists; set it empty
#                           to leave the floor out)
#   BENCH_PROFILE_DIR=DIR   keep each callgrind dump there, named BINARY-CASE.callgrind
#                           (floor-CASE.callgrind), for `callgrind_annotate --inclusive=yes
#                           FILE`: where the instructions go
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REQUESTS=${BENCH_REQUESTS:-300}
BASE=${BENCH_PORT_BASE:-18800}
MOCK=$((BASE + 1)) PROXY=$((BASE + 10)) ADMIN=$((BASE + 11)) FLOOR_PORT=$((BASE + 30))
PROFILE_DIR=${BENCH_PROFILE_DIR:-}
FLOOR_BIN=${BENCH_FLOOR_BIN-$ROOT/target/bench-floor/release/cutover-floor}
BINARIES=("$@")
[[ ${#BINARIES[@]} -gt 0 ]] || BINARIES=("$ROOT/target/release/cutover")

die() { echo "instructions: $*" >&2; exit 1; }
command -v valgrind >/dev/null || die "valgrind is not installed: apt-get install valgrind"
command -v curl >/dev/null || die "curl is not installed"
[[ -z ${BENCH_CONTENT_KB:-} ]] ||
  die "BENCH_CONTENT_KB is replaced by the cases: BENCH_CASES=\"whole-${BENCH_CONTENT_KB}k stream-${BENCH_CONTENT_KB}k\""
for i in "${!BINARIES[@]}"; do
  [[ -x ${BINARIES[$i]} ]] || die "${BINARIES[$i]} is not an executable"
  # The gateway runs in the temp dir: the path must not be relative.
  BINARIES[i]="$(cd "$(dirname "${BINARIES[$i]}")" && pwd)/$(basename "${BINARIES[$i]}")"
done
if [[ -n $FLOOR_BIN && ! -x $FLOOR_BIN ]]; then
  [[ -z ${BENCH_FLOOR_BIN:-} ]] || die "BENCH_FLOOR_BIN=$FLOOR_BIN is not an executable"
  FLOOR_BIN=""
fi

# shellcheck source=bench/cases.sh
source "$ROOT/bench/cases.sh"
# shellcheck disable=SC2119 # the arguments name binaries: the cases come from BENCH_CASES
select_cases

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

mkdir -p "$TMP/cases"
write_case_bodies "$TMP/cases"

# send N CASE: N requests of CASE to $TARGET, one after the other on one keep-alive
# connection (as SDK clients send them), from one user.
send() {
  local i
  : >"$TMP/requests.curl"
  for i in $(seq 1 "$1"); do
    printf 'url = "%s"\noutput = "/dev/null"\n' "$TARGET" >>"$TMP/requests.curl"
  done
  curl -sf -K "$TMP/requests.curl" -H 'content-type: application/json' -H 'x-user-id: bench-user' \
    -H 'authorization: Bearer bench-gateway-key' --data-binary "@$TMP/cases/$2.json" || die "a request of $2 failed"
}

# answer_of CASE: what the client receives for CASE from $TARGET: "whole", or the number
# of events of the stream.
answer_of() {
  case_parse "$1"
  if [[ $CASE_STREAM == 0 ]]; then echo whole; return; fi
  echo "$(curl -sfN -H 'content-type: application/json' -H 'x-user-id: bench-user' \
    -H 'authorization: Bearer bench-gateway-key' --data-binary "@$TMP/cases/$1.json" "$TARGET" | grep -c '^data:') events"
}

# total_ir FILE: the instruction count of a callgrind dump.
total_ir() { awk '/^totals:/ { print $2; exit }' "$1"; }

# dump_file PID: waits for the numbered dump callgrind writes on request, and names it.
dump_file() {
  local file
  for _ in $(seq 1 600); do
    file=$(find "$TMP" -maxdepth 1 -name "callgrind.$1.*" | head -1)
    [[ -n $file && -s $file ]] && grep -q '^totals:' "$file" && { echo "$file"; return 0; }
    sleep 0.1
  done
  die "callgrind wrote no dump for pid $1"
}

# start_mock: the upstream, not instrumented, answering every case's length.
start_mock() {
  "$1" mock --listen "127.0.0.1:$MOCK" --name primary --latency 0 --tokens "$MOCK_TOKENS" 2>/dev/null &
  PIDS+=($!)
}

# measure LABEL PROFILE_NAME PID: each case's instructions per request of the server under
# callgrind as PID, reached at $TARGET, into IR[LABEL/CASE].
declare -A IR ANSWER
measure() {
  local label=$1 profile=$2 pid=$3 name dump
  for name in "${CASES[@]}"; do
    echo "instructions: $label, $name" >&2
    send 20 "$name"
    [[ -n ${ANSWER[$name]:-} ]] || ANSWER[$name]=$(answer_of "$name")
    callgrind_control -z "$pid" >/dev/null 2>&1
    callgrind_control -i on "$pid" >/dev/null 2>&1
    send "$REQUESTS" "$name"
    callgrind_control -i off "$pid" >/dev/null 2>&1
    callgrind_control -d "$pid" >/dev/null 2>&1
    dump=$(dump_file "$pid")
    IR[$label/$name]=$(awk -v ir="$(total_ir "$dump")" -v n="$REQUESTS" 'BEGIN { printf "%.0f", ir / n }')
    if [[ -n $PROFILE_DIR ]]; then
      mkdir -p "$PROFILE_DIR"
      mv "$dump" "$PROFILE_DIR/$profile-$name.callgrind"
    else
      rm -f "$dump"
    fi
  done
}

# stop_all: stops the servers of one measurement.
stop_all() {
  kill "${PIDS[@]}" 2>/dev/null || true
  wait "${PIDS[@]}" 2>/dev/null || true
  PIDS=()
}

LABELS=()
for bin in "${BINARIES[@]}"; do
  start_mock "$bin"
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
  PIDS+=("$gateway")
  wait_http "http://127.0.0.1:$MOCK/v1/models"
  wait_http "http://127.0.0.1:$ADMIN/healthz"
  label="$(basename "$(dirname "$(dirname "$(dirname "$bin")")")")/$(basename "$bin")"
  [[ " ${LABELS[*]} " != *" $label "* ]] || label="$label#$((${#LABELS[@]} + 1))"
  LABELS+=("$label")
  TARGET="http://127.0.0.1:$PROXY/v1/chat/completions"
  measure "$label" "$(basename "$bin")" "$gateway"
  stop_all
done

if [[ -n $FLOOR_BIN ]]; then
  start_mock "${BINARIES[0]}"
  rm -f "$TMP"/callgrind.*
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$TMP/callgrind.%p" \
    "$FLOOR_BIN" "127.0.0.1:$FLOOR_PORT" "127.0.0.1:$MOCK" 2>"$TMP/valgrind-floor.log" &
  floor=$!
  PIDS+=("$floor")
  wait_http "http://127.0.0.1:$MOCK/v1/models"
  TARGET="http://127.0.0.1:$FLOOR_PORT/v1/chat/completions"
  wait_http "${TARGET%/chat/completions}/models"
  measure floor floor "$floor"
  stop_all
fi

echo
echo "Instructions per request ($REQUESTS sequential requests a case, one keep-alive connection):"
echo
header="| case | request bytes | answer |" rule="|---|---:|---|"
[[ -n $FLOOR_BIN ]] && header="$header floor |" rule="$rule---:|"
for label in "${LABELS[@]}"; do
  header="$header $label |" rule="$rule---:|"
  [[ -n $FLOOR_BIN ]] && header="$header ÷ floor |" rule="$rule---:|"
done
printf '%s\n%s\n' "$header" "$rule"
for name in "${CASES[@]}"; do
  row="| $name | $(wc -c <"$TMP/cases/$name.json") | ${ANSWER[$name]} |"
  [[ -n $FLOOR_BIN ]] && row="$row ${IR[floor/$name]} |"
  for label in "${LABELS[@]}"; do
    row="$row ${IR[$label/$name]} |"
    [[ -n $FLOOR_BIN ]] && row="$row $(awk -v a="${IR[$label/$name]}" -v f="${IR[floor/$name]}" 'BEGIN { printf "%.2f", a / f }') |"
  done
  echo "$row"
done
