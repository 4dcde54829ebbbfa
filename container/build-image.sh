#!/usr/bin/env bash
# Builds the hub's image with podman (Debian's), as `docker build -f container/Dockerfile .` would:
#
#   container/build-image.sh [TAG]          (default localhost/hpchub-hub:latest)
#
# The base, debian:12-slim, comes from the registry where one is reachable. Where none is (the
# project's own machines reach no container registry), it is made here with debootstrap from
# Debian's mirror ($DEBIAN_MIRROR) and stored under the same name, so the build never pulls; this
# script says which it did. The host's trusted CA bundle is given to the build, for pip and npm
# behind a TLS-inspecting proxy; it is mounted for the build only and kept in no layer.
set -euo pipefail

tag=${1:-localhost/hpchub-hub:latest}
root=$(cd "$(dirname "$0")/.." && pwd)
base=docker.io/library/debian:12-slim
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
bundle=${HPCHUB_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

if podman image exists "$base"; then
    echo "build-image: base $base is here already"
elif timeout 60 podman pull -q "$base" >/dev/null 2>&1; then
    echo "build-image: base $base from the registry"
else
    echo "build-image: no container registry reachable: making $base with debootstrap from $mirror"
    rootfs=$(mktemp -d /var/tmp/hpchub-base.XXXXXX)
    trap 'rm -rf "$rootfs"' EXIT
    debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >/dev/null
    # As the registry's slim image: no package lists, documentation or caches.
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/usr/share/doc/* \
           "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*
    tar -C "$rootfs" --numeric-owner -c . | podman import --quiet - "$base" >/dev/null
    echo "build-image: base $base made ($(du -sh "$rootfs" | cut -f1))"
fi

mounts=()
if [ -s "$bundle" ]; then
    mounts=(--volume "$bundle:/run/hpchub-build/ca-bundle.crt:ro")
fi
# chroot isolation: no OCI runtime, which cannot set up cgroups on hosts with cgroup v1 (hybrid)
podman build --isolation=chroot --pull=never --layers=false --format docker -f "$root/container/Dockerfile" -t "$tag" \
    "${mounts[@]}" "$root"
echo "build-image: $tag built"
