"""Charliecloud (`ch-run`, Debian's charliecloud-runtime): fully unprivileged, through user
namespaces; an image is a directory (or a SquashFS file where ch-run was built with it).

What ch-run does by itself, and so hpchub does not: /tmp is the node's (so a server's
directory under /tmp is there at the same path), /dev is the node's (GPUs' device files
included; their user-space libraries must be in the image, or put there by the admin with
`ch-fromhost --nvidia`), the user's passwd and group entries are made for the container, and
the command keeps its process id and the environment it was given.

What the wrapper adds: the home (`--home` when it is /home/$USER, which also hides the other
users' homes; else bound at its own path, which must then exist in the image, as ch-run
says), the server's directory when it is not under /tmp, the image's own environment
(`--set-env`, from its /ch/environment, where ch-image and hpchub's demo image keep it), and
the working directory.
"""

from __future__ import annotations

from .base import ContainerRuntime

# Fixed text: the image and the command arrive as positional arguments ($1, then from $3 on;
# $2, "gpus" or "-", asks for nothing here: the node's /dev is the container's).
WRAPPER = r"""case "$PWD/" in "$HOME"/*) here=$PWD ;; *) here=$HOME ;; esac
image=$1; shift 2
set -- "$image" -- "$@"
case "${HPCHUB_SERVER_DIR:-/tmp}" in /tmp|/tmp/*) ;; *) set -- "--bind=$HPCHUB_SERVER_DIR" "$@" ;; esac
if [ -n "${USER:-}" ] && [ "$HOME" = "/home/$USER" ]; then set -- --home "$@"; else set -- "--bind=$HOME" "$@"; fi
if [ -f "$image/ch/environment" ]; then set -- --set-env "$@"; fi
exec ch-run "--cd=$here" "$@"
"""


class Charliecloud(ContainerRuntime):
    name = "charliecloud"
    program = "ch-run"
    title = "Charliecloud"
    tested_here = True
    wrapper = WRAPPER
