"""JupyterHub with a few changes for servers that wait in a batch queue (command ``hpchub-hub``,
run in place of ``jupyterhub``; same options and configuration).

1. **A hub restart keeps queued spawns.** At start-up JupyterHub checks every spawner that
   has a server record (`init_spawners` -> `check_spawner` in jupyterhub/app.py): it polls
   it and, if it claims to be running, waits `http_timeout` for it to answer, then stops it.
   A job still waiting in the queue cannot answer, so it would be cancelled by every restart.
   Here such spawners (those whose saved state `spawners.state.is_resumable` accepts: a batch
   job the scheduler accepted and whose server has not answered yet) are taken out of that
   check and their spawn is resumed: the user sees the pending page with its Stop button
   again, and `start()` follows the same job instead of submitting a new one
   (HPCSpawner.resume_from). Everything else goes through JupyterHub's own check unchanged.

2. **Queued jobs do not count against `concurrent_spawn_limit`.** The limit protects the hub
   from many spawns doing work at once; a job waiting in the queue costs the hub nothing, and
   fifty of them must not stop another user from starting a server on a login node. Spawners
   that report `waiting_in_queue` are left out of the count of pending spawns.

3. **Options are checked before a spawn begins.** JupyterHub applies `user_options` inside the
   spawn, which the REST API answers with 202 after `slow_spawn_timeout`, so a bad option could
   surface as a failed spawn instead of HTTP 400. For spawners with `check_user_options`
   (hpchub's), a POST to the server API checks the options first and refuses bad ones with 400
   and a message naming the field; the spawn checks them again (the same function).

4. **Tunnels come back after their service died.** The tunnel service keeps its tunnels in
   memory only; when it restarts (or is found gone and restarted here), every running server's
   tunnels are rebuilt on their saved ports within `tunnel_check_interval` seconds, with the
   users' credentials from auth_state (`Launch.ensure_tunnels`). Servers are never declared
   stopped for it; each server's poll rebuilds its own tunnels too (at a hub start, before
   JupyterHub's check asks the server to answer).

5. **A restarted proxy gets its routes back within seconds.** With the proxy run as a daemon
   of its own (`ConfigurableHTTPProxy.should_start = False`, so that a hub restart keeps every
   route), JupyterHub puts routes back only every `last_activity_interval` (5 minutes): a proxy
   that crashed and was restarted would send every user to an error page until then. Every
   `route_check_interval` seconds this hub compares the proxy's routes with its servers (one
   GET of the routing table) and adds what is missing.

6. **hpchub's pages** come first in `template_paths`: the pending page shows the batch job's
   state, reason, expected start and time waited (and its Stop stops that server, named ones
   too); the home page shows each server as a card: where it runs, its job, its state in
   words, the time left, and buttons to open, stop, relaunch, edit and relaunch, and read its
   output (output_page.py).
"""

from __future__ import annotations

import asyncio
import os
import sys
from importlib import resources
from urllib.parse import parse_qsl, urlencode

from jupyterhub import orm
from jupyterhub.apihandlers.users import UserServerAPIHandler
from jupyterhub.app import JupyterHub
from jupyterhub.handlers.pages import SpawnHandler
from jupyterhub.scopes import needs_scope
from jupyterhub.user import UserDict
from tornado import web
from tornado.httpclient import HTTPClientError
from tornado.ioloop import PeriodicCallback
from traitlets import Float, Unicode, default

from jupyterhub.metrics import RUNNING_SERVERS

from .announcement import AnnouncementFile
from .limits import raise_open_files_limit
from .output_page import URL as OUTPUT_URL, ServerOutputHandler
from .remote import SSHError
from .revocation import RevocationWatcher
from .spawners.cards import session_card
from .spawners.options import shown, stored_options
from .spawners.spawner import HPCSpawner
from .spawners.state import is_resumable

# The query arguments of /hub/spawn that JupyterHub reserves for itself (not options).
RESERVED_QUERY = ("next", "display_name")


class CheckingUserServerAPIHandler(UserServerAPIHandler):
    """POST /users/:name/servers/:server with the options checked before anything starts."""

    @needs_scope("start:servers")
    async def post(self, user_name, server_name=""):
        user = self.find_user(user_name)
        if user is not None:
            # The server named in the URL, loaded or not: dict.get, because the spawner dict's
            # [] would create one. (An active one is refused by JupyterHub as already running.)
            named = dict.get(user.spawners, server_name)
            # The check depends on the hub's configuration and the user, not on a server's
            # state: any spawner of this user can make it, the default one when the named
            # server is not loaded.
            checker = named if named is not None else user.spawner
            check = getattr(checker, "check_user_options", None)
            if check is not None and (named is None or not named.active):
                options = (self.get_server_json_body() or {}).get("user_options")
                if options is None:  # JupyterHub then starts the server with its saved options
                    saved = user.orm_spawners.get(server_name)
                    options = (saved.user_options if saved is not None else None) or {}
                await check(options)
        return await super().post(user_name, server_name)


