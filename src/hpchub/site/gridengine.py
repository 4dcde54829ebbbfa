"""The site's second cluster: Debian's Grid Engine (gridengine-master, gridengine-exec).

    ge-head: sge_qmaster      ge-c1: sge_execd      ge-login: sshd (the site's user CA)

Each node has its own hostname, network namespace and address (Grid Engine knows hosts by
address; see SiteLayout.ge_subnet) and mount namespace, in which Debian's cell directory
/var/lib/gridengine/default is the instance's own (so every client and daemon finds the cell
the Debian way, through /etc/default/gridengine, with no variable to set) and
/var/spool/gridengine is the node's spool. Queues: batch.q (24 h) and short.q (1 h), a
parallel environment smp on one node, a project astro (open to all); the site's users.

The cell is made once with Grid Engine's own tools (spoolinit, spooldefaults: what Debian's
init_cluster runs), with classic (file) spooling; the queues and the rest are (re)applied
with qconf on every bring-up, so a changed definition here reaches a running site.
"""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from . import network
from .layout import GE_COMPUTE_NODES, GE_HEAD_NODE, GE_LOGIN_NODE, SiteLayout
from .nodes import Nodes
from .system import SiteError, make_dir, run, say, wait_for, write_file

SGE_ROOT = "/var/lib/gridengine"
CELL_MOUNT = f"{SGE_ROOT}/default"
SPOOL_MOUNT = "/var/spool/gridengine"
ADMIN_USER = "sgeadmin"  # made by Debian's gridengine-common
SGE_ENV = ["env", f"SGE_ROOT={SGE_ROOT}", "SGE_CELL=default"]
QUEUES = {"batch.q": "24:00:00", "short.q": "01:00:00"}
SLOTS_PER_NODE = 4  # as the Slurm cluster's nodes have 4 cores
PARALLEL_ENVIRONMENT = "smp"
PROJECT = "astro"

_BOOTSTRAP = f"""\
# Version: 8.1.9 (written by hpchub: classic spooling in the node's spool)
admin_user              {ADMIN_USER}
default_domain          none
ignore_fqdn             true
spooling_method         classic
spooling_lib            libspoolc
spooling_params         {CELL_MOUNT}/common;{SPOOL_MOUNT}/db
binary_path             /usr/sbin
qmaster_spool_dir       {SPOOL_MOUNT}/qmaster
security_mode           none
listener_threads        2
worker_threads          2
scheduler_threads       1
"""

_PARALLEL_ENVIRONMENT = f"""\
pe_name            {PARALLEL_ENVIRONMENT}
slots              9999
user_lists         NONE
xuser_lists        NONE
start_proc_args    NONE
stop_proc_args     NONE
allocation_rule    $pe_slots
control_slaves     FALSE
job_is_first_task  TRUE
urgency_slots      min
accounting_summary FALSE
qsort_args         NONE
"""


def global_configuration(for_qconf: bool = False) -> str:
    """Debian's default configuration with the spool, users and mail of the site. for_qconf:
    without conf_version, which qconf -Mconf would add as a second one (qmaster keeps its own,
    and then cannot read its configuration back at its next start)."""
    replaced = {"execd_spool_dir": f"{SPOOL_MOUNT}/execd", "mailer": "/bin/true", "min_uid": "1000",
                "min_gid": "1000", "load_report_time": "00:00:10", "max_unheard": "00:01:00",
                # Accounting written within a second of a job's end (Debian's 15 s keeps hpchub's
                # watcher unsure about an ended job for that long).
                "reporting_params": "accounting=true reporting=false flush_time=00:00:15 joblog=false "
                                    "sharelog=00:00:00 accounting_flush_time=00:00:01"}
    lines = []
    for line in Path("/usr/share/gridengine/default-configuration").read_text().splitlines():
        key = line.split()[0] if line.strip() and not line.startswith("#") else ""
        if for_qconf and (key == "conf_version" or line.startswith("#")):
            continue
        lines.append(f"{key:22} {replaced[key]}" if key in replaced else line)
    return "\n".join(lines) + "\n"


def replaced_values(definition: str, values: dict[str, str]) -> str:
    """A qconf definition (one "key value" per line) with some values replaced."""
    lines = []
    for line in definition.splitlines():
        key = line.split()[0] if line.strip() else ""
        lines.append(f"{key:21} {values[key]}" if key in values else line)
    return "\n".join(lines) + "\n"


def queue_definition(template: str, name: str, h_rt: str, hosts: str) -> str:
    """A cluster queue from qconf's template (`qconf -sq`), with the site's values."""
    return replaced_values(template, {"qname": name, "hostlist": hosts, "pe_list": PARALLEL_ENVIRONMENT,
                                      "slots": str(SLOTS_PER_NODE), "h_rt": h_rt, "shell": "/bin/bash",
                                      "shell_start_mode": "posix_compliant"})


