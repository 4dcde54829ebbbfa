"""Nodes as namespaces, and the daemons that run in them.

A node of the site is a small holder process (shown in `ps` as ``hpchub-node SITE NODE``)
that owns a UTS namespace (the node's own hostname) and a mount namespace in which
/etc/slurm, /run/munge, /etc/hosts and /tmp are the node's own, as on a real cluster
member; in isolated mode it also sits in the node's network namespace. Daemons are started
inside a node with nsenter, so they and everything they start (job steps, SSH sessions,
users' servers) share the node's namespaces. That is also how `down` finds every process
of an instance, whatever it changed of its environment: by its mount namespace, or by its
UTS namespace for what made a mount namespace of its own (servers in container images).
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..remote.detach import spawn_detached
from .layout import SiteLayout
from .system import SiteError, make_dir, say, wait_for

SITE_MARKER = "HPCHUB_SITE_INSTANCE"
"""Environment variable set on every process the site starts (daemons, the hub)."""

_HOLDER_SCRIPT = (
    # A fixed script; the values arrive as positional arguments (hostname, title, then pairs of
    # source and mount point), never spliced into it.
    'set -e; hostname "$1"; title="$2"; shift 2; '
    'while [ "$#" -gt 0 ]; do mount --bind "$1" "$2"; shift 2; done; '
    'exec -a "$title" sleep infinity'
)


def proc_file(pid: int | str, name: str) -> bytes | None:
    """The bytes of /proc/PID/NAME, or None when the process is gone or not ours to read.

    The one way this module reads another process's /proc entries: a process can exit at any
    moment between the listing of /proc and the read, and the kernel then answers ENOENT on
    open or ESRCH (ProcessLookupError) on read; both mean "gone", never an error.
    """
    try:
        with open(f"/proc/{pid}/{name}", "rb") as f:
            return f.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat from field 3 on; the command name (field 2) may contain spaces and ')'."""
    stat = proc_file(pid, "stat")
    return None if stat is None else stat.decode(errors="replace").rsplit(")", 1)[1].split()


def process_start_time(pid: int) -> int | None:
    """The kernel's start time of pid (guards against pid reuse), or None if it is gone."""
    fields = _stat_fields(pid)
    return None if fields is None else int(fields[19])  # field 22


def namespace_id(pid: int | str, kind: str) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/{kind}").st_ino
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None


def in_node_namespaces(pid: int | str, mounts: set[int], hostnames: set[int]) -> bool:
    """Whether a process runs in one of these nodes: in a node's mount namespace, or in its UTS
    namespace (the node's hostname). A container runtime (ch-run, a user's unshare) gives its
    processes a mount namespace of their own but keeps the node's hostname, so they are found
    by the second."""
    return namespace_id(pid, "mnt") in mounts or (bool(hostnames) and namespace_id(pid, "uts") in hostnames)


def all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


@dataclass
class Recorded:
    """A process we started: pid plus start time, so a reused pid is not mistaken for it."""

    pid: int
    start_time: int

    def alive(self) -> bool:
        return process_start_time(self.pid) == self.start_time and not process_is_gone(self.pid)

    @classmethod
    def of(cls, pid: int) -> "Recorded":
        start = process_start_time(pid)
        if start is None:
            raise SiteError(f"process {pid} ended right after it was started")
        return cls(pid, start)


