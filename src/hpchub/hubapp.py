"""JupyterHub with a few changes for servers that wait in a batch queue (command ``hpchub-hub``,
run in place of ``jupyterhub``; same options and configuration).

1. **A hub restart keeps queued spawns.** At start-up JupyterHub checks every spawner that
   has a server record (`init_spawners` -> `check_spawner` in jupyterhub/app.py): it polls
   it and, if it claims to be running, waits `http_timeout` for it to answer, then stops it.
   A job still waiting in the queue cannot answer, so it would be cancelled by every restart.
   Here such spawners (state `phase == "queued"`, written by the batch spawner as soon as
   the scheduler accepted the job) are taken out of that check and their spawn is resumed:
   the user sees the pending page with its Stop button again, and `start()` follows the same
   job instead of submitting a new one (BatchSpawner._resume). Everything else goes through
   JupyterHub's own check unchanged.

2. **Queued jobs do not count against `concurrent_spawn_limit`.** The limit protects the hub
   from many spawns doing work at once; a job waiting in the queue costs the hub nothing, and
   fifty of them must not stop another user from starting a server on a login node. Spawners
   that report `waiting_in_queue` are left out of the count of pending spawns.

3. **Options are checked before a spawn begins.** JupyterHub applies `user_options` inside the
   spawn, which the REST API answers with 202 after `slow_spawn_timeout`, so a bad option could
   surface as a failed spawn instead of HTTP 400. For spawners with `check_user_options`
   (hpchub's), a POST to the server API checks the options first and refuses bad ones with 400
   and a message naming the field; the spawn checks them again (the same function).

4. **A restarted proxy gets its routes back within seconds.** With the proxy run as a daemon
   of its own (`ConfigurableHTTPProxy.should_start = False`, so that a hub restart keeps every
   route), JupyterHub puts routes back only every `last_activity_interval` (5 minutes): a proxy
   that crashed and was restarted would send every user to an error page until then. Every
   `route_check_interval` seconds this hub compares the proxy's routes with its servers (one
   GET of the routing table) and adds what is missing.

5. **hpchub's pages** come first in `template_paths`: the pending page shows the batch job's
   state, reason, expected start and time waited (and its Stop stops that server, named ones
   too); the home page shows where each server runs, its job and the time left.
"""

from __future__ import annotations

import asyncio
from importlib import resources

from jupyterhub import orm
from jupyterhub.apihandlers.users import UserServerAPIHandler
from jupyterhub.app import JupyterHub
from jupyterhub.scopes import needs_scope
from jupyterhub.user import UserDict
from tornado.httpclient import HTTPClientError
from tornado.ioloop import PeriodicCallback
from traitlets import Float, default


class CheckingUserServerAPIHandler(UserServerAPIHandler):
    """POST /users/:name/servers/:server with the options checked before anything starts."""

    @needs_scope("start:servers")
    async def post(self, user_name, server_name=""):
        user = self.find_user(user_name)
        if user is not None:
            spawner = user.spawners[server_name] if server_name in user.spawners else user.spawner
            check = getattr(spawner, "check_user_options", None)
            if check is not None and not spawner.active:
                options = (self.get_server_json_body() or {}).get("user_options")
                if options is None:  # JupyterHub then starts the server with its saved options
                    options = (spawner.orm_spawner.user_options if server_name in user.orm_spawners else None) or {}
                await check(options)
        return await super().post(user_name, server_name)


class QueueAwareUserDict(UserDict):
    def count_active_users(self):
        counts = super().count_active_users()
        queued = sum(1 for user in self.values() for spawner in user.spawners.values()
                     if spawner.pending == "spawn" and getattr(spawner, "waiting_in_queue", False))
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

    @default("template_paths")
    def _hpchub_template_paths(self):
        # Not named _template_paths_default: JupyterHub calls that one for the path behind the
        # "templates/" prefix, which hpchub's pages extend.
        return [str(resources.files("hpchub").joinpath("templates", "pages")), *self._template_paths_default()]

    @default("users")
    def _users_default(self):
        assert self.tornado_settings
        return QueueAwareUserDict(db_factory=lambda: self.db, settings=self.tornado_settings)

    def init_handlers(self):
        super().init_handlers()
        self.handlers = [(h[0], CheckingUserServerAPIHandler, *h[2:]) if h[1] is UserServerAPIHandler else h
                         for h in self.handlers]

    async def start(self):
        await super().start()
        if self.route_check_interval > 0:
            self._route_check = PeriodicCallback(self._check_routes, 1e3 * self.route_check_interval)
            self._route_check.start()

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
            state = orm_spawner.state or {}
            if state.get("phase") != "queued" or not state.get("job_id"):
                continue
            user = self.users[orm_spawner.user]
            self.log.info("%s:%s has job %s in the queue; resuming its spawn", user.name, orm_spawner.name,
                          state["job_id"])
            # The server record was made for the interrupted spawn; the resumed spawn makes its own.
            server = orm_spawner.server
            orm_spawner.server = None
            self.db.delete(server)
            queued.append((user, orm_spawner.name, dict(state)))
        self.db.commit()
        return queued

    def _resume_spawn(self, user, name: str, state: dict) -> None:
        """What the spawn handler does for a new spawn, with the saved job handed to start()."""
        spawner = user.spawners[name]
        spawner.resume_state = state
        spawner._spawn_pending = True

        async def resume():
            await user.spawn(name)  # the saved user_options are used again
            spawner._proxy_pending = True
            try:
                await self.proxy.add_user(user, name)
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
        """A server found stopped by polling (as the spawn handler's callback does)."""
        status = await user.spawners[name].poll()
        self.log.warning("%s:%s stopped with exit code %s", user.name, name, status)
        await self.proxy.delete_user(user, name)
        await user.stop(name)


main = HPCHub.launch_instance
