"""podman (Debian's; the base of NERSC's podman-hpc), rootless.

Supported, not run by hpchub's tests: on the machines hpchub is tested on, `podman run` cannot
set a container's resource limits (cgroups); the hub image's own test uses `buildah run` with
chroot isolation for that reason. What the wrapper asks of podman: the user's own id inside (`--userns=keep-id`),
the node's network, PID, IPC and UTS namespaces (the hub reaches the server's port as a bare one's,
and stopping or culling the server finds its processes by their environment), the
environment passed through (`--env-host`), the home and the server's directory bound at
their own paths, and GPUs through CDI (`--device nvidia.com/gpu=all`, from the NVIDIA
container toolkit) when the job has them. podman-hpc's own command takes the same options.
"""

from __future__ import annotations

from .base import ContainerRuntime

WRAPPER = r"""case "$PWD/" in "$HOME"/*) here=$PWD ;; *) here=$HOME ;; esac
image=$1; gpus=$2; shift 2
set -- "$image" "$@"
if [ -n "${HPCHUB_SERVER_DIR:-}" ]; then set -- "--volume=$HPCHUB_SERVER_DIR:$HPCHUB_SERVER_DIR" "$@"; fi
if [ "$gpus" = gpus ]; then set -- --device=nvidia.com/gpu=all "$@"; fi
exec podman run --rm --interactive --userns=keep-id --network=host --pid=host --ipc=host --uts=host --env-host \
    "--volume=$HOME:$HOME" "--workdir=$here" "$@"
"""


class Podman(ContainerRuntime):
    name = "podman"
    program = "podman"
    title = "podman"
    wrapper = WRAPPER
