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


def launcher_source(module: str = NODE) -> str:
    return resources.files("hpchub.remote").joinpath(module).read_text()


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
