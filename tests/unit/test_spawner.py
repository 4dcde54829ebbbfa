"""The one spawner class and its presets, without a site: their configuration sections (hpchub
0.1's keep working), the one check of options through every entry point, the job request and
the saved state."""

from __future__ import annotations

import asyncio

import pytest
from jupyterhub.spawner import SpawnException
from tornado import web
from traitlets.config import Config

from hpchub.schedulers.base import JobRequest
from hpchub.spawners import HPCSpawner, SlurmSpawner, SSHSpawner
from hpchub.spawners.batch import BatchLaunch
from hpchub.spawners.login import LoginLaunch
from hpchub.spawners.state import VERSION, BatchServer

from ..hostile import HOSTILE_JSON, HOSTILE_TEXT


class User:
    """What the spawner reads of JupyterHub's user before a spawn."""

    name = "nosuchuser-hpchub-test"  # not a Unix user: no groups

    def __init__(self):
        self.orm_spawners = {}


def make(cls, config: Config | None = None, **settings):
    return cls(config=config or Config(), user=User(), **settings)


NO_SCHEDULER = {"check_against_scheduler": False}
TARGETS = [{"name": "login", "title": "Login node", "kind": "login"},
           {"name": "custom", "title": "Custom", "kind": "batch", "defaults": {"partition": "batch", "walltime": "01:00:00"},
            "choose": ["partition", "account", "qos", "nodes", "cores", "memory_mb", "gpus", "walltime", "reservation",
                       "constraint"], "limits": {"max_walltime": "04:00:00"}}]


def check(spawner, options):
    return asyncio.run(spawner.check_user_options(options))


def test_hpchub_0_1_configuration_sections_apply_in_their_old_order():
    config = Config()
    config.RemoteSpawner.login_nodes = [{"name": "login1"}]
    config.RemoteSpawner.launcher_python = "/usr/bin/python3"
    config.SSHSpawner.known_hosts = "/etc/ssh/known"
    config.BatchSpawner.partition = "batch"
    config.BatchSpawner.launcher_python = "/opt/python3"  # a later section wins
    config.SlurmSpawner.walltime = "02:00:00"
    config.HPCSpawner.choices_ttl = 60
    hpc, ssh, slurm = make(HPCSpawner, config), make(SSHSpawner, config), make(SlurmSpawner, config)
    for spawner in (hpc, ssh, slurm):
        assert spawner.login_nodes == [{"name": "login1"}] and spawner.known_hosts == "/etc/ssh/known"
        assert spawner.launcher_python == "/opt/python3" and spawner.choices_ttl == 60
        assert spawner.partition == "batch"
    assert slurm.walltime == "02:00:00" and hpc.walltime == "01:00:00"  # SlurmSpawner: its own section only
    assert "HPCSettings" not in HPCSpawner.section_names()


def test_the_presets_are_one_implicit_target_each_without_a_form():
    slurm = make(SlurmSpawner, partition="debug", walltime="00:30:00", gpus=1)
    (job,) = slurm.all_targets()
    assert job.kind == "batch" and job.defaults == {"partition": "debug", "walltime": "00:30:00", "nodes": 1, "gpus": 1}
    assert not slurm.check_against_scheduler and slurm.options_form == ""
    (login,) = make(SSHSpawner).all_targets()
    assert login.kind == "login" and make(SSHSpawner).options_form == ""
    assert make(SSHSpawner).login_start_timeout == 60 and make(HPCSpawner).login_start_timeout == 120
    assert make(HPCSpawner).check_against_scheduler and callable(make(HPCSpawner).options_form)


@pytest.mark.parametrize("value", ["²", "١", "１", "0x10", "1e3", "-1", "two", True, 1.5, [], {}])
@pytest.mark.parametrize("cls", [SlurmSpawner, SSHSpawner, HPCSpawner], ids=["hpchub-slurm", "hpchub-ssh", "hpchub"])
def test_a_bad_number_is_http_400_naming_the_field_through_every_spawner(cls, value):
    spawner = make(cls, **(NO_SCHEDULER | {"targets": TARGETS} if cls is HPCSpawner else {}))
    options = {"nodes": value} if cls is not HPCSpawner else {"target": "custom", "nodes": value}
    with pytest.raises(web.HTTPError) as refused:
        check(spawner, options)
    assert refused.value.status_code == 400 and refused.value.log_message.startswith("nodes: ")


