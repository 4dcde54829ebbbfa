"""hpchub's pages on the real hub, as a browser would ask for them (a session with cookies):
they render whatever options JupyterHub has stored, a link never starts a server, and text
that is not UTF-8 is refused with 400 rather than a server error."""

from __future__ import annotations

import re
import time

import pytest

from hpchub.site.system import demo_passwords

from ..hostile import HOSTILE_JSON, HOSTILE_TEXT
from ..site_handle import clean_hub, hub_settings, spawn
from .test_hostile_input import legal_somewhere
from .test_slurm_spawner import queue

# What a PUT to the server API may store as user_options (JupyterHub keeps it unchecked).
STORED = [{"target": ["x"]}, {"target": {"a": 1}}, {"target": None}, {"target": 1}, {"target": True},
          {"target": "x" * 100_000}, {"target": "\x00\x1b[31m"}, {"target": "custom", "walltime": ["01:00:00"]},
          {"target": "custom", "nodes": {"$gt": ""}}, {"target": "custom", "nodes": 10**30},
          {"target": "<script>alert(1)</script>"}, {"\x00": "x", "target": "login"}, {"target": "login", "": ""},
          *({"target": "custom", "partition": value} for value in HOSTILE_JSON)]


@pytest.fixture
def hub(loopback_site):
    yield from clean_hub(loopback_site)


def logged_in_session(hub, user: str):
    session, response = hub.login(user, demo_passwords()[user])
    assert response.status_code == 200, response.text[:300]
    return session


def test_every_page_renders_whatever_options_were_stored(loopback_site, hub):
    session = logged_in_session(hub, "alice")
    names = []
    try:
        for index, options in enumerate(STORED):
            name = f"stored{index}"
            response = hub.admin("PUT", f"/users/alice/servers/{name}", json={"user_options": options})
            assert response.status_code == 201, (options, response.status_code, response.text[:200])
            names.append(name)
        home = session.get(f"{hub.url}/hub/home", timeout=30)
        assert home.status_code == 200, home.text[-1000:]
        assert "<script>alert(1)</script>" not in home.text
        for name in names:
            form = session.get(f"{hub.url}/hub/spawn/alice/{name}", timeout=30)
            assert form.status_code == 200, (name, form.status_code, form.text[-500:])
            assert 'name="target"' in form.text
    finally:
        for name in names:
            hub.admin("DELETE", f"/users/alice/servers/{name}", json={"remove": True})


def test_a_spawn_link_opens_the_filled_in_form_and_starts_nothing(loopback_site, hub):
    site = loopback_site
    session = logged_in_session(hub, "alice")
    # A top-level navigation from another site: a GET with the user's cookies, no XSRF token.
    response = session.get(f"{hub.url}/hub/spawn/alice/linked?opt-target=custom&opt-walltime=00%3A25%3A00",
                           timeout=30, allow_redirects=False)
    assert response.status_code == 200, (response.status_code, response.headers.get("Location"))
    assert re.search(r'id="target-custom"\s+value="custom"\s+checked', response.text), response.text[-3000:]
    assert 'value="00:25:00"' in response.text
    assert "linked" not in hub.admin("GET", "/users/alice").json()["servers"]
    assert queue(site, "alice") == {}


def test_a_hostile_spawn_link_is_refused_on_the_form_it_opens_and_starts_nothing(loopback_site, hub):
    site = loopback_site
    session = logged_in_session(hub, "alice")
    # A value the chosen target's form shows: refused at its field, before anyone presses Start.
    page = session.get(f"{hub.url}/hub/spawn/alice/linked",
                       params={"opt-target": "custom", "opt-walltime": "99:99:99"}, timeout=30)
    assert page.status_code == 200 and 'id="custom.walltime-error"' in page.text, page.text[-2000:]
    # A field the form does not show (a target that is no place to run): said above the form.
    for value in [v for v in HOSTILE_TEXT if "\0" not in v and not legal_somewhere(v)][:60]:
        page = session.get(f"{hub.url}/hub/spawn/alice/linked", params={"opt-target": value}, timeout=30)
        assert page.status_code == 200, (value, page.status_code, page.text[-500:])
        assert 'id="hpchub-link-refused"' in page.text and "target:" in page.text, (value, page.text[-2000:])
        page = session.get(f"{hub.url}/hub/spawn/alice/linked", params={"opt-target": "custom", "opt-partition": value},
                           timeout=30)
        assert page.status_code == 200 and 'id="custom.partition-error"' in page.text, (value, page.text[-2000:])
    assert "linked" not in hub.admin("GET", "/users/alice").json()["servers"]
    assert queue(site, "alice") == {}


