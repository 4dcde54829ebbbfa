"""Targets and the check of users' options, against the demo site's real Slurm answers
(tests/unit/golden/slurm: sinfo, sacctmgr, scontrol as the service account saw them)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hpchub.schedulers.slurm import Slurm
from hpchub.site.hub import DEMO_TARGETS
from hpchub.spawners.options import FieldError, resolve
from hpchub.spawners.targets import Choices, Target, TargetConfigError

GOLDEN = Path(__file__).parent / "golden" / "slurm"
SLURM = Slurm()


def alice_choices() -> Choices:
    return Choices(SLURM.parse_partitions((GOLDEN / "sinfo_partitions.txt").read_text()),
                   SLURM.parse_associations((GOLDEN / "sacctmgr_associations_alice.txt").read_text()),
                   tuple(SLURM.parse_reservations((GOLDEN / "scontrol_reservations.txt").read_text())))


def bob_choices() -> Choices:
    choices = alice_choices()
    return Choices(choices.partitions, {"physics": choices.associations["physics"]}, choices.reservations)


TARGETS = {spec["name"]: Target.from_config(spec) for spec in DEMO_TARGETS}


def test_the_scheduler_answers_parse_into_choices():
    choices = alice_choices()
    batch = choices.partitions["batch"]
    assert (batch.nodes, batch.cores_per_node, batch.memory_mb_per_node, batch.gpus_per_node) == (4, 4, 4000, 2)
    assert batch.max_walltime == 12 * 3600 and {"intel", "amd", "gpu", "avx512"} <= batch.features
    assert choices.partitions["debug"].max_walltime == 1800 and choices.partitions["debug"].gpus_per_node == 0
    assert sorted(choices.associations) == ["chemistry", "physics"]
    assert choices.qos_for("physics") == ["high", "normal"]
    assert choices.reservations_for("alice") == ["workshop"] and bob_choices().reservations_for("bob") == []
    workshop = choices.reservation("workshop")  # State=INACTIVE: it has not started
    assert (workshop.start, workshop.end, workshop.active) == ("2026-12-02T19:54:30", "2026-12-02T23:54:30", False)
    assert choices.reservation("nowhere") is None


def test_a_reservation_is_offered_with_its_window_and_remembered_only_once_it_has_started():
    import dataclasses

    from hpchub.spawners.form import ClusterGroup, render

    choices = alice_choices()
    custom = TARGETS["custom"]
    last = {"target": "custom", "reservation": "workshop", "walltime": "00:20:00"}
    html = render([ClusterGroup("default", "Cluster", "up", [custom], choices)], last=last, refusal=None, user="alice")
    option = re.search(r'<option value="workshop"([^>]*)>([^<]*)<', html)
    assert "selected" not in option.group(1)  # not the default: it starts later
    assert option.group(2).strip() == "workshop: starts 2026-12-02 19:54:30 UTC, your job would wait until then"
    assert 'value="00:20:00"' in html  # the rest of the last options stay
    started = dataclasses.replace(choices, reservations=tuple(
        dataclasses.replace(r, active=True) for r in choices.reservations))
    html = render([ClusterGroup("default", "Cluster", "up", [custom], started)], last=last, refusal=None, user="alice")
    option = re.search(r'<option value="workshop"([^>]*)>([^<]*)<', html)
    assert "selected" in option.group(1) and option.group(2).strip() == "workshop (until 2026-12-02 23:54:30 UTC)"


def test_defaults_make_a_job_and_the_login_target_makes_none():
    assert resolve(TARGETS["compute"], {"target": "compute"}, alice_choices(), "alice") == {
        "partition": "batch", "nodes": 1, "walltime": "01:00:00"}
    assert resolve(TARGETS["login"], {"target": "login"}, alice_choices(), "alice") == {}
    gpu = resolve(TARGETS["gpu"], {"gpus": "2", "walltime": "1:30:00"}, alice_choices(), "alice")
    assert gpu == {"partition": "batch", "nodes": 1, "gpus": 2, "walltime": "01:30:00", "constraint": "gpu"}


@pytest.mark.parametrize("target, options, field, message", [
    ("compute", {"walltime": "05:00:00"}, "walltime", "can be at most 04:00:00 here"),
    ("compute", {"partition": "debug"}, "partition", "cannot be changed for Compute node"),
    ("compute", {"script": "x"}, "script", "is not an option here"),
    ("custom", {"partition": "debug", "walltime": "00:45:00"}, "walltime", "can be at most 00:30:00 here"),
    ("custom", {"partition": "nope"}, "partition", "'nope' is not one you can use here (batch, debug, shared)"),
    ("custom", {"account": "chemistry"}, "account", "'chemistry' is not an account of yours here (physics)"),
    ("custom", {"qos": "gold"}, "qos", "'gold' is not a QOS you can use"),
    ("custom", {"nodes": "5"}, "nodes", "nodes can be at most 4 on 'batch'"),
    ("custom", {"nodes": "0"}, "nodes", "nodes must be at least 1"),
    ("custom", {"nodes": "two"}, "nodes", "must be a whole number"),
    ("custom", {"partition": "debug", "gpus": 1, "walltime": "00:10:00"}, "gpus", "'debug' has no GPUs"),
    ("custom", {"constraint": "quantum"}, "constraint",
     "no node of 'batch' has quantum (features: amd, avx2, avx512, gpu, intel)"),
    ("custom", {"reservation": "workshop"}, "reservation", "'workshop' is not a reservation open to you"),
    ("custom", {"walltime": "soon"}, "walltime", "must be a time like 01:30:00"),
    ("gpu", {"gpus": 3}, "gpus", "GPUs can be at most 2 on 'batch'"),
])
def test_every_bad_value_is_refused_naming_its_field(target, options, field, message):
    with pytest.raises(FieldError) as refused:
        resolve(TARGETS[target], options, bob_choices(), "bob")
    assert (refused.value.field, refused.value.message) == (field, message)


def test_what_bob_may_ask_for_he_gets():
    values = resolve(TARGETS["custom"], {"partition": "shared", "account": "physics", "qos": "normal", "nodes": 2,
                                         "cores": "2", "memory_mb": "512", "constraint": "amd&avx512",
                                         "walltime": "02:00"}, bob_choices(), "bob")
    assert values == {"partition": "shared", "account": "physics", "qos": "normal", "nodes": 2, "cores": 2,
                      "memory_mb": 512, "walltime": "00:02:00", "constraint": "amd&avx512"}


def test_groups_and_accounts_limit_who_sees_a_target():
    staff = Target.from_config({"name": "staff", "kind": "login", "groups": ["hpc-staff"]})
    chem = Target.from_config({"name": "chem", "kind": "batch", "accounts": ["chemistry"]})
    assert staff.visible_to({"hpc-staff", "alice"}, ()) and not staff.visible_to({"bob"}, ())
    assert chem.visible_to((), alice_choices().associations) and not chem.visible_to((), bob_choices().associations)


@pytest.mark.parametrize("spec, complaint", [
    ({"name": "x", "kind": "cloud"}, "`kind` must be 'login' or 'batch'"),
    ({"name": "x y", "kind": "login"}, "`name` must be a short name"),
    ({"name": "x", "kind": "batch", "choose": ["script"]}, "'script' is not a job field"),
    ({"name": "x", "kind": "login", "defaults": {"nodes": 2}}, "a login-node target has no job fields"),
    ({"name": "x", "kind": "batch", "limits": {"max_fun": 1}}, "unknown limits ['max_fun']"),
])
def test_a_misconfigured_target_is_reported_clearly(spec, complaint):
    with pytest.raises(TargetConfigError, match=complaint.replace("[", r"\[").replace("]", r"\]")):
        Target.from_config(spec)
