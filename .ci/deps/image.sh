# Sourced by .ci/run. Debian's podman, buildah and runc, for tests/e2e/image.rs, which
# builds the container image (scripts/image) and runs it. podman runs rootful here with
# the vfs driver and runc (see scripts/image); the test says so and skips only where
# `podman info` fails.
if ! command -v podman >/dev/null 2>&1 || ! command -v runc >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends podman buildah runc >/dev/null
fi
