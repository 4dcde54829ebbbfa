from __future__ import annotations

import pytest

from hpchub.credentials.proof import (RateLimiter, challenge_message, check_challenge, make_challenge,
                                      pair_response, parse_pair_response, token_digest)

KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n"
CERT = "ssh-ed25519-cert-v01@openssh.com AAAAcert id"


def test_rate_limiter_allows_the_limit_per_window_then_recovers():
    limiter = RateLimiter(3, window=60)
    assert [limiter.allow("a", now=t) for t in (0, 1, 2, 3)] == [True, True, True, False]
    assert limiter.allow("b", now=3)  # per key
    assert limiter.allow("a", now=60.5)  # the first event left the window


def test_challenges_are_ours_fresh_and_tamper_proof():
    secret = b"s" * 32
    challenge = make_challenge(secret, now=1000)
    assert check_challenge(secret, challenge, now=1030) == challenge.split(".")[1]
    assert check_challenge(secret, challenge, now=1061) is None  # stale
    assert check_challenge(b"x" * 32, challenge, now=1000) is None  # another server's
    stamp, nonce, mac = challenge.split(".")
    assert check_challenge(secret, f"{int(stamp) + 50}.{nonce}.{mac}", now=1060) is None  # altered time
    assert check_challenge(secret, "garbage", now=1000) is None
    assert make_challenge(secret, now=1000) != challenge


def test_challenge_message_binds_the_new_key():
    assert challenge_message("c", "ssh-ed25519 AAA\n") != challenge_message("c", "ssh-ed25519 AAB")


def test_pair_response_round_trip_and_errors():
    assert parse_pair_response(pair_response(KEY, CERT)) == (KEY, CERT)
    with pytest.raises(ValueError, match="no OpenSSH private key"):
        parse_pair_response(CERT)
    with pytest.raises(ValueError, match="no certificate"):
        parse_pair_response(KEY)


def test_token_digest_is_sha256_hex():
    assert token_digest("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
