"""Single sign-on in Chromium: the hub's login page sends the user to the site's identity
provider, which asks for the password and a one-time code (computed here, as an
authenticator app would); back at the hub the user starts servers on a login node and in a
Slurm job, which run as them."""

from __future__ import annotations

import pytest

from hpchub.site.system import demo_passwords

from ..single_sign_on import fresh_code, single_sign_on
from ..site_handle import HubClient, check, stop_all
from .conftest import idle_hub
from .lab import run_in_a_new_notebook
from .test_spawn_page import shot, start_from_form, wait_for_lab


@pytest.fixture(scope="module")
def sso(loopback_site):
    with single_sign_on(loopback_site):
        yield loopback_site


@pytest.fixture
def hub(sso):
    with idle_hub(sso) as client:
        yield client


def sign_in(page, hub: HubClient, user: str, code: str) -> None:
    page.goto(f"{hub.url}/hub/login")
    page.click("text=Sign in with your centre's single sign-on")
    page.wait_for_selector("#otp")
    page.fill("#username", user)
    page.fill("#password", demo_passwords()[user])
    page.fill("#otp", code)
    page.click("button[type=submit]")


def test_password_and_code_at_the_provider_then_servers_on_a_login_node_and_in_a_job(sso, hub, page):
    sign_in(page, hub, "alice", fresh_code(sso, "alice"))
    page.wait_for_selector("#target-login")
    start_from_form(page, "login")
    wait_for_lab(page, "/user/alice/")
    page.goto(f"{hub.url}/user/alice/lab?reset")
    assert run_in_a_new_notebook(page, "import getpass; print(getpass.getuser())").strip() == "alice"
    shot(page, "single-sign-on-lab")
    stop_all(hub)
    page.goto(f"{hub.url}/hub/spawn/alice")
    start_from_form(page, "compute", {"walltime": "00:30:00"})
    wait_for_lab(page, "/user/alice/")
    job_id = hub.admin("GET", "/users/alice").json()["servers"][""]["state"]["job_id"]
    owner = check(sso.ssh("alice", ["squeue", "--noheader", f"--jobs={job_id}", "--format=%u"])).stdout.strip()
    assert owner == "alice"


def test_a_sign_in_without_a_second_factor_shows_why_it_was_refused(sso, hub, page):
    identity = sso.site.identity
    secret = identity.totp_secret("bob")
    identity.update_user("bob", totp_secret=None)
    try:
        sign_in(page, hub, "bob", "")
        page.wait_for_selector("text=requires a second factor")
    finally:
        identity.update_user("bob", totp_secret=secret)
    assert "/hub/oauth_callback" in page.url and "Traceback" not in page.content()
    shot(page, "single-sign-on-refused")