def test_every_hostile_value_is_refused_or_clean_through_the_slurm_preset():
    spawner = make(SlurmSpawner, partition="batch")
    for value in HOSTILE_TEXT + HOSTILE_JSON:
        for field in ("partition", "account", "qos", "walltime", "nodes", "constraint", "reservation"):
            try:
                _, request = check(spawner, {field: value})
            except web.HTTPError as refused:
                assert refused.status_code == 400 and refused.log_message.startswith(f"{field}: "), (field, value)
                assert refused.log_message.isprintable() and len(refused.log_message) < 300
                continue
            request.validate()  # what is accepted is a valid job


def test_the_slurm_preset_makes_the_job_of_its_settings_and_the_users_choices():
    spawner = make(SlurmSpawner, partition="batch", walltime="01:00:00", account="physics")
    _, request = check(spawner, {"nodes": "2", "walltime": " 00:30:00 ", "qos": "high"})
    assert request == JobRequest(name="jupyter", script="", queue="batch", account="physics", qos="high",
                                 walltime=30 * 60, nodes=2)
    _, request = check(spawner, {"walltime": "  ", "account": "\t"})  # blank: the settings' values
    assert (request.walltime, request.account) == (3600, "physics")


def test_a_login_target_makes_no_job_and_refuses_job_fields():
    target, request = check(make(SSHSpawner), {})
    assert target.kind == "login" and request is None
    with pytest.raises(web.HTTPError, match="partition: cannot be changed"):
        check(make(SSHSpawner), {"partition": "batch"})


def test_the_target_chooses_the_launch_and_the_timeout():
    spawner = make(HPCSpawner, targets=TARGETS, **NO_SCHEDULER)
    asyncio.run(spawner.apply_options({"target": "login"}))
    assert isinstance(spawner.launch, LoginLaunch) and spawner.start_timeout == 120
    asyncio.run(spawner.apply_options({"target": "custom", "walltime": "02:00:00"}))
    assert isinstance(spawner.launch, BatchLaunch) and spawner.launch.request.walltime == 7200
    assert spawner.start_timeout > 7 * 86400  # the queue may take a week: max_queue_wait bounds it
    assert spawner.target_name == "custom" and spawner.kind == "batch"


def test_the_state_saved_is_versioned_and_found_again():
    spawner = make(HPCSpawner)
    spawner.target_name = "compute"
    spawner.launch = BatchLaunch(spawner, server=BatchServer(job_id="42", server_id="alice-x-1", phase="queued",
                                                             submit_host="login1"))
    spawner.last_outcome = {"message": "job 41 reached its time limit"}
    saved = spawner.get_state()
    assert saved["version"] == VERSION and saved["job_id"] == "42" and saved["kind"] == "batch"
    again = make(HPCSpawner)
    again.load_state(saved)
    assert isinstance(again.launch, BatchLaunch) and again.launch.server == spawner.launch.server
    assert again.job_id == "42" and again.target_name == "compute" and again.last_outcome == spawner.last_outcome
    again.clear_state()
    # After the stop: how it ended, and where its job's output is (the home page's card reads it).
    assert again.launch is None and again.get_state() == {
        "version": VERSION, "last_outcome": spawner.last_outcome,
        "last_server": {"kind": "batch", "server_id": "alice-x-1", "cluster": "", "host": "login1", "job_id": "42"}}


def test_a_resumed_spawn_keeps_its_job_through_jupyterhubs_clear_and_options():
    saved = {"version": VERSION, "kind": "batch", "target": "custom", "job_id": "42", "server_id": "alice-x-1",
             "phase": "queued", "submit_host": "login1"}
    spawner = make(HPCSpawner, targets=TARGETS, **NO_SCHEDULER)
    spawner.resume_from(saved)
    spawner.clear_state()  # JupyterHub, before every start
    asyncio.run(spawner.apply_options({"target": "custom"}))  # JupyterHub's apply_user_options
    assert isinstance(spawner.launch, BatchLaunch) and spawner.launch.resuming and spawner.job_id == "42"


