"""The site's Jupyter environment: the software users' servers run from, on login and
compute nodes. Installed once at a fixed, world-readable place outside any clone (a clone
under /root is unreadable by users), and shared by every site instance, as /opt or a
modules tree is on a real cluster."""

from __future__ import annotations

import hashlib
import shutil

from .layout import SOFTWARE_ROOT
from .system import make_dir, python_for_sites, run, say, write_file

JUPYTER_ENV = SOFTWARE_ROOT / "jupyter"
REQUIREMENTS = (
    "jupyterhub>=6.0",  # provides jupyterhub-singleuser
    "jupyterlab>=4.2",
    "ipykernel>=6.29",
)
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
