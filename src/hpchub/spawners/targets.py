"""Where a server may run: the admin's targets, and the check of a user's options against
them and against what the scheduler allows this user (pure: no I/O, no JupyterHub).

A target is a card on the spawn page ("Login node - shared, starts now", "Compute node -
1 node, up to 4 h", ...). It runs the server on a login node (`kind: login`) or in a batch
job (`kind: batch`) with preset job values (`defaults`), the fields a user may change
(`choose`), upper bounds (`limits`), and optionally only for some Unix groups or accounts.
Every option of every request goes through `options.resolve`; nothing else reaches a job script.

A target may also carry the admin's own environment for its servers: `setup_lines` (shell
lines run before the server, after HPCSpawner.setup_lines), `environment` (variables set for
the server), `scheduler_args` (extra directives of its jobs, each a list of words, checked by
the cluster's adapter at start-up) and `login_nodes` (the names of its cluster's login nodes it
uses, e.g. the ones with GPUs). All come from the configuration, never from users.

A target may run its servers in a container image (`container`: the runtime, and the admin's
image or the images a user chooses from by title; hpchub.containers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..containers import ContainerError, ContainerSpec
from ..schedulers.base import NAME, Association, Availability, Partition, Reservation

FIELDS = ("partition", "account", "qos", "nodes", "cores", "memory_mb", "gpus", "walltime", "reservation",
          "constraint")
LIMITS = {"partitions", "max_walltime", "max_nodes", "max_cores", "max_memory_mb", "max_gpus"}


DEFAULT_CLUSTER = "default"
"""The cluster the spawner's own settings describe (login_nodes, scheduler, ...); a target that
names no cluster runs there."""


class TargetConfigError(ValueError):
    """The admin's target configuration is wrong (reported at hub start)."""


ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_KEYS = {"name", "title", "kind", "description", "defaults", "choose", "limits", "groups", "accounts", "cluster",
         "setup_lines", "environment", "scheduler_args", "login_nodes", "container"}


def _text_lines(where: str, key: str, value) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise TargetConfigError(f"{where}: `{key}` must be a list of strings")
    for line in value:
        if "\n" in line or "\0" in line or "\r" in line:
            raise TargetConfigError(f"{where}: `{key}`: one line per item (no newline or NUL in {line[:40]!r})")
    return tuple(value)


def _environment(where: str, value) -> dict:
    if not isinstance(value, dict):
        raise TargetConfigError(f"{where}: `environment` must be a dict of variable name -> value")
    for name, text in value.items():
        if not isinstance(name, str) or not ENV_NAME.fullmatch(name):
            raise TargetConfigError(f"{where}: `environment`: {name!r} is not a variable name")
        if name.startswith(("JUPYTERHUB_", "HPCHUB_")):
            raise TargetConfigError(f"{where}: `environment`: {name} is the hub's to set")
        if not isinstance(text, str) or "\0" in text:
            raise TargetConfigError(f"{where}: `environment`: the value of {name} must be a string without NUL")
    return dict(value)


def _scheduler_args(where: str, value) -> tuple[tuple[str, ...], ...]:
    if not isinstance(value, (list, tuple)):
        raise TargetConfigError(f"{where}: `scheduler_args` must be a list of directives (each a list of words)")
    directives = []
    for directive in value:
        words = _text_lines(where, "scheduler_args", [directive] if isinstance(directive, str) else directive)
        if not words or not words[0].startswith("-"):
            raise TargetConfigError(f"{where}: `scheduler_args`: {list(words)!r} does not start with an option")
        directives.append(words)
    return tuple(directives)


