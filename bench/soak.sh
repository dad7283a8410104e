#!/usr/bin/env bash
# Memory, descriptors and tasks of the gateway over a long run: a million requests by
# default (70% whole, 30% streamed; a 50% sticky split; a candidate that fails 5% of its
# requests, each falling back to the primary; the rollout controller looking every 10 s),
# sampled every round of load from the gateway's own /metrics. Run by hand:
#
#   bench/soak.sh                        # builds the release binary; ~5 minutes of load
#   SOAK_REQUESTS=200000 bench/soak.sh   # a shorter look
#
# Environment: SOAK_REQUESTS (default 1000000), SOAK_ROUND (default 10s: one sample per
# round), SOAK_CONNECTIONS (default 32), BENCH_PORT_BASE (default 18900),
# BENCH_SKIP_BUILD=1 (use the existing target/release/cutover), BENCH_BIN=PATH (soak that
# binary instead; implies no build), BENCH_KEEP=1.
#
# Prints one row per sample (requests so far, RSS, open descriptors, live tasks), the
# idle state 10 s after the first 100,000 requests and after the load has stopped, and
# the verdict the hot-path issue asks for: RSS at the end within 10% of its value after
# the first 100,000 requests, no more descriptors or tasks idle at the end than idle
# after those 100,000. Exits 1 when a verdict fails.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOTAL=${SOAK_REQUESTS:-1000000}
ROUND=${SOAK_ROUND:-10s}
CONNECTIONS=${SOAK_CONNECTIONS:-32}
BASE=${BENCH_PORT_BASE:-18900}
MOCK_A=$((BASE + 1)) MOCK_B=$((BASE + 2)) PROXY=$((BASE + 10)) ADMIN=$((BASE + 11))
GATEWAY_KEY=soak-gateway-key
ADMIN_TOKEN=soak-admin-token

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

for tool in wrk curl; do
  command -v "$tool" >/dev/null || die "$tool is not installed: apt-get install $tool"
done
for port in $MOCK_A $MOCK_B $PROXY $ADMIN; do
  port_in_use "$port" && die "port $port is in use; set BENCH_PORT_BASE to another range"
done
release_binary

export CUTOVER_LOG=warn
start mock-primary "$BIN" mock --listen "127.0.0.1:$MOCK_A" --name primary
start mock-candidate "$BIN" mock --listen "127.0.0.1:$MOCK_B" --name candidate --fault 500:0.05
{
  gateway_config "$PROXY" "$ADMIN" soak.db
  cat <<TOML
retries = 0

[routes.rollout]
interval = "10s"
max_error_rate = 50.0
steps = [
  { weight = 50,  min_duration = "30d", min_requests = 1000000000 },
  { weight = 100, min_duration = "30d", min_requests = 1000000000 },
]
TOML
} >"$TMP/cutover.toml"
start gateway env BENCH_GATEWAY_KEY=$GATEWAY_KEY BENCH_ADMIN_TOKEN=$ADMIN_TOKEN "$BIN" serve -c "$TMP/cutover.toml"
GATEWAY=${PID_OF[gateway]}
wait_http "http://127.0.0.1:$MOCK_A/v1/models"
wait_http "http://127.0.0.1:$MOCK_B/v1/models"
wait_http "http://127.0.0.1:$ADMIN/healthz"

# gauge NAME: the value of an unlabelled series on the gateway's /metrics.
gauge() { curl -s "http://127.0.0.1:$ADMIN/metrics" | awk -v name="$1" '$1 == name { print $2; exit }'; }
mib() { awk -v bytes="$1" 'BEGIN { printf "%.1f", bytes / 1048576 }'; }

