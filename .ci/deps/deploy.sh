# Sourced by .ci/run. What the deployment tests need: Debian's podman, buildah and runc
# for tests/e2e/image.rs, which builds the container image (scripts/image) and runs it
# (podman runs rootful here with the vfs driver and runc, see scripts/image; the test
# skips, saying so, only where `podman info` fails), and systemd's systemd-analyze for
# tests/e2e/deploy.rs, which verifies the unit in deploy/systemd, and PyYAML, with which
# it reads the Kubernetes manifests in deploy/kubernetes.
pip_if_missing yaml pyyaml
deploy_missing=()
command -v podman >/dev/null 2>&1 || deploy_missing+=(podman buildah)
command -v runc >/dev/null 2>&1 || deploy_missing+=(runc)
command -v systemd-analyze >/dev/null 2>&1 || deploy_missing+=(systemd)
if ((${#deploy_missing[@]})); then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${deploy_missing[@]}" >/dev/null
fi
unset deploy_missing