@dataclass(frozen=True)
class Target:
    name: str
    title: str
    kind: str  # "login" or "batch"
    description: str = ""
    defaults: dict = field(default_factory=dict)
    choose: tuple[str, ...] = ()
    limits: dict = field(default_factory=dict)
    groups: frozenset[str] = frozenset()
    accounts: frozenset[str] = frozenset()
    cluster: str = DEFAULT_CLUSTER  # a name from HPCSpawner.clusters, or the default cluster
    setup_lines: tuple[str, ...] = ()
    environment: dict = field(default_factory=dict)
    scheduler_args: tuple[tuple[str, ...], ...] = ()
    login_nodes: tuple[str, ...] = ()  # names of its cluster's login nodes; (): all of them
    container: ContainerSpec | None = None  # its servers run in this image (or one the user chooses)

    @classmethod
    def from_config(cls, spec: dict) -> "Target":
        where = f"target {spec.get('name', '?')!r}"
        unknown = set(spec) - _KEYS
        if unknown:
            raise TargetConfigError(f"{where}: unknown keys {sorted(unknown)}")
        if not NAME.fullmatch(str(spec.get("name", ""))):
            raise TargetConfigError(f"{where}: `name` must be a short name (letters, digits, - _ .)")
        if spec.get("kind") not in ("login", "batch"):
            raise TargetConfigError(f"{where}: `kind` must be 'login' or 'batch'")
        for key in list(spec.get("defaults", {})) + list(spec.get("choose", [])):
            if key not in FIELDS:
                raise TargetConfigError(f"{where}: {key!r} is not a job field ({', '.join(FIELDS)})")
        if set(spec.get("limits", {})) - LIMITS:
            raise TargetConfigError(f"{where}: unknown limits {sorted(set(spec['limits']) - LIMITS)}")
        if spec["kind"] == "login" and (spec.get("defaults") or spec.get("choose") or spec.get("scheduler_args")):
            raise TargetConfigError(f"{where}: a login-node target has no job fields")
        try:
            container = ContainerSpec.from_config(where, spec["container"]) if spec.get("container") else None
        except ContainerError as exc:
            raise TargetConfigError(str(exc)) from None
        return cls(name=spec["name"], title=spec.get("title", spec["name"]), kind=spec["kind"],
                   description=spec.get("description", ""), defaults=dict(spec.get("defaults", {})),
                   choose=tuple(spec.get("choose", ())), limits=dict(spec.get("limits", {})),
                   groups=frozenset(spec.get("groups", ())), accounts=frozenset(spec.get("accounts", ())),
                   cluster=str(spec.get("cluster") or DEFAULT_CLUSTER),
                   setup_lines=_text_lines(where, "setup_lines", spec.get("setup_lines", [])),
                   environment=_environment(where, spec.get("environment", {})),
                   scheduler_args=_scheduler_args(where, spec.get("scheduler_args", [])),
                   login_nodes=_text_lines(where, "login_nodes", spec.get("login_nodes", [])),
                   container=container)

    def visible_to(self, groups, accounts) -> bool:
        if self.groups and not self.groups & set(groups):
            return False
        if self.accounts and not self.accounts & set(accounts):
            return False
        return True


@dataclass(frozen=True)
class Choices:
    """What the scheduler lets this user ask for."""

    partitions: dict[str, Partition]
    associations: dict[str, Association]
    reservations: tuple[Reservation, ...] = ()
    available: dict[str, Availability] = field(default_factory=dict)  # free now, by partition

    def free_for(self, target: Target) -> list[tuple[str, Availability]]:
        """What is free now in the partitions the target may run in: those the user chooses
        from, or the one it sets."""
        if "partition" in target.choose:
            names = self.partitions_for(target)
        else:
            fixed = target.defaults.get("partition")
            names = [str(fixed)] if fixed else []
        return [(name, self.available[name]) for name in names if name in self.available]

    def partitions_for(self, target: Target) -> list[str]:
        allowed = target.limits.get("partitions")
        names = [p for p in self.partitions if allowed is None or p in allowed]
        return names

    def accounts_for(self, target: Target) -> list[str]:
        return sorted(a for a in self.associations if not target.accounts or a in target.accounts)

    def qos_for(self, account: str | None) -> list[str]:
        if account:
            association = self.associations.get(account)
            return sorted(association.qos) if association else []
        return sorted(set().union(*(a.qos for a in self.associations.values()))) if self.associations else []

    def reservations_for(self, user: str) -> list[str]:
        return sorted(r.name for r in self.reservations if r.open_to(user, self.associations))

    def reservation(self, name: str) -> Reservation | None:
        return next((r for r in self.reservations if r.name == name), None)
