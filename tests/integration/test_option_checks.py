"""The check of a request's options on the real hub: one path for every request, whatever the
user's other servers are doing and whichever of hpchub's spawners the hub runs. Values are
normalised once, first (a blank value is the target's default, never "no value"), user text
comes back quoted and cut, and nothing refused reaches Slurm."""

from __future__ import annotations

import time

import pytest

from hpchub.site.system import demo_passwords

from hpchub.spawners.targets import FIELDS

from ..hostile import CONTROL, HOSTILE_JSON, HOSTILE_TEXT
from ..site_handle import check, clean_hub, hub_settings, spawn, stop
from .test_slurm_spawner import queue

SHORT_TARGET = """\
# A target whose defaults differ from its partition's (batch: 1 h by default, chemistry not
# alice's default account), so that a value dropped on the way would show in the job.
c.HPCSpawner.targets.append({
    "name": "short", "title": "Short job", "kind": "batch",
    "defaults": {"partition": "batch", "walltime": "00:20:00", "account": "chemistry"},
    "choose": ["account", "walltime"], "limits": {"partitions": ["batch"], "max_walltime": "00:30:00"},
})
"""


def logged_in(site):
    """The site's hub, clean, with alice and bob logged in (their credentials in auth_state)."""
    for client in clean_hub(site):
        for user, password in demo_passwords().items():
            client.login(user, password)
        yield client


@pytest.fixture
def hub(loopback_site):
    yield from logged_in(loopback_site)


def post(hub, user: str, server: str, options: dict):
    path = f"/users/{user}/servers/{server}" if server else f"/users/{user}/server"
    return hub.admin("POST", path, json={"user_options": options})


def refused(response, field: str) -> str:
    assert response.status_code == 400, (response.status_code, response.text[:300])
    message = response.json()["message"]
    assert message.startswith(f"{field}:"), message
    return message


def test_a_named_server_is_checked_while_the_default_server_runs(loopback_site, hub):
    site = loopback_site
    hostile = {"target": "custom", "partition": "$(touch /tmp/hpchub-canary)"}
    spawn(hub, "bob", options={"target": "login"})
    # A new name, never loaded: checked as its own server, not skipped for the running default one.
    refused(post(hub, "bob", "hb-new", hostile), "partition")
    # A named server after a clean stop (no longer in memory): the same.
    spawn(hub, "bob", "hb-old", options={"target": "login"})
    stop(hub, "bob", "hb-old")
    refused(post(hub, "bob", "hb-old", hostile), "partition")
    servers = hub.admin("GET", "/users/bob").json()["servers"]
    assert "hb-new" not in servers and "hb-old" not in servers
    assert queue(site, "bob") == {}
    stop(hub, "bob")