echo "soak: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $("$BIN" --version)"
echo "soak: $TOTAL requests in rounds of $ROUND at $CONNECTIONS connections"
echo
printf '| requests | RSS MiB | open fds | tasks | req/s in round | non-2xx in round |\n|---:|---:|---:|---:|---:|---:|\n'
printf '| 0 | %s | %s | %s | | |\n' "$(mib "$(gauge process_resident_memory_bytes)")" "$(gauge process_open_fds)" "$(gauge cutover_runtime_tasks)"

done_requests=0 rss_100k="" idle_fds_100k="" idle_tasks_100k="" rss=0 fds=0 tasks=0
while ((done_requests < TOTAL)); do
  BENCH_KEY=$GATEWAY_KEY wrk -t2 -c"$CONNECTIONS" -d"$ROUND" -s "$ROOT/bench/soak.lua" \
    "http://127.0.0.1:$PROXY/v1/chat/completions" >"$TMP/wrk.out" 2>&1 || die "wrk failed: $(cat "$TMP/wrk.out")"
  kill -0 "$GATEWAY" 2>/dev/null || die "the gateway died; end of its log: $(tail -20 "$TMP/gateway.log")"
  round=$(awk '/requests in/ { print $1 }' "$TMP/wrk.out")
  rate=$(awk '/^Requests\/sec/ { printf "%.0f", $2 }' "$TMP/wrk.out")
  non2xx=$(awk '/Non-2xx/ { print $NF }' "$TMP/wrk.out")
  done_requests=$((done_requests + round))
  rss=$(gauge process_resident_memory_bytes) fds=$(gauge process_open_fds) tasks=$(gauge cutover_runtime_tasks)
  printf '| %d | %s | %s | %s | %s | %s |\n' "$done_requests" "$(mib "$rss")" "$fds" "$tasks" "$rate" "${non2xx:-0}"
  if [[ -z $rss_100k ]] && ((done_requests >= 100000)); then
    # The baseline the end is held to: RSS now, and descriptors and tasks once idle, as
    # they are measured at the end (right after a round, connections are still closing).
    rss_100k=$rss
    sleep 10
    idle_fds_100k=$(gauge process_open_fds) idle_tasks_100k=$(gauge cutover_runtime_tasks)
    printf '| idle 10 s | %s | %s | %s | | |\n' "$(mib "$(gauge process_resident_memory_bytes)")" "$idle_fds_100k" "$idle_tasks_100k"
  fi
done
sleep 10
idle_rss=$(gauge process_resident_memory_bytes) idle_fds=$(gauge process_open_fds) idle_tasks=$(gauge cutover_runtime_tasks)
echo
echo "idle 10 s after the load: RSS $(mib "$idle_rss") MiB, $idle_fds open fds, $idle_tasks tasks"
[[ -n $rss_100k ]] || die "fewer than 100,000 requests: nothing to compare"

verdict=0
growth=$(awk -v end="$rss" -v early="$rss_100k" 'BEGIN { printf "%+.1f", (end - early) * 100 / early }')
if awk -v end="$rss" -v early="$rss_100k" 'BEGIN { exit !(end <= early * 1.10) }'; then
  echo "RSS: $(mib "$rss_100k") MiB after 100,000 requests, $(mib "$rss") MiB at the end ($growth%): within 10%"
else
  echo "RSS: $(mib "$rss_100k") MiB after 100,000 requests, $(mib "$rss") MiB at the end ($growth%): GREW MORE THAN 10%"
  verdict=1
fi
# Under load the descriptors and tasks follow the connections in use; idle at the end,
# they must not exceed what they were idle after the first 100,000 requests.
if ((idle_fds <= idle_fds_100k && idle_tasks <= idle_tasks_100k)); then
  echo "fds and tasks idle: $idle_fds and $idle_tasks at the end, $idle_fds_100k and $idle_tasks_100k after 100,000 requests: no growth"
else
  echo "fds and tasks idle: $idle_fds and $idle_tasks at the end, $idle_fds_100k and $idle_tasks_100k after 100,000 requests: GROWTH"
  verdict=1
fi
exit $verdict