def test_the_presets_keep_their_implicit_target_when_the_one_page_spawners_targets_are_configured():
    config = Config()
    config.HPCSpawner.targets = TARGETS  # the demo and most sites set this, for hpchub
    assert [t.name for t in make(SlurmSpawner, config).all_targets()] == ["job"]
    assert [t.name for t in make(SSHSpawner, config).all_targets()] == ["login"]
    assert [t.name for t in make(HPCSpawner, config).all_targets()] == ["login", "custom"]


class TunnelServiceStandIn:
    """The tunnel service's answers (the I/O boundary): a service that restarted holds nothing."""

    def __init__(self, holds: bool):
        self.holds = holds
        self.calls: list[tuple[str, dict]] = []

    async def call(self, op: str, **fields) -> dict:
        self.calls.append((op, fields))
        if op == "status":
            return {"connected": True} if self.holds else {"missing": True}
        return {"remote_port": fields.get("remote_port"), "local_port": fields.get("local_port")}

    async def ensure(self) -> bool:
        return True


class LoginServerSpawner(SSHSpawner):
    """hpchub-ssh holding a running login-node server, its tunnel service a stand-in."""

    tunnel_stand_in = None

    @property
    def tunnels(self):
        return self.tunnel_stand_in


def login_server_spawner(tunnels, credential=None):
    from hpchub.spawners.login import LoginLaunch
    from hpchub.spawners.state import LoginServer

    spawner = make(LoginServerSpawner, login_nodes=[{"name": "login1", "address": "127.0.0.1", "port": 2201}])
    spawner.tunnel_stand_in = tunnels
    spawner.hub = type("Hub", (), {"api_url": "http://127.0.0.1:8081/hub/api/"})()
    spawner.launch = LoginLaunch(spawner, LoginServer("login1", "alice-default-1", 42, "/tmp/s", 40001, 40002))

    async def users_credential():
        return credential

    spawner.launch.credential_or_none = users_credential  # (auth_state: JupyterHub's, not here)
    return spawner


def test_tunnels_lost_with_their_service_are_rebuilt_on_their_saved_ports():
    from hpchub.credentials import SSHCredential

    credential = SSHCredential(private_key="k", certificate="c", principal="alice", serial=1, key_id="id",
                               valid_after=0, valid_before=2**31, issuer="test")
    tunnels = TunnelServiceStandIn(holds=False)
    spawner = login_server_spawner(tunnels, credential)
    assert asyncio.run(spawner.launch.ensure_tunnels()) is True
    ops = {op: fields for op, fields in tunnels.calls}
    assert ops["open"]["remote_port"] == 40001 and ops["open"]["hub_api"] == ["127.0.0.1", 8081]
    assert ops["forward"] == {"id": "alice-default-1", "remote_socket": "/tmp/s", "local_port": 40002}
    assert spawner.trouble == ""
    held = TunnelServiceStandIn(holds=True)  # a service that holds them: nothing is rebuilt
    assert asyncio.run(login_server_spawner(held, credential).launch.ensure_tunnels()) is True
    assert [op for op, _ in held.calls] == ["status"]


class StoppedMeanwhile(TunnelServiceStandIn):
    """A tunnel service that, while a poll asks for the tunnels' status, sees the server's stop
    run to its end (its `close` among the calls), then holds whatever is opened after."""

    def __init__(self, spawner_ref: list):
        super().__init__(holds=False)
        self.spawner_ref = spawner_ref
        self.held: set[str] = set()

    async def call(self, op: str, **fields) -> dict:
        if op == "status" and not any(o == "close" for o, _ in self.calls):
            self.calls.append((op, fields))
            await self.spawner_ref[0].stop()
            return {"missing": True}
        if op == "open":
            self.held.add(fields["id"])
        if op == "close":
            self.held.discard(fields["id"])
        return await super().call(op, **fields)


