"""The one path of a request's options (pure: no I/O, no JupyterHub).

Whatever asks for a server - the REST API, the spawn form, a spawn link, a spawn resumed after
a restart - its options go through `resolve` and nothing else:

    normalise(options)           every value once, first: text trimmed (a blank value is "not
                                 given", so the target's default applies), control characters
                                 and overlong text refused, other JSON types refused
    _typed(key, value)           ASCII whole numbers, or text
    _checked(target, values, …)  the target's `choose` and `limits`, then what the scheduler
                                 lets this user ask for (when the spawner asks it)

and the result is the job's values, each field checked, or a FieldError naming the field:
`job_request` gives them as the neutral JobRequest the batch launch submits (None for a login
node), `resolve` as values for people (a walltime as [D-]HH:MM:SS). The walltime is parsed once.
User text never reaches a message, a log line or an HTTP answer raw: `shown` quotes and cuts it.
"""

from __future__ import annotations

import re
import unicodedata

from ..schedulers.base import CONSTRAINT, NAME, JobRequest, Scheduler, ValidationError
from ..schedulers.slurm import format_walltime, parse_walltime
from .targets import FIELDS, Choices, Target

NUMBERS = {"nodes": (1, "nodes"), "cores": (1, "CPU cores"), "memory_mb": (1, "memory (MB)"), "gpus": (0, "GPUs")}
WHOLE = re.compile(r"[0-9]{1,9}")  # ASCII only: str.isdigit() also takes "²" and "١"
MAX_TEXT = 200  # longer than any name, time or constraint a scheduler takes
PLAIN_NAME = re.compile(r"[a-z_][a-z0-9_.]{0,40}")  # an option name that may be shown as it is
# Unicode categories refused anywhere in a value: controls (C0, DEL, C1), format characters
# (zero-width and direction marks), surrogates, private use, unassigned, and line or paragraph
# separators. They have no place in a job setting and would reach logs and pages raw.
REFUSED_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def shown(value, limit: int = 60) -> str:
    """User text as it may appear in a message or a log line: quoted as Python's repr quotes
    (control and invisible characters escaped), cut after `limit` characters."""
    text = value if isinstance(value, str) else repr(value)
    quoted = repr(text[:limit])
    return quoted[:-1] + "…" + quoted[-1] if len(text) > limit else quoted


class FieldError(ValueError):
    """A refused option: which field, and why (shown next to the field, and in HTTP 400s).
    The message never holds the user's text raw (see `shown`)."""

    def __init__(self, field_name, message: str):
        label = field_name if isinstance(field_name, str) and PLAIN_NAME.fullmatch(field_name) else shown(field_name)
        super().__init__(f"{label}: {message}")
        self.field = field_name
        self.message = message


def normalise(options) -> dict:
    """Every value once, before anything looks at it: text trimmed and blank text dropped (a
    blank value means "the target's default", never "no value"), anything else refused."""
    if not isinstance(options, dict):
        raise FieldError("user_options", "must be an object of option names and values")
    clean = {}
    for key, value in options.items():
        if isinstance(value, str):
            value = value.strip()
            if len(value) > MAX_TEXT:
                raise FieldError(key, f"is too long ({len(value)} characters; at most {MAX_TEXT})")
            bad = next((c for c in value if unicodedata.category(c) in REFUSED_CATEGORIES), None)
            if bad is not None:
                raise FieldError(key, f"may not contain control or invisible characters ({shown(bad)})")
            if not value:
                continue
        elif value is None:
            continue
        elif isinstance(value, bool) or not isinstance(value, int):
            raise FieldError(key, "must be text or a whole number")
        clean[key] = value
    return clean


