"""A scientist's first visit: the login page, a password login, and a plain answer when
asking for a server that this release cannot start yet."""

from __future__ import annotations

from hpchub.site.system import demo_passwords


def test_alice_logs_in_and_is_told_plainly_that_servers_come_later(loopback_site, page, tmp_path):
    hub = loopback_site.layout.hub_url
    page.goto(f"{hub}/hub/login")
    assert "stand-in spawner" in page.locator(".announcement").inner_text()
    page.fill("#username_input", "alice")
    page.fill("#password_input", demo_passwords()["alice"])
    page.click("#login_submit")
    page.wait_for_url(f"{hub}/hub/home")
    page.click("#start")
    page.wait_for_selector("text=does not start Jupyter servers yet")
    body = page.inner_text("body")
    assert "Traceback" not in body and "500" not in body
    page.screenshot(path=str(tmp_path / "spawn.png"))


def test_wrong_password_shows_the_login_error(loopback_site, page):
    hub = loopback_site.layout.hub_url
    page.goto(f"{hub}/hub/login")
    page.fill("#username_input", "bob")
    page.fill("#password_input", "not-bobs-password")
    page.click("#login_submit")
    page.wait_for_selector("text=Invalid username or password")
    assert page.url.startswith(f"{hub}/hub/login")
