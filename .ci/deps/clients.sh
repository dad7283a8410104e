# Sourced by .ci/run. Third-party client libraries that tests/e2e/clients.rs drives
# through the gateway: pydantic, langchain-openai, litellm and Anthropic's `anthropic`
# SDK from PyPI (the `openai` Python SDK is installed by .ci/run itself), and the Node
# project in tests/e2e/clients/node (the `openai` and `@anthropic-ai/sdk` npm SDKs, the
# Vercel AI SDK and zod, pinned by its package-lock.json). A warm machine that has them skips the installs.

pip_if_missing pydantic 'pydantic>=2'
pip_if_missing langchain_openai 'langchain-openai>=0.3'
pip_if_missing litellm 'litellm>=1.60'
pip_if_missing anthropic 'anthropic>=0.40'

# `npm ci` when node_modules is missing or was installed from another lockfile (the copy
# of the lockfile kept inside node_modules says which).
(
    cd tests/e2e/clients/node
    if ! cmp -s package-lock.json node_modules/.cutover-installed-lock.json 2>/dev/null; then
        npm ci --no-audit --no-fund --loglevel=error >/dev/null
        cp package-lock.json node_modules/.cutover-installed-lock.json
    fi
)
