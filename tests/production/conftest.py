"""Fixtures for the production set-up's tests: a PostgreSQL server from Debian's packages.
(The site's hub runs with a configuration of their own through site_handle.hub_settings.)"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from .postgresql import PostgreSQL


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
