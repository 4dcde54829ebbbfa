"""Users' own environments as Jupyter kernels: `hpchub kernel add ENV` (run on the cluster,
by the user, in a terminal of their server or over SSH). Standard library only.

    hpchub kernel add ~/envs/analysis                      # a venv or conda environment
    hpchub kernel add ~/envs/gpu --name gpu --display-name "PyTorch (mine)"
    hpchub kernel add /opt/env --wrapper "apptainer exec /images/tf.sif"   # run inside a container
    hpchub kernel add /opt/env --slurm "--partition batch --time 1:00:00"   # in a Slurm job (batch_kernel.py)
    hpchub kernel add pytorch --container /images/pytorch     # inside a container image (hpchub.containers)
    hpchub kernel list | remove NAME
    hpchub kernel add /opt/envs/site --site --display-name "Python (site)"   # admins: for everyone

The kernel is written to the user's Jupyter data directory (~/.local/share/jupyter/kernels),
so it appears in JupyterLab's launcher wherever the user's servers run. The environment
needs ipykernel; a wrapper's words come before the environment's python in the kernel's argv
(as a list: no shell is involved). With --container, the first argument names the kernel and
its Python is the image's own (`python3` on the image's PATH, or --python), run by the
container runtime (Charliecloud unless --runtime says otherwise); JupyterLab stays where it is.
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

from .schedulers.base import SET_BY_HPCHUB, quote

NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


class KernelError(RuntimeError):
    pass


# What of the server's environment a kernel's job gets: nothing secret (no token of the hub's).
PASSED_ON = ("PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "TZ", "TERM", "HPCHUB_CLUSTER", "HPCHUB_SCHEDULER",
             "JUPYTERHUB_USER", "JUPYTERHUB_SERVICE_PREFIX", "VIRTUAL_ENV", "CONDA_PREFIX",
             # where the scheduler's commands find their cluster
             "SLURM_CONF", "SGE_ROOT", "SGE_CELL", "SGE_QMASTER_PORT", "SGE_EXECD_PORT")
PASSED_ON_PREFIXES = ("LC_",)


def job_environment(env: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in env.items() if name in PASSED_ON or name.startswith(PASSED_ON_PREFIXES)}


def kernels_runtime_dir() -> Path:
    """Where the jobs' connection files and logs are: in the home, which the nodes share."""
    return Path.home() / ".hpchub" / "kernels"


# The node's address on the way to the host the job was submitted from (where JupyterLab runs):
# what a UDP "connect" towards it picks (nothing is sent). gethostbyname(gethostname()) can be
# 127.0.1.1 on Debian's default /etc/hosts.
ADDRESS_PROBE = """import os, socket
host = os.environ.get("SLURM_SUBMIT_HOST") or os.environ.get("SGE_O_HOST") or ""
probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
probe.connect((socket.gethostbyname(host or socket.gethostname()), 9))
print(probe.getsockname()[0])"""


def batch_job_script(cmd: list[str], cwd: str | None) -> str:
    """A batch kernel's job's commands (batch_kernel.py): the kernel listening on the node's
    address that the login node reaches. Every word through the one quoting filter."""
    python = cmd[:cmd.index("-m")] if "-m" in cmd else cmd[:1]  # (a wrapper's words, then python)
    lines = [f"cd {quote(cwd)} || exit 1" if cwd else 'cd "$HOME"',
             f"ip=$({' '.join(quote(word) for word in python)} -c {quote(ADDRESS_PROBE)}) || exit 1",
             "exec " + " ".join(quote(word) for word in cmd) + ' --ip="$ip"']
    return "\n".join(lines) + "\n"


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