def stored_options(raw) -> dict[str, str]:
    """What a page may show of a server's saved options. JupyterHub saves them unchecked (a PUT
    to the server's API takes any JSON), so pages never read them raw: only option names
    hpchub knows, with text or whole-number values free of control characters, cut."""
    if not isinstance(raw, dict):
        return {}
    shown_options = {}
    for key, value in raw.items():
        if key not in ("target", "image", *FIELDS) or isinstance(value, bool) or not isinstance(value, (str, int)):
            continue
        text = str(value).strip()[:MAX_TEXT]
        if text and not any(unicodedata.category(c) in REFUSED_CATEGORIES for c in text):
            shown_options[key] = text
    return shown_options


def resolve(target: Target, options, choices: Choices | None, user: str = "") -> dict:
    """The job's values for this target and these options, every one checked ({} for a login
    node). Without choices (None), values are checked for their form and against the target
    only, and the scheduler judges them (the Slurm spawner alone, as `hpchub-slurm` always did)."""
    values = _resolved(target, options, choices, user)
    if "walltime" in values:
        values["walltime"] = format_walltime(values["walltime"])
    return values


def job_request(target: Target, options, choices: Choices | None, user: str = "",
                scheduler: Scheduler | None = None) -> JobRequest | None:
    """The checked job, in the scheduler-neutral terms the adapters take (a partition is a
    `queue` there); None for a login-node target (whose options are checked all the same).
    Its name, script and output file are the batch launch's to fill in."""
    values = _resolved(target, options, choices, user)
    if target.kind == "login":
        return None
    request = JobRequest(name="jupyter", script="", queue=values.get("partition"), account=values.get("account"),
                         qos=values.get("qos"), walltime=values.get("walltime"), nodes=values.get("nodes", 1),
                         cores=values.get("cores"), memory_mb=values.get("memory_mb"), gpus=values.get("gpus", 0),
                         constraint=values.get("constraint"), reservation=values.get("reservation"))
    try:  # what the adapter would refuse is refused here, naming the option (not at submission)
        return scheduler.validate(request) if scheduler is not None else request.validate()
    except ValidationError as exc:
        field = {"queue": "partition"}.get(exc.field, exc.field)
        raise FieldError(field, str(exc)) from None  # (values that got here are short and typed)


def chosen_image(target: Target, options) -> str | None:
    """The container image of a server for this target and these options: the admin's, or the
    user's choice (`image`: a title or an image of the target's list), else None (no container).
    An image outside the admin's list, or a choice where the target offers none, is refused."""
    options = normalise(options)
    spec = target.container
    chosen = options.get("image")
    if chosen is None:
        return spec.image_for(None) if spec is not None else None
    if spec is None or not spec.choosable:
        raise FieldError("image", f"{target.title} runs no image of your choice")
    if not any(chosen in pair for pair in spec.images):
        raise FieldError("image", f"{shown(chosen)} is not one of the images offered here "
                                  f"({', '.join(title for title, _ in spec.images)})")
    return spec.image_for(chosen)


def _resolved(target: Target, options, choices: Choices | None, user: str) -> dict:
    values = dict(target.defaults)
    chosen_image(target, options)  # (checked here too: every option goes through this path)
    for key, raw in normalise(options).items():
        if key in ("target", "image"):
            continue
        if key not in FIELDS:
            raise FieldError(key, "is not an option here")
        value = _typed(key, raw)
        if key not in target.choose and value != target.defaults.get(key):
            raise FieldError(key, f"cannot be changed for {target.title}")
        values[key] = value
    if target.kind == "login":
        return {}
    return _checked(target, values, choices, user)


def _typed(key: str, raw):
    if key in NUMBERS:
        if isinstance(raw, int):
            return raw
        if not WHOLE.fullmatch(raw):
            raise FieldError(key, "must be a whole number")
        return int(raw)
    if not isinstance(raw, str):
        raise FieldError(key, "must be text")
    return raw


