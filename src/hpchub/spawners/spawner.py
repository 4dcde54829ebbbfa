"""hpchub's spawner: Jupyter on an HPC site, on a login node or in a batch job, chosen per server
by its target (entry point ``hpchub``: the admin's targets on one spawn page).

One class. What runs the server is an object it holds, made for the chosen target - a
LoginLaunch (login.py) or a BatchLaunch (batch.py) - which owns start, poll, stop and its part of
the saved state (state.py). The spawner checks options on the one path of options.py (for the
REST API, the form and the spawn alike), renders the form (form.py), and keeps the state.

hpchub-ssh and hpchub-slurm are presets of this class with one implicit target each, so that
their configurations (sections RemoteSpawner, SSHSpawner, BatchSpawner, SlurmSpawner) keep
working: see settings.py.
"""

from __future__ import annotations

import asyncio
import calendar
import functools
import grp
import os
import pwd
import time

from jupyterhub.spawner import SpawnException, Spawner
from tornado import web
from traitlets import default

from ..drain import read_drained
from ..remote import Host
from ..schedulers import SCHEDULERS
from ..schedulers.base import ValidationError
from . import metrics
from .batch import BatchLaunch
from .cluster import CONTEXTS, Cluster, ClusterKey, SchedulerUnavailable, TunnelService
from .cluster_config import DEFAULT_CLUSTER, ClusterConfig, ClusterConfigError, cluster_configs
from .form import ClusterGroup, Refusal, options_from, refusal_of, render
from .launch import Launch, spawn_error
from .login import LoginLaunch
from .options import FieldError, chosen_image, job_request, normalise, shown, stored_options
from .prespawn import CheckContext, Finding, QueryFailed, run_checks
from .prespawn import refusal as refusing_finding  # (render_form's `refusal` is a form's Refusal)
from .settings import LEGACY_SECTIONS, HPCSettings
from .state import BatchServer, LastServer, LoginServer, SpawnerState, dump, load
from .targets import Choices, Target, TargetConfigError

PRE_SPAWN_TTL = 60.0  # seconds a pre-spawn check's query is reused: a limit raised shows within a minute

DEFAULT_TARGETS = [
    {"name": "login", "title": "Login node", "kind": "login",
     "description": "Shared with other users; starts at once. For editing, small analyses and job control."},
    {"name": "compute", "title": "Compute node", "kind": "batch",
     "description": "A node of your own from the batch queue, up to 4 hours; may wait in the queue.",
     "defaults": {"nodes": 1, "walltime": "01:00:00"}, "choose": ["partition", "account", "qos", "walltime"],
     "limits": {"max_walltime": "04:00:00", "max_nodes": 1}},
]


async def no_service_account():
    raise RuntimeError("hpchub's spawners need hpchub's authenticator (a CredentialIssuingAuthenticator), which "
                       "holds the service account's certificate for the scheduler's queries")


def hpchub_form(spawner: "HPCSpawner"):
    """hpchub's spawn form (JupyterHub's options_form, as a callable), which shows a refusal
    next to its field."""
    return spawner.render_form()