def test_a_poll_that_overlaps_a_stop_leaves_no_tunnel_open():
    # CI found a tunnel's keepalive session still on a login node after every server was stopped:
    # a poll that found the tunnels missing rebuilt them after the stop had closed them.
    from hpchub.credentials import SSHCredential

    credential = SSHCredential(private_key="k", certificate="c", principal="alice", serial=1, key_id="id",
                               valid_after=0, valid_before=2**31, issuer="test")
    ref: list = []
    tunnels = StoppedMeanwhile(ref)
    spawner = login_server_spawner(tunnels, credential)
    ref.append(spawner)
    launch = spawner.launch

    async def stopped_on_its_node(*_args, **_kwargs):
        return {"status": "stopped"}

    launch.run_launcher = stopped_on_its_node
    assert asyncio.run(launch.ensure_tunnels()) is True
    assert spawner.launch is None and [op for op, _ in tunnels.calls][:2] == ["status", "close"]
    assert tunnels.held == set(), tunnels.calls


def test_a_server_whose_tunnels_cannot_be_rebuilt_says_why_and_is_not_stopped():
    spawner = login_server_spawner(TunnelServiceStandIn(holds=False), credential=None)
    assert asyncio.run(spawner.launch.ensure_tunnels()) is False
    assert spawner.trouble == "your server cannot be reached until you log in again"
    assert spawner.launch is not None  # nothing was stopped


def test_a_server_stopped_by_jupyterhubs_start_up_check_says_why():
    from hpchub.spawners.launch import Launch

    class Stopped(Launch):
        async def stop(self):
            pass

    spawner = make(HPCSpawner)
    spawner.launch, spawner._check_pending = Stopped(spawner), True
    asyncio.run(spawner.stop())
    assert spawner.last_outcome == {"message": "your server did not answer when the hub restarted, and was stopped"}


def test_the_time_left_on_a_job_does_not_depend_on_the_hubs_time_zone(monkeypatch):
    import time as clock

    from hpchub.spawners.state import BatchServer

    spawner = make(HPCSpawner)
    end = clock.strftime("%Y-%m-%dT%H:%M:%S", clock.gmtime(clock.time() + 600))  # UTC, as the hub asks for it
    spawner.launch = BatchLaunch(spawner, server=BatchServer(job_id="1", server_id="s", end_time=end))
    for zone in ("UTC", "Europe/Berlin", "America/Los_Angeles", "Asia/Kolkata"):
        monkeypatch.setenv("TZ", zone)
        clock.tzset()
        assert 595 <= spawner.seconds_left <= 600, zone
    monkeypatch.undo()
    clock.tzset()


# ----- several clusters ---------------------------------------------------------------------
CLUSTERS = {"ge": {"title": "Grid Engine", "scheduler": "sge", "scheduler_options": {"parallel_environment": "mpi"},
                   "login_nodes": [{"name": "ge-login", "address": "10.0.0.11"}], "status_interval": 60,
                   "known_hosts": "/etc/hpchub/ge_known_hosts"}}
TWO_CLUSTER_TARGETS = [
    {"name": "login", "title": "Login node", "kind": "login"},
    {"name": "ge-login", "title": "GE login node", "kind": "login", "cluster": "ge"},
    {"name": "ge-job", "title": "GE job", "kind": "batch", "cluster": "ge",
     "defaults": {"partition": "short.q", "walltime": "01:00:00"}, "choose": ["walltime", "cores", "nodes", "qos"]},
    {"name": "slurm-job", "title": "Slurm job", "kind": "batch", "defaults": {"partition": "batch"},
     "choose": ["walltime", "nodes"]},
]


def two_clusters():
    return make(HPCSpawner, targets=TWO_CLUSTER_TARGETS, clusters=CLUSTERS, login_nodes=[{"name": "login1"}],
                **NO_SCHEDULER)


def test_a_target_runs_on_its_clusters_login_nodes_with_its_clusters_scheduler():
    spawner = two_clusters()
    asyncio.run(spawner.apply_options({"target": "ge-job", "cores": "4"}))
    config = spawner.cluster_config
    assert config.name == "ge" and config.scheduler == "sge" and config.status_interval == 60
    assert [n["name"] for n in config.login_nodes] == ["ge-login"]
    assert spawner.cluster.adapter.name == "sge" and spawner.cluster.adapter.parallel_environment == "mpi"
    assert [h.name for h in spawner.launch.login_hosts()] == ["ge-login"]
    assert spawner.launch.login_hosts()[0].known_hosts == "/etc/hpchub/ge_known_hosts"  # its cluster's keys
    asyncio.run(spawner.apply_options({"target": "slurm-job"}))
    assert spawner.cluster_config.name == "default" and spawner.cluster.adapter.name == "slurm"
    assert [h.name for h in spawner.launch.login_hosts()] == ["login1"]


