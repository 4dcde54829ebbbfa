"""The CA's ledger: one JSON line per certificate it signs (serial, key id, principal, expiry, the
start of the login session it belongs to), appended as it signs.

Renewals look a certificate's session up by serial, and `hpchub ca revoke --user` finds a user's
unexpired certificates. A CA signs for years: the ledger is read once and indexed in memory (a
lookup does not grow with its size), and compacted - rewritten without the entries that expired
more than `keep_expired` seconds ago - when it is opened and whenever it has grown by
`compact_every` entries since. Only the CA's own process writes it; others read it.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path


class Ledger:
    def __init__(self, path: str | Path, keep_expired: float = 7 * 86400, compact_every: int = 10_000):
        self.path = Path(path)
        self.keep_expired = keep_expired
        self.compact_every = compact_every
        self._by_serial: dict[int, dict] = {}
        self._appended = 0
        self._load()
        self.compact()

    def _load(self) -> None:
        self._by_serial = {entry["serial"]: entry for entry in read_entries(self.path)}

    def record(self, serial: int, key_id: str, principal: str, valid_before: int, session_started: int | None,
               now: float | None = None) -> None:
        entry = {"serial": serial, "key_id": key_id, "principal": principal,
                 "issued_at": int(time.time() if now is None else now), "valid_before": valid_before,
                 "session_started": session_started}
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a") as ledger:
            ledger.write(json.dumps(entry) + "\n")
        self._by_serial[serial] = entry
        self._appended += 1
        if self._appended >= self.compact_every:
            self.compact(now)

    def find(self, serial: int) -> dict | None:
        return self._by_serial.get(serial)

    def compact(self, now: float | None = None) -> int:
        """Drop the entries that expired more than keep_expired ago; returns how many went."""
        now = time.time() if now is None else now
        kept = {serial: entry for serial, entry in self._by_serial.items()
                if entry["valid_before"] > now - self.keep_expired}
        dropped = len(self._by_serial) - len(kept)
        self._appended = 0
        if dropped or not self.path.exists():
            partial = self.path.with_name(self.path.name + ".partial")
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                out.writelines(json.dumps(entry) + "\n" for entry in kept.values())
            os.replace(partial, self.path)
        self._by_serial = kept
        return dropped


def read_entries(path: str | Path) -> list[dict]:
    """Every entry of a ledger file (for readers other than the CA: `hpchub ca revoke --user`)."""
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
