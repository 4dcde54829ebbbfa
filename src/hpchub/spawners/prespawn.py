"""Pre-spawn checks: what would keep a job from ever starting, said on the spawn form and refused
at submission, instead of a job that sits in the queue for good.

The contract of a check (HPCSpawner.pre_spawn_checks holds them):

    async def check(context: CheckContext) -> list[Finding]

It asks the cluster's scheduler only through `context.query` (argv, run as the cluster's service
account, its answer cached for the form's `choices_ttl`), never raises for what it cannot tell
(it returns no finding: a check must not keep users from starting servers when the scheduler
does not answer it), and words each finding for the user. A finding concerns jobs charged to
some accounts, or ("") jobs that name none, so the scheduler's default account; with no
accounts it concerns every job of the user on that cluster.

Shipped: `slurm_usage_limits`, an account (or the user's association in it) whose GrpTRESMins
limit is used up: Slurm keeps its jobs pending (AssocGrpCPUMinutesLimit and the like) until an
administrator raises the limit.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from typing import Awaitable, Callable

Query = Callable[[list[str]], Awaitable[str]]



class QueryFailed(Exception):
    """A check's query did not answer (the check then finds nothing)."""


@dataclass(frozen=True)
class CheckContext:
    user: str
    cluster: str  # its title, for messages
    scheduler: str  # "slurm", "sge", ... (a check for one scheduler returns [] on the others)
    accounts: tuple[str, ...]  # the accounts the user may charge there (as the form offers them)
    query: Query  # raises QueryFailed


@dataclass(frozen=True)
class Finding:
    message: str
    accounts: frozenset[str] = frozenset()  # "" stands for "no account named"; empty: every job

    def applies_to(self, account: str) -> bool:
        return not self.accounts or account in self.accounts


Check = Callable[[CheckContext], Awaitable[list[Finding]]]


def refusal(findings: list[Finding], account: str) -> Finding | None:
    """The finding that refuses a job charged to account ("": none named), if any."""
    return next((f for f in findings if f.applies_to(account)), None)


# ----- the shipped check ----------------------------------------------------------------
SSHARE_FORMAT = "Account,User,GrpTRESMins,GrpTRESRaw"


def _tres(text: str) -> dict[str, int]:
    """Slurm's "cpu=60,gres/gpu=10" as a dict (values that are not whole numbers are left out)."""
    found = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        if name and value.isdigit():
            found[name.strip()] = int(value)
    return found


def used_up(sshare: str, user: str) -> dict[str, list[tuple[str, int, int]]]:
    """Per account, the TRES whose GrpTRESMins limit is used up (name, used, limit), from
    `sshare --all --parsable2 --format=Account,User,GrpTRESMins,GrpTRESRaw`: the account's own
    row and the user's association in it (other users' rows are theirs)."""
    found: dict[str, list[tuple[str, int, int]]] = {}
    for line in sshare.split("\n"):
        fields = line.split("|")
        if len(fields) < 4:
            continue
        account, row_user, limits, raw = (f.strip() for f in fields[:4])
        if not account or row_user not in ("", user):
            continue
        usage = _tres(raw)
        for tres, limit in _tres(limits).items():
            used = usage.get(tres, 0)
            if used >= limit:
                found.setdefault(account, []).append((tres, used, limit))
    return found


async def slurm_usage_limits(context: CheckContext) -> list[Finding]:
    if context.scheduler != "slurm" or not context.accounts:
        return []
    try:
        sshare = await context.query(["sshare", "--noheader", "--parsable2", "--all",
                                      f"--accounts={','.join(context.accounts)}", f"--format={SSHARE_FORMAT}"])
        default = (await context.query(["sacctmgr", "--noheader", "--parsable2", "show", "user", context.user,
                                        "format=DefaultAccount"])).strip()
    except QueryFailed:
        return []
    findings = []
    for account, spent in sorted(used_up(sshare, context.user).items()):
        what = ", ".join(f"{used} of {limit} {tres}-minutes" for tres, used, limit in spent)
        default_too = {""} if account == default else set()
        findings.append(Finding(
            f"account {account} has used up its allocation ({what}): a job charged to it would wait in the "
            f"queue until the allocation is raised; choose another account, or ask the account's manager",
            frozenset({account} | default_too)))
    return findings


# ----- running them -----------------------------------------------------------------------
def resolved(check: Check | str) -> Check:
    """A configured check: the callable, or one named by its import path ("module:name")."""
    if callable(check):
        return check
    module, _, name = str(check).partition(":")
    if not module or not name:
        raise ValueError(f"{check!r} is not \"module:name\"")
    return getattr(importlib.import_module(module), name)


async def run_checks(checks: list, context: CheckContext, log: logging.Logger) -> list[Finding]:
    """Every check's findings. A check that fails is logged and finds nothing: a broken check
    must not keep users from starting servers."""
    findings: list[Finding] = []
    for check in checks:
        try:
            findings.extend(await resolved(check)(context))
        except Exception as exc:  # a plug-in's failure of any kind: logged with its traceback
            log.error("Pre-spawn check %r failed for %s on %s: %r", check, context.user, context.cluster, exc,
                      exc_info=True)
    return findings