def refuse_undecodable(arguments: dict) -> None:
    """HTTP 400 for a request argument that is not UTF-8 text (JupyterHub's own handlers answer
    500: docs/explanation/upstream.md)."""
    for key, values in arguments.items():
        for value in values:
            try:
                value.decode("utf-8")
            except UnicodeDecodeError:
                raise web.HTTPError(400, f"{shown(key)}: is not UTF-8 text") from None


class FormFirstSpawnHandler(SpawnHandler):
    """/hub/spawn/USER[/SERVER]: a GET never starts a server from the options in its query.

    JupyterHub starts a server at once for `GET /hub/spawn/alice/x?opt-target=...`, with no
    XSRF check: a link on another site could submit a costly job in the user's name. Here such
    a link opens the spawn form filled in with its options (`link_options`, read by hpchub's
    form), or, for a spawner without a form, a page that asks; only the user's POST (with its
    XSRF token) starts the server.
    """

    link_options: dict = {}  # a spawn link's options, as a page may show them (stored_options)
    link_query: dict = {}  # the same as the link sent them, for the form's check (HPCSpawner.render_form)
    server_name = ""  # of a POST, for the form shown again after a refusal

    @web.authenticated
    def get(self, user_name=None, server_name=""):
        refuse_undecodable(self.request.query_arguments)
        query = {key: [v.decode("utf-8") for v in values] for key, values in self.request.query_arguments.items()
                 if key not in RESERVED_QUERY}
        if query:
            self.link_query = {k: v[0] for k, v in self._get_user_options(query).items()}
            self.link_options = stored_options(self.link_query)
            # JupyterHub's GET would spawn with whatever query options it finds: it sees none.
            self.request.query_arguments = {k: v for k, v in self.request.query_arguments.items()
                                            if k in RESERVED_QUERY}
        return super().get(user_name, server_name)

    @web.authenticated
    def post(self, user_name=None, server_name="", display_name=""):
        refuse_undecodable(self.request.body_arguments)
        self.server_name = server_name or ""
        return super().post(user_name, server_name, display_name)

    async def _render_form(self, for_user, spawner_options_form, message="", html_message=""):
        # After a refused POST, JupyterHub renders the *default* server's form (user.spawner),
        # whatever server was asked for: render the form of the server this page is about, so
        # that its refusal shows next to its field (docs/explanation/upstream.md).
        if self.request.method == "POST" and self.server_name:
            spawner = for_user.spawners[self.server_name]
            spawner.handler = self
            spawner_options_form = await spawner.get_options_form()
        # JupyterHub adds `_xsrf` to this page's own URL for the form's action: after each
        # refusal the URL grew by one more. Added once.
        path, _, query = self.request.uri.partition("?")
        kept = [(key, value) for key, value in parse_qsl(query, keep_blank_values=True) if key != "_xsrf"]
        self.request.uri = path + (f"?{urlencode(kept)}" if kept else "")
        return await super()._render_form(for_user, spawner_options_form, message, html_message)

    async def _wrap_spawn_single_user(self, user, server_name, display_name, spawner, pending_url, options=None):
        if self.request.method == "GET" and self.link_options:
            # A spawner without a form, opened by a link with options: ask before starting.
            html = await self.render_template("hpchub_confirm_spawn.html", for_user=user, server_name=server_name,
                                              options=self.link_options, action=self.request.path)
            return self.finish(html)
        return await super()._wrap_spawn_single_user(user, server_name, display_name, spawner, pending_url, options)


def tied_to_this_hub(spec: dict) -> dict:
    """A managed service's spec (one with a command), changed so that the service ends with
    this hub (hpchub.lifeline) and carries the hub's HPCHUB_* markers (the demo site's instance
    marker, by which `hpchub site down` and the tests find every process of an instance)."""
    if not spec.get("command"):
        return spec
    command = [spec["command"]] if isinstance(spec["command"], str) else list(spec["command"])
    markers = {key: value for key, value in os.environ.items() if key.startswith("HPCHUB_")}
    return {**spec, "environment": {**markers, **spec.get("environment", {})},
            "command": [sys.executable, "-m", "hpchub.lifeline", str(os.getpid()), "--", *command]}


class QueueAwareUserDict(UserDict):
    def count_active_users(self):
        counts = super().count_active_users()
        queued = sum(1 for user in self.values() for spawner in user.spawners.values()
                     if spawner.pending == "spawn" and isinstance(spawner, HPCSpawner) and spawner.waiting_in_queue)
        counts["spawn_pending"] -= queued
        counts["queued"] = queued
        return counts


