"""The cluster side: munge, MariaDB, slurmdbd, slurmctld on the head node, slurmd on each
compute node, and the accounts, QOS and reservation that make it behave like a centre's."""

from __future__ import annotations

import secrets
import shutil
import socket
from pathlib import Path

from . import render
from .layout import DEMO_USERS, SERVICE_ACCOUNT, SiteLayout
from .nodes import Nodes
from .system import CommandError, make_dir, run, say, wait_for, write_file

# Accounts: alice is in both, bob in one. QOS: "normal" for everyone, "high" for alice only.
ACCOUNTS = {"physics": "Physics department", "chemistry": "Chemistry department",
            "teaching": "A course whose allocation is used up"}
# Limits set when an account is made. teaching's allocation is spent (0 CPU-minutes): Slurm keeps
# its jobs pending (AssocGrpCPUMinutesLimit), which hpchub's pre-spawn check flags on the form.
ACCOUNT_LIMITS = {"teaching": ["GrpTRESMins=cpu=0"]}
USER_ACCOUNTS = {"alice": ["physics", "chemistry", "teaching"], "bob": ["physics"]}
QOS = {"normal": "Priority=0", "high": "Priority=100 MaxWall=04:00:00 MaxJobsPerUser=2"}
USER_QOS = {"alice": "normal,high", "bob": "normal"}
RESERVATION = "workshop"


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class Cluster:
    def __init__(self, site: SiteLayout, nodes: Nodes):
        self.site = site
        self.nodes = nodes

    # ----- configuration -------------------------------------------------------
    def write_config(self) -> bool:
        """Write every cluster-side file; returns whether slurm.conf or gres.conf changed."""
        site = self.site
        make_dir(site.cluster_dir, 0o700)
        make_dir(site.slurm_etc, 0o755)
        make_dir(site.munge_run, 0o755, owner="munge")
        changed = write_file(site.slurm_etc / "slurm.conf", render.slurm_conf(site))
        changed |= write_file(site.slurm_etc / "gres.conf", render.gres_conf(site))
        write_file(site.slurm_etc / "slurmdbd.conf", render.slurmdbd_conf(site, self._db_password()), 0o600)
        write_file(site.hosts_file, render.hosts(site))
        make_dir(site.cluster_dir / "slurmctld", 0o700)
        return changed

    def _db_password(self) -> str:
        path = self.site.cluster_dir / "db-password"
        if not path.exists():
            write_file(path, secrets.token_urlsafe(18), 0o600)
        return path.read_text().strip()

    # ----- munge -----------------------------------------------------------------
    def ensure_munge(self) -> None:
        site = self.site
        key = site.munge_dir / "munge.key"
        make_dir(site.munge_dir, 0o700, owner="munge")  # munged runs as munge
        if not key.exists():
            run(["mungekey", "--create", f"--keyfile={key}"])
        shutil.chown(key, "munge", "munge")
        key.chmod(0o400)
        if self.nodes.daemon("munged"):
            return
        for stale in site.munge_run.glob("munge.socket.2*"):
            stale.unlink()
        say("  munge: starting munged on the head node")
        self.nodes.start_daemon("munged", "head", [
            "runuser", "-u", "munge", "--", "munged", "--foreground",
            f"--key-file={key}", "--socket=/run/munge/munge.socket.2",
            f"--pid-file={site.munge_dir}/munged.pid", f"--log-file={site.munge_dir}/munged.log",
            f"--seed-file={site.munge_dir}/munged.seed",
        ])
        wait_for("munged's socket", lambda: (site.munge_run / "munge.socket.2").exists(), timeout=10)

    # ----- accounting database -------------------------------------------------------
    def ensure_database(self) -> None:
        site = self.site
        cnf = site.mysql_dir / "my.cnf"
        make_dir(site.mysql_dir, 0o700, owner="mysql")
        write_file(cnf, render.my_cnf(site), 0o644)
        datadir = site.mysql_dir / "data"
        if not (datadir / "mysql").exists():
            say("  accounting: initialising MariaDB")
            make_dir(datadir, 0o700, owner="mysql")
            run(["mariadb-install-db", f"--defaults-file={cnf}", "--user=mysql", "--skip-test-db",
                 "--auth-root-authentication-method=socket"], timeout=300)
        if not self.nodes.daemon("mariadb"):
            say("  accounting: starting MariaDB")
            self.nodes.start_daemon("mariadb", "head", ["mariadbd", f"--defaults-file={cnf}"])
        wait_for("MariaDB", self._mysql_ready, timeout=60, interval=0.2)
        password = self._db_password()
        # Idempotent grants; the password goes through stdin, never argv.
        self._sql(
            f"CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '{password}';\n"
            f"ALTER USER 'slurm'@'127.0.0.1' IDENTIFIED BY '{password}';\n"
            "CREATE DATABASE IF NOT EXISTS slurm_acct_db;\n"
            "GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';\n"
        )

    def _sql(self, statements: str) -> str:
        argv = self.nodes.node_command("head", [
            "mariadb", f"--defaults-file={self.site.mysql_dir / 'my.cnf'}",
            f"--socket={render.mysql_socket(self.site)}", "-u", "root", "--batch",
        ])
        return run(argv, input=statements).stdout

    def _mysql_ready(self) -> bool:
        argv = self.nodes.node_command("head", [
            "mariadb-admin", f"--socket={render.mysql_socket(self.site)}", "-u", "root", "ping"])
        return run(argv, check=False, timeout=10).returncode == 0

    # ----- slurmdbd, slurmctld, slurmd ------------------------------------------------
    def ensure_slurmdbd(self) -> None:
        if not self.nodes.daemon("slurmdbd"):
            say("  accounting: starting slurmdbd")
            self.nodes.start_daemon("slurmdbd", "head", ["slurmdbd", "-D"])
        head = self.site.head.address
        wait_for("slurmdbd", lambda: self._reachable_from("head", head, self.site.slurmdbd_port), timeout=60)

    def _reachable_from(self, node: str, host: str, port: int) -> bool:
        if not self.site.isolated:
            return _port_open(host, port)
        probe = f"import socket; socket.create_connection(({host!r}, {port}), timeout=0.5)"
        return run(self.nodes.node_command(node, ["python3", "-c", probe]), check=False).returncode == 0

    def head_command(self, argv: list[str]) -> list[str]:
        return self.nodes.node_command("head", argv)

    def ensure_associations(self) -> None:
        """Cluster, accounts, QOS and users in slurmdbd. Reads first and changes only what
        is missing, so that an `up` of a running site costs three queries."""
        site = self.site
        cluster = f"cluster={site.cluster_name}"

        def show(*what: str) -> list[list[str]]:
            out = run(self.head_command(["sacctmgr", "-n", "-P", "show", *what]), timeout=60).stdout
            return [line.split("|") for line in out.splitlines() if line]

        def sacctmgr(*what: str) -> None:
            run(self.head_command(["sacctmgr", "-i", *what]), timeout=60)

        qos_have = {row[0] for row in show("qos", "format=name")}
        for qos, limits in QOS.items():
            if qos not in qos_have:
                sacctmgr("add", "qos", qos, *limits.split())
        # user|account|qos|defaultqos; rows with no user are the accounts themselves.
        assoc = show("assoc", cluster, "format=user,account,qos,defaultqos")
        if not assoc:
            sacctmgr("add", "cluster", site.cluster_name)
        accounts_have = {row[1] for row in assoc if not row[0]}
        for account, description in ACCOUNTS.items():
            if account not in accounts_have:
                sacctmgr("add", "account", account, f"description={description}", cluster,
                         *ACCOUNT_LIMITS.get(account, []))
        users_have = {(row[0], row[1]): (set(row[2].split(",")), row[3]) for row in assoc if row[0]}
        for user in DEMO_USERS:
            accounts = USER_ACCOUNTS[user]
            for account in accounts:
                if (user, account) not in users_have:
                    sacctmgr("add", "user", user, f"account={account}", cluster, f"defaultaccount={accounts[0]}")
            wanted_qos = set(USER_QOS[user].split(","))
            if any(users_have.get((user, a)) != (wanted_qos, "normal") for a in accounts):
                sacctmgr("modify", "user", "where", f"name={user}", cluster,
                         "set", f"qos={USER_QOS[user]}", "defaultqos=normal")
        # The hub's service account: sees and cancels jobs of all users (a Slurm operator), runs none.
        if (SERVICE_ACCOUNT, "physics") not in users_have:
            sacctmgr("add", "user", SERVICE_ACCOUNT, "account=physics", cluster)
        levels = {row[0]: row[1] for row in show("user", "format=user,adminlevel")}
        if levels.get(SERVICE_ACCOUNT) != "Operator":
            sacctmgr("modify", "user", "where", f"name={SERVICE_ACCOUNT}", "set", "adminlevel=operator")

    def ensure_slurmctld(self, restart: bool = False) -> None:
        if restart:
            self.nodes.stop_daemon("slurmctld")
        if not self.nodes.daemon("slurmctld"):
            say("  slurm: starting slurmctld on the head node")
            self.nodes.start_daemon("slurmctld", "head", ["slurmctld", "-D", "-i"])
        wait_for("slurmctld", lambda: self._scontrol_ping(), timeout=60, interval=0.2)

    def _scontrol_ping(self) -> bool:
        proc = run(self.head_command(["scontrol", "ping"]), check=False, timeout=20)
        return proc.returncode == 0 and "UP" in proc.stdout

    def ensure_slurmd(self, restart: bool = False) -> None:
        started = []
        for node in self.site.compute_nodes:
            name = f"slurmd-{node.name}"
            if restart:
                self.nodes.stop_daemon(name)
            if not self.nodes.daemon(name):
                self.nodes.start_daemon(name, node.name, ["slurmd", "-D", "-N", node.name])
                started.append(node.name)
        if started:
            say(f"  slurm: started slurmd on {', '.join(started)}")
        wait_for("compute nodes to be idle", self._nodes_idle, timeout=90, interval=0.3)

    def node_states(self) -> dict[str, str]:
        proc = run(self.head_command(["sinfo", "-N", "-h", "-o", "%N|%T"]), check=False, timeout=20)
        states = {}
        for line in proc.stdout.splitlines():
            name, _, state = line.partition("|")
            states[name] = state
        return states

    def _nodes_idle(self) -> bool:
        states = self.node_states()
        bad = [n for n, s in states.items() if s.startswith(("down", "drain", "fail"))]
        if bad:
            for n in bad:  # e.g. after a crash: ReturnToService brings them back, resume is faster
                run(self.head_command(["scontrol", "update", f"nodename={n}", "state=resume"]), check=False)
        return len(states) == len(self.site.compute_nodes) and all(
            s in ("idle", "mixed", "allocated", "completing") for s in states.values()
        )

    def ensure_reservation(self) -> None:
        """A future reservation for alice on the GPU node: real, visible in forms, harmless today."""
        proc = run(self.head_command(["scontrol", "show", "reservation", RESERVATION]), check=False)
        if proc.returncode == 0 and RESERVATION in proc.stdout:
            return
        run(self.head_command([
            "scontrol", "create", "reservation", f"ReservationName={RESERVATION}",
            "StartTime=now+7days", "Duration=04:00:00", "Nodes=c4", "Users=alice",
        ]))

    def status(self) -> dict[str, str]:
        try:
            return self.node_states() if self.nodes.holder("head") else {}
        except CommandError:
            return {}


def cluster_files_readable_by_others(site: SiteLayout) -> list[Path]:
    """Secrets of the cluster side that must be root-only (checked by tests)."""
    return [p for p in (site.slurm_etc / "slurmdbd.conf", site.cluster_dir / "db-password")
            if p.exists() and p.stat().st_mode & 0o077]

