"""The page that shows a server's output to its owner (/hub/hpchub/output[/SERVER]): a batch
job's output file or a login-node server's log, read as the user (spawners/output.py), the
last part first, with a link to load more. Linked from the home page's session cards and from
the error page of a failed spawn."""

from __future__ import annotations

from jupyterhub.handlers import BaseHandler
from tornado import web

from .spawners.output import OutputError, read_output, wanted_bytes
from .spawners.spawner import HPCSpawner

URL = r"/hpchub/output(?:/([^/]+))?"  # under the hub's prefix


class ServerOutputHandler(BaseHandler):
    @web.authenticated
    async def get(self, server_name: str | None = None):
        user = self.current_user
        name = server_name or ""  # (tornado has decoded it once; decoding again would turn %2541 into A)
        # Only the user's own servers that exist: user.spawners[name] would create a new one.
        if name and name not in user.orm_spawners:
            raise web.HTTPError(404, f"you have no server named {name!r}")
        spawner = user.spawners[name]
        if not isinstance(spawner, HPCSpawner):
            raise web.HTTPError(404, "this server's output is not kept by hpchub")
        max_bytes = wanted_bytes(self.get_argument("bytes", None))
        output, error = None, ""
        try:
            output = await read_output(spawner, max_bytes)
        except OutputError as exc:
            self.log.warning("%s: reading its output: %s", spawner._log_name, exc.log_detail)
            error = exc.user_message
        html = await self.render_template("hpchub_output.html", server_name=name, output=output, error=error,
                                          shown_bytes=max_bytes, more_bytes=max_bytes * 4)
        self.finish(html)
