"""One spawner for "where to run" (entry point ``hpchub``): the admin's targets on one spawn
page, each running the server on a login node (as hpchub-ssh) or in a batch job (as
hpchub-slurm). One spawner class with both launches, chosen per server by its target and
remembered in its state - not a wrapper around child spawners, whose state goes astray.

Every option, from the form or the REST API, is checked by targets.resolve against the
admin's targets and against what the scheduler lets this user ask for (partitions from
`sinfo`, the user's own associations from `sacctmgr`, reservations), read with the hub's
service account and cached.
"""

from __future__ import annotations

import asyncio
import grp
import os
import pwd
import time
from importlib import resources

import jinja2
from tornado import web
from traitlets import Dict, Float, List, Unicode, default

from . import metrics
from .batch import BatchSpawner
from .jobs import service_runner
from .remote import spawn_error
from .ssh import SSHSpawner
from .options import FieldError, normalise, resolve, shown, stored_options
from .targets import Choices, Target, TargetConfigError

DEFAULT_TARGETS = [
    {"name": "login", "title": "Login node", "kind": "login",
     "description": "Shared with other users; starts at once. For editing, small analyses and job control."},
    {"name": "compute", "title": "Compute node", "kind": "batch",
     "description": "A node of your own from the batch queue, up to 4 hours; may wait in the queue.",
     "defaults": {"nodes": 1, "walltime": "01:00:00"}, "choose": ["partition", "account", "qos", "walltime"],
     "limits": {"max_walltime": "04:00:00", "max_nodes": 1}},
]

# Cached scheduler facts: (cluster key, what) -> (time fetched, value).
_cache: dict[tuple, tuple[float, object]] = {}
_cache_locks: dict[tuple, asyncio.Lock] = {}
# A refused form (its options and field errors), shown again when JupyterHub renders the form.
_form_errors: dict[tuple[str, str], dict] = {}  # by (user, server)


def _template(name: str) -> jinja2.Template:
    text = resources.files("hpchub").joinpath("templates", name).read_text()
    return jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(text)


