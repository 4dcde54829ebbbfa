"""Hostile input against the real hub: the corpus of tests/hostile.py as user_options through
the REST API and the form, and as server and user names. Every value is refused with a 400
naming its field (or, for names, refused by JupyterHub or by hpchub's cluster-name check),
no job is left in the queue, and the canary file that any injected command would create
appears nowhere: not on the nodes, not on the hub side."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
import requests

from hpchub.site.system import demo_passwords
from hpchub.spawners.targets import FIELDS

from ..hostile import CANARY, HOSTILE_JSON, HOSTILE_TEXT
from ..site_handle import check, clean_hub
from .test_slurm_spawner import queue

# Values that are legal once trimmed, in some field (they would start a real server).
LEGAL = {"batch", "debug", "shared", "physics", "chemistry", "normal", "high", "workshop", "gpu", "intel", "amd",
         "avx2", "avx512", "login", "compute", "custom"}


@pytest.fixture
def hub(loopback_site):
    yield from clean_hub(loopback_site)


def legal_somewhere(value) -> bool:
    if value is None:
        return True  # not given: the target's default
    text = str(value).strip()
    return text in LEGAL or re.fullmatch(r"[0-9]{1,9}(:[0-9]{2}){0,2}", text) is not None or text == ""


def canary_anywhere(site) -> list[str]:
    """Where the canary exists: each node's own /tmp, and the hub side's."""
    found = [f"node {node}" for node in site.info["compute_nodes"] + ["login1", "login2", "head"]
             if site.in_node(node, ["test", "-e", CANARY]).returncode == 0]
    if site.in_hub_side(["test", "-e", CANARY]).returncode == 0:
        found.append("hub side")
    return found


def test_hostile_options_through_the_rest_api_are_refused_naming_the_field(loopback_site, hub):
    site = loopback_site
    session = requests.Session()
    headers = {"Authorization": f"token {site.site.hub.admin_token()}"}
    url = f"{hub.url}/hub/api/users/alice/servers/probe"
    sent = 0
    for index, value in enumerate(HOSTILE_TEXT + HOSTILE_JSON):
        if legal_somewhere(value):
            continue
        field = FIELDS[index % len(FIELDS)]
        for options, named in (({"target": "custom", field: value}, field), ({"target": value}, "target")):
            response = session.post(url, json={"user_options": options}, headers=headers, timeout=30)
            sent += 1
            assert response.status_code == 400, (options, response.status_code, response.text[:300])
            message = response.json()["message"]
            assert message.startswith(f"{named}:"), (options, message)
    assert sent == 2 * len([v for v in HOSTILE_TEXT + HOSTILE_JSON if not legal_somewhere(v)]) >= 380
    assert "probe" not in hub.admin("GET", "/users/alice").json()["servers"]
    assert queue(site, "alice") == {}
    assert canary_anywhere(site) == []


def test_hostile_values_through_the_form_come_back_next_to_their_field(loopback_site, hub):
    site = loopback_site
    session, _ = hub.login("alice", demo_passwords()["alice"])
    for index, value in enumerate(v for v in HOSTILE_TEXT if not legal_somewhere(v) and "\0" not in v):
        if index >= 40:
            break
        field = ("partition", "account", "qos", "walltime", "nodes", "constraint", "reservation")[index % 7]
        page = session.get(f"{hub.url}/hub/spawn/alice/formprobe", timeout=30)
        xsrf = re.search(r'_xsrf=([^"&]+)', page.text).group(1)
        response = session.post(f"{hub.url}/hub/spawn/alice/formprobe", timeout=30,
                                data={"_xsrf": xsrf, "target": "custom", f"custom.{field}": value})
        assert response.status_code < 500, (field, value, response.status_code)
        # The form comes back with the refusal next to the field (and the value escaped).
        assert f'id="custom.{field}-error"' in response.text, (field, value, response.text[:500])
        assert "Traceback" not in response.text
    assert "formprobe" not in hub.admin("GET", "/users/alice").json()["servers"]
    assert queue(site, "alice") == {}
    assert canary_anywhere(site) == []


def test_hostile_server_and_user_names_start_nothing(loopback_site, hub):
    site = loopback_site
    headers = {"Authorization": f"token {site.site.hub.admin_token()}"}
    statuses = set()
    for value in HOSTILE_TEXT[:120]:
        if "\0" in value or not value.strip():
            continue
        response = requests.post(f"{hub.url}/hub/api/users/alice/servers/{quote(value, safe='')}", headers=headers,
                                 json={"user_options": {"target": "custom", "partition": "nonexistent"}}, timeout=30)
        statuses.add(response.status_code)
        assert response.status_code in (400, 404), (value, response.status_code, response.text[:200])
    # (JupyterHub 5 takes only "safe slugs" as server names, so every one above is refused.)
    # As user names: JupyterHub refuses some; hpchub refuses the rest before anything runs.
    for value in [v for v in HOSTILE_TEXT if "\0" not in v and v.strip() and len(v) < 200][:60]:
        created = requests.post(f"{hub.url}/hub/api/users/{quote(value, safe='')}", headers=headers, timeout=30)
        if created.status_code != 201:
            assert created.status_code in (400, 404, 409), (value, created.status_code)
            continue
        name = created.json()["name"]
        try:
            spawned = requests.post(f"{hub.url}/hub/api/users/{quote(name, safe='')}/server", headers=headers,
                                    json={"user_options": {"target": "login"}}, timeout=60)
            assert spawned.status_code in (400, 403, 500) or spawned.status_code == 202, spawned.text[:200]
            model = requests.get(f"{hub.url}/hub/api/users/{quote(name, safe='')}", headers=headers, timeout=30)
            assert not model.json()["servers"].get("", {}).get("ready"), (value, model.text[:300])
        finally:
            requests.delete(f"{hub.url}/hub/api/users/{quote(name, safe='')}", headers=headers, timeout=60)
    assert queue(site, "alice") == {}
    assert canary_anywhere(site) == []
    check(site.in_node("head", ["true"]))



def test_hostile_names_and_sizes_on_the_output_page_are_refused_or_ignored(loopback_site, hub):
    session, _ = hub.login("alice", demo_passwords()["alice"])
    sent = 0
    for value in HOSTILE_TEXT:
        # (a URL of tens of KB is reset before it reaches the hub, as for any page: the proxy's
        # header limit, as far as seen; such values are left out here)
        if "\0" in value or not value.strip() or len(quote(value, safe="")) > 8000:
            continue
        # Another user's server, a path, anything: only alice's own servers exist for her (404).
        name = session.get(f"{hub.url}/hub/hpchub/output/{quote(value, safe='')}", timeout=30)
        assert name.status_code == 404, (value, name.status_code, name.text[-300:])
        # Any size asked for: the default one is read instead (her default server has no output yet).
        size = session.get(f"{hub.url}/hub/hpchub/output", params={"bytes": value}, timeout=30)
        assert size.status_code == 200 and "Traceback" not in size.text, (value, size.text[-300:])
        sent += 2
    assert sent > 300
    assert session.get(f"{hub.url}/hub/hpchub/output/..%2F..%2Fbob", timeout=30).status_code == 404
