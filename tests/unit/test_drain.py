"""Draining login nodes: the file the hub reads, the command that edits it, and what the spawner
makes of it (no new servers there, a notice to the users of the servers still there)."""

from __future__ import annotations

import json

import pytest
from jupyterhub.spawner import SpawnException
from traitlets.config import Config

from hpchub.cli import main
from hpchub.drain import drain, read_drained, servers_on, undrain
from hpchub.spawners import SSHSpawner
from hpchub.spawners.launch import Launch
from hpchub.spawners.login import LoginLaunch
from hpchub.spawners.state import LoginServer


def test_drain_and_undrain_edit_the_file_the_hub_reads(tmp_path):
    path = tmp_path / "drained.json"
    assert read_drained(path) == {}
    drain(path, "login2", "kernel update", now=100)
    drain(path, "login1")
    assert read_drained(path) == {"login1": {"since": read_drained(path)["login1"]["since"], "message": ""},
                                  "login2": {"since": 100, "message": "kernel update"}}
    assert set(undrain(path, "login1")) == {"login2"}
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="not an object of node names"):
        read_drained(path)


def test_the_servers_on_a_node_come_from_the_hubs_saved_state():
    users = [{"name": "alice", "servers": {"": {"state": {"kind": "login", "host": "login2"}},
                                           "j": {"state": {"kind": "batch", "submit_host": "login2"}}}},
             {"name": "bob", "servers": {"": {"state": {"kind": "login", "host": "login1"}}}}]
    assert servers_on(users, "login2") == [("alice", "", "login"), ("alice", "j", "batch")]


def test_the_command_drains_and_lists(tmp_path, capsys):
    path = tmp_path / "drained.json"
    assert main(["drain", "login2", "--message", "kernel update", "--file", str(path)]) == 0
    assert json.loads(path.read_text())["login2"]["message"] == "kernel update"
    assert main(["drain", "--file", str(path)]) == 0 and "drained: login2" in capsys.readouterr().out
    assert main(["drain", "login2", "--undo", "--file", str(path)]) == 0 and read_drained(path) == {}
    assert main(["drain", "login2"]) == 2  # no file named: said, not guessed


def spawner_with_drain_file(path) -> SSHSpawner:
    config = Config()
    config.HPCSpawner.login_nodes = [{"name": "login1", "address": "10.0.0.1"}, {"name": "login2", "address": "10.0.0.2"}]
    config.HPCSpawner.drain_file = str(path)
    return SSHSpawner(config=config)


def test_a_drained_node_takes_no_new_server_and_its_users_are_told(tmp_path):
    path = tmp_path / "drained.json"
    spawner = spawner_with_drain_file(path)
    assert [h.name for h in Launch(spawner).login_hosts(undrained=True)] == ["login1", "login2"]
    drain(path, "login2", "kernel update")
    assert [h.name for h in Launch(spawner).login_hosts(undrained=True)] == ["login1"]
    spawner.launch = LoginLaunch(spawner, LoginServer(host="login2", server_id="alice-x"))  # running there
    assert spawner.notice.startswith("login node login2 is being drained (kernel update): stop your server")
    drain(path, "login1")
    with pytest.raises(SpawnException) as refused:
        Launch(spawner).login_hosts(undrained=True)
    assert refused.value.jupyterhub_message == "every login node is being drained for maintenance just now; try again later"
