# Sourced by .ci/run. Third-party servers that tests/e2e/upstreams.rs puts behind the
# gateway: uvicorn, FastAPI and aiohttp from PyPI, Debian's nginx and openssl (the TLS
# test makes its CA with it), and Debian's golang-go, which may be missing from a mirror:
# the Go test then prints why it did not run. Node.js is on the machine. A warm machine
# that has them skips the installs.

# `pip install` only when the import fails; its output is shown only when it fails.
upstreams_pip() {
    local module=$1 requirement=$2 log
    python3 -c "import $module" 2>/dev/null && return 0
    log=$(mktemp)
    if ! python3 -m pip install --quiet --disable-pip-version-check --no-input "$requirement" >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        echo ".ci/deps/upstreams.sh: pip install $requirement failed" >&2
        return 1
    fi
    rm -f "$log"
}
upstreams_pip uvicorn 'uvicorn>=0.30'
upstreams_pip fastapi 'fastapi>=0.110'
upstreams_pip aiohttp 'aiohttp>=3.9'
unset -f upstreams_pip

# Debian packages, one `apt-get update` for all of them, only when one is missing.
upstreams_missing=()
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || upstreams_missing+=(nginx)
command -v openssl >/dev/null 2>&1 || upstreams_missing+=(openssl)
if ((${#upstreams_missing[@]})); then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${upstreams_missing[@]}" >/dev/null
fi
if ! command -v go >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends golang-go >/dev/null) ||
        echo ".ci/deps/upstreams.sh: golang-go did not install; the Go upstream test will say it did not run" >&2
fi
unset upstreams_missing
