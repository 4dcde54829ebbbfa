"""The hub on PostgreSQL (Debian's server, started by the fixture) instead of SQLite: a user
logs in, starts a server of each kind, the hub restarts and finds both, and they stop."""

from __future__ import annotations

import pytest

from ..integration.test_credentials import login_ok
from ..integration.test_slurm_spawner import answers, queue
from ..site_handle import clean_hub, hub_settings, spawn, stop


@pytest.fixture(scope="module")
def pg_hub(loopback_site, postgresql):
    with hub_settings(loopback_site, f"c.JupyterHub.db_url = {postgresql.url!r}\n", name="60-postgresql"):
        yield from clean_hub(loopback_site)


def test_login_spawn_of_both_kinds_restart_and_stop_on_postgresql(loopback_site, postgresql, pg_hub):
    hub = pg_hub
    login_ok(hub, "alice")
    # The hub's records are in PostgreSQL (not in the SQLite file it used before).
    assert "alice" in postgresql.sql("SELECT name FROM users", database="jupyterhub").split()
    assert hub.ssh_credential("alice")[0].principal == "alice"  # auth_state, encrypted, kept there too

    on_login = spawn(hub, "alice", "l", options={"target": "login"})
    in_job = spawn(hub, "alice", "j", options={"target": "compute"})
    job_id = in_job["state"]["job_id"]
    assert on_login["state"]["kind"] == "login" and queue(loopback_site, "alice") == {job_id: "RUNNING"}
    stored = postgresql.sql("SELECT count(*) FROM spawners WHERE server_id IS NOT NULL", database="jupyterhub")
    assert stored.strip() == "2"

    loopback_site.site.hub.restart()
    servers = hub.admin("GET", "/users/alice").json()["servers"]
    assert servers["l"]["ready"] and servers["j"]["ready"] and servers["j"]["state"]["job_id"] == job_id
    assert answers(hub, "alice", "l") and answers(hub, "alice", "j")

    stop(hub, "alice", "l")
    stop(hub, "alice", "j")
    assert queue(loopback_site, "alice") == {}
    stored = postgresql.sql("SELECT count(*) FROM spawners WHERE server_id IS NOT NULL", database="jupyterhub")
    assert stored.strip() == "0"
