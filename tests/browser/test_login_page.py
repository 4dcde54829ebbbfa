"""A scientist's visit: log in with a password, land in JupyterLab on a login node, and run
code in a kernel there."""

from __future__ import annotations

import pytest

from hpchub.site import otp
from hpchub.site.identity import totp
from hpchub.site.system import demo_passwords

from ..site_handle import HubClient, stop
from .lab import run_in_a_new_notebook
from .test_spawn_page import shot


@pytest.fixture
def hub(loopback_site):
    client = HubClient(loopback_site)
    yield client
    if "" in client.admin("GET", "/users/bob").json()["servers"]:
        stop(client, "bob")
    client.close()


def test_bob_logs_in_and_runs_code_in_jupyterlab_on_a_login_node(loopback_site, hub, page):
    page.goto(f"{hub.url}/hub/login")
    shot(page, "login-page")
    page.fill("#username_input", "bob")
    page.fill("#password_input", demo_passwords()["bob"])
    page.click("#login_submit")
    page.check("#target-login")  # the spawn page: a login node
    page.click("#spawn_form button[type=submit]")
    page.wait_for_url(f"{hub.url}/user/bob/lab**", timeout=90_000)
    page.goto(f"{hub.url}/user/bob/lab?reset")  # a fresh workspace (bob's home outlives test runs)
    output = run_in_a_new_notebook(page, "import socket, getpass; print(socket.gethostname(), getpass.getuser())").split()
    host = hub.admin("GET", "/users/bob").json()["servers"][""]["state"]["host"]
    assert output == [host, "bob"] and host in ("login1", "login2")
    shot(page, "jupyterlab-on-a-login-node")


def test_wrong_password_shows_the_login_error(loopback_site, page):
    hub = loopback_site.layout.hub_url
    page.goto(f"{hub}/hub/login")
    page.fill("#username_input", "bob")
    page.fill("#password_input", "not-bobs-password")
    page.click("#login_submit")
    page.wait_for_selector("text=Invalid username or password")
    shot(page, "login-refused")
    assert page.url.startswith(f"{hub}/hub/login")


def test_an_enrolled_user_types_the_code_in_its_own_field(loopback_site, page):
    hub = loopback_site.layout.hub_url
    secret = otp.enrol("bob")
    try:
        page.goto(f"{hub}/hub/login")
        assert page.inner_text("label[for=otp_input]") == "One-time code (if you have enrolled one):"
        page.fill("#username_input", "bob")
        page.fill("#password_input", demo_passwords()["bob"])
        page.fill("#otp_input", totp(secret))
        shot(page, "login-with-code")
        page.click("#login_submit")
        page.wait_for_url(f"{hub}/hub/spawn**")
    finally:
        otp.unenrol("bob")
