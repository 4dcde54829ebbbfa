"""The documentation builds with Sphinx, warnings as errors, and its settings reference names
every configurable setting of hpchub's classes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_docs_build_without_warnings_and_list_every_setting(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
                           str(ROOT / "docs"), str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    sys.path.insert(0, str(ROOT / "docs" / "_ext"))
    try:
        from hpchub_settings import configurable_classes
    finally:
        sys.path.pop(0)
    reference = (tmp_path / "reference" / "settings.html").read_text()
    for section, cls in configurable_classes():
        for name in cls.class_own_traits(config=True):
            assert f"c.{section}.{name}" in reference, f"{section}.{name} is not in the reference"
    for page in ("tutorial", "howto/ssh-ca", "howto/slurm", "howto/gridengine", "howto/clusters", "howto/isolated-networks", "howto/production",
                 "howto/migrate-from-batchspawner", "howto/operations", "release-notes", "reference/metrics", "reference/commands",
                 "explanation/security", "explanation/hub-restart", "explanation/certificate-lifetime",
                 "explanation/upstream"):
        assert (tmp_path / f"{page}.html").exists(), page
