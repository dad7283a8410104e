# shellcheck shell=bash
# Shared by the bench scripts (source it after setting ROOT): every server started with
# `start` is stopped on exit, `wait_http` waits for readiness, `to_ms` reads wrk's units,
# and `gateway_config` writes the gateway's config. Sets TMP, a temp dir removed on exit
# (kept with BENCH_KEEP=1).

die() { echo "bench: $*" >&2; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/cutover-bench.XXXXXX")
PIDS=() NAMES=()
declare -A PID_OF
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ ${BENCH_KEEP:-0} == 1 ]]; then echo "bench: kept $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start NAME COMMAND...: runs COMMAND in the background, stderr to $TMP/NAME.log.
start() {
  local name=$1
  shift
  "$@" 2>"$TMP/$name.log" &
  PIDS+=($!) NAMES+=("$name")
  PID_OF[$name]=$!
}

# Names the servers that are no longer running, with the end of their logs.
casualties() {
  local i
  for i in "${!PIDS[@]}"; do
    kill -0 "${PIDS[$i]}" 2>/dev/null && continue
    echo "${NAMES[$i]} (pid ${PIDS[$i]}) is not running; end of $TMP/${NAMES[$i]}.log:"
    tail -5 "$TMP/${NAMES[$i]}.log"
  done
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Waits until `url` answers at all (any HTTP status), or fails after 10 s.
wait_http() {
  local url=$1 i
  for i in $(seq 1 200); do
    curl -s -o /dev/null "$url" && return 0
    sleep 0.05
  done
  die "nothing answers at $url
$(casualties)"
}

# cpu_ticks NAME: CPU time (user + system, clock ticks) used so far by process NAME and its
# direct children (nginx: the master and its workers).
cpu_ticks() {
  local pid=${PID_OF[$1]:-} total=0 child
  [[ -n $pid ]] || { echo 0; return; }
  for child in $pid $(pgrep -P "$pid" 2>/dev/null); do
    # utime and stime, fields 14 and 15 of /proc/PID/stat: 12th and 13th after "(comm) ".
    total=$((total + $(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$child/stat" 2>/dev/null || echo 0)))
  done
  echo "$total"
}

# Milliseconds from a wrk duration such as 512.00us, 1.20ms, 2.01s or 1.00m.
to_ms() {
  awk -v v="$1" 'BEGIN { n = v + 0
    if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n = n; else if (v ~ /m$/) n *= 60000; else if (v ~ /s$/) n *= 1000
    printf "%.3f", n }'
}

# proxy_phase NAME CONNECTIONS: one measured wrk run of whole answers through the gateway
# on $PROXY (wrk -t2, $DURATION, $LUA with $GATEWAY_KEY; raw output kept in
# $TMP/proxy-NAME.txt). Prints one tab-separated line: req/s, p50 ms, p99 ms, errors
# (non-2xx and socket errors) and the gateway's CPU as a share of one core over
# $SECONDS_PER_PHASE.
proxy_phase() {
  local name=$1 connections=$2 out="$TMP/proxy-$1.txt" ticks_before gateway_cpu
  ticks_before=$(cpu_ticks cutover)
  echo "bench: $name ($DURATION)" >&2
  BENCH_STREAM=0 BENCH_KEY=$GATEWAY_KEY wrk -t2 -c"$connections" -d"$DURATION" --latency -s "$LUA" \
    "http://127.0.0.1:$PROXY/v1/chat/completions" >"$out" 2>&1 || die "wrk failed: $(cat "$out")
$(casualties)"
  gateway_cpu=$(awk -v t="$(($(cpu_ticks cutover) - ticks_before))" -v hz="$(getconf CLK_TCK)" -v s="$SECONDS_PER_PHASE" \
    'BEGIN { printf "%.0f%%", t / hz / s * 100 }')
  printf '%s\t%s\t%s\t%s\t%s\n' \
    "$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$out")" \
    "$(to_ms "$(awk '$1 == "50%" { print $2 }' "$out")")" \
    "$(to_ms "$(awk '$1 == "99%" { print $2 }' "$out")")" \
    "$(awk '/Non-2xx or 3xx responses:/ { n = $NF } /Socket errors:/ { gsub(",", ""); s = $4 + $6 + $8 + $10 } END { print n + s }' "$out")" \
    "$gateway_cpu"
}

# gateway_config PROXY_PORT ADMIN_PORT STATE_FILE: the gateway's config on those ports,
# between the mocks on $MOCK_A and $MOCK_B, a gateway key from $BENCH_GATEWAY_KEY and the
# admin token from $BENCH_ADMIN_TOKEN. Ends with the route, so a plan may follow.
gateway_config() {
  cat <<EOF
[server]
listen = "127.0.0.1:$1"
admin_listen = "127.0.0.1:$2"

[auth]
keys = [{ name = "bench", key_env = "BENCH_GATEWAY_KEY" }]

[admin]
token_env = "BENCH_ADMIN_TOKEN"

[state]
path = "$3"

[upstreams.primary]
base_url = "http://127.0.0.1:$MOCK_A/v1"

[upstreams.candidate]
base_url = "http://127.0.0.1:$MOCK_B/v1"

[[routes]]
name = "default"
primary = "primary"
candidate = "candidate"
sticky = "header:x-user-id"
EOF
}

# held_plan: a rollout plan to append to gateway_config's output, whose first step never
# completes and which the controller looks at every second: the controller runs, and the
# weight stays put, for as long as a bench lasts.
held_plan() {
  cat <<EOF

[routes.rollout]
interval = "1s"
max_error_rate = 5.0
steps = [
  { weight = 10, min_duration = "1h", min_requests = 100000000 },
  { weight = 100, min_duration = "1h", min_requests = 100000000 },
]
EOF
}

# start_nginx PORT UPSTREAM_PORT: nginx as the reference proxy, when it is installed
# (sets NGINX to its path, else to ""): `proxy_pass` to 127.0.0.1:UPSTREAM_PORT with
# keepalive, `proxy_buffering off` so that streams pass as they come, and request bodies
# up to 1 MiB (nginx's own limit) read into memory: with the default buffer (16 KiB) a
# larger body goes to a temp file first, work a proxy reading it whole need not do.
start_nginx() {
  NGINX=""
  command -v nginx >/dev/null || return 0
  NGINX=$(command -v nginx)
  mkdir -p "$TMP/nginx"
  # As root, nginx workers would switch to `nobody`; keep them as the current user.
  local user_line=""
  [[ $(id -u) == 0 ]] && user_line="user $(id -un) $(id -gn);"
  cat >"$TMP/nginx/nginx.conf" <<EOF
$user_line
daemon off;
worker_processes auto;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_buffer_size 1m;
  client_body_temp_path $TMP/nginx/client_body;
  proxy_temp_path $TMP/nginx/proxy;
  fastcgi_temp_path $TMP/nginx/fastcgi;
  uwsgi_temp_path $TMP/nginx/uwsgi;
  scgi_temp_path $TMP/nginx/scgi;
  upstream mock { server 127.0.0.1:$2; keepalive 64; }
  server {
    listen 127.0.0.1:$1;
    location / {
      proxy_pass http://mock;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
EOF
  start nginx "$NGINX" -e "$TMP/nginx/error.log" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf"
}

# release_binary: sets BIN to the binary under test: BENCH_BIN when given, else
# target/release/cutover, built first unless BENCH_SKIP_BUILD=1.
release_binary() {
  if [[ ${BENCH_SKIP_BUILD:-0} != 1 && -z ${BENCH_BIN:-} ]]; then
    echo "bench: building the release binary" >&2
    (cd "$ROOT" && cargo build --release --quiet) || die "the release build failed"
  fi
  BIN=${BENCH_BIN:-$ROOT/target/release/cutover}
  [[ -x $BIN ]] || die "$BIN is missing; build with cargo build --release"
}
