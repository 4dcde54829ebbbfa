"""Fixtures for the production set-up's tests: a PostgreSQL server from Debian's packages.
(The site's hub runs with a configuration of their own through site_handle.hub_settings.)"""

from __future__ import annotations

import glob
import shutil
import subprocess
from pathlib import Path

import pytest

from hpchub.site.layout import HUB_OS_USER


class PostgreSQL:
    """A PostgreSQL server of the test's own: Debian's binaries, run as the postgres user,
    listening only on a Unix socket (which the hub reaches from its network namespace too),
    with peer authentication: the hub's OS user is its database role, no password."""

    def __init__(self, root: Path):
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        assert found, "PostgreSQL is not installed: scripts/install-deps.sh installs Debian's postgresql"
        self.bin = Path(found[-1]).parent
        self.root, self.data, self.socket_dir = root, root / "data", root / "socket"
        self.database = "jupyterhub"

    def _as_postgres(self, argv: list[str], **kw) -> subprocess.CompletedProcess:
        return subprocess.run(["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--", *argv],
                              capture_output=True, text=True, timeout=120, check=True, cwd="/", **kw)

    def start(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
        self.root.mkdir(parents=True)
        for path in (self.root, self.socket_dir):
            path.mkdir(exist_ok=True)
            shutil.chown(path, "postgres", "postgres")
            path.chmod(0o755)
        self._as_postgres([str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
                           "--auth-local=peer", "--auth-host=reject"])
        self._as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "server.log"),
                           "-w", "-o", f"-k {self.socket_dir} -c listen_addresses=", "start"])
        self.sql(f'CREATE ROLE "{HUB_OS_USER}" LOGIN')
        self.sql(f'CREATE DATABASE {self.database} OWNER "{HUB_OS_USER}"')

    def sql(self, statement: str, database: str = "postgres") -> str:
        return self._as_postgres([str(self.bin / "psql"), "-h", str(self.socket_dir), "-U", "postgres",
                                  "-d", database, "-tA", "-v", "ON_ERROR_STOP=1", "-c", statement]).stdout

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://{HUB_OS_USER}@/{self.database}?host={self.socket_dir}"

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"])
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="module")
def postgresql(loopback_site):
    server = PostgreSQL(Path("/var/lib/hpchub-tests") / f"postgresql-{loopback_site.name}")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def image_prefix(loopback_site):
    """The image's environment, built from nothing by the image's own script (a directory per
    instance, so that runs on other instances beside this one keep theirs), once per run."""
    import os

    from .image import copy_of_the_context

    prefix = Path(f"/opt/hpchub/image-test-{loopback_site.name}")
    shutil.rmtree(prefix, ignore_errors=True)
    # From the build context as Docker sends it (so the .dockerignore keeps what the build needs),
    # with Debian's Python, as in the image (not whichever python3 comes first on this PATH).
    source = copy_of_the_context(Path(f"/var/lib/hpchub-tests/image-context-{loopback_site.name}"))
    proc = subprocess.run([str(source / "container" / "install-hub.sh"), str(source), str(prefix)],
                          capture_output=True, text=True, timeout=900, env={**os.environ, "PYTHON": "/usr/bin/python3"})
    shutil.rmtree(source)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    subprocess.run(["chmod", "-R", "a+rX", str(prefix)], check=True)
    yield prefix
    shutil.rmtree(prefix, ignore_errors=True)
