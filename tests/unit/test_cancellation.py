"""A cancellation always reaches the code it was meant for.

JupyterHub stops a spawn in progress (a Stop while a job is being submitted, say) by cancelling
its task and giving it one second to end. On Python 3.11 (Debian 12's, the hub's),
`asyncio.wait_for` swallows a cancellation that arrives as the thing it waits for completes:
the spawn then goes on (a job is submitted and waited for) while JupyterHub, finding it still
pending, answers the Stop with a 500 and leaves the server "pending spawn". Seen once in CI.
hpchub therefore bounds its waits with `asyncio.timeout`, which passes the cancellation on."""

from __future__ import annotations

import ast
import asyncio
import sys
from pathlib import Path

import pytest

import hpchub
from hpchub.schedulers.slurm import Slurm
from hpchub.schedulers.watcher import JobWatcher

SOURCE = Path(hpchub.__file__).parent


def wait_for_calls(path: Path) -> list[int]:
    """Lines calling asyncio.wait_for (as an attribute or imported by name)."""
    tree = ast.parse(path.read_text(), str(path))
    imported = {alias.asname or alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                and node.module == "asyncio" for alias in node.names if alias.name == "wait_for"}
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if (isinstance(func, ast.Attribute) and func.attr == "wait_for" and isinstance(func.value, ast.Name)
                and func.value.id == "asyncio") or (isinstance(func, ast.Name) and func.id in imported):
            lines.append(node.lineno)
    return lines


def found_in_source(scan) -> dict[str, list[int]]:
    """What scan(path) finds in each of hpchub's modules, by module."""
    return {str(path.relative_to(SOURCE)): lines for path in sorted(SOURCE.rglob("*.py")) if (lines := scan(path))}


def test_no_wait_is_bounded_by_asyncio_wait_for():
    found = found_in_source(wait_for_calls)
    assert found == {}, f"use `async with asyncio.timeout(...)` instead: {found}"


def asyncssh_connects_with_their_own_timeout(path: Path) -> list[int]:
    """Lines calling asyncssh.connect without connect_timeout=None: its own timeout is an
    asyncio.wait_for (asyncssh 2.x), so the caller bounds the connection instead."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "connect"
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "asyncssh"):
            bound = [k.value for k in node.keywords if k.arg == "connect_timeout"]
            if not (bound and isinstance(bound[0], ast.Constant) and bound[0].value is None):
                lines.append(node.lineno)
    return lines


def test_ssh_connections_are_bounded_by_hpchub_not_by_asyncssh():
    found = found_in_source(asyncssh_connects_with_their_own_timeout)
    assert found == {}
    assert "async with asyncio.timeout(self.connect_timeout)" in (SOURCE / "remote" / "ssh.py").read_text()


def test_asyncssh_still_bounds_its_connect_with_wait_for():
    """The pinned fact behind the rule above: if asyncssh stops using wait_for, the rule may go."""
    import inspect

    import asyncssh.connection

    assert "asyncio.wait_for(" in inspect.getsource(asyncssh.connection.connect)


def test_the_scans_find_what_they_look_for(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import asyncio\nfrom asyncio import wait_for as wf\n"
                      "async def f(x):\n    await asyncio.wait_for(x, 1)\n    await wf(x, 2)\n")
    assert wait_for_calls(sample) == [4, 5]
    sample.write_text("import asyncssh\nasync def f():\n    await asyncssh.connect('h', connect_timeout=5)\n"
                      "    await asyncssh.connect('h')\n    await asyncssh.connect('h', connect_timeout=None)\n")
    assert asyncssh_connects_with_their_own_timeout(sample) == [3, 4]


async def swallows_a_cancellation(make) -> bool:
    """Whether a wait loses a cancellation that comes as what it waits for completes.
    make() gives a fresh (wait, complete) pair: wait() blocks until complete() is called.
    The cancellation is tried in the moment of completion and one, two and three loop turns
    later (asyncio.wait_for's inner task finishes a turn before its waiter runs). Swallowed:
    cancel() found the task still running, and the task then ended normally."""
    cancelled = 0
    for turns in range(4):
        wait, complete = make()
        task = asyncio.ensure_future(wait())
        for _ in range(3):
            await asyncio.sleep(0)
        assert not task.done()
        complete()
        for _ in range(turns):
            await asyncio.sleep(0)
        if not task.cancel():
            continue  # already ended normally, before the cancellation: nothing was lost
        cancelled += 1
        try:
            await task
        except asyncio.CancelledError:
            continue
        return True
    assert cancelled, "no timing cancelled the wait while it ran: the check proved nothing"
    return False


def event_wait(bounded):
    def make():
        event = asyncio.Event()
        return (lambda: bounded(event)), event.set
    return make


def test_the_construct_this_guards_against_swallows_the_cancellation():
    """The reason for the rule, shown on the running Python: asyncio.wait_for (3.11) loses
    the cancellation, asyncio.timeout keeps it."""
    async def with_wait_for(event):
        await asyncio.wait_for(event.wait(), 60)

    async def with_timeout(event):
        async with asyncio.timeout(60):
            await event.wait()

    async def go():
        return (await swallows_a_cancellation(event_wait(with_wait_for)),
                await swallows_a_cancellation(event_wait(with_timeout)))

    wait_for_swallows, timeout_swallows = asyncio.run(go())
    assert not timeout_swallows
    # Python 3.12 rebuilt wait_for on asyncio.timeout; the rule costs nothing there.
    assert wait_for_swallows == (sys.version_info < (3, 12))


@pytest.mark.parametrize("which", ["next_poll", "sleep"])
def test_the_job_watchers_waits_pass_a_cancellation_on(which):
    """A spawn waiting for the next status poll (and the watcher's loop between polls) ends
    when cancelled, even as the poll it waited for completes."""
    def make():
        watcher = JobWatcher(Slurm(), run=None)
        if which == "next_poll":
            return (lambda: watcher.next_poll(timeout=60)), watcher._polled.set
        return (lambda: watcher._sleep(60)), watcher._wake.set

    assert not asyncio.run(swallows_a_cancellation(make))
