"""server/auth.py's tokens: signed for one service, expiring; anything else is refused."""

from __future__ import annotations

import json

import pytest

from mlmanage_jupyter.server.auth import KeyStore, _b64, issue_token, verify_token

NOW = 1_800_000_000.0


def test_a_fresh_token_verifies_until_it_expires() -> None:
    token = issue_token("svc", "s3cret", NOW + 3600)
    assert verify_token(token, "svc", "s3cret", now=NOW) is None
    assert verify_token(token, "svc", "s3cret", now=NOW + 3599) is None
    assert "expired" in (verify_token(token, "svc", "s3cret", now=NOW + 3600) or "")


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: issue_token("svc", "other-secret", NOW + 60), "invalid token"),  # forged: wrong secret
        (lambda: issue_token("other", "s3cret", NOW + 60), "not 'svc'"),  # another service's token
        (lambda: "not-a-token", "invalid token"),
        (lambda: "", "invalid token"),
        # payload swapped for a later expiry, signature kept: the signature no longer matches
        (
            lambda: _b64(json.dumps({"svc": "svc", "exp": NOW + 10**6}).encode())
            + "."
            + issue_token("svc", "s3cret", NOW + 60).split(".")[1],
            "invalid token",
        ),
    ],
    ids=["wrong-secret", "wrong-service", "garbage", "empty", "tampered-expiry"],
)
def test_forged_or_foreign_tokens_are_refused(make, reason: str) -> None:  # type: ignore[no-untyped-def]
    assert reason in (verify_token(make(), "svc", "s3cret", now=NOW) or "")


def test_keystore_checks_tokens_with_the_secret_of_its_keys_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    keys = tmp_path / "keys.json"
    store = KeyStore(keys, token_service="svc")
    assert "no token secret" in (store.check("Bearer x") or "")
    keys.write_text(json.dumps({"tokenSecret": "s3cret"}))
    token = issue_token("svc", "s3cret", 4_000_000_000)
    assert store.check(f"Bearer {token}") is None
    assert "missing Authorization" in (store.check(None) or "")
    assert "malformed" in (store.check(token) or "")
    # a key is not a token
    keys.write_text(json.dumps({"tokenSecret": "s3cret", "primaryKey": "pk"}))
    assert "invalid token" in (store.check("Bearer pk") or "")
