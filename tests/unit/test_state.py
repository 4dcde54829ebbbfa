"""The spawner's saved state (spawners/state.py): versioned, round-trips, and reads what
hpchub 0.1 saved, so that servers running across an upgrade are found again."""

from __future__ import annotations

import pytest

from dataclasses import replace

from hpchub.spawners.state import (VERSION, BatchServer, LastServer, LoginServer, SpawnerState, dump, is_resumable,
                                   load)

QUEUED = BatchServer(job_id="42", server_id="alice-x-0a1b", submit_host="login1", phase="queued")


def test_each_kind_round_trips_with_its_version():
    for state in (SpawnerState("login", "login", LoginServer("login2", "alice-default-1234", 4711)),
                  SpawnerState("batch", "gpu", QUEUED, {"message": "job 41 reached its time limit"})):
        raw = dump(state)
        assert raw["version"] == VERSION and raw["kind"] == state.kind
        # (where its output is: the server itself, when the state does not say)
        assert load(raw) == replace(state, last_server=LastServer.of(state.server, state.cluster))
    assert dump(SpawnerState()) == {}
    on_ge = SpawnerState("batch", "ge-compute", QUEUED, cluster="gridengine")
    assert dump(on_ge)["cluster"] == "gridengine" and load(dump(on_ge)).cluster == "gridengine"
    assert "cluster" not in dump(SpawnerState("batch", "gpu", QUEUED))  # the default: as before 0.3
    assert dump(SpawnerState(last_outcome={"message": "x"})) == {"version": VERSION, "last_outcome": {"message": "x"}}


def test_the_state_is_flat_for_an_admin_reading_it():
    raw = dump(SpawnerState("batch", "compute", BatchServer(job_id="7", server_id="s", node="c3", phase="ready")))
    assert (raw["job_id"], raw["node"], raw["phase"], raw["target"]) == ("7", "c3", "ready", "compute")


def test_states_saved_by_hpchub_0_1_are_read():
    # hpchub-ssh
    on_login = LoginServer("login1", "bob-default-9f", 812)
    assert load({"host": "login1", "server_id": "bob-default-9f", "pid": 812}) == SpawnerState(
        "login", "", on_login, last_server=LastServer("login", "bob-default-9f", "", "login1"))
    # hpchub-slurm, queued
    old_batch = {"job_id": "42", "server_id": "alice-x-0a1b", "submit_host": "login1", "phase": "queued", "node": "",
                 "address": "", "port": 0, "end_time": "", "sealed_token": "abc"}
    assert load(old_batch).server == BatchServer(**{**old_batch})
    assert is_resumable(old_batch)
    # hpchub (both kinds' keys side by side, with kind and target)
    both = {**old_batch, "host": "", "pid": 0, "kind": "batch", "target": "compute"}
    assert load(both) == SpawnerState("batch", "compute", BatchServer(**old_batch),
                                      last_server=LastServer("batch", "alice-x-0a1b", "", "login1", "42"))
    # after a stop: only how the job ended
    assert load({"last_outcome": {"message": "job 42 was cancelled"}}) == SpawnerState(
        last_outcome={"message": "job 42 was cancelled"})


def test_only_a_queued_batch_job_is_resumed():
    assert is_resumable(dump(SpawnerState("batch", "compute", QUEUED)))
    ready = BatchServer(**{**QUEUED.__dict__, "phase": "ready"})
    assert not is_resumable(dump(SpawnerState("batch", "compute", ready)))
    assert not is_resumable(dump(SpawnerState("login", "login", LoginServer("login1", "s", 1))))
    assert not is_resumable({}) and not is_resumable(None)


def test_a_state_from_a_newer_hpchub_is_refused_rather_than_misread():
    with pytest.raises(ValueError, match="version 3"):
        load({"version": 3, "kind": "batch"})


def test_where_the_last_server_output_is_outlives_the_server():
    login = LastServer.of(LoginServer("login2", "alice-default-1234", 4711), "")
    batch = LastServer.of(QUEUED, "gridengine")
    assert (login.kind, login.host) == ("login", "login2")
    assert (batch.kind, batch.host, batch.job_id, batch.cluster) == ("batch", "login1", "42", "gridengine")
    # Kept with no server running (after a stop), and read back.
    stopped = SpawnerState(last_outcome={"message": "job 42 failed"}, last_server=batch)
    assert load(dump(stopped)) == stopped
    # What a hand-edited or damaged state holds is not taken as a place to read from.
    for damaged in ({"kind": "shell", "server_id": "x"}, {"kind": "batch"}, "batch", ["x"]):
        assert load({"version": VERSION, "last_server": damaged}).last_server is None