class Nodes:
    """The holders and daemons of one instance, recorded under its run directory."""

    def __init__(self, site: SiteLayout):
        self.site = site
        self.record_file = site.run_dir / "processes.json"

    # ----- records -------------------------------------------------------------
    def _load(self) -> dict:
        if self.record_file.exists():
            return json.loads(self.record_file.read_text())
        return {"holders": {}, "daemons": {}, "namespaces": []}

    def _save(self, records: dict) -> None:
        make_dir(self.record_file.parent, 0o700)
        tmp = self.record_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(records, indent=1))
        os.replace(tmp, self.record_file)

    def daemon_records(self) -> dict[str, dict]:
        """The daemons started so far, in start order: name -> {pid, start_time, where}."""
        return self._load()["daemons"]

    def holder(self, node: str) -> Recorded | None:
        rec = self._load()["holders"].get(node)
        if rec is None:
            return None
        holder = Recorded(rec["pid"], rec["start_time"])
        return holder if holder.alive() else None

    def _record_hostname(self, node: str, holder: Recorded) -> None:
        """The holder's UTS namespace in the records, if they lack it (a new holder's, or one
        recorded by an hpchub that kept only mount namespaces)."""
        records = self._load()
        if records["holders"][node].get("uts") is None:
            uts = namespace_id(holder.pid, "uts")
            records["holders"][node]["uts"] = uts
            records["uts_namespaces"] = sorted(set(records.get("uts_namespaces", [])) | {uts})
            self._save(records)

    def daemon(self, name: str) -> Recorded | None:
        rec = self._load()["daemons"].get(name)
        if rec is None:
            return None
        daemon = Recorded(rec["pid"], rec["start_time"])
        return daemon if daemon.alive() else None

    # ----- nodes ---------------------------------------------------------------
    def slurm_mounts(self, node: str) -> list[tuple[Path, str]]:
        """What a node of the Slurm cluster has of its own: Slurm's and munge's files, the
        site's hosts file, its /tmp and slurmd's spool."""
        site = self.site
        return [(site.slurm_etc, "/etc/slurm"), (site.munge_run, "/run/munge"), (site.hosts_file, "/etc/hosts"),
                (make_dir(site.node_tmp(node), 0o1777), "/tmp"),
                (make_dir(site.slurmd_spool(node), 0o755), "/var/spool/slurmd")]

    def ensure_node(self, node: str, mounts: list[tuple[Path, str]] | None = None,
                    netns: str | None = None) -> Recorded:
        """The node's holder, started if needed, with mounts (source, mount point; a Slurm
        node's by default) and in the network namespace netns (the node's own in isolated mode
        by default). A dead holder's leftovers are swept first, as a rebooted node loses
        whatever still ran on it."""
        holder = self.holder(node)
        if holder is not None:
            self._record_hostname(node, holder)
            return holder
        records = self._load()
        old = records["holders"].get(node)
        if old is not None:
            self._kill_in_namespaces({old["mnt"]}, {old["uts"]} if old.get("uts") else set())
        site = self.site
        mounts = self.slurm_mounts(node) if mounts is None else mounts
        for _, mountpoint in mounts:
            if not os.path.exists(mountpoint):  # (a directory; files such as /etc/hosts exist)
                os.makedirs(mountpoint)
        title = f"hpchub-node {site.name} {node}"
        argv = ["unshare", "--uts", "--mount", "--propagation", "private", "--",
                "bash", "-c", _HOLDER_SCRIPT, "hpchub-node", node, title,
                *(str(part) for pair in mounts for part in pair)]
        netns = netns or (site.netns(node) if site.isolated else None)
        if netns:
            argv = ["nsenter", f"--net=/run/netns/{netns}", *argv]
        pid = self._spawn(argv, site.log_dir / f"node-{node}.log")

        def ready() -> bool:
            if process_start_time(pid) is None or process_is_gone(pid):
                log = (site.log_dir / f"node-{node}.log").read_text()
                raise SiteError(f"node {node} failed to start its namespaces: {log.strip()}")
            return (proc_file(pid, "cmdline") or b"").startswith(title.encode())

        wait_for(f"node {node}'s namespaces", ready, timeout=10, interval=0.02)
        holder = Recorded.of(pid)
        mnt = namespace_id(pid, "mnt")
        records = self._load()
        records["holders"][node] = {"pid": holder.pid, "start_time": holder.start_time, "mnt": mnt}
        records["namespaces"] = sorted(set(records["namespaces"]) | {mnt})
        self._save(records)
        self._record_hostname(node, holder)
        return holder

    def node_command(self, node: str, argv: Sequence[str]) -> list[str]:
        """argv that runs a command inside a node (as root)."""
        holder = self.holder(node)
        if holder is None:
            raise SiteError(f"node {node} of site {self.site.name} is not up")
        return ["nsenter", "-t", str(holder.pid), "-u", "-m", "-n", "--", *argv]

    # ----- daemons -------------------------------------------------------------
    def start_daemon(self, name: str, node: str, argv: Sequence[str]) -> Recorded:
        """Start a daemon in the foreground inside a node; it outlives this process."""
        return self.start_process(name, self.node_command(node, argv), where=node)

    def start_process(
        self, name: str, argv: Sequence[str], *, where: str = "hub side",
        cwd: Path | None = None, env: dict[str, str] | None = None,
    ) -> Recorded:
        """Start a long-running process, recorded under name so up, status and down find it."""
        daemon = Recorded.of(self._spawn(argv, self.site.log_dir / f"{name}.out", cwd=cwd, env=env))
        records = self._load()
        records["daemons"][name] = {"pid": daemon.pid, "start_time": daemon.start_time, "where": where}
        self._save(records)
        return daemon

    def start_forking_daemon(self, name: str, argv: Sequence[str], pid_file: Path, *,
                             where: str = "hub side", env: dict[str, str] | None = None,
                             timeout: float = 30) -> Recorded:
        """Start a daemon that forks itself into the background and writes its pid file
        (myproxy-server has no foreground mode but its one-request debug mode); the forked
        process, which keeps the instance's marker, is the one recorded."""
        pid_file.unlink(missing_ok=True)
        self._spawn(argv, self.site.log_dir / f"{name}.out", env=env)
        wait_for(f"{name} to write {pid_file}", lambda: pid_file.exists() and pid_file.read_text().strip() != "",
                 timeout=timeout)
        daemon = Recorded.of(int(pid_file.read_text().split()[0]))
        records = self._load()
        records["daemons"][name] = {"pid": daemon.pid, "start_time": daemon.start_time, "where": where}
        self._save(records)
        return daemon

    def stop_daemon(self, name: str, timeout: float = 15) -> None:
        daemon = self.daemon(name)
        if daemon is not None:
            _terminate([daemon.pid], timeout)
        records = self._load()
        records["daemons"].pop(name, None)
        self._save(records)

    def _spawn(
        self, argv: Sequence[str], log: Path, cwd: Path | None = None, env: dict[str, str] | None = None
    ) -> int:
        """Start argv detached (a session of its own), output to log; returns its pid."""
        make_dir(log.parent, 0o700)
        full_env = {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG": "C.UTF-8",
            **(env or {}),
            SITE_MARKER: self.site.name,
        }
        return spawn_detached(argv, log, full_env, cwd)

    # ----- sweeping --------------------------------------------------------------
    def processes(self, hub_netns: int | None = None) -> list[int]:
        """Every process of this instance: in its nodes' mount namespaces, in its hub
        network namespace, or carrying its marker in the environment."""
        records = self._load()
        namespaces, hostnames = set(records["namespaces"]), set(records.get("uts_namespaces", []))
        marker = f"{SITE_MARKER}={self.site.name}".encode()
        me = os.getpid()
        found = []
        for pid in all_pids():
            if pid == me:
                continue
            if in_node_namespaces(pid, namespaces, hostnames) or (hub_netns and namespace_id(pid, "net") == hub_netns):
                found.append(pid)
                continue
            if marker in (proc_file(pid, "environ") or b"").split(b"\0"):
                found.append(pid)
        return found

    def _kill_in_namespaces(self, namespaces: set[int], hostnames: set[int]) -> None:
        pids = [p for p in all_pids() if in_node_namespaces(p, namespaces, hostnames)]
        _terminate(pids, timeout=5)

    def sweep(self, hub_netns: int | None = None, timeout: float = 20) -> None:
        """End every process of the instance (TERM, then KILL), then forget the records."""
        pids = self.processes(hub_netns)
        if pids:
            say(f"  stopping {len(pids)} processes")
        _terminate(pids, timeout)
        left = self.processes(hub_netns)
        if left:
            raise SiteError(f"processes of site {self.site.name} survived SIGKILL: {left}")
        if self.record_file.exists():
            self.record_file.unlink()


def _terminate(pids: Sequence[int], timeout: float) -> None:
    """SIGTERM, wait up to timeout, then SIGKILL whatever is left (and wait for it)."""
    starts = {pid: process_start_time(pid) for pid in pids}
    live = [p for p, s in starts.items() if s is not None]
    for pid in live:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while live and time.monotonic() < deadline:
        live = [p for p in live if process_start_time(p) == starts[p] and not process_is_gone(p)]
        time.sleep(0.05)
    for pid in live:
        _signal(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while live and time.monotonic() < deadline:
        live = [p for p in live if process_start_time(p) == starts[p] and not process_is_gone(p)]
        time.sleep(0.05)


def process_is_gone(pid: int) -> bool:
    """True for a zombie, and for a process already gone (neither will ever do anything)."""
    fields = _stat_fields(pid)
    return fields is None or fields[0] == "Z"


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
