"""A PostgreSQL server of a test's or benchmark's own, from Debian's packages."""

from __future__ import annotations

import glob
import shutil
import subprocess
from pathlib import Path

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