class HPCSpawner(HPCSettings, Spawner):
    """Login node or compute nodes, chosen per server by its target."""

    @classmethod
    def section_names(cls) -> list[str]:
        # c.HPCSpawner.*, with hpchub 0.1's sections before it (see settings.py); HPCSettings
        # is where the settings are declared, not a section of its own.
        names = [name for name in super().section_names() if name != "HPCSettings"]
        at = names.index("HPCSpawner")
        return [*names[:at], *(n for n in LEGACY_SECTIONS if n not in names), *names[at:]]

    @default("targets")
    def _default_targets(self):
        return DEFAULT_TARGETS

    def __init__(self, **kwargs):
        self.launch: Launch | None = None  # what runs the current server
        self.target_name = ""
        self.container_image: str | None = None  # the image its servers run in (the target's, or chosen)
        self.cluster_name = ""  # the cluster the current server runs on (saved with it)
        self.last_outcome: dict = {}  # how the last server ended, kept after stop for the pages
        self.last_server: LastServer | None = None  # where its output is, kept after stop for the pages
        self.refusal: Refusal | None = None  # this server's last refused form
        self.trouble = ""  # what keeps a running server from being reached, for the pages
        self._resuming = False
        self._events: list[dict] = []
        self._new_event = asyncio.Event()
        super().__init__(**kwargs)

    # ----- the clusters --------------------------------------------------------------------
    def default_cluster_config(self) -> ClusterConfig:
        """The default cluster: the one this spawner's own settings describe."""
        return ClusterConfig(DEFAULT_CLUSTER, self.cluster_title or "Cluster", self.scheduler,
                             tuple(self.login_nodes), float(self.status_interval))

    def cluster_configs(self) -> dict[str, ClusterConfig]:
        """Every cluster of the hub by name: the default one (this spawner's own settings) and
        those of `clusters`."""
        # The extra issuers a cluster may name: the authenticator's (others have none).
        issuers = getattr(self.authenticator, "extra_issuers", None)
        try:
            return cluster_configs(self.clusters, self.default_cluster_config(),
                                   set(issuers) if isinstance(issuers, dict) else None)
        except ClusterConfigError as exc:
            raise spawn_error("the hub's clusters are misconfigured; the administrators have been told",
                              reason="config", log_message=f"HPCSpawner.clusters: {exc}") from None

    def cluster_config_of(self, target: Target | None) -> ClusterConfig:
        """The cluster a target runs on (None: the default cluster)."""
        return self.cluster_configs()[target.cluster if target else DEFAULT_CLUSTER]

    @property
    def cluster_config(self) -> ClusterConfig:
        """The cluster this server runs on: the one it started on (saved with it, so that a target
        moved to another cluster since does not send its job's queries elsewhere), else its
        target's."""
        configs = self.cluster_configs()
        if self.cluster_name in configs:
            return configs[self.cluster_name]
        return self.cluster_config_of(self.target)

    def cluster_of(self, config: ClusterConfig) -> Cluster:
        """The hub's one context of that cluster (SSH connections, job watcher, cached choices)."""
        key = ClusterKey(config.scheduler, self.known_hosts, tuple(Host.from_node(n) for n in config.login_nodes),
                         config.options_key(), config.service_account, config.issuer)
        # The hub's one authenticator holds the service accounts' certificates.
        issue = getattr(self.authenticator, "service_account_credential", None)
        credential = (functools.partial(issue, config.service_account, config.issuer) if issue
                      else no_service_account)
        return CONTEXTS.cluster(key, connect_timeout=self.connect_timeout, log=self.log, service_credential=credential)

    @property
    def cluster(self) -> Cluster:
        """The context of the cluster this server's target runs on."""
        return self.cluster_of(self.cluster_config)

    @property
    def tunnels(self) -> TunnelService:
        return CONTEXTS.tunnel_service(self.tunnel_socket, self.known_hosts, self.log, self.start_tunnel_service)

    def drained_login_nodes(self) -> dict[str, dict]:
        """The login nodes drained for maintenance (drain_file), read each time it is asked."""
        if not self.drain_file:
            return {}
        try:
            return read_drained(self.drain_file)
        except ValueError as exc:  # a broken file drains nothing, and says so in the log
            self.log.error("%s", exc)
            return {}

    @property
    def notice(self) -> str:
        """What the home page tells the user about a running server: its login node is drained,
        or its cluster's scheduler does not answer (so its job's state is not known just now)."""
        if self.launch is None:
            return ""
        drained = self.drained_login_nodes()
        for node in sorted(self.launch.hosts_used() & set(drained)):
            message = drained[node].get("message") or "maintenance"
            return (f"login node {node} is being drained ({message}): stop your server and start it again "
                    "to move it to another node")
        if self.launch.kind == "batch" and self.launch.job_id and self.cluster.scheduler_trouble():
            return (f"the scheduler of the {self.cluster_config.title} does not answer just now, so the state "
                    f"of job {self.launch.job_id} is not known")
        return ""

    @property
    def kind(self) -> str:
        return self.launch.kind if self.launch else ""

    # ----- targets and the one check of options ---------------------------------------------
    def target_specs(self) -> list[dict]:
        """The targets as configured (the presets have one implicit target instead)."""
        return self.targets

    def all_targets(self) -> list[Target]:
        try:
            targets = [Target.from_config(spec) for spec in self.target_specs()]
            names = set(self.clusters) | {DEFAULT_CLUSTER}
            for target in targets:
                if target.cluster not in names:
                    raise TargetConfigError(f"target {target.name!r}: cluster {target.cluster!r} is not one of "
                                            f"HPCSpawner.clusters ({', '.join(sorted(names))})")
            for target in targets:
                self._check_with_its_cluster(target)
            return targets
        except TargetConfigError as exc:
            raise spawn_error("the hub's targets are misconfigured; the administrators have been told",
                              reason="config", log_message=f"HPCSpawner.targets: {exc}") from None

    def _check_with_its_cluster(self, target: Target) -> None:
        """What only the target's cluster can tell: its login nodes exist there, and its adapter
        takes its scheduler_args."""
        if not (target.login_nodes or target.scheduler_args):
            return
        config = self.cluster_configs()[target.cluster]
        known = [node["name"] for node in config.login_nodes]
        unknown = [name for name in target.login_nodes if name not in known]
        if unknown:
            raise TargetConfigError(f"target {target.name!r}: login nodes {unknown} are not {config.title}'s "
                                    f"({', '.join(known)})")
        try:
            SCHEDULERS[config.scheduler](**config.scheduler_options).check_scheduler_args(target.scheduler_args)
        except ValidationError as exc:
            raise TargetConfigError(f"target {target.name!r}: scheduler_args: {exc}") from None

    @property
    def target(self) -> Target | None:
        """The target of the current server (None: none chosen yet)."""
        return next((t for t in self.all_targets() if t.name == self.target_name), None) if self.target_name else None

    def _needs_scheduler(self, target: Target) -> bool:
        return bool(target.accounts) or (target.kind == "batch" and self.check_against_scheduler)

    def unix_groups(self) -> set[str]:
        try:
            entry = pwd.getpwnam(self.user.name)
        except KeyError:
            return set()
        return {grp.getgrgid(gid).gr_name for gid in os.getgrouplist(entry.pw_name, entry.pw_gid)}

    async def choices(self, config: ClusterConfig) -> Choices:
        """What that cluster's scheduler lets this user ask for (HTTP 503 if it cannot be asked)."""
        try:
            return await self.cluster_of(config).choices(self.user.name, self.choices_ttl)
        except SchedulerUnavailable as exc:
            self.log.error("Asking the scheduler of cluster %s for the spawn page: %s", config.name, exc.log_detail)
            raise web.HTTPError(503, exc.user_message) from None

    def visible_targets(self, choices: dict[str, Choices | None] | None = None) -> list[Target]:
        """The targets this user may use, given the schedulers' answers by cluster name. Where a
        cluster's scheduler was not asked (or did not answer), only the targets that need
        nothing from it (login nodes not limited by account, ...)."""
        groups, visible = self.unix_groups(), []
        for target in self.all_targets():
            answer = (choices or {}).get(target.cluster)
            if answer is None:
                if not self._needs_scheduler(target) and target.visible_to(groups, ()):
                    visible.append(target)
            elif target.visible_to(groups, answer.associations) and (
                    target.kind == "login" or answer.partitions_for(target)):
                visible.append(target)
        return visible

    async def check_user_options(self, options):
        """(target, job request or None) for these options, or HTTP 400 naming the field. The one
        check of every request: the REST API (hpchub.hubapp, before a spawn), the form, the spawn.
        Targets that need nothing from the scheduler are checked without asking it, so that
        logins to a login node work while the scheduler is down."""
        try:
            options = normalise(options)
        except FieldError as exc:
            raise web.HTTPError(400, str(exc)) from None
        name = options.get("target")
        if name is not None and not isinstance(name, str):
            raise web.HTTPError(400, "target: must be the name of a target")  # not [] or 0 taken for "none"
        plain = self.visible_targets()
        # Without a target: the first one this user may use (API callers who name none).
        target = next((t for t in plain if t.name == name), None) if name else (plain[0] if plain else None)
        asked: dict[str, Choices | None] = {}
        if target is None:
            # Ask the scheduler of the named target's cluster (without a name: of each cluster in
            # the targets' order, until one offers this user a target); never a hub whose
            # targets need no scheduler.
            for spec in self.all_targets():
                if (name and spec.name != name) or not self._needs_scheduler(spec):
                    continue
                config = self.cluster_config_of(spec)
                if config.name not in asked:
                    asked[config.name] = await self.choices(config)
                target = next((t for t in self.visible_targets(asked) if t.name == spec.name), None)
                if target is not None:
                    break
            if target is None:
                offered = self.visible_targets(asked)
                wanted = name or (offered[0].name if offered else "")
                raise web.HTTPError(400, f"target: {shown(wanted)} is not a place you can start a server "
                                         f"({', '.join(t.name for t in offered)})")
        config = self.cluster_config_of(target)
        choices = asked.get(config.name)
        try:
            request = job_request(target, options, choices, self.user.name, self.cluster_of(config).adapter)
        except FieldError as exc:
            raise web.HTTPError(400, str(exc)) from None
        if request is not None and choices is not None:
            refused = refusing_finding(await self.pre_spawn_findings(config, choices), request.account or "")
            if refused is not None:
                raise web.HTTPError(400, f"account: {refused.message}")
        return target, request

    async def pre_spawn_findings(self, config: ClusterConfig, choices: Choices) -> list[Finding]:
        """What the pre-spawn checks find for this user on that cluster (prespawn.py)."""
        if not self.pre_spawn_checks:
            return []
        cluster = self.cluster_of(config)
        ttl = min(self.choices_ttl, PRE_SPAWN_TTL)

        async def query(argv: list[str]) -> str:
            try:
                return await cluster.ask_text(argv, ttl)
            except SchedulerUnavailable as exc:
                raise QueryFailed(exc.log_detail) from None

        context = CheckContext(self.user.name, config.title, config.scheduler, tuple(sorted(choices.associations)),
                               query)
        return await run_checks(self.pre_spawn_checks, context, self.log)

    # ----- JupyterHub's option hooks --------------------------------------------------------
    @default("options_form")
    def _default_options_form(self):
        return hpchub_form

    @default("options_from_form")
    def _default_options_from_form(self):
        return self.form_options

    @default("apply_user_options")
    def _default_apply_user_options(self):
        return lambda spawner, options: spawner.apply_options(options)

    async def form_options(self, formdata: dict) -> dict:
        options = options_from(formdata)
        try:
            await self.check_user_options(options)
        except web.HTTPError as exc:
            self.refusal = refusal_of(options, exc.log_message or "")
            # The page says it once, in words: next to its field when the form shows that field
            # (nothing above the form), else above it as "field: why" - never "HTTP 400: Bad
            # Request (...)", JupyterHub's rendering of the exception (its jupyterhub_message).
            exc.jupyterhub_message = "" if self._shown_at_its_field(options, self.refusal) else exc.log_message
            raise
        return options

    def _shown_at_its_field(self, options: dict, refusal: Refusal) -> bool:
        if self.options_form is not hpchub_form:  # a preset without a form, or the admin's own form
            return False
        # (all targets: whether one is offered to this user needs the scheduler's answer; the
        # form shows its fields whenever it shows the target)
        target = next((t for t in self.all_targets() if t.name == options.get("target")), None)
        shown_fields = set(target.choose if target is not None and target.kind == "batch" else ())
        if target is not None and target.container is not None and target.container.choosable:
            shown_fields.add("image")
        return target is not None and bool(shown_fields) and set(refusal.errors) <= shown_fields

    async def apply_options(self, options) -> None:
        """The launch for these (checked) options; a spawn resumed after a restart keeps its job."""
        target, request = await self.check_user_options(options or {})
        self.target_name, self.cluster_name = target.name, target.cluster
        self.container_image = chosen_image(target, options or {})
        self.start_timeout = (int(self.login_start_timeout) if target.kind == "login"
                              else int(self.max_queue_wait + self.ready_timeout + 600))
        if not self._resuming:
            self.launch = LoginLaunch(self) if target.kind == "login" else BatchLaunch(self, request=request)

    def resume_from(self, saved: dict) -> None:
        """Follow the queued job of this saved state when the spawn starts (hpchub.hubapp, at
        start-up, for states that state.is_resumable accepts), instead of submitting a new one."""
        state = load(saved)
        self.target_name, self.cluster_name = state.target, state.cluster
        self.launch = BatchLaunch(self, server=state.server)
        self.launch.resume()
        self._resuming = True

    # ----- the form --------------------------------------------------------------------------
    def last_options(self) -> dict:
        """What the form starts from: a spawn link's options (hpchub.hubapp), else this server's
        last options, else those of the user's most recently started server (saved options are
        read through stored_options: JupyterHub keeps whatever a PUT sent)."""
        link = getattr(self.handler, "link_options", None)  # the handler of this page, if hpchub-hub's
        if link:
            return dict(link)
        if self.orm_spawner is not None and stored_options(self.orm_spawner.user_options):
            return stored_options(self.orm_spawner.user_options)
        spawners = [s for s in self.user.orm_spawners.values() if stored_options(s.user_options) and s.started]
        return stored_options(max(spawners, key=lambda s: s.started).user_options) if spawners else {}

    async def render_form(self) -> str:
        """One section per cluster that offers this user a target (a hub of one cluster shows
        no headings), each with its scheduler's choices, asked of all clusters at once; a
        cluster whose scheduler does not answer offers what needs nothing from it, and says so."""
        configs = self.cluster_configs()
        targets = self.all_targets()
        order = list(dict.fromkeys(t.cluster for t in targets))

        async def ask(name: str) -> tuple[Choices | None, str, list[Finding]]:
            if not any(self._needs_scheduler(t) for t in targets if t.cluster == name):
                return None, "", []
            try:
                choices = await self.choices(configs[name])
            except web.HTTPError as exc:
                return None, exc.log_message or "the scheduler cannot be reached just now", []
            return choices, "", await self.pre_spawn_findings(configs[name], choices)

        answers = dict(zip(order, await asyncio.gather(*(ask(name) for name in order))))
        choices = {name: answer[0] for name, answer in answers.items()}
        visible = self.visible_targets(choices)
        groups = []
        for name in order:
            mine = [t for t in visible if t.cluster == name]
            if mine:
                groups.append(ClusterGroup(name, configs[name].title, self.cluster_of(configs[name]).state(),
                                           mine, choices[name], answers[name][1], tuple(answers[name][2])))
        if not groups:
            unavailable = next((answer[1] for answer in answers.values() if answer[1]), "")
            raise web.HTTPError(503, unavailable or "there is no place you may start a server; ask the centre's staff")
        refusal, self.refusal = self.refusal, None
        notice = ""
        sent = getattr(self.handler, "link_query", None) if refusal is None else None
        if sent:
            # A spawn link's options are checked as soon as the form opens, as they were sent
            # (the form shows only what stored_options lets through), like a posted form's:
            # what is wrong shows at its field (or, for a field the form does not show, above
            # it), before the user presses Start.
            try:
                await self.check_user_options(sent)
            except web.HTTPError as exc:
                if exc.status_code == 400:
                    shown_options = stored_options(sent)
                    refusal = refusal_of(shown_options, exc.log_message or "")
                    if not self._shown_at_its_field(shown_options, refusal):
                        notice = f"The link's settings cannot be used: {exc.log_message}"
        return render(groups, last=self.last_options(), refusal=refusal, user=self.user.name,
                      headings=len(order) > 1, notice=notice)

    # ----- the Spawner contract ---------------------------------------------------------------
    def get_env(self):
        """JupyterHub's environment for the server, and which cluster and batch system it runs
        on (the magics load that scheduler's: hpchub.cluster.scheduler_here)."""
        env = super().get_env()
        target = self.target
        if target is not None:
            env.update(target.environment)  # (never JUPYTERHUB_ or HPCHUB_ names: Target.from_config)
        config = self.cluster_config
        env["HPCHUB_CLUSTER"], env["HPCHUB_SCHEDULER"] = config.name, config.scheduler
        return env

    @property
    def all_setup_lines(self) -> list[str]:
        """The hub's setup lines, then the target's."""
        target = self.target
        return [*self.setup_lines, *(target.setup_lines if target is not None else ())]

    async def start(self):
        metrics.ACTIVE_SERVERS.track(self)
        began = time.monotonic()
        self._events = []
        self.last_outcome = {}  # (how the previous server ended no longer applies)
        try:
            if self.launch is None:  # e.g. apply_user_options replaced by the configuration
                await self.apply_options(self.user_options or {})
            self._resuming = False
            url = await self.launch.start()
        except BaseException as exc:  # counted, then raised unchanged (cancellation included)
            metrics.SPAWN_FAILURES.labels(kind=self.kind or "unknown", reason=metrics.failure_reason(exc)).inc()
            raise
        metrics.SPAWN_DURATION.labels(kind=self.kind, target=self.target_name).observe(time.monotonic() - began)
        return url

    async def poll(self):
        launch = self.launch
        if launch is None:
            return 0
        if launch.released:  # ended, and released: asked again by JupyterHub's own stop path
            return launch.ended_with
        status = await launch.poll()
        if status is not None:
            launch.ended_with = status
            await self._release(launch)
        return status

    async def _release(self, launch: Launch) -> None:
        """A server that ended on its own (its job ended, its process exited, its node went):
        what Stop would release, released now. JupyterHub calls stop() only for a server that
        poll() says still runs, so without this its tunnels (a reverse forward and a session on
        the login node), its job's place in the watcher, a job held in error, a login server's
        leftover kernels would stay until the tunnel service restarts."""
        if launch.released:
            return
        launch.released = launch.stopping = True
        try:
            await launch.stop()
        except SpawnException as exc:  # its node may be unreachable: the log says what is left
            self.log.warning("%s: releasing what its ended server held: %s", self._log_name, exc.log_message)

    async def stop(self, now=False):
        if self._check_pending and self.launch is not None and not self.last_outcome:
            # JupyterHub's start-up check stops a server that did not answer: say so on the pages.
            self.record_outcome("your server did not answer when the hub restarted, and was stopped")
        if self.launch is not None:
            self.launch.stopping = True
            await self.launch.stop()
        self.launch = None

    def get_state(self):
        server = self.launch.saved() if self.launch is not None else None
        if server is not None and not server.server_id:
            server = None
        if server is not None:
            self.last_server = LastServer.of(server, self.cluster_name)
        state = SpawnerState(self.kind, self.target_name, server, self.last_outcome, self.cluster_name,
                             self.last_server)
        return {**super().get_state(), **dump(state)}

    def load_state(self, state):
        super().load_state(state)
        try:
            saved = load(state)
        except ValueError as exc:  # a state of a newer hpchub (a downgrade): not misread, and said
            self.log.error("%s: %s; its server is left alone", self._log_name, exc)
            return
        self.target_name, self.last_outcome, self.cluster_name = saved.target, saved.last_outcome, saved.cluster
        self.last_server = saved.last_server
        if saved.server is not None and saved.cluster and saved.cluster not in self._cluster_names():
            # Its cluster was taken out of the configuration: nothing here can reach it any more,
            # and no other cluster's scheduler may be asked about (or cancel) its job.
            self.log.error("%s: its server runs on cluster %r, which is no longer in HPCSpawner.clusters; "
                           "it is left alone", self._log_name, saved.cluster)
            return
        if isinstance(saved.server, LoginServer):
            self.launch = LoginLaunch(self, saved.server)
        elif isinstance(saved.server, BatchServer):
            self.launch = BatchLaunch(self, server=saved.server)
        if self.launch is not None:
            metrics.ACTIVE_SERVERS.track(self)  # a server taken up again after a hub restart

    def _cluster_names(self) -> set[str]:
        try:
            return set(self.cluster_configs())
        except SpawnException:  # misconfigured: said at the first page; the saved cluster is taken as it is
            return {self.cluster_name}

    def clear_state(self):
        super().clear_state()
        if not self._resuming:  # (JupyterHub clears the state before every start)
            self.launch = None
            self.cluster_name = ""

    # ----- what launches tell the spawner -------------------------------------------------------
    def event(self, message: str, progress: int, **fields) -> None:
        self._events.append({"progress": progress, "message": message, **fields})
        self._new_event.set()  # wake progress() at once: JupyterHub stops reading when the spawn ends
        self.log.info("%s: %s", self._log_name, message)

    def save_state(self) -> None:
        """Write the state to the hub's database now (JupyterHub itself does so only after
        start() returns, which for a queued job may be hours away)."""
        if self.orm_spawner is not None:
            self.orm_spawner.state = self.get_state()
            self.db.commit()

    def record_outcome(self, message: str, **fields) -> None:
        self.last_outcome = {"message": message, **fields}

    def moved_to(self, local_port: int) -> None:
        """The tunnel to the server was rebuilt on another port: the proxy's route follows at
        the hub's next check of its routes."""
        if self.server is not None:
            self.server.port = local_port
        self.save_state()

    async def progress(self):
        sent = 0
        while True:
            while sent < len(self._events):
                yield self._events[sent]
                sent += 1
            if self._spawn_future is not None and self._spawn_future.done():
                break
            self._new_event.clear()
            try:
                async with asyncio.timeout(1):
                    await self._new_event.wait()
            except asyncio.TimeoutError:
                pass

    # ----- for the pages ---------------------------------------------------------------------------
    @property
    def where(self) -> str:
        """Where the server runs: a login node, or the job's first node."""
        return self.launch.where if self.launch else ""

    @property
    def job_id(self) -> str:
        return self.launch.job_id if self.launch else ""

    @property
    def submitted_at(self) -> str:
        """When the batch job was submitted (ISO, UTC; "" for none)."""
        return self.launch.submitted_at if self.launch else ""

    @property
    def end_time(self) -> str:
        return self.launch.end_time if self.launch else ""

    @property
    def waiting_in_queue(self) -> bool:
        """A batch job waiting in the queue (hpchub.hubapp: it does not count as a spawn in progress)."""
        return bool(self.launch and self.launch.waiting_in_queue)

    @property
    def seconds_left(self) -> int | None:
        """Until the job's time limit; its end time is UTC (the hub asks the scheduler in UTC)."""
        if not self.end_time:
            return None
        end = calendar.timegm(time.strptime(self.end_time, "%Y-%m-%dT%H:%M:%S"))
        return max(0, int(end - time.time()))