class HPCHub(JupyterHub):
    name = "hpchub-hub"

    route_check_interval = Float(
        10,
        config=True,
        help="""Seconds between checks that the proxy still has a route for every running
        server (and adds any it lost, e.g. after the proxy was restarted on its own). 0: only
        JupyterHub's own check every `last_activity_interval`.""",
    )

    tunnel_check_interval = Float(
        3,
        config=True,
        help="""Seconds between checks that the tunnel service runs and has not restarted since the
        last check. If it is gone it is started again, and after a restart every running
        server's tunnels are rebuilt on their saved ports (so that open notebooks and the
        servers' calls to the hub carry on). 0: only at each server's poll.""",
    )

    revocation_check_interval = Float(
        5,
        config=True,
        help="""Seconds between looks at the revocation list
        (`CredentialIssuingAuthenticator.ssh_revoked_keys`). When it has changed, every user whose
        current certificate it revokes has their tunnels and the hub's SSH connections as them
        closed and their hub login ended (hpchub.revocation). 0: revocation reaches only new
        connections (sshd) and renewals.""",
    )

    announcement_file = Unicode(
        "",
        config=True,
        help="""A text file with the admin's announcement (maintenance, an outage), shown at the
        top of every page (login, home, spawn) while it exists and is not empty; read again
        whenever it changes, so no restart is needed (`hpchub announce TEXT --file PATH`
        writes it, `--clear` removes it). Plain text. A `template_vars` "announcement" of the
        configuration takes precedence.""",
    )

    @default("template_paths")
    def _hpchub_template_paths(self):
        # Not named _template_paths_default: JupyterHub calls that one for the path behind the
        # "templates/" prefix, which hpchub's pages extend.
        return [str(resources.files("hpchub").joinpath("templates", "pages")), *self._template_paths_default()]

    @default("users")
    def _users_default(self):
        assert self.tornado_settings
        return QueueAwareUserDict(db_factory=lambda: self.db, settings=self.tornado_settings)

    def init_services(self):
        self.services = [tied_to_this_hub(spec) for spec in self.services]
        super().init_services()

    def init_tornado_settings(self):
        if self.announcement_file and "announcement" not in self.template_vars:
            self.template_vars = {**self.template_vars, "announcement": AnnouncementFile(self.announcement_file)}
        super().init_tornado_settings()
        for env in ("jinja2_env", "jinja2_env_sync"):
            self.tornado_settings[env].filters["stored_options"] = stored_options
            self.tornado_settings[env].filters["session_card"] = session_card

    def init_handlers(self):
        super().init_handlers()
        replaced = {UserServerAPIHandler: CheckingUserServerAPIHandler, SpawnHandler: FormFirstSpawnHandler}
        found = {h[1] for h in self.handlers if h[1] in replaced}
        if found != set(replaced):
            # An upgrade of JupyterHub that renamed or moved a handler: running on would silently
            # skip hpchub's checks. Refuse to start instead.
            missing = ", ".join(sorted(cls.__name__ for cls in set(replaced) - found))
            raise RuntimeError(f"hpchub-hub: JupyterHub's handler list has no {missing}; this JupyterHub "
                               "version is not one hpchub supports")
        self.handlers = [(h[0], replaced.get(h[1], h[1]), *h[2:]) for h in self.handlers]
        # hpchub's own pages, before JupyterHub's catch-all 404
        self.handlers.insert(0, (self.hub_prefix.rstrip("/") + OUTPUT_URL, ServerOutputHandler))

    async def start(self):
        await super().start()
        if self.route_check_interval > 0:
            self._route_check = PeriodicCallback(self._check_routes, 1e3 * self.route_check_interval)
            self._route_check.start()
        self._tunnel_services_started: dict[str, float] = {}
        if self.tunnel_check_interval > 0:
            self._tunnel_check = PeriodicCallback(self._check_tunnels, 1e3 * self.tunnel_check_interval)
            self._tunnel_check.start()
        krl = getattr(self.authenticator, "ssh_revoked_keys", "")
        if krl and self.revocation_check_interval > 0:
            self._revocations = RevocationWatcher(self, krl, self.log)
            self._revocation_check = PeriodicCallback(self._revocations.check, 1e3 * self.revocation_check_interval)
            self._revocation_check.start()

    async def _check_tunnels(self) -> None:
        """Start a tunnel service found gone, and after it (re)started rebuild every tunnel."""
        by_service: dict = {}
        for user in list(self.users.values()):
            for spawner in list(user.spawners.values()):
                if isinstance(spawner, HPCSpawner) and spawner.launch is not None and spawner.launch.tunnel_plan():
                    by_service.setdefault(spawner.tunnels, []).append(spawner)
        for service, spawners in by_service.items():
            try:
                started = (await service.call("status", id=""))["started"]
            except SSHError as exc:
                self.log.warning("The tunnel service at %s is gone (%s); starting it again", service.socket_path,
                                 exc.log_detail)
                if not await service.ensure():
                    self.log.error("The tunnel service at %s did not start", service.socket_path)
                    continue
                started = (await service.call("status", id=""))["started"]
            if self._tunnel_services_started.get(service.socket_path) == started:
                continue
            self._tunnel_services_started[service.socket_path] = started
            rebuilt = await asyncio.gather(*(s.launch.ensure_tunnels() for s in spawners), return_exceptions=True)
            failed = [s._log_name for s, ok in zip(spawners, rebuilt) if ok is not True]
            if failed:
                self.log.warning("Tunnels not rebuilt yet for %s; tried again at their next poll", ", ".join(failed))
            self.log.info("The tunnel service at %s holds the tunnels of %d servers", service.socket_path,
                          len(spawners) - len(failed))

    async def _check_routes(self) -> None:
        try:
            await self.proxy.check_routes(self.users, self._service_map)
        except (OSError, HTTPClientError, TimeoutError) as exc:  # a proxy down now is checked again next time
            self.log.warning("Checking the proxy's routes failed: %s", exc)

    async def init_spawners(self):
        queued = self._take_queued_spawns()
        count = await super().init_spawners()
        for user, name, state in queued:
            self._resume_spawn(user, name, state)
        return count

    def _take_queued_spawns(self):
        """Spawners with a job still in the queue, taken out of JupyterHub's start-up check."""
        queued = []
        for orm_spawner in self.db.query(orm.Spawner).filter(orm.Spawner.server != None):  # noqa: E711
            if not is_resumable(orm_spawner.state):
                continue
            user = self.users[orm_spawner.user]
            self.log.info("%s:%s has a job in the queue; resuming its spawn", user.name, orm_spawner.name)
            # The server record was made for the interrupted spawn; the resumed spawn makes its own.
            server = orm_spawner.server
            orm_spawner.server = None
            self.db.delete(server)
            queued.append((user, orm_spawner.name, dict(orm_spawner.state)))
        self.db.commit()
        return queued

    def _resume_spawn(self, user, name: str, state: dict) -> None:
        """What JupyterHub's spawn handler does for a new spawn (BaseHandler.spawn_single_user
        and its finish_user_spawn), with the saved job handed to start().

        A copy, because that code is a request handler's method (it refreshes the user's login,
        applies the limits meant for users' requests, and reads the request) and cannot run at
        start-up without one; docs/explanation/upstream.md proposes the hook that would make
        this unnecessary. Kept in step with JupyterHub 6.1: the spawner's pending flags, the
        proxy route, the poll callback, the event log and the running-servers metric."""
        spawner = user.spawners[name]
        if not isinstance(spawner, HPCSpawner):
            self.log.warning("%s has a queued job but is no hpchub spawner; not resumed", spawner._log_name)
            return
        spawner.resume_from(state)
        spawner._spawn_pending = True

        async def resume():
            await user.spawn(name)  # the saved user_options are used again
            self.eventlog.emit(schema_id="https://schema.jupyter.org/jupyterhub/events/server-action",
                               data={"action": "start", "username": user.name, "servername": name})
            spawner._proxy_pending = True
            try:
                await self.proxy.add_user(user, name)
                RUNNING_SERVERS.inc()
            except Exception:
                self.log.exception("Failed to add %s to the proxy; stopping it", spawner._log_name)
                await user.stop(name)
                return
            finally:
                spawner._proxy_pending = False
            spawner.add_poll_callback(self._server_stopped, user, name)

        future = spawner._spawn_future = asyncio.ensure_future(resume())

        def done(f):
            if f.cancelled() or f.exception() is None:
                spawner._spawn_future = None
            else:
                self.log.warning("Resumed spawn of %s failed: %s", spawner._log_name, f.exception())
            spawner._spawn_pending = False

        future.add_done_callback(done)

    async def _server_stopped(self, user, name: str) -> None:
        """A server found stopped by polling: as the poll callback of JupyterHub's start-up check
        (init_spawners' user_stopped, a closure there, so not callable from here)."""
        status = await user.spawners[name].poll()
        self.log.warning("%s:%s stopped with exit code %s", user.name, name, status)
        await self.proxy.delete_user(user, name)
        await user.stop(name)


def main(argv=None, **kwargs):
    raise_open_files_limit()  # (systemd's soft limit of 1024 is reached at some 500 users)
    return HPCHub.launch_instance(argv, **kwargs)
