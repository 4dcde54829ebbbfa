"""Scheduler commands run on this node, as its user (the Jobs panel's server side and the batch
kernel provisioner): an argv list from an adapter, a timeout, the command's words kept for the
user. Standard library and the adapters only."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from .schedulers.base import Scheduler, SchedulerError

COMMAND_TIMEOUT = 60.0


@dataclass
class Answer:
    returncode: int
    stdout: str
    stderr: str


async def run(argv: list[str], *, input: str | None = None, cwd: str | None = None, env: dict | None = None,
              timeout: float = COMMAND_TIMEOUT) -> Answer:
    """A scheduler command; SchedulerError (with the command) if it cannot run or does not answer."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, cwd=cwd, env=env, stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    except OSError as exc:
        raise SchedulerError(f"{argv[0]} cannot be run here: {exc.strerror}", argv) from None
    try:
        async with asyncio.timeout(timeout):
            stdout, stderr = await proc.communicate(input.encode() if input is not None else None)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise SchedulerError(f"the scheduler did not answer within {timeout:.0f} s; try again", argv) from None
    return Answer(proc.returncode, stdout.decode(errors="replace"), stderr.decode(errors="replace"))


async def checked(adapter: Scheduler, argv: list[str], cwd: str | None = None) -> str:
    """The command's output; SchedulerError in the scheduler's words if it failed."""
    answer = await run(argv, cwd=cwd)
    if answer.returncode != 0:
        raise SchedulerError(adapter.error_message(answer.stderr) or f"{argv[0]} failed", argv,
                             answer.returncode, answer.stderr)
    return answer.stdout