class GridEngineCluster:
    def __init__(self, site: SiteLayout, nodes: Nodes):
        self.site = site
        self.nodes = nodes

    @property
    def config_dir(self) -> Path:
        """Definitions qconf reads (-A, -M), seen in the nodes under the cell's mount."""
        return self.site.ge_cell_dir / "hpchub"

    def mounts(self, node: str) -> list[tuple[Path, str]]:
        site = self.site
        return [(site.hosts_file, "/etc/hosts"), (make_dir(site.node_tmp(node), 0o1777), "/tmp"),
                (site.ge_cell_dir, CELL_MOUNT), (make_dir(site.ge_spool(node), 0o755, owner=ADMIN_USER), SPOOL_MOUNT)]

    def in_node(self, node: str, argv: list[str], check: bool = True, input: str | None = None, timeout: float = 60):
        return run(self.nodes.node_command(node, [*SGE_ENV, *argv]), check=check, input=input, timeout=timeout)

    # ----- bring-up --------------------------------------------------------------
    def ensure(self) -> None:
        site = self.site
        network.up_gridengine(site)
        self._write_cell()
        for node in site.ge_nodes:
            self.nodes.ensure_node(node.name, self.mounts(node.name), netns=site.netns(node.name))
        self._init_spool()
        if not self.nodes.daemon("sge_qmaster"):
            say("  grid engine: starting sge_qmaster on ge-head")
            self.nodes.start_daemon("sge_qmaster", GE_HEAD_NODE,
                                    [*SGE_ENV, "SGE_ND=1", "/usr/lib/gridengine/sge_qmaster"])
        wait_for("sge_qmaster", self._qmaster_answers, timeout=60, interval=0.3)
        self._configure()
        for node in GE_COMPUTE_NODES:
            name = f"sge_execd-{node}"
            if not self.nodes.daemon(name):
                say(f"  grid engine: starting sge_execd on {node}")
                self.nodes.start_daemon(name, node, [*SGE_ENV, "SGE_ND=1", "/usr/lib/gridengine/sge_execd"])
        wait_for("the Grid Engine execution hosts", self._execd_reports, timeout=90, interval=0.5)

    def _write_cell(self) -> None:
        cell = self.site.ge_cell_dir
        common = make_dir(cell / "common", 0o755, owner=ADMIN_USER)
        make_dir(cell, 0o755, owner=ADMIN_USER)
        make_dir(cell.parent, 0o755)
        write_file(common / "bootstrap", _BOOTSTRAP, 0o644, owner=ADMIN_USER)
        write_file(common / "act_qmaster", GE_HEAD_NODE + "\n", 0o644, owner=ADMIN_USER)
        make_dir(self.config_dir, 0o755)
        # Named "global": `qconf -Mconf FILE` takes the configuration's name from the file's.
        write_file(self.config_dir / "global", global_configuration(for_qconf=True))
        write_file(self.config_dir / "global.spool", global_configuration())
        write_file(self.config_dir / "pe.smp", _PARALLEL_ENVIRONMENT)
        write_file(self.config_dir / "allhosts", "group_name @allhosts\nhostlist " + " ".join(GE_COMPUTE_NODES) + "\n")
        write_file(self.config_dir / f"project.{PROJECT}",
                   f"name {PROJECT}\noticket 0\nfshare 0\nacl NONE\nxacl NONE\n")

    def _init_spool(self) -> None:
        """The cell's spool, once: what Debian's init_cluster does, for classic spooling."""
        if self._initialised.exists():
            return
        say("  grid engine: initialising the cell")
        tools = "/usr/lib/gridengine"
        conf = f"{CELL_MOUNT}/hpchub"
        steps = [
            [f"{tools}/spoolinit", "classic", "libspoolc", f"{CELL_MOUNT}/common;{SPOOL_MOUNT}/db", "init"],
            [f"{tools}/spooldefaults", "configuration", f"{conf}/global.spool"],
            [f"{tools}/spooldefaults", "complexes", "/usr/share/gridengine/util/resources/centry"],
            [f"{tools}/spooldefaults", "usersets", "/usr/share/gridengine/util/resources/usersets"],
            [f"{tools}/spooldefaults", "managers", ADMIN_USER, "root"],
            [f"{tools}/spooldefaults", "adminhosts", GE_HEAD_NODE],
        ]
        spool = self.site.ge_spool(GE_HEAD_NODE)
        shutil.rmtree(spool / "db", ignore_errors=True)  # an interrupted initialisation starts over
        for part in ("qmaster", "db"):
            make_dir(spool / part, 0o755, owner=ADMIN_USER)
        for step in steps:
            self.in_node(GE_HEAD_NODE, ["runuser", "-u", ADMIN_USER, "--", *step])
        write_file(self._initialised, "done\n")

    @property
    def _initialised(self) -> Path:
        return self.site.ge_spool(GE_HEAD_NODE) / "initialised-by-hpchub"

    def _qmaster_answers(self) -> bool:
        if not self.nodes.daemon("sge_qmaster"):
            raise SiteError("sge_qmaster exited during start-up; see " + str(self.site.log_dir / "sge_qmaster.out"))
        return self.in_node(GE_HEAD_NODE, ["qconf", "-sh"], check=False, timeout=20).returncode == 0

    def _qconf(self, show: list[str], add: str, modify: str, path: Path, name: str) -> None:
        """Add the object from path, or modify it to match if it exists."""
        exists = name in self.in_node(GE_HEAD_NODE, ["qconf", *show], check=False).stdout.split()
        mounted = f"{CELL_MOUNT}/hpchub/{path.name}"
        self.in_node(GE_HEAD_NODE, ["qconf", modify if exists else add, mounted])

    def _configure(self) -> None:
        self.in_node(GE_HEAD_NODE, ["qconf", "-Mconf", f"{CELL_MOUNT}/hpchub/global"])
        hosts = self.in_node(GE_HEAD_NODE, ["qconf", "-sh"]).stdout.split()
        # Admin hosts: an execd registers from one; qconf's show commands (the project list the
        # spawn page reads) answer only there. Changing anything still takes a manager.
        for node in (*GE_COMPUTE_NODES, GE_LOGIN_NODE):
            if node not in hosts:
                self.in_node(GE_HEAD_NODE, ["qconf", "-ah", node])
        submit = self.in_node(GE_HEAD_NODE, ["qconf", "-ss"], check=False).stdout.split()
        for node in (GE_LOGIN_NODE, *GE_COMPUTE_NODES):  # jobs submit too (the magics)
            if node not in submit:
                self.in_node(GE_HEAD_NODE, ["qconf", "-as", node])
        self._qconf(["-spl"], "-Ap", "-Mp", self.config_dir / "pe.smp", PARALLEL_ENVIRONMENT)
        self._qconf(["-shgrpl"], "-Ahgrp", "-Mhgrp", self.config_dir / "allhosts", "@allhosts")
        self._qconf(["-sprjl"], "-Aprj", "-Mprj", self.config_dir / f"project.{PROJECT}", PROJECT)
        # The scheduler runs a second after a submission or a job's end (Debian's: every 15 s).
        scheduler = self.in_node(GE_HEAD_NODE, ["qconf", "-ssconf"]).stdout
        write_file(self.config_dir / "scheduler", replaced_values(scheduler, {
            "schedule_interval": "0:0:5", "flush_submit_sec": "1", "flush_finish_sec": "1"}))
        self.in_node(GE_HEAD_NODE, ["qconf", "-Msconf", f"{CELL_MOUNT}/hpchub/scheduler"])
        template = self.in_node(GE_HEAD_NODE, ["qconf", "-sq"]).stdout
        for queue, h_rt in QUEUES.items():
            path = self.config_dir / f"queue.{queue}"
            write_file(path, queue_definition(template, queue, h_rt, "@allhosts"))
            self._qconf(["-sql"], "-Aq", "-Mq", path, queue)

    def _execd_reports(self) -> bool:
        """Every execution host reports a load (qhost shows "-" until its execd has)."""
        out = self.in_node(GE_HEAD_NODE, ["qhost", "-xml"], check=False).stdout
        return all(f"<host name='{node}'>" in out and "<hostvalue name='load_avg'>-</hostvalue>" not in
                   out.split(f"<host name='{node}'>", 1)[1].split("</host>", 1)[0] for node in GE_COMPUTE_NODES)

    # ----- status ----------------------------------------------------------------------
    def status(self) -> dict[str, str]:
        """Execution hosts and their queue instances' states ("ok" or Grid Engine's letters)."""
        try:
            out = self.in_node(GE_HEAD_NODE, ["qstat", "-f", "-xml"], check=False, timeout=20).stdout
        except SiteError:
            return {}
        try:
            root = ElementTree.fromstring(out)
        except ElementTree.ParseError:
            return {}
        states = {}
        for instance in root.iter("Queue-List"):
            name = instance.findtext("name") or ""
            states[name] = (instance.findtext("state") or "ok").strip()
        return states
