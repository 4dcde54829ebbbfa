"""The machine under the site: commands, Debian packages, Unix users, files."""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

from .layout import DEMO_USERS, HUB_OS_USER, SERVICE_ACCOUNT, STATE_ROOT

# Debian packages the site needs, by the command that shows each is present.
PACKAGES = {
    "munge": "/usr/sbin/munged",
    "slurmctld": "/usr/sbin/slurmctld",
    "slurmd": "/usr/sbin/slurmd",
    "slurmdbd": "/usr/sbin/slurmdbd",
    "slurm-client": "/usr/bin/sbatch",
    "mariadb-server": "/usr/sbin/mariadbd",
    "openssh-server": "/usr/sbin/sshd",
    "openssh-client": "/usr/bin/ssh-keygen",
    "iproute2": "/usr/sbin/ip",
    "nftables": "/usr/sbin/nft",
    "util-linux": "/usr/bin/nsenter",
    "python3-venv": "/usr/lib/python3.11/ensurepip/__init__.py",
    "procps": "/usr/bin/pgrep",
    "openjdk-17-jre-headless": "/usr/bin/java",  # Spark's workers and master (hpchub.cluster)
    "openssl": "/usr/bin/openssl",
    "myproxy-server": "/usr/sbin/myproxy-server",  # the grid credential service (site/grid.py)
    "globus-proxy-utils": "/usr/bin/grid-proxy-info",  # grid tools for users' notebooks
    "libpam-google-authenticator": "/usr/bin/google-authenticator",  # one-time codes at login (site/otp.py)
    # The second cluster (site/gridengine.py).
    "gridengine-master": "/usr/lib/gridengine/sge_qmaster",
    "gridengine-exec": "/usr/lib/gridengine/sge_execd",
    "gridengine-client": "/usr/lib/gridengine/qsub",
    # Containers (site/images.py): the runtime on every node, and the demo image's builder.
    "charliecloud-runtime": "/usr/bin/ch-run",
    "debootstrap": "/usr/sbin/debootstrap",
}

# Debian's gridengine packages would make and start a cell of their own at install time; the
# site makes its cells itself (site/gridengine.py), so they are told not to.
_DEBCONF = "gridengine-common shared/gridengineconfig boolean false\n"
_NO_SERVICE_STARTS = Path("/usr/sbin/policy-rc.d")


class SiteError(RuntimeError):
    """A step of bringing the site up or down failed; the message says which and why."""


class CommandError(SiteError):
    def __init__(self, argv: Sequence[str], returncode: int | None, stdout: str, stderr: str):
        self.argv = list(argv)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        status = "timed out" if returncode is None else f"exited {returncode}"
        detail = (stderr or stdout).strip()
        super().__init__(f"command {' '.join(self.argv)!s} {status}" + (f": {detail}" if detail else ""))


def run(
    argv: Sequence[str],
    *,
    input: str | None = None,
    check: bool = True,
    timeout: float = 120,
    env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
) -> subprocess.CompletedProcess:
    """Run argv (never through a shell); on failure raise CommandError with its output."""
    try:
        proc = subprocess.run(
            list(argv),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            cwd=cwd,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        raise CommandError(argv, None, _text(exc.stdout), _text(exc.stderr)) from exc
    if check and proc.returncode != 0:
        raise CommandError(argv, proc.returncode, proc.stdout, proc.stderr)
    return proc


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def wait_for(what: str, probe: Callable[[], bool], timeout: float, interval: float = 0.1) -> None:
    """Poll probe until it is true; after timeout raise a SiteError naming what was awaited."""
    deadline = time.monotonic() + timeout
    while True:
        if probe():
            return
        if time.monotonic() > deadline:
            raise SiteError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def say(message: str) -> None:
    print(message, flush=True)


def require_root() -> None:
    if os.geteuid() != 0:
        raise SiteError("the site is made of system daemons and users: run `hpchub site` as root")


def missing_packages() -> list[str]:
    return [pkg for pkg, path in PACKAGES.items() if not os.path.exists(path)]


def install_packages(packages: Sequence[str]) -> None:
    if not packages:
        return
    if shutil.which("apt-get") is None:
        raise SiteError(f"missing Debian packages {', '.join(packages)} and no apt-get to install them")
    say(f"  installing Debian packages: {' '.join(packages)} (apt-get; takes a minute)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run(["apt-get", "update", "-q"], timeout=600, env=env)
    run(["debconf-set-selections"], input=_DEBCONF)
    # Packages' daemons (the gridengine ones, exim) are not started at install: the site starts
    # its own, in its nodes. policy-rc.d is Debian's switch for that; one the machine has stays.
    made_policy = not _NO_SERVICE_STARTS.exists()
    if made_policy:
        _NO_SERVICE_STARTS.write_text("#!/bin/sh\n# hpchub site: no service starts while it installs packages\nexit 101\n")
        _NO_SERVICE_STARTS.chmod(0o755)
    try:
        run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages], timeout=1200, env=env)
    finally:
        if made_policy:
            _NO_SERVICE_STARTS.unlink(missing_ok=True)


