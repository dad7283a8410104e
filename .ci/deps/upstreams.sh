# Sourced by .ci/run. Third-party servers that tests/e2e/upstreams.rs puts behind the
# gateway: uvicorn, FastAPI and aiohttp from PyPI, Debian's nginx and openssl (the TLS
# tests make their CA with it), and Debian's golang-go, which may be missing from a
# mirror: the Go test then prints why it did not run. Node.js is on the machine. A warm
# machine that has them skips the installs.

pip_if_missing uvicorn 'uvicorn>=0.30'
pip_if_missing fastapi 'fastapi>=0.110'
pip_if_missing aiohttp 'aiohttp>=3.9'
# The HTTP/2 flood of tests/e2e/edges.rs is written with the `h2` package.
pip_if_missing h2 'h2>=4'

# `upstreams_apt PACKAGE…`: installs Debian packages, apt's output shown only when it
# fails (and then the status is apt's).
upstreams_apt() {
    local log status=0
    log=$(mktemp)
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "$@"; } >"$log" 2>&1 || status=$?
    ((status == 0)) || cat "$log" >&2
    rm -f "$log"
    return "$status"
}

# The test looks for nginx on PATH and at Debian's /usr/sbin/nginx (not on every PATH).
upstreams_missing=()
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || upstreams_missing+=(nginx)
command -v openssl >/dev/null 2>&1 || upstreams_missing+=(openssl)
if ((${#upstreams_missing[@]})); then
    upstreams_apt "${upstreams_missing[@]}" ||
        { echo ".ci/deps/upstreams.sh: apt-get install ${upstreams_missing[*]} failed" >&2; return 1; }
fi
if ! command -v go >/dev/null 2>&1; then
    upstreams_apt golang-go ||
        echo ".ci/deps/upstreams.sh: golang-go did not install; the Go upstream test will say it did not run" >&2
fi
unset upstreams_missing
unset -f upstreams_apt