def test_a_server_stays_on_the_cluster_it_started_on_when_its_target_moves_or_its_cluster_goes():
    from hpchub.spawners.batch import BatchLaunch

    spawner = two_clusters()
    asyncio.run(spawner.apply_options({"target": "ge-job"}))
    spawner.launch.server.server_id, spawner.launch.server.job_id = "alice-default-1", "17"
    saved = spawner.get_state()
    assert saved["cluster"] == "ge" and saved["target"] == "ge-job"
    # The admin moves the target to the Slurm cluster while job 17 runs on Grid Engine.
    moved = [dict(t, cluster="default") if t["name"] == "ge-job" else t for t in TWO_CLUSTER_TARGETS]
    restarted = make(HPCSpawner, targets=moved, clusters=CLUSTERS, login_nodes=[{"name": "login1"}], **NO_SCHEDULER)
    restarted.load_state(saved)
    assert isinstance(restarted.launch, BatchLaunch) and restarted.launch.job_id == "17"
    assert restarted.cluster_config.name == "ge" and restarted.cluster.adapter.name == "sge"
    # A state of an earlier hpchub (no cluster saved) is on its target's cluster.
    earlier = make(HPCSpawner, targets=TWO_CLUSTER_TARGETS, clusters=CLUSTERS, login_nodes=[{"name": "login1"}],
                   **NO_SCHEDULER)
    earlier.load_state({k: v for k, v in saved.items() if k != "cluster"})
    assert earlier.cluster_config.name == "ge"
    # Its cluster taken out of the configuration: the server is left alone, never asked of another scheduler.
    gone = make(HPCSpawner, targets=moved, login_nodes=[{"name": "login1"}], **NO_SCHEDULER)
    gone.load_state(saved)
    assert gone.launch is None


def test_each_clusters_status_queries_run_as_its_own_service_account_with_its_own_issuer():
    asked: list[tuple[str, str]] = []

    class Authenticator:
        extra_issuers = {"ge-ca": {}}

        async def service_account_credential(self, account: str = "", issuer: str = ""):
            asked.append((account, issuer))
            return account or "the authenticator's"

    clusters = {"ge": {**CLUSTERS["ge"], "service_account": "ge-hub", "issuer": "ge-ca"}}
    # (login nodes of this test's own: the hub's cluster contexts are per process, made once)
    spawner = make(HPCSpawner, targets=TWO_CLUSTER_TARGETS, clusters=clusters,
                   login_nodes=[{"name": "login-of-the-service-account-test"}], **NO_SCHEDULER)
    spawner.authenticator = Authenticator()
    configs = spawner.cluster_configs()
    ge, default = spawner.cluster_of(configs["ge"]), spawner.cluster_of(configs["default"])
    assert ge is not default
    assert asyncio.run(ge.service_credential()) == "ge-hub"
    assert asyncio.run(default.service_credential()) == "the authenticator's"
    assert asked == [("ge-hub", "ge-ca"), ("", "")]


def test_a_cluster_naming_an_issuer_the_authenticator_lacks_is_a_configuration_error():
    class Authenticator:
        extra_issuers = {"ge-ca": {}}

    spawner = make(HPCSpawner, targets=TWO_CLUSTER_TARGETS, clusters={"ge": {**CLUSTERS["ge"], "issuer": "nope"}},
                   **NO_SCHEDULER)
    spawner.authenticator = Authenticator()
    with pytest.raises(web.HTTPError) as refused:
        spawner.cluster_configs()
    assert "misconfigured" in refused.value.jupyterhub_message