def _checked(target: Target, values: dict, choices: Choices | None, user: str) -> dict:
    partition = None
    if choices is None:
        for key in ("partition", "account", "qos", "reservation"):
            if values.get(key) and not NAME.fullmatch(values[key]):
                raise FieldError(key, f"{shown(values[key])} is not a name the scheduler takes")
        allowed = target.limits.get("partitions")
        if allowed is not None and values.get("partition") not in allowed:
            raise FieldError("partition", f"{shown(values.get('partition'))} is not one you can use here "
                                          f"({', '.join(allowed) or 'none'})")
    else:
        partition = _checked_names(target, values, choices, user)

    # The target's own limit applies to a job that names no time too: never bypassed by a
    # blank or missing walltime (the partition's default may be longer).
    limit = _min(parse_walltime(str(target.limits["max_walltime"])) if "max_walltime" in target.limits else None,
                 partition.max_walltime if partition else None)
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
        values["walltime"] = seconds
    elif "max_walltime" in target.limits:
        values["walltime"] = limit

    for key, (low, label) in NUMBERS.items():
        if key not in values:
            continue
        target_high, partition_high = target.limits.get(f"max_{key}"), _partition_limit(partition, key)
        high = _min(target_high, partition_high)
        if values[key] < low:
            raise FieldError(key, f"{label} must be at least {low}")
        if high is not None and values[key] > high:
            raise FieldError(key, _over_limit(label, high, partition.name if high == partition_high else None))

    constraint = values.get("constraint")
    if constraint:
        if not CONSTRAINT.fullmatch(constraint):
            raise FieldError("constraint", f"{shown(constraint)} has characters a constraint cannot have")
        if partition is not None:
            unknown = [f for f in constraint.split("&") if f not in partition.features]
            if unknown:  # (only the characters CONSTRAINT allows: shown as they are, cut)
                listed = ", ".join(unknown) if len(", ".join(unknown)) <= 60 else ", ".join(unknown)[:60] + "…"
                raise FieldError("constraint", f"no node of {shown(partition.name)} has {listed} "
                                               f"(features: {', '.join(sorted(partition.features)) or 'none'})")
    return {key: values[key] for key in FIELDS if values.get(key) not in (None, "")}


def _checked_names(target: Target, values: dict, choices: Choices, user: str):
    """Partition, account, QOS and reservation against what the scheduler lets this user use."""
    partitions = choices.partitions_for(target)
    partition_name = values.get("partition") or (partitions[0] if partitions else None)
    if partition_name not in partitions:
        raise FieldError("partition", f"{shown(partition_name)} is not one you can use here "
                                      f"({', '.join(partitions) or 'none'})")
    values["partition"] = partition_name
    account = values.get("account")
    if account:
        if account not in choices.accounts_for(target):
            raise FieldError("account", f"{shown(account)} is not an account of yours here "
                                        f"({', '.join(choices.accounts_for(target)) or 'none'})")
        association = choices.associations[account]
        if association.partitions and partition_name not in association.partitions:
            raise FieldError("account", f"account {shown(account)} cannot use partition {shown(partition_name)}")
    qos = values.get("qos")
    if qos and qos not in choices.qos_for(account):
        raise FieldError("qos", f"{shown(qos)} is not a QOS you can use"
                                + (f" with account {shown(account)}" if account else ""))
    reservation = values.get("reservation")
    if reservation and reservation not in choices.reservations_for(user):
        raise FieldError("reservation", f"{shown(reservation)} is not a reservation open to you")
    return choices.partitions[partition_name]


def _over_limit(label: str, high: int, partition: str | None) -> str:
    """Why a number is too high, in words: whose limit it is, and "no GPUs" rather than a range
    of 0 to 0."""
    where = shown(partition) if partition else "this target"
    if high == 0:
        return f"{where} has no {label}"
    return f"{label} can be at most {high} on {where}" if partition else f"{label} can be at most {high} here"


def _partition_limit(partition, key: str):
    if partition is None:
        return None
    return {"nodes": partition.nodes, "cores": partition.cores_per_node,
            "memory_mb": partition.memory_mb_per_node, "gpus": partition.gpus_per_node}[key]


def _min(*values):
    present = [v for v in values if v is not None]
    return min(present) if present else None
