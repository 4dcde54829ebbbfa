"""The admin's announcement (maintenance, an outage): a text file the hub reads at each page
(`HPCHub.announcement_file`), shown at the top of every page - login, home, spawn - until it is
cleared. `hpchub announce` writes it; no hub restart. Imports no JupyterHub.

Plain text: it is shown as written, never as HTML.
"""

from __future__ import annotations

import os
from pathlib import Path

from markupsafe import Markup, escape

MAX_LENGTH = 2000  # a notice, not a page: longer files are cut (and the cut is shown)


def read_announcement(path: str | Path) -> str:
    """The announcement's text ("" when there is no file or it is empty)."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace").strip()
    except FileNotFoundError:
        return ""
    return text if len(text) <= MAX_LENGTH else text[:MAX_LENGTH] + " …"


def write_announcement(path: str | Path, text: str) -> None:
    """Atomically, readable by the hub's user; an empty text clears the announcement."""
    path = Path(path)
    if not text.strip():
        path.unlink(missing_ok=True)
        return
    partial = path.with_name(path.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text.strip() + "\n")
    os.replace(partial, path)


class AnnouncementFile:
    """For JupyterHub's template_vars: called with the page's user at each render; the file is
    read again only when it changed."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._seen: tuple | None = None
        self._text = ""

    def __call__(self, _user=None) -> Markup:
        try:
            stat = self.path.stat()
            seen: tuple | None = (stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            seen = None
        if seen != self._seen:
            self._seen, self._text = seen, read_announcement(self.path) if seen else ""
        # JupyterHub's page.html shows the announcement as HTML (`| safe`): escaped here.
        return escape(self._text)
