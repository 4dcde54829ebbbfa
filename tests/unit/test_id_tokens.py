"""The CA service's check of an identity provider's ID tokens (pure: tokens signed here with
keys made here), and the hub's second-factor rule."""

from __future__ import annotations


import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from hpchub.auth_oidc import second_factor_missing
from hpchub.credentials.id_tokens import IDTokenRule, TokenRejected, verify_id_token

ISSUER = "https://idp.example.org/realms/hpc"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
NOW = 1_800_000_000


def token(key=KEY, algorithm="RS256", **overrides) -> str:
    claims = {"iss": ISSUER, "aud": "hub-a", "sub": "f81d4fae", "preferred_username": "alice",
              "iat": NOW - 10, "exp": NOW + 600, "amr": ["pwd", "otp"]}
    claims.update(overrides)
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, key, algorithm=algorithm)


def verify(text: str, rule: IDTokenRule | None = None, audience: str = "hub-a", now: float = NOW):
    return verify_id_token(text, audience, rule or IDTokenRule(ISSUER), lambda _: KEY.public_key(), now=now)


def test_a_valid_token_names_its_user():
    user, claims = verify(token())
    assert user == "alice" and claims["sub"] == "f81d4fae"


@pytest.mark.parametrize("text, why", [
    (token(aud="hub-b"), "issued to another client"),
    (token(aud=["hub-a", "hub-b"]), "issued to another client"),  # several audiences, no azp
    (token(iss="https://evil.example.org"), "another identity provider"),
    (token(exp=NOW - 31), "expired"),
    (token(iat=NOW + 300), "not valid yet"),
    (token(nbf=NOW + 300), "not valid yet"),
    (token(key=OTHER_KEY), "not valid"),  # signed by a key that is not the provider's
    (token(exp=None), "not valid"),
    (token(sub=None), "not valid"),
    (token(exp="tomorrow"), "times are not numbers"),
    (token(preferred_username=None), "no 'preferred_username' claim"),
    ("not.a.token", "not valid"),
])
def test_what_does_not_prove_a_user_is_refused(text, why):
    with pytest.raises(TokenRejected) as info:
        verify(text)
    assert why in info.value.message


def test_an_unsigned_token_is_refused():
    unsigned = jwt.encode({"iss": ISSUER, "aud": "hub-a", "sub": "x", "preferred_username": "alice",
                           "iat": NOW, "exp": NOW + 60}, None, algorithm="none")
    with pytest.raises(TokenRejected):
        verify(unsigned)


def test_several_audiences_with_this_hub_as_the_authorised_party_are_accepted():
    assert verify(token(aud=["hub-a", "ca"], azp="hub-a"))[0] == "alice"


def test_a_token_within_the_clock_skew_is_accepted():
    assert verify(token(exp=NOW - 20))[0] == "alice"


def test_an_ec_signed_token_is_accepted():
    ec_key = ec.generate_private_key(ec.SECP256R1())
    text = token(key=ec_key, algorithm="ES256")
    user, _ = verify_id_token(text, "hub-a", IDTokenRule(ISSUER), lambda _: ec_key.public_key(), now=NOW)
    assert user == "alice"


def test_the_username_rule_strips_the_stated_domain_and_refuses_others():
    rule = IDTokenRule(ISSUER, username_claim="email", username_domain="example.org")
    assert verify(token(email="bob@Example.org"), rule)[0] == "bob"
    for other in ("bob@example.org.evil.net", "bob", "bob@other.org", "@example.org"):
        with pytest.raises(TokenRejected) as info:
            verify(token(email=other), rule)
        assert info.value.code == "unknown_user", other


@pytest.mark.parametrize("name", ["root x", "../etc", "-oProxyCommand=x", "a" * 40, "Ălice"])
def test_a_claim_that_is_no_cluster_username_is_refused(name):
    with pytest.raises(TokenRejected) as info:
        verify(token(preferred_username=name))
    assert info.value.code == "unknown_user"


@pytest.mark.parametrize("amr, accepted", [
    (["pwd", "otp"], True), (["hwk"], True), (["pwd"], False), (None, False), ("otp", False), ([1, 2], False),
])
def test_the_second_factor_rule(amr, accepted):
    rule = IDTokenRule(ISSUER, required_amr=("otp", "hwk"))
    claims = {"amr": amr} if amr is not None else {}
    if accepted:
        assert verify(token(amr=amr), rule)[0] == "alice"
        assert second_factor_missing(claims, ["otp", "hwk"]) is None
    else:
        with pytest.raises(TokenRejected) as info:
            verify(token(amr=amr), rule)
        assert info.value.code == "second_factor_required"
        assert "second factor" in second_factor_missing(claims, ["otp", "hwk"])
    assert second_factor_missing(claims, []) is None  # nothing required: any sign-in