def job_settings(site, user: str, timeout: float = 60) -> dict[str, str]:
    """The user's one queued or running job: its time limit and account, as Slurm has them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = check(site.ssh(user, ["squeue", "--noheader", "--user", user, "--format=%l|%a"])).stdout.split()
        if out:
            limit, account = out[0].split("|")
            return {"time_limit": limit, "account": account}
        time.sleep(0.3)
    raise AssertionError(f"no job of {user} appeared")


def test_a_blank_value_is_the_targets_default_not_the_partitions(loopback_site, hub):
    site = loopback_site
    with hub_settings(site, SHORT_TARGET):
        for blank in (" ", "\t", "  \u3000 "):
            response = post(hub, "alice", "blank", {"target": "short", "walltime": blank, "account": blank})
            assert response.status_code in (201, 202), response.text
            assert job_settings(site, "alice") == {"time_limit": "20:00", "account": "chemistry"}, repr(blank)
            stop(hub, "alice", "blank")
            hub.admin("DELETE", "/users/alice/servers/blank", json={"remove": True})


def test_user_text_in_refusals_is_quoted_and_cut_and_control_characters_are_refused(loopback_site, hub):
    site = loopback_site
    log = site.layout.log_dir / "hub.out"
    log_before = log.stat().st_size
    sent = {"escape": "batch\x1b[31mred", "carriage return": "batch\rdebug", "bell": "a\x07", "nul": "a\x00b",
            "delete": "a\x7fb", "c1 control": "a\x9bb", "huge": "x" * 100_000, "huge unicode": "é" * 50_000}
    for what, value in sent.items():
        for field in ("partition", "account", "walltime", "nodes", "constraint"):
            message = refused(post(hub, "alice", "quoted", {"target": "custom", field: value}), field)
            assert len(message) < 300, (what, field, len(message))
            assert message.isprintable(), (what, field, message)
        # As an option's name too.
        response = post(hub, "alice", "quoted", {"target": "custom", value: "1"})
        assert response.status_code == 400, (what, response.status_code)
        message = response.json()["message"]
        assert message.startswith("'") and len(message) < 300 and message.isprintable(), (what, message)
    logged = log.read_bytes()[log_before:]
    assert not [c for c in (b"\x1b", b"\r", b"\x00", b"\x07", b"\x7f") if c in logged], logged[-2000:]
    assert max(len(line) for line in logged.splitlines()) < 2000
    assert queue(site, "alice") == {}


def test_a_control_character_in_any_field_is_refused_naming_it(loopback_site, hub):
    import requests

    session = requests.Session()
    headers = {"Authorization": f"token {loopback_site.site.hub.admin_token()}"}
    for field in (*FIELDS, "target"):
        for value in CONTROL:
            response = session.post(f"{hub.url}/hub/api/users/alice/servers/ctl", headers=headers, timeout=30,
                                    json={"user_options": {"target": "custom", field: value}})
            assert response.status_code == 400, (field, value, response.status_code)
            message = response.json()["message"]
            assert message.startswith(f"{field}: may not contain control") and message.isprintable(), message
    assert queue(loopback_site, "alice") == {}


SLURM_PRESET = 'c.JupyterHub.spawner_class = "hpchub-slurm"\n'


@pytest.mark.parametrize("value", ["²", "١", "１", " ", "\x1b", "0x10"])
def test_the_slurm_spawner_refuses_what_the_one_page_spawner_refuses(loopback_site, value, slurm_preset_hub):
    hub = slurm_preset_hub
    response = post(hub, "alice", "", {"nodes": value}) if value.strip() else None
    if response is None:  # blank: the admin's default (one node), a job is submitted
        response = post(hub, "alice", "", {"nodes": value})
        assert response.status_code in (201, 202), response.text
        stop(hub, "alice")
        return
    refused(response, "nodes")
    assert queue(loopback_site, "alice") == {}


@pytest.fixture(scope="module")
def slurm_preset_hub(loopback_site):
    with hub_settings(loopback_site, SLURM_PRESET):
        yield from logged_in(loopback_site)


def preset_refuses(site, hub, field: str, value) -> None:
    """Refused with 400 naming the field, through the REST API and through the form's POST."""
    import re

    refused(post(hub, "alice", "", {field: value}), field)
    if not isinstance(value, str) or "\0" in value:
        return  # (a form posts text only)
    session = hub.sessions[0]
    xsrf = re.search(r'xsrf_token: "([^"]+)"', session.get(f"{hub.url}/hub/home", timeout=30).text).group(1)
    form = session.post(f"{hub.url}/hub/spawn/alice", data={"_xsrf": xsrf, f"opt-{field}": value}, timeout=30)
    assert form.status_code == 400 and f"{field}: " in form.text, (field, value, form.status_code)


def beyond_any_scheduler(value, field: str) -> bool:
    """Hostile for this field under every scheduler: text with a character no name, time or
    number has (for a constraint: none of the operators Slurm's syntax has either) - a shell
    metacharacter, a space or line inside, a control, a non-ASCII look-alike - or JSON of
    another type. (Plain names - "BATCH", "EOF" - and constraint expressions - "gpu|intel" -
    the Slurm spawner leaves to Slurm to judge, as it always has; its unit test checks them.)"""
    import re

    allowed = r"[A-Za-z0-9_.+:&|()\[\]*,!-]*" if field == "constraint" else r"[A-Za-z0-9_.+:&-]*"
    if isinstance(value, str):
        return not re.fullmatch(allowed, value.strip())
    return value is not None and not (isinstance(value, int) and not isinstance(value, bool) and 0 < value < 100)


@pytest.mark.parametrize("preset", ["hpchub-slurm", "hpchub-ssh"])
def test_hostile_values_are_refused_naming_the_field_by_every_preset(loopback_site, preset):
    from hpchub.site.system import demo_passwords

    site = loopback_site
    fields = ("partition", "account", "qos", "walltime", "nodes", "constraint", "reservation")
    cases = [(fields[index % len(fields)], value) for index, value in enumerate(HOSTILE_TEXT + HOSTILE_JSON)]
    cases = [(field, value) for field, value in cases if beyond_any_scheduler(value, field)]
    assert len(cases) > 150
    with hub_settings(site, f'c.JupyterHub.spawner_class = "{preset}"\n', name="55-preset"):
        for hub in clean_hub(site):
            hub.login("alice", demo_passwords()["alice"])
            for field, value in cases:
                preset_refuses(site, hub, field, value)
            assert not hub.admin("GET", "/users/alice").json()["servers"]
    assert queue(site, "alice") == {}
