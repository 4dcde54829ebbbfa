"""Container runtimes: how a server or a kernel runs inside a container image on a node.

One small module per runtime over a shared contract (base.py), as the schedulers are:

    charliecloud.py   Charliecloud's ch-run: unprivileged, through user namespaces (tested here)
    podman.py         podman run, rootless (the base of NERSC's podman-hpc; supported, not run here)
    apptainer.py      apptainer exec (Apptainer and SingularityCE; the wrapper's shape only)

Standard library only, and no JupyterHub: `hpchub kernel add --container` runs on the cluster.
"""

from __future__ import annotations

from .apptainer import Apptainer
from .base import ContainerError, ContainerRuntime, ContainerSpec
from .charliecloud import Charliecloud
from .podman import Podman

RUNTIMES: dict[str, type[ContainerRuntime]] = {
    runtime.name: runtime for runtime in (Charliecloud, Podman, Apptainer)
}


def runtime_named(name: str) -> ContainerRuntime:
    try:
        return RUNTIMES[name]()
    except KeyError:
        raise ContainerError(f"{name!r} is not a container runtime hpchub knows "
                             f"({', '.join(sorted(RUNTIMES))})") from None


__all__ = ["RUNTIMES", "ContainerError", "ContainerRuntime", "ContainerSpec", "runtime_named"]
