"""The dependency direction: what runs on nodes, in the CLI or in the CA service never
imports JupyterHub."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", ["hpchub.schedulers.slurm", "hpchub.schedulers.watcher", "hpchub.remote.tunnels", "hpchub.credentials.service",
                                    "hpchub.credentials.service_client", "hpchub.magics", "hpchub.site.manager",
                                    "hpchub.containers", "hpchub.kernels"])
def test_module_does_not_import_jupyterhub(module):
    code = f"import sys, {module}; print('jupyterhub' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize("name", ["node_launcher.py", "batch_launcher.py"])
def test_the_launchers_need_only_the_standard_library(name):
    """As sent to a node (the prelude's text in it), run by a Python with no hpchub on its path."""
    from hpchub.remote.launcher import launcher_source

    code = ("import sys; before = set(sys.modules); source = sys.stdin.read(); "
            "exec(compile(source, 'launcher', 'exec'), {'__name__': 'not_main'}); "
            "print(sorted(m for m in set(sys.modules) - before if not m.startswith('_') and m.split('.')[0] not in "
            "sys.stdlib_module_names))")
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], input=launcher_source(name), capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_notebook_side_imports_neither_jupyterhub_nor_asyncssh():
    """hpchub.cluster and the magics run in the users' environment, where hpchub is installed
    without its hub-side dependencies."""
    code = "import sys, hpchub.cluster, hpchub.magics; print(sorted({'jupyterhub', 'asyncssh'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
