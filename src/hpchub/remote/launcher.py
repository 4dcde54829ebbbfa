"""The hub's side of the remote launchers (node_launcher.py for servers on login nodes,
batch_launcher.py for servers in batch jobs): how they are sent and answered."""

from __future__ import annotations

import json
from importlib import resources

# A fixed bootstrap: reads the launcher's source (length-prefixed) from stdin and runs it;
# the launcher then reads its JSON request (secrets included) from the rest of stdin.
BOOTSTRAP = "import sys;n=int(sys.stdin.readline());exec(compile(sys.stdin.read(n),'hpchub-launcher','exec'))"


NODE = "node_launcher.py"
BATCH = "batch_launcher.py"


PRELUDE = "launcher_prelude.py"
# The one line by which each launcher imports the prelude where hpchub is installed (tests);
# what is sent has the prelude's text in its place, since the cluster has no hpchub.
PRELUDE_IMPORT = "from hpchub.remote.launcher_prelude import *  # noqa: F401,F403 - the prelude's text, when sent\n"


def launcher_source(module: str = NODE) -> str:
    """The launcher's source as it is sent: standalone, the shared prelude in it."""
    files = resources.files("hpchub.remote")
    source = files.joinpath(module).read_text()
    if source.count(PRELUDE_IMPORT) != 1:
        raise RuntimeError(f"{module} must import the launcher prelude exactly once, as {PRELUDE_IMPORT!r}")
    return source.replace(PRELUDE_IMPORT, files.joinpath(PRELUDE).read_text())


def launcher_argv(python: str = "python3") -> list[str]:
    return [python, "-c", BOOTSTRAP]


def launcher_input(request: dict, module: str = NODE) -> str:
    source = launcher_source(module)
    return f"{len(source)}\n{source}{json.dumps(request)}"


def parse_answer(stdout: str) -> dict:
    """The launcher's JSON answer (its last line of output)."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    if not lines:
        raise ValueError("the launcher printed nothing")
    return json.loads(lines[-1])