def test_a_targets_options_are_checked_by_its_own_clusters_scheduler():
    spawner = two_clusters()
    for field, value in (("nodes", "2"), ("qos", "high")):  # fine for Slurm; Grid Engine has neither
        with pytest.raises(web.HTTPError) as refused:
            check(spawner, {"target": "ge-job", field: value})
        assert refused.value.status_code == 400 and refused.value.log_message.startswith(f"{field}: ")
    _, request = check(spawner, {"target": "slurm-job", "nodes": "2"})
    assert request.nodes == 2


def test_one_context_per_cluster_shared_by_every_spawner_of_it():
    first, second = two_clusters(), two_clusters()
    asyncio.run(first.apply_options({"target": "ge-job"}))
    asyncio.run(second.apply_options({"target": "ge-login"}))
    assert first.cluster is second.cluster
    asyncio.run(second.apply_options({"target": "login"}))
    assert first.cluster is not second.cluster


def test_a_target_naming_an_unknown_cluster_is_a_configuration_error():
    spawner = make(HPCSpawner, targets=[{"name": "x", "kind": "login", "cluster": "nosuch"}], **NO_SCHEDULER)
    with pytest.raises(Exception) as refused:
        spawner.all_targets()
    assert "cluster 'nosuch' is not one of HPCSpawner.clusters" in str(refused.value)


def test_the_spawn_page_groups_targets_by_cluster_with_each_clusters_state():
    spawner = two_clusters()
    spawner.handler = None
    html = asyncio.run(spawner.render_form())
    assert html.index('data-cluster="default"') < html.index('data-target="login"') < html.index('data-cluster="ge"')
    assert html.index('data-cluster="ge"') < html.index('data-target="ge-job"')
    assert ">Grid Engine" in html and "hpchub-cluster-state" in html
    one = make(HPCSpawner, targets=TARGETS, **NO_SCHEDULER)
    one.handler = None
    assert "data-cluster" not in asyncio.run(one.render_form())  # one cluster: no headings


def test_a_server_whose_clusters_scheduler_does_not_answer_says_its_job_state_is_not_known():
    from hpchub.spawners.state import BatchServer

    spawner, other = two_clusters(), two_clusters()
    asyncio.run(spawner.apply_options({"target": "ge-job"}))
    spawner.launch = BatchLaunch(spawner, server=BatchServer(job_id="41", server_id="alice-ge-1", submit_host="ge-login"))
    asyncio.run(other.apply_options({"target": "slurm-job"}))
    other.launch = BatchLaunch(other, server=BatchServer(job_id="7", server_id="alice-s-1", submit_host="login1"))
    assert spawner.notice == "" and other.notice == ""
    spawner.launch.watcher.last_error = "qstat -xml -r -u * exited 1: unable to contact qmaster"
    assert spawner.notice == ("the scheduler of the Grid Engine does not answer just now, so the state of job 41 "
                              "is not known")
    assert other.notice == ""  # the other cluster's servers are not concerned


def test_a_refused_form_says_why_once_in_words():
    from tornado import web

    spawner = make(HPCSpawner, targets=TARGETS, **NO_SCHEDULER)
    spawner.user.groups = []
    # A field the form shows: its message goes next to it, nothing above the form.
    with pytest.raises(web.HTTPError) as refused:
        asyncio.run(spawner.form_options({"target": ["custom"], "custom.walltime": ["09:00:00"]}))
    assert spawner.refusal.errors == {"walltime": "can be at most 04:00:00 here"}
    assert refused.value.jupyterhub_message == ""
    # One it does not show (no such target): above the form, as "field: why", never "HTTP 400: ...".
    with pytest.raises(web.HTTPError) as refused:
        asyncio.run(spawner.form_options({"target": ["nowhere"]}))
    assert refused.value.jupyterhub_message.startswith("target: 'nowhere' is not a place you can start a server")


# ----- a target's own environment -----------------------------------------------------------
GPU_LOGIN = [{"name": "login1", "address": "10.0.0.1"}, {"name": "login-gpu", "address": "10.0.0.9"}]
OWN_ENVIRONMENT = [
    {"name": "login", "title": "Login node", "kind": "login"},
    {"name": "gpu", "title": "GPU node", "kind": "batch", "defaults": {"partition": "gpu", "walltime": "01:00:00"},
     "setup_lines": ["module load cuda/12"], "environment": {"CUDA_CACHE_DISABLE": "1"},
     "scheduler_args": [["--licenses=matlab:1"], ["--mail-type", "NONE"]], "login_nodes": ["login-gpu"]},
]