# ----- files ---------------------------------------------------------------------


def write_file(path: Path, content: str, mode: int = 0o644, owner: str | None = None) -> bool:
    """Write content if it differs; returns whether the file changed. Never world-readable first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    changed = not path.exists() or path.read_text() != content
    if changed:
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(content)
        os.replace(tmp, path)
    os.chmod(path, mode)
    if owner:
        shutil.chown(path, owner, owner)
    return changed


def make_dir(path: Path, mode: int = 0o755, owner: str | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, mode)
    if owner:
        shutil.chown(path, owner, owner)
    return path


# ----- users ---------------------------------------------------------------------

PASSWORDS_FILE = STATE_ROOT / "demo-passwords.json"


def user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def demo_passwords() -> dict[str, str]:
    """The demo users' passwords: made once per machine, kept root-only, shown by `make demo`."""
    if PASSWORDS_FILE.exists():
        stored = json.loads(PASSWORDS_FILE.read_text())
        if set(stored) == set(DEMO_USERS):
            return stored
    passwords = {user: secrets.token_urlsafe(9) for user in DEMO_USERS}
    make_dir(STATE_ROOT, 0o711)
    write_file(PASSWORDS_FILE, json.dumps(passwords, indent=1) + "\n", mode=0o600)
    return passwords


def ensure_users() -> None:
    """alice and bob (demo passwords), the cluster service account, and the hub's own user."""
    for user in DEMO_USERS:
        if not user_exists(user):
            run(["useradd", "--create-home", "--shell", "/bin/bash", user])
            os.chmod(pwd.getpwnam(user).pw_dir, 0o700)
    # Passwords go through stdin, never argv.
    pw = demo_passwords()
    run(["chpasswd"], input="".join(f"{u}:{pw[u]}\n" for u in DEMO_USERS))
    if not user_exists(SERVICE_ACCOUNT):
        run(["useradd", "--create-home", "--shell", "/bin/bash", "--comment", "hpchub service account", SERVICE_ACCOUNT])
        os.chmod(pwd.getpwnam(SERVICE_ACCOUNT).pw_dir, 0o700)
    # No password, but not locked: sshd refuses locked accounts even with a valid certificate.
    run(["usermod", "--password", "*", SERVICE_ACCOUNT])
    if not user_exists(HUB_OS_USER):
        run(["useradd", "--system", "--create-home", "--home-dir", "/var/lib/jupyterhub-home",
             "--shell", "/usr/sbin/nologin", "--comment", "JupyterHub (hub side only)", HUB_OS_USER])
    # The hub checks passwords through PAM, which needs to read /etc/shadow as a non-root user.
    run(["usermod", "--append", "--groups", "shadow", HUB_OS_USER])
    for user in DEMO_USERS:
        give_examples(user)


def give_examples(user: str) -> None:
    """hpchub's example notebooks (dask, ipyparallel, Spark, yt) in ~/hpchub-examples; a
    notebook the user already has there is left as it is."""
    from importlib import resources

    entry = pwd.getpwnam(user)
    target = Path(entry.pw_dir) / "hpchub-examples"
    if not target.exists():
        target.mkdir(mode=0o755)
        os.chown(target, entry.pw_uid, entry.pw_gid)
    for example in resources.files("hpchub").joinpath("examples").iterdir():
        if example.name.endswith(".ipynb") and not (target / example.name).exists():
            (target / example.name).write_text(example.read_text())
            os.chown(target / example.name, entry.pw_uid, entry.pw_gid)


def python_for_sites() -> str:
    """Debian's Python: the preinstalled pyenv one lives under /root (0700), unusable by users."""
    for candidate in ("/usr/bin/python3", sys.executable):
        if os.path.exists(candidate):
            return candidate
    raise SiteError("no Python 3 found for the site's environments")
