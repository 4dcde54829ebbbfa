"""The site's Jupyter environment: the software users' servers run from, on login and
compute nodes. Installed once at a fixed, world-readable place outside any clone (a clone
under /root is unreadable by users), and shared by every site instance, as /opt or a
modules tree is on a real cluster."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import hpchub

from .layout import SOFTWARE_ROOT
from .system import make_dir, python_for_sites, run, say, write_file

JUPYTER_ENV = SOFTWARE_ROOT / "jupyter"


def node_requirements() -> tuple[str, ...]:
    """hpchub's `node` extra (pyproject.toml): what the site's Jupyter environment holds."""
    from importlib.metadata import requires
    from packaging.requirements import Requirement

    found = []
    for line in requires("hpchub") or ():
        requirement = Requirement(line)
        if requirement.marker is not None and requirement.marker.evaluate({"extra": "node"}) \
                and not requirement.marker.evaluate({"extra": ""}):
            requirement.marker = None
            found.append(str(requirement))
    if not found:
        raise RuntimeError("hpchub's metadata has no `node` extra: reinstall hpchub (make install)")
    return tuple(found)


REQUIREMENTS = node_requirements()
IPYTHON_CONFIG = JUPYTER_ENV / "etc" / "ipython" / "ipython_config.py"
_SOURCE_STAMP = JUPYTER_ENV / ".hpchub-source"
_STAMP = JUPYTER_ENV / ".hpchub-requirements"


def _wanted_stamp() -> str:
    return hashlib.sha256("\n".join(REQUIREMENTS).encode()).hexdigest()


def is_current() -> bool:
    return _STAMP.exists() and _STAMP.read_text().strip() == _wanted_stamp()


def ensure_jupyter_env() -> None:
    if is_current():
        return
    say(f"  software: installing the site's Jupyter environment in {JUPYTER_ENV} (about a minute)")
    make_dir(SOFTWARE_ROOT, 0o755)
    if JUPYTER_ENV.exists():
        shutil.rmtree(JUPYTER_ENV)
    run([python_for_sites(), "-m", "venv", str(JUPYTER_ENV)], timeout=300)
    run([str(JUPYTER_ENV / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
         *REQUIREMENTS], timeout=1200)
    run(["chmod", "-R", "a+rX", str(JUPYTER_ENV)])
    # Written last: an interrupted install is redone on the next `up`.
    write_file(_STAMP, _wanted_stamp() + "\n")


def source_tree() -> Path | None:
    """The hpchub source this command runs from, if it is a checkout (src layout)."""
    root = Path(hpchub.__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").exists() and (root / "src" / "hpchub").is_dir() else None


def source_hash(root: Path) -> str:
    digest = hashlib.sha256()
    files = [root / "pyproject.toml", *(root / "src").rglob("*"), *(root / "jupyter-config").rglob("*")]
    for path in sorted(files):
        if "__pycache__" not in path.parts and path.is_file():
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def ensure_hpchub_in_jupyter_env() -> None:
    """hpchub's notebook side (the Slurm magics) in the users' environment, preloaded in
    every IPython kernel by the environment's ipython_config.py (edit it to change that)."""
    root = source_tree()
    if root is None:
        say("  software: not a checkout of hpchub: install hpchub into the site's Jupyter environment yourself")
    else:
        wanted = source_hash(root)
        if not (_SOURCE_STAMP.exists() and _SOURCE_STAMP.read_text().strip() == wanted):
            say(f"  software: installing hpchub (magics) into {JUPYTER_ENV}")
            run([str(JUPYTER_ENV / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
                 "--no-deps", "--force-reinstall", str(root)], timeout=600)
            run(["chmod", "-R", "a+rX", str(JUPYTER_ENV)])
            write_file(_SOURCE_STAMP, wanted + "\n")
    # The site kernel: this environment, with dask, ipyparallel, Spark and yt, named as such. It
    # takes ipykernel's own name (python3), so that the launcher shows one Python kernel, not
    # two that run the same environment, and a notebook without a kernel opens on it.
    run([str(JUPYTER_ENV / "bin" / "hpchub"), "kernel", "add", str(JUPYTER_ENV), "--site", "--name", "python3",
         "--display-name", "Python 3 (site: dask, ipyparallel, Spark, yt)"], timeout=120)
    shutil.rmtree(JUPYTER_ENV / "share" / "jupyter" / "kernels" / "hpchub-site", ignore_errors=True)  # (hpchub 0.2's)
    write_file(IPYTHON_CONFIG, (
        "# Written by hpchub: Slurm magics (%sbatch, %squeue, ...) in every kernel of the site.\n"
        "c.InteractiveShellApp.extensions = ['hpchub.magics']\n"
        "# In a server of the hub, every dask cluster's dashboard link goes through the user's\n"
        "# server (jupyter-server-proxy), which the browser reaches (a node's address it does not):\n"
        "# dask-jobqueue's own SLURMCluster() too. (dask reads DASK_* variables when imported.)\n"
        "import os\n"
        "if os.environ.get('JUPYTERHUB_SERVICE_PREFIX'):\n"
        "    os.environ.setdefault('DASK_DISTRIBUTED__DASHBOARD__LINK',\n"
        "                          '{JUPYTERHUB_SERVICE_PREFIX}proxy/{port}/status')\n"
    ))