class HPCSpawner(BatchSpawner, SSHSpawner):
    """Login node or compute nodes, chosen on one spawn page."""

    targets = List(
        Dict(),
        default_value=DEFAULT_TARGETS,
        config=True,
        help="""The places a user may start a server, as cards on the spawn page, in order.
        Each is a dict:
        `name` (short, in the REST API's `user_options.target`), `title`, `description`,
        `kind` (`login`: on a login node over SSH; `batch`: in a batch job),
        `defaults` (job values: partition, account, qos, nodes, cores, memory_mb, gpus,
        walltime, reservation, constraint), `choose` (the fields the user may change),
        `limits` (`partitions`: allowed names; `max_walltime`, `max_nodes`, `max_cores`,
        `max_memory_mb`, `max_gpus`), and optionally `groups` (Unix groups) or `accounts`
        (Slurm accounts) to offer it only to their members. Values are checked again against
        what the scheduler allows each user.""",
    )

    choices_ttl = Float(300, config=True, help="""Seconds the scheduler's partitions, the users'
        associations and the reservations are cached for the spawn page and its checks.""")

    login_start_timeout = Float(120, config=True, help="start_timeout for login-node targets (batch"
                                " targets wait for the queue, bounded by max_queue_wait).")

    kind = Unicode("")  # the launch of the current server: "login" or "batch"
    target_name = Unicode("")

    # ----- targets and the scheduler's choices ---------------------------------------------
    def all_targets(self) -> list[Target]:
        try:
            return [Target.from_config(spec) for spec in self.targets]
        except TargetConfigError as exc:
            raise spawn_error("the hub's targets are misconfigured; the administrators have been told",
                              reason="config", log_message=f"HPCSpawner.targets: {exc}") from None

    def unix_groups(self) -> set[str]:
        try:
            entry = pwd.getpwnam(self.user.name)
        except KeyError:
            return set()
        return {grp.getgrgid(gid).gr_name for gid in os.getgrouplist(entry.pw_name, entry.pw_gid)}

    async def choices(self) -> Choices:
        adapter = self.adapter
        cluster = (self.scheduler, tuple(self._login_hosts()))
        partitions = await self._cached(cluster + ("partitions",), adapter.partitions_argv(), adapter.parse_partitions)
        associations = await self._cached(cluster + ("associations", self.user.name),
                                          adapter.associations_argv(self.user.name), adapter.parse_associations)
        reservations = await self._cached(cluster + ("reservations",), adapter.reservations_argv(),
                                          adapter.parse_reservations)
        return Choices(partitions, associations, tuple(reservations))

    async def _cached(self, key: tuple, argv: list[str], parse):
        lock = _cache_locks.setdefault(key, asyncio.Lock())
        async with lock:
            hit = _cache.get(key)
            if hit is not None and time.monotonic() - hit[0] < self.choices_ttl:
                return hit[1]
            run = service_runner(self.pool, self._login_hosts(), self.authenticator.service_account_credential)
            try:
                exit_status, stdout, stderr = await run(argv)
            except Exception as exc:  # SSHError and the like: the page says the scheduler is unreachable
                raise web.HTTPError(503, "the scheduler cannot be reached just now; try again shortly") from exc
            if exit_status != 0:
                self.log.error("%s exited %s: %s", " ".join(argv), exit_status, stderr.strip())
                raise web.HTTPError(503, f"the scheduler did not answer ({self.adapter.error_message(stderr)})")
            value = parse(stdout)
            _cache[key] = (time.monotonic(), value)
            return value

    def visible_targets(self, choices: Choices | None) -> list[Target]:
        """The targets this user may use. Without the scheduler's answer (choices None),
        only the targets that need nothing from it: login nodes not limited by account."""
        groups = self.unix_groups()
        visible = []
        for target in self.all_targets():
            if choices is None:
                if target.kind == "login" and not target.accounts and target.visible_to(groups, ()):
                    visible.append(target)
            elif target.visible_to(groups, choices.associations) and (
                    target.kind == "login" or choices.partitions_for(target)):
                visible.append(target)
        return visible

    async def check_user_options(self, options: dict) -> tuple[Target, dict]:
        """The target and job values for these options, or HTTP 400 naming the field.
        A login-node target is checked without asking the scheduler, so that logins to a
        login node work while the scheduler is down."""
        try:
            options = normalise(options)
        except FieldError as exc:
            raise web.HTTPError(400, str(exc)) from None
        name = options.get("target")
        if name is not None and not isinstance(name, str):
            raise web.HTTPError(400, "target: must be the name of a target")  # not [] or 0 taken for "none"
        plain = self.visible_targets(None)
        # Without a target: the first one this user may use (API callers who name none).
        target = next((t for t in plain if t.name == name), None) if name else (plain[0] if plain else None)
        choices = None
        if target is None:
            choices = await self.choices()
            targets = self.visible_targets(choices)
            wanted = name or (targets[0].name if targets else "")
            target = next((t for t in targets if t.name == wanted), None)
            if target is None:
                raise web.HTTPError(400, f"target: {shown(wanted)} is not a place you can start a server "
                                         f"({', '.join(t.name for t in targets)})")
        try:
            if target.kind == "login":
                return target, resolve(target, options, None, self.user.name)
            return target, resolve(target, options, choices or await self.choices(), self.user.name)
        except FieldError as exc:
            raise web.HTTPError(400, str(exc)) from None

    # ----- the form ------------------------------------------------------------------------
    @default("options_form")
    def _default_options_form(self):
        return lambda spawner: spawner.render_form()

    @default("options_from_form")
    def _default_options_from_form(self):
        return lambda formdata: self.form_to_options(formdata)

    @default("apply_user_options")
    def _default_apply_user_options(self):
        return lambda spawner, options: spawner.apply_options(options)

    def last_options(self) -> dict:
        """What the form starts from: a spawn link's options (hpchub.hubapp), else this server's
        last options, else those of the user's most recently started server (saved options
        are read through stored_options: JupyterHub keeps whatever a PUT sent)."""
        link = getattr(self.handler, "link_options", None)  # the handler of this page, if hpchub-hub's
        if link:
            return dict(link)
        if self.orm_spawner is not None and stored_options(self.orm_spawner.user_options):
            return stored_options(self.orm_spawner.user_options)
        spawners = [s for s in self.user.orm_spawners.values() if stored_options(s.user_options) and s.started]
        return stored_options(max(spawners, key=lambda s: s.started).user_options) if spawners else {}

    async def render_form(self) -> str:
        try:
            choices = await self.choices()
            unavailable = ""
        except web.HTTPError as exc:
            choices, unavailable = None, exc.log_message or "the scheduler cannot be reached just now"
        targets = self.visible_targets(choices)
        choices = choices or Choices({}, {})
        refused = _form_errors.pop((self.user.name, self.name), None)
        # After a refusal, the form shows what was sent, with the error next to its field.
        last = refused["options"] if refused else self.last_options()
        errors = refused["errors"] if refused else {}
        if not targets:
            raise web.HTTPError(503, unavailable or "there is no place you may start a server; ask the centre's staff")
        chosen = last.get("target") if any(t.name == last.get("target") for t in targets) else targets[0].name
        return _template("spawn_form.html").render(
            targets=targets, choices=choices, last=last, chosen=chosen, errors=errors, user=self.user.name,
            unavailable=unavailable,
            qos_by_account={a: choices.qos_for(a) for a in choices.associations},
            all_qos=choices.qos_for(None), reservations=choices.reservations_for(self.user.name))

    async def form_to_options(self, formdata: dict) -> dict:
        target = (formdata.get("target") or [""])[0]
        prefix = f"{target}."
        options = {"target": target}
        for key, values in formdata.items():
            if key.startswith(prefix) and values and values[0].strip():
                options[key[len(prefix):]] = values[0].strip()
        try:
            await self.check_user_options(options)
        except web.HTTPError as exc:
            field, _, message = (exc.log_message or "").partition(": ")
            _form_errors[(self.user.name, self.name)] = {"options": options, "errors": {field: message}}
            raise
        return options

    async def apply_options(self, options: dict) -> None:
        target, values = await self.check_user_options(options or {})
        self.kind, self.target_name = target.kind, target.name
        if target.kind == "login":
            self.start_timeout = int(self.login_start_timeout)
            return
        for key in ("partition", "account", "qos", "walltime", "constraint", "reservation"):
            setattr(self, key, str(values.get(key, "")))
        for key in ("nodes", "cores", "memory_mb", "gpus"):
            setattr(self, key, int(values.get(key, 0 if key != "nodes" else 1)))

    def user_job_values(self) -> dict:
        return {}  # apply_options has set every job value, checked

    # ----- dispatch by kind ----------------------------------------------------------------
    def server_argv(self) -> list[str]:
        return SSHSpawner.server_argv(self) if self.kind == "login" else BatchSpawner.server_argv(self)

    async def start(self):
        metrics.ACTIVE_SERVERS.track(self)
        began = time.monotonic()
        try:
            if self.resume_state:
                self.kind = self.resume_state.get("kind", "batch")
            if not self.kind:
                await self.apply_options(self.user_options or {})  # e.g. the hook was replaced by config
            if self.kind == "login":
                url = await SSHSpawner.start(self)
            else:
                url = await BatchSpawner.start(self)
        except BaseException as exc:  # counted, then raised unchanged (cancellation included)
            metrics.SPAWN_FAILURES.labels(kind=self.kind or "unknown", reason=metrics.failure_reason(exc)).inc()
            raise
        metrics.SPAWN_DURATION.labels(kind=self.kind, target=self.target_name).observe(time.monotonic() - began)
        return url

    async def poll(self):
        if self.kind == "login":
            return await SSHSpawner.poll(self)
        return await BatchSpawner.poll(self)

    async def stop(self, now=False):
        if self.kind == "login":
            await SSHSpawner.stop(self, now)
        else:
            await BatchSpawner.stop(self, now)
        self.kind = ""

    def get_state(self):
        state = super().get_state()
        if self.kind:
            state.update(kind=self.kind, target=self.target_name)
        return state

    def load_state(self, state):
        super().load_state(state)
        if state:
            metrics.ACTIVE_SERVERS.track(self)  # a server taken up again after a hub restart
        self.kind = state.get("kind", "")
        self.target_name = state.get("target", "")

    # ----- for the pages -------------------------------------------------------------------
    @property
    def where(self) -> str:
        """Where the server runs, for the hub's home page."""
        if self.kind == "login":
            return self.host_name
        return self.node

    @property
    def seconds_left(self) -> int | None:
        if self.kind != "batch" or not self.end_time:
            return None
        end = time.mktime(time.strptime(self.end_time, "%Y-%m-%dT%H:%M:%S"))
        return max(0, int(end - time.time()))