def test_a_targets_setup_lines_environment_scheduler_args_and_login_nodes_reach_its_servers():
    spawner = make(HPCSpawner, targets=OWN_ENVIRONMENT, login_nodes=GPU_LOGIN, setup_lines=["umask 077"],
                   **NO_SCHEDULER)
    asyncio.run(spawner.apply_options({"target": "gpu"}))
    assert spawner.all_setup_lines == ["umask 077", "module load cuda/12"]
    assert [h.name for h in spawner.launch.login_hosts()] == ["login-gpu"]
    spawner.launch.server.server_id = "alice-default-0a1b2c3d"
    script = spawner.cluster.adapter.job_script(spawner.launch.job_request())
    assert "#SBATCH --licenses=matlab:1\n#SBATCH --mail-type NONE\n" in script
    assert "umask 077\nmodule load cuda/12\nexec " in script
    asyncio.run(spawner.apply_options({"target": "login"}))  # the other target: none of it
    assert spawner.all_setup_lines == ["umask 077"] and len(spawner.launch.login_hosts()) == 2


@pytest.mark.parametrize("change, words", [
    ({"login_nodes": ["login-nowhere"]}, "login nodes ['login-nowhere'] are not"),
    ({"scheduler_args": [["--output=/tmp/x"]]}, "--output is set by hpchub"),
    ({"scheduler_args": [["-p", "debug"]]}, "-p is a job field"),
    ({"scheduler_args": [["licenses=x"]]}, "does not start with an option"),
    ({"environment": {"JUPYTERHUB_API_TOKEN": "x"}}, "is the hub's to set"),
    ({"environment": {"BAD NAME": "x"}}, "is not a variable name"),
    ({"setup_lines": ["module load a\nrm -rf ~"]}, "one line per item"),
])
def test_a_targets_own_environment_is_checked_when_the_hub_starts(change, words):
    targets = [OWN_ENVIRONMENT[0], {**OWN_ENVIRONMENT[1], **change}]
    spawner = make(HPCSpawner, targets=targets, login_nodes=GPU_LOGIN, **NO_SCHEDULER)
    with pytest.raises(SpawnException) as refused:
        spawner.all_targets()
    assert words in refused.value.log_message


def test_a_refusal_on_a_page_without_hpchubs_form_is_said_above_it():
    from tornado import web

    # An admin's own form (it cannot show hpchub's message next to a field) ...
    spawner = make(HPCSpawner, targets=TARGETS, options_form="<p>the centre's own form</p>", **NO_SCHEDULER)
    spawner.user.groups = []
    with pytest.raises(web.HTTPError) as refused:
        asyncio.run(spawner.form_options({"target": ["custom"], "custom.walltime": ["09:00:00"]}))
    assert refused.value.jupyterhub_message == "walltime: can be at most 04:00:00 here"
    # ... and hpchub-slurm, which has none (its spawn links' confirmation page posts opt-*).
    slurm = make(SlurmSpawner, partition="batch")
    with pytest.raises(web.HTTPError) as refused:
        asyncio.run(slurm.form_options({"opt-target": ["job"], "opt-nodes": ["²"]}))
    assert refused.value.jupyterhub_message == "nodes: must be a whole number"


def test_a_server_that_ended_on_its_own_is_released_once():
    # JupyterHub calls stop() only for a server that poll() says still runs: a job that ended by
    # itself (its walltime, a node failure) kept its tunnels and its place in the watcher.
    from hpchub.spawners.launch import Launch

    class Ended(Launch):
        stops = 0

        async def poll(self):
            return 119

        async def stop(self):
            Ended.stops += 1
            assert self.stopping  # no rebuild of its tunnels meanwhile

    spawner = make(HPCSpawner)
    spawner.launch = Ended(spawner)

    async def polled_three_times():
        return [await spawner.poll() for _ in range(3)]

    assert asyncio.run(polled_three_times()) == [119, 119, 119]
    assert Ended.stops == 1
