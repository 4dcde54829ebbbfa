"""Apptainer (and SingularityCE, whose `singularity exec` takes the same options).

Not in Debian 12, so not run by hpchub's tests: this is the wrapper's shape for sites that
have it. `apptainer exec` keeps the environment and the process id, binds the home and /tmp by
itself; the wrapper binds the server's directory when it is elsewhere and adds `--nv` for
NVIDIA GPUs when the job has them.
"""

from __future__ import annotations

from .base import ContainerRuntime

WRAPPER = r"""case "$PWD/" in "$HOME"/*) here=$PWD ;; *) here=$HOME ;; esac
image=$1; gpus=$2; shift 2
set -- "$image" "$@"
case "${HPCHUB_SERVER_DIR:-/tmp}" in /tmp|/tmp/*) ;; *) set -- "--bind=$HPCHUB_SERVER_DIR" "$@" ;; esac
if [ "$gpus" = gpus ]; then set -- --nv "$@"; fi
exec apptainer exec "--pwd=$here" "$@"
"""


class Apptainer(ContainerRuntime):
    name = "apptainer"
    program = "apptainer"
    title = "Apptainer"
    wrapper = WRAPPER
