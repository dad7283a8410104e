# Sourced by .ci/run. Third-party servers that tests/e2e/upstreams.rs puts behind the
# gateway: uvicorn, FastAPI and aiohttp from PyPI, Debian's nginx and openssl (the TLS
# test makes its CA with it), and Debian's golang-go, which may be missing from a mirror:
# the Go test then prints why it did not run. Node.js is on the machine. A warm machine
# that has them skips the installs.

pip_if_missing uvicorn 'uvicorn>=0.30'
pip_if_missing fastapi 'fastapi>=0.110'
pip_if_missing aiohttp 'aiohttp>=3.9'

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
