"""Bearer authentication of ``/score``, Azure ML's two schemes: keys (a primary and a
secondary key, ``auth_enabled``) or expiring tokens (``token_auth_enabled``; signed with the
service's ``tokenSecret``, see :func:`issue_token`).

Keys come from ``MLMANAGE_KEYS_FILE`` (JSON ``{"primaryKey", "secondaryKey"}``), re-read
whenever its mtime/inode changes so a key regenerated on a live service takes effect on
the next request; else from ``MLMANAGE_PRIMARY_KEY`` / ``MLMANAGE_SECONDARY_KEY``. The
token secret is the keys file's ``tokenSecret`` field.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import time
from pathlib import Path

log = logging.getLogger("mlmanage.server.auth")


class KeyStore:
    """The service's keys (or, with ``token_service``, its token secret), from ``keys_file``."""

    def __init__(
        self,
        keys_file: Path | None,
        primary: str | None = None,
        secondary: str | None = None,
        token_service: str | None = None,
    ) -> None:
        self.keys_file = keys_file
        self.token_service = token_service
        self._secret: str | None = None
        self._env_keys = tuple(k for k in (primary, secondary) if k)
        self._stamp: tuple[int, int, int] | None = None
        self._keys: tuple[str, ...] = ()
        self._reload()

    def _reload(self) -> None:
        if self.keys_file is None:
            self._keys = self._env_keys
            return
        try:
            st = os.stat(self.keys_file)
        except FileNotFoundError:
            self._stamp, self._keys = None, ()
            return
        stamp = (st.st_mtime_ns, st.st_ino, st.st_size)
        if stamp == self._stamp:
            return
        try:
            data = json.loads(Path(self.keys_file).read_text())
            self._keys = tuple(str(data[k]) for k in ("primaryKey", "secondaryKey") if data.get(k))
            self._secret = str(data[TOKEN_SECRET_FIELD]) if data.get(TOKEN_SECRET_FIELD) else None
            self._stamp = stamp
        except (OSError, ValueError, TypeError) as e:  # a half-written file: keep the old keys
            log.warning("cannot read keys file %s: %s", self.keys_file, e)

    def check(self, authorization: str | None) -> str | None:
        """None when the header carries a valid key (a valid token when token auth is on),
        else the message of the 401."""
        self._reload()
        if self.token_service is not None:
            return self._check_token(authorization)
        if not self._keys:
            return "authentication is enabled but the service has no keys; set them with regen_key()"
        if not authorization:
            return "missing Authorization header: send 'Authorization: Bearer <key>' with the service's key"
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return "malformed Authorization header: expected 'Bearer <key>'"
        token = token.strip()
        if any(hmac.compare_digest(token.encode(), k.encode()) for k in self._keys):
            return None
        return "invalid key: use the service's primary or secondary key (get_keys())"

    def _check_token(self, authorization: str | None) -> str | None:
        if not self._secret:
            return "token authentication is enabled but the service has no token secret in its keys file"
        if not authorization:
            return "missing Authorization header: send 'Authorization: Bearer <token>' (service.get_token())"
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return "malformed Authorization header: expected 'Bearer <token>'"
        return verify_token(token.strip(), self.token_service or "", self._secret)


# -- token authentication (Azure ML's ``token_auth_enabled``) ---------------------------------
#: the keys file's field holding a service's token-signing secret (never in the metadata DB)
TOKEN_SECRET_FIELD = "tokenSecret"
#: a token's lifetime: 1 hour, as Azure's service tokens
TOKEN_LIFETIME_S = 3600


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: str, payload: str) -> str:
    return _b64(hmac.new(secret.encode(), payload.encode("ascii"), hashlib.sha256).digest())


def issue_token(service_name: str, secret: str, expires_at: float) -> str:
    """A bearer token for ``service_name`` valid until ``expires_at`` (Unix epoch seconds).

    Format: ``<base64url(JSON {"svc": name, "exp": epoch s})>.<base64url(HMAC-SHA256 of the
    first part, keyed with the service's secret)>``. Only the holder of the secret (the keys
    file) can make one; :func:`verify_token` checks it.
    """
    payload = _b64(json.dumps({"svc": service_name, "exp": int(expires_at)}, separators=(",", ":")).encode())
    return f"{payload}.{_sign(secret, payload)}"


def verify_token(token: str, service_name: str, secret: str, now: float | None = None) -> str | None:
    """None when ``token`` is one :func:`issue_token` made for ``service_name`` with ``secret``
    and has not expired at ``now`` (default: the current time), else the reason (the 401's
    message)."""
    payload, dot, sig = token.partition(".")
    # a token is base64url text: anything else (a client's Latin-1 bytes ...) is just invalid
    if not dot or not payload.isascii() or not hmac.compare_digest(sig.encode(), _sign(secret, payload).encode()):
        return "invalid token: get a fresh one with service.get_token()"
    try:
        claims = json.loads(_unb64(payload))
        svc, exp = claims["svc"], float(claims["exp"])
    except (ValueError, TypeError, KeyError):
        return "invalid token: get a fresh one with service.get_token()"
    if svc != service_name:
        return f"invalid token: it is for service {svc!r}, not {service_name!r}"
    if exp <= (time.time() if now is None else now):
        return "expired token: get a fresh one with service.get_token()"
    return None
