#!/usr/bin/env bash
# Installs what the hub host, the tests and the demo need from Debian and npm, if missing.
# The site's own daemons (Slurm, munge, MariaDB, sshd) are installed by `hpchub site up`.
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
    echo "install-deps: run as root (it installs Debian packages)" >&2
    exit 1
fi

packages=(python3 python3-venv python3-dev gcc chromium chromium-driver fonts-dejavu-core
          openssh-client util-linux iproute2 ca-certificates
          postgresql   # the PostgreSQL tests start a server of their own from its binaries
          podman buildah debootstrap   # the image test builds container/Dockerfile and runs its hub
          systemd)     # systemd-analyze, for the tests of the units in systemd/
command -v npm >/dev/null || packages+=(npm)

missing=()
for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "install-deps: installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if ! command -v configurable-http-proxy >/dev/null; then
    echo "install-deps: installing configurable-http-proxy (npm)"
    npm install -g --no-fund --no-audit configurable-http-proxy
fi
