"""What the home page's session card of one server shows, built in one place (pure, apart
from reading the spawner): the page's template only lays it out.

A server is either hpchub's spawner (loaded: running, or touched since the hub started) or,
for a stopped one, JupyterHub's database row (orm.Spawner, which has only the saved state and
options): both give the same card.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from urllib.parse import urlencode

from jupyterhub import orm
from jupyterhub.spawner import SpawnException

from .options import FieldError, chosen_image, stored_options
from .state import load

PENDING_WORDS = {"spawn": "starting", "stop": "stopping", "check": "being checked"}


@dataclass(frozen=True)
class SessionCard:
    name: str  # the server's name ("" for the default server)
    title: str
    state: str  # in words
    tone: str  # "running", "waiting", "busy", "failed" or "stopped": the card's colour
    active: bool = False
    ready: bool = False
    target: str = ""
    cluster: str = ""
    node: str = ""
    image: str = ""  # the container image it runs in (its title where the user chose from a list)
    job_id: str = ""
    seconds_left: int | None = None
    ends_at: int | None = None  # epoch seconds: the page shows it in the user's own time zone
    options: dict = field(default_factory=dict)  # the server's last options, for relaunch
    has_output: bool = False  # a job output or server log the user can read from the card

    @property
    def can_relaunch(self) -> bool:
        return not self.active and bool(self.options.get("target"))

    @property
    def edit_query(self) -> str:
        """The spawn form's query that fills it in with this server's last options (a spawn link:
        it opens the form and starts nothing)."""
        return urlencode({f"opt-{key}": value for key, value in self.options.items()})

    @property
    def time_left(self) -> str:
        if self.seconds_left is None:
            return ""
        hours, minutes = self.seconds_left // 3600, (self.seconds_left % 3600) // 60
        return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def session_card(spawner, now: float | None = None) -> SessionCard:
    """The card of one server: an HPCSpawner, another Spawner, or a stopped server's orm.Spawner."""
    now = time.time() if now is None else now
    name = spawner.name or ""
    title = getattr(spawner, "display_name", "") or name or "Default server"
    options = stored_options(getattr(spawner, "user_options", None) or {})
    if isinstance(spawner, orm.Spawner):  # a database row (it has a `pending` too: None), stopped
        try:
            saved = load(getattr(spawner, "state", None))
        except ValueError:  # saved by a newer hpchub
            saved = None
        outcome = (saved.last_outcome.get("message") if saved else "") or ""
        return SessionCard(name, title, f"stopped: {outcome}" if outcome else "stopped",
                           "failed" if outcome else "stopped", target=str(options.get("target", "")),
                           options=options, has_output=bool(saved and saved.last_server))
    active, ready, pending = bool(spawner.active), bool(spawner.ready), spawner.pending
    if ready and getattr(spawner, "trouble", ""):
        state, tone = f"running, but {spawner.trouble}", "failed"
    elif ready and getattr(spawner, "notice", ""):
        state, tone = f"running; {spawner.notice}", "busy"
    elif ready:
        state, tone = "running", "running"
    elif pending:
        queued = getattr(spawner, "waiting_in_queue", False)
        state = "waiting in the queue" if queued else PENDING_WORDS.get(pending, "busy")
        tone = "waiting" if queued or pending == "spawn" else "busy"
    else:
        outcome = (getattr(spawner, "last_outcome", None) or {}).get("message", "")
        state, tone = (f"stopped: {outcome}", "failed") if outcome else ("stopped", "stopped")
    seconds_left = getattr(spawner, "seconds_left", None) if active else None
    try:
        target = getattr(spawner, "target", None) if active else None
    except SpawnException:  # targets misconfigured since it started: said on the spawn page
        target = None
    cluster = ""
    if active and getattr(spawner, "clusters", None):  # named only where the hub has more than one
        cluster = spawner.cluster_config.title
    return SessionCard(
        name, title, state, tone, active=active, ready=ready,
        target=(target.title if target is not None else str(options.get("target", ""))),
        cluster=cluster,
        node=getattr(spawner, "where", "") if active else "",
        image=image_shown(target, options) if target is not None else "",
        job_id=getattr(spawner, "job_id", "") if active else "",
        seconds_left=seconds_left, ends_at=int(now + seconds_left) if seconds_left is not None else None,
        options=options, has_output=getattr(spawner, "last_server", None) is not None)


def image_shown(target, options: dict) -> str:
    """The container image a server of this target runs in, as the user knows it: its title in
    the admin's list, or the admin's image; "" for a bare server (or options no longer valid
    for the target, whose configuration changed since: the card then shows no image)."""
    spec = getattr(target, "container", None)
    if spec is None:
        return ""
    try:
        return spec.title_of(chosen_image(target, options))
    except FieldError:
        return ""
