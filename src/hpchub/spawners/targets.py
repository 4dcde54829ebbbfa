"""Where a server may run: the admin's targets, and the check of a user's options against
them and against what the scheduler allows this user (pure: no I/O, no JupyterHub).

A target is a card on the spawn page ("Login node - shared, starts now", "Compute node -
1 node, up to 4 h", ...). It runs the server on a login node (`kind: login`) or in a batch
job (`kind: batch`) with preset job values (`defaults`), the fields a user may change
(`choose`), upper bounds (`limits`), and optionally only for some Unix groups or accounts.
Every option of every request (form or REST API) goes through `resolve`, which returns the
job's values or raises FieldError naming the field; nothing else reaches a job script.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..schedulers.base import NAME, Association, Partition, Reservation
from ..schedulers.slurm import format_walltime, parse_walltime

FIELDS = ("partition", "account", "qos", "nodes", "cores", "memory_mb", "gpus", "walltime", "reservation",
          "constraint")
NUMBERS = {"nodes": (1, "nodes"), "cores": (1, "CPU cores"), "memory_mb": (1, "memory (MB)"), "gpus": (0, "GPUs")}
WHOLE = re.compile(r"[0-9]{1,9}")
LIMITS = {"partitions", "max_walltime", "max_nodes", "max_cores", "max_memory_mb", "max_gpus"}


class FieldError(ValueError):
    """A refused option: which field, and why (shown next to the field, and in HTTP 400s)."""

    def __init__(self, field_name: str, message: str):
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


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

    @classmethod
    def from_config(cls, spec: dict) -> "Target":
        where = f"target {spec.get('name', '?')!r}"
        unknown = set(spec) - {"name", "title", "kind", "description", "defaults", "choose", "limits", "groups",
                               "accounts"}
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
                   groups=frozenset(spec.get("groups", ())), accounts=frozenset(spec.get("accounts", ())))

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


def resolve(target: Target, options: dict, choices: Choices, user: str) -> dict:
    """The job's values for this target and these options, every one checked."""
    values = dict(target.defaults)
    for key, raw in options.items():
        if key == "target":
            continue
        if key not in FIELDS:
            raise FieldError(key, "is not an option here")
        if raw in ("", None):
            continue
        value = _typed(key, raw)
        if key not in target.choose and value != target.defaults.get(key):
            raise FieldError(key, f"cannot be changed for {target.title}")
        values[key] = value
    if target.kind == "login":
        return {}
    return _checked(target, values, choices, user)


def _typed(key: str, raw):
    if key in NUMBERS:
        # ASCII digits only: str.isdigit() also takes "²" and "١", which int() then refuses or reads.
        whole = isinstance(raw, int) or (isinstance(raw, str) and WHOLE.fullmatch(raw.strip()))
        if isinstance(raw, bool) or not whole:
            raise FieldError(key, "must be a whole number")
        return int(raw)
    if not isinstance(raw, str):
        raise FieldError(key, "must be text")
    return raw.strip()


def _checked(target: Target, values: dict, choices: Choices, user: str) -> dict:
    partitions = choices.partitions_for(target)
    partition_name = values.get("partition") or (partitions[0] if partitions else None)
    if partition_name not in partitions:
        raise FieldError("partition", f"{partition_name!r} is not one you can use here "
                                      f"({', '.join(partitions) or 'none'})")
    partition = choices.partitions[partition_name]
    values["partition"] = partition_name

    account = values.get("account")
    if account:
        if account not in choices.accounts_for(target):
            raise FieldError("account", f"{account!r} is not an account of yours here "
                                        f"({', '.join(choices.accounts_for(target)) or 'none'})")
        association = choices.associations[account]
        if association.partitions and partition_name not in association.partitions:
            raise FieldError("account", f"account {account!r} cannot use partition {partition_name!r}")
    qos = values.get("qos")
    if qos and qos not in choices.qos_for(account):
        raise FieldError("qos", f"{qos!r} is not a QOS you can use" + (f" with account {account!r}" if account else ""))

    limit = _min(parse_walltime(str(target.limits["max_walltime"])) if "max_walltime" in target.limits else None,
                 partition.max_walltime)
    walltime = values.get("walltime")
    if walltime:
        try:
            seconds = parse_walltime(walltime)
        except ValueError:
            raise FieldError("walltime", "must be a time like 01:30:00") from None
        if seconds is None or seconds < 60:
            raise FieldError("walltime", "must be at least one minute")
        if limit is not None and seconds > limit:
            raise FieldError("walltime", f"can be at most {format_walltime(limit)} here")
        values["walltime"] = format_walltime(seconds)

    for key, (low, label) in NUMBERS.items():
        if key not in values:
            continue
        high = _min(target.limits.get(f"max_{key}"), {
            "nodes": partition.nodes, "cores": partition.cores_per_node,
            "memory_mb": partition.memory_mb_per_node, "gpus": partition.gpus_per_node}[key])
        if not low <= values[key] <= (high if high is not None else values[key]):
            raise FieldError(key, f"{label} must be between {low} and {high} here")

    reservation = values.get("reservation")
    if reservation and reservation not in choices.reservations_for(user):
        raise FieldError("reservation", f"{reservation!r} is not a reservation open to you")
    constraint = values.get("constraint")
    if constraint:
        wanted = constraint.split("&")
        unknown = [f for f in wanted if f not in partition.features]
        if unknown:
            raise FieldError("constraint", f"no node of {partition_name!r} has {', '.join(unknown)} "
                                           f"(features: {', '.join(sorted(partition.features)) or 'none'})")
    return {key: values[key] for key in FIELDS if values.get(key) not in (None, "")}


def _min(*values):
    present = [v for v in values if v is not None]
    return min(present) if present else None
