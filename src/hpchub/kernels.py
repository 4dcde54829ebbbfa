"""Users' own environments as Jupyter kernels: `hpchub kernel add ENV` (run on the cluster,
by the user, in a terminal of their server or over SSH). Standard library only.

    hpchub kernel add ~/envs/analysis                      # a venv or conda environment
    hpchub kernel add ~/envs/gpu --name gpu --display-name "PyTorch (mine)"
    hpchub kernel add /opt/env --wrapper "apptainer exec /images/tf.sif"   # run inside a container
    hpchub kernel list | remove NAME
    hpchub kernel add /opt/envs/site --site --display-name "Python (site)"   # admins: for everyone

The kernel is written to the user's Jupyter data directory (~/.local/share/jupyter/kernels),
so it appears in JupyterLab's launcher wherever the user's servers run. The environment
needs ipykernel; a wrapper's words come before the environment's python in the kernel's argv
(as a list: no shell is involved).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


class KernelError(RuntimeError):
    pass


def kernels_dir(site: bool = False) -> Path:
    """The user's kernels, or (site=True, for admins) those of the Jupyter environment this
    command runs from, which every user of it sees."""
    if site:
        return Path(sys.prefix) / "share" / "jupyter" / "kernels"
    base = os.environ.get("JUPYTER_DATA_DIR") or os.path.join(
        os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share"), "jupyter")
    return Path(base) / "kernels"


def python_of(env: Path) -> Path | None:
    for name in ("python", "python3"):
        if (env / "bin" / name).exists():
            return env / "bin" / name
    return None


def kernel_spec(env: Path, display_name: str, wrapper: list[str]) -> dict:
    python = python_of(env)
    return {"argv": [*wrapper, str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": display_name, "language": "python",
            "metadata": {"hpchub": {"environment": str(env), "wrapper": wrapper}}}


def add(env: str, name: str | None = None, display_name: str | None = None, wrapper: str = "",
        check: bool = True, site: bool = False) -> Path:
    env_path = Path(env).expanduser().resolve()
    python = python_of(env_path)
    if python is None:
        raise KernelError(f"{env_path} has no bin/python: give a venv or conda environment")
    name = name or env_path.name.lower()
    if not NAME.fullmatch(name):
        raise KernelError(f"{name!r} is not a usable kernel name: use lower-case letters, digits, . _ -")
    words = shlex.split(wrapper)
    if check:
        probe = subprocess.run([*words, str(python), "-c", "import ipykernel"], capture_output=True, text=True,
                               timeout=120)
        if probe.returncode != 0:
            raise KernelError(f"ipykernel cannot be imported in {env_path}"
                              + (f" (through {wrapper!r})" if words else "")
                              + f": install it there (pip install ipykernel). {probe.stderr.strip()[-300:]}")
    target = kernels_dir(site) / name
    target.mkdir(parents=True, exist_ok=True)
    spec = kernel_spec(env_path, display_name or f"Python ({env_path.name})", words)
    (target / "kernel.json").write_text(json.dumps(spec, indent=1) + "\n")
    return target


def listed() -> dict[str, dict]:
    found = {}
    for spec in sorted(kernels_dir().glob("*/kernel.json")):
        try:
            found[spec.parent.name] = json.loads(spec.read_text())
        except ValueError:
            continue
    return found


def remove(name: str) -> bool:
    target = kernels_dir() / name
    if not NAME.fullmatch(name) or not (target / "kernel.json").exists():
        return False
    shutil.rmtree(target)
    return True


def main(args) -> int:
    try:
        if args.kernel_action == "add":
            path = add(args.env, args.name, args.display_name, args.wrapper or "", site=args.site)
            print(f"added kernel {path.name!r}: {json.loads((path / 'kernel.json').read_text())['display_name']}"
                  f" ({path}); it shows in JupyterLab's launcher after a reload")
        elif args.kernel_action == "list":
            for name, spec in listed().items():
                print(f"{name}\t{spec.get('display_name', '')}\t{' '.join(spec.get('argv', [])[:-4])}")
        elif args.kernel_action == "remove":
            if not remove(args.name):
                print(f"no kernel named {args.name!r} in {kernels_dir()}", file=sys.stderr)
                return 1
    except (KernelError, OSError, subprocess.TimeoutExpired) as exc:
        print(f"hpchub kernel {args.kernel_action}: {exc}", file=sys.stderr)
        return 1
    return 0