def kernel_spec(env: Path, display_name: str, wrapper: list[str], batch: tuple[str, list[str]] | None = None,
                python: Path | str | None = None) -> dict:
    """A kernel spec; `batch` = (scheduler, submit arguments) for a kernel in a batch job."""
    python = python or python_of(env)
    spec = {"argv": [*wrapper, str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": display_name, "language": "python",
            "metadata": {"hpchub": {"environment": str(env), "wrapper": wrapper}}}
    if batch is not None:
        scheduler, submit_args = batch
        spec["interrupt_mode"] = "message"  # a signal cannot reach a kernel on another node
        spec["metadata"]["kernel_provisioner"] = {
            "provisioner_name": "hpchub-batch", "config": {"scheduler": scheduler, "submit_args": submit_args}}
    return spec


def batch_arguments(scheduler: str, args: str) -> list[str]:
    """The submit command's arguments of a batch kernel, without those hpchub sets itself."""
    from .schedulers import SCHEDULERS  # standard library too

    words = shlex.split(args)
    controlled = SCHEDULERS[scheduler].controlled_options
    for word in words:
        option = word.split("=", 1)[0]
        if controlled.get(option, "") == SET_BY_HPCHUB:
            raise KernelError(f"{option} is set by hpchub for a kernel's job; leave it out of the {scheduler} arguments")
    return words


def container_words(runtime: str, image: str) -> list[str]:
    """The runtime's words that run what follows them inside a container image (a kernel's
    connection file is in the server's directory or the home, both of which it binds in)."""
    from .containers import ContainerError, runtime_named

    try:
        return runtime_named(runtime).wrap(image, [])
    except ContainerError as exc:
        raise KernelError(str(exc)) from None


def add(env: str, name: str | None = None, display_name: str | None = None, wrapper: str = "",
        check: bool = True, site: bool = False, batch: tuple[str, str] | None = None,
        container: tuple[str, str, str] | None = None) -> Path:
    """container: (runtime, image, python in the image); then `env` is the kernel's name."""
    if container is not None:
        if wrapper:
            raise KernelError("--wrapper and --container are two ways of saying the same thing: give one")
        runtime, image, image_python = container
        words = container_words(runtime, image)  # before the image's python, as a wrapper's are
        env_path = Path(image)
        name = name or env
        python: Path | str = image_python
        where = f"the image {image}"
    else:
        env_path = Path(env).expanduser().resolve()
        python = python_of(env_path)
        if python is None:
            raise KernelError(f"{env_path} has no bin/python: give a venv or conda environment")
        name = name or env_path.name.lower()
        words = shlex.split(wrapper)
        where = str(env_path) + (f" (through {wrapper!r})" if words else "")
    if not NAME.fullmatch(name):
        raise KernelError(f"{name!r} is not a usable kernel name: use lower-case letters, digits, . _ -")
    if check:
        try:
            probe = subprocess.run([*words, str(python), "-c", "import ipykernel"], capture_output=True, text=True,
                                   timeout=120)
        except FileNotFoundError as exc:
            raise KernelError(f"{exc.filename} is not here: {exc.strerror}") from None
        if probe.returncode != 0:
            # The runtime's own words when the image is missing or broken, Python's otherwise.
            raise KernelError(f"ipykernel cannot be imported in {where}: install it there (pip install "
                              f"ipykernel). {probe.stderr.strip()[-300:]}")
    scheduler_and_args = None
    default_title = f"Python ({env_path.name}{', container' if container else ''})"
    if batch is not None:
        scheduler_and_args = (batch[0], batch_arguments(*batch))
        default_title += f" in a {'Slurm' if batch[0] == 'slurm' else 'Grid Engine'} job"
        if check:
            probe = subprocess.run([*words, str(python), "-c", "import jupyter_client.provisioning"],
                                   capture_output=True, text=True, timeout=120)
            if probe.returncode != 0:
                raise KernelError("a kernel in a batch job needs jupyter_client 7.1 or newer beside JupyterLab")
    target = kernels_dir(site) / name
    target.mkdir(parents=True, exist_ok=True)
    spec = kernel_spec(env_path, display_name or default_title, words, scheduler_and_args, python)
    if container is not None:
        spec["metadata"]["hpchub"] = {"container": {"runtime": container[0], "image": container[1]}}
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
            batch = (("slurm", args.slurm) if args.slurm is not None else
                     ("sge", args.sge) if args.sge is not None else None)
            container = (args.runtime, args.container, args.python) if args.container else None
            path = add(args.env, args.name, args.display_name, args.wrapper or "", site=args.site, batch=batch,
                       container=container)
            print(f"added kernel {path.name!r}: {json.loads((path / 'kernel.json').read_text())['display_name']}"
                  f" ({path}); it shows in JupyterLab's launcher after a reload")
        elif args.kernel_action == "list":
            for name, spec in listed().items():
                container = spec.get("metadata", {}).get("hpchub", {}).get("container")
                runs = (f"{container.get('runtime')} {container.get('image')}" if isinstance(container, dict)
                        else " ".join(spec.get("argv", [])[:-4]))
                print(f"{name}\t{spec.get('display_name', '')}\t{runs}")
        elif args.kernel_action == "remove":
            if not remove(args.name):
                print(f"no kernel named {args.name!r} in {kernels_dir()}", file=sys.stderr)
                return 1
    except (KernelError, OSError, subprocess.TimeoutExpired) as exc:
        print(f"hpchub kernel {args.kernel_action}: {exc}", file=sys.stderr)
        return 1
    return 0
