"""What the spawn benchmarks share: the time from a spawn request until the server answers."""

from __future__ import annotations

import time

import requests


def time_until_answer(post, url: str, token: str, limit: float = 120) -> float:
    """Seconds from calling post() (the spawn request) until url answers 200, polled every 20 ms."""
    start = time.monotonic()
    response = post()
    assert response.status_code in (201, 202), response.text
    while True:
        try:
            answer = requests.get(url, timeout=5, headers={"Authorization": f"token {token}"})
            if answer.status_code == 200:
                return time.monotonic() - start
        except requests.RequestException:
            pass
        if time.monotonic() - start > limit:
            raise RuntimeError(f"{url} did not answer within {limit:.0f} s")
        time.sleep(0.02)