def test_a_spawn_link_to_a_spawner_without_a_form_asks_first(loopback_site, hub):
    site = loopback_site
    with hub_settings(site, 'c.JupyterHub.spawner_class = "hpchub-slurm"\n'):
        session = logged_in_session(hub, "alice")
        response = session.get(f"{hub.url}/hub/spawn/alice?opt-walltime=00:25:00", timeout=30, allow_redirects=False)
        assert response.status_code == 200, (response.status_code, response.headers.get("Location"))
        assert 'id="hpchub-confirm-spawn"' in response.text and "00:25:00" in response.text
        assert not hub.admin("GET", "/users/alice").json()["servers"]
        assert queue(site, "alice") == {}
        # The page's own button (a POST with the XSRF token) refuses what the REST API refuses.
        xsrf = re.search(r'name="_xsrf" value="([^"]+)"', response.text).group(1)
        refused = session.post(f"{hub.url}/hub/spawn/alice", data={"_xsrf": xsrf, "opt-nodes": "²"}, timeout=30)
        assert refused.status_code == 400 and "nodes: must be a whole number" in refused.text
        assert queue(site, "alice") == {}


def test_text_that_is_not_utf8_is_refused_with_400(loopback_site, hub):
    session = logged_in_session(hub, "alice")
    page = session.get(f"{hub.url}/hub/spawn/alice/bytes", timeout=30)
    xsrf = re.search(r'_xsrf=([^"&]+)', page.text).group(1)
    in_query = session.get(f"{hub.url}/hub/spawn/alice/bytes?opt-target=%FF", timeout=30, allow_redirects=False)
    in_body = session.post(f"{hub.url}/hub/spawn/alice/bytes", data=b"_xsrf=" + xsrf.encode() + b"&target=%FF",
                           headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=30)
    for response in (in_query, in_body):
        assert response.status_code == 400, (response.status_code, response.text[-500:])
        assert "is not UTF-8 text" in response.text
    assert "bytes" not in hub.admin("GET", "/users/alice").json()["servers"]


def test_the_time_left_on_a_job_is_right_with_the_cluster_in_another_time_zone(loopback_site, hub):
    site = loopback_site
    assert site.in_hub_side(["date", "+%Z"]).stdout.strip() == "UTC"
    assert site.ssh("alice", ["date", "+%Z"]).stdout.strip() in ("CET", "CEST")  # the demo cluster's zone
    session = logged_in_session(hub, "alice")
    spawn(hub, "alice", "timed", options={"target": "compute", "walltime": "00:20:00"})
    deadline = time.monotonic() + 60
    while True:  # (the job's end is learnt from the next status query if it answered first)
        home = session.get(f"{hub.url}/hub/home", timeout=30).text
        row = re.search(r'data-server-name="timed"(.*?)class="card-footer"', home, re.S)
        assert row, home[-3000:]
        left = re.search(r'class="hpchub-left">([^<]*)<', row.group(1))
        if left and left.group(1).strip():
            break
        if time.monotonic() > deadline:
            model = hub.admin("GET", "/users/alice").json()["servers"].get("timed")
            raise AssertionError(f"no time left shown: {row.group(0)}\n{model}")
        time.sleep(1)
    assert left.group(1).strip() in ("19 min", "20 min"), left.group(1)
    hub.admin("DELETE", "/users/alice/servers/timed")
