"""Single sign-on for the tests: switch a site instance's hub to its OpenID Connect provider
(and back), and log in through the provider as a browser would, with a computed TOTP code."""

from __future__ import annotations

import re
import time
from contextlib import contextmanager

import requests

from hpchub.site.identity import totp
from hpchub.site.system import demo_passwords


@contextmanager
def single_sign_on(handle):
    """The site's hub in single sign-on mode for the duration, then back to passwords."""
    site = handle.site
    site.ensure_login_mode("oidc")
    site.hub.restart()
    try:
        yield
    finally:
        site.ensure_login_mode("password")
        site.hub.restart()


_LAST_STEP: dict[str, int] = {}


def fresh_code(handle, user: str) -> str:
    """A code the provider has not seen for this user. It takes each 30-second step's code
    once and only steps after the last one used (as pam_google_authenticator's
    DISALLOW_REUSE), within one step of its clock: use the earliest such step, and wait for
    the next step when none is left."""
    secret = handle.site.identity.totp_secret(user)
    while True:
        now = int(time.time() // 30)
        for step in (now - 1, now, now + 1):
            if step > _LAST_STEP.get(user, -1):
                _LAST_STEP[user] = step
                return totp(secret, at=step * 30)
        time.sleep(30 - time.time() % 30 + 0.2)


def provider_login(hub_url: str, user: str, password: str | None, code: str,
                   session: requests.Session | None = None) -> tuple[requests.Session, requests.Response]:
    """Start at the hub's login, sign in at the provider's form, and follow the redirects
    back: (the session, the last response)."""
    session = session or requests.Session()
    page = session.get(f"{hub_url}/hub/oauth_login?next=", timeout=30)
    action = re.search(r'action="([^"]+)"', page.text)
    assert page.status_code == 200 and action, f"no provider login form at {page.url}: {page.text[:300]}"
    provider = page.url.split("/interaction/")[0]
    answer = session.post(provider + action.group(1), timeout=90, data={
        "username": user, "password": demo_passwords()[user] if password is None else password, "otp": code})
    return session, answer
