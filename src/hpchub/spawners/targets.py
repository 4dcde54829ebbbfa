"""Where a server may run: the admin's targets, and the check of a user's options against
them and against what the scheduler allows this user (pure: no I/O, no JupyterHub).

A target is a card on the spawn page ("Login node - shared, starts now", "Compute node -
1 node, up to 4 h", ...). It runs the server on a login node (`kind: login`) or in a batch
job (`kind: batch`) with preset job values (`defaults`), the fields a user may change
(`choose`), upper bounds (`limits`), and optionally only for some Unix groups or accounts.
Every option of every request goes through `options.resolve`; nothing else reaches a job script.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..schedulers.base import NAME, Association, Partition, Reservation

FIELDS = ("partition", "account", "qos", "nodes", "cores", "memory_mb", "gpus", "walltime", "reservation",
          "constraint")
LIMITS = {"partitions", "max_walltime", "max_nodes", "max_cores", "max_memory_mb", "max_gpus"}


DEFAULT_CLUSTER = "default"
"""The cluster the spawner's own settings describe (login_nodes, scheduler, ...); a target that
names no cluster runs there."""


class TargetConfigError(ValueError):
    """The admin's target configuration is wrong (reported at hub start)."""


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

    @classmethod
    def from_config(cls, spec: dict) -> "Target":
        where = f"target {spec.get('name', '?')!r}"
        unknown = set(spec) - {"name", "title", "kind", "description", "defaults", "choose", "limits", "groups",
                               "accounts", "cluster"}
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
        if spec["kind"] == "login" and (spec.get("defaults") or spec.get("choose")):
            raise TargetConfigError(f"{where}: a login-node target has no job fields")
        return cls(name=spec["name"], title=spec.get("title", spec["name"]), kind=spec["kind"],
                   description=spec.get("description", ""), defaults=dict(spec.get("defaults", {})),
                   choose=tuple(spec.get("choose", ())), limits=dict(spec.get("limits", {})),
                   groups=frozenset(spec.get("groups", ())), accounts=frozenset(spec.get("accounts", ())),
                   cluster=str(spec.get("cluster") or DEFAULT_CLUSTER))

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
