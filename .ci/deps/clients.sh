# Sourced by .ci/run. Third-party client libraries that tests/e2e/clients.rs drives
# through the gateway: pydantic, langchain-openai and litellm from PyPI (the `openai`
# Python SDK is installed by .ci/run itself), and the Node project in
# tests/e2e/clients/node (the `openai` npm SDK, the Vercel AI SDK and zod, pinned by its
# package-lock.json). A warm machine that has them skips the installs.

# `pip install` only when the import fails; its output is shown only when it fails.
# (litellm would fetch its cost map from the internet at import without the variable.)
clients_pip() {
    local module=$1 requirement=$2 log
    LITELLM_LOCAL_MODEL_COST_MAP=True python3 -c "import $module" 2>/dev/null && return 0
    log=$(mktemp)
    if ! python3 -m pip install --quiet --disable-pip-version-check --no-input "$requirement" >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        echo ".ci/deps/clients.sh: pip install $requirement failed" >&2
        return 1
    fi
    rm -f "$log"
}
clients_pip pydantic 'pydantic>=2'
clients_pip langchain_openai 'langchain-openai>=0.3'
clients_pip litellm 'litellm>=1.60'
unset -f clients_pip

# `npm ci` when node_modules is missing or was installed from another lockfile (the copy
# of the lockfile kept inside node_modules says which).
(
    cd tests/e2e/clients/node
    if ! cmp -s package-lock.json node_modules/.cutover-installed-lock.json 2>/dev/null; then
        npm ci --no-audit --no-fund --loglevel=error >/dev/null
        cp package-lock.json node_modules/.cutover-installed-lock.json
    fi
)
