"""Bearer-key authentication with a primary and a secondary key (Azure ML's scheme).

Keys come from ``MLMANAGE_KEYS_FILE`` (JSON ``{"primaryKey", "secondaryKey"}``), re-read
whenever its mtime/inode changes so a key regenerated on a live service takes effect on
the next request; else from ``MLMANAGE_PRIMARY_KEY`` / ``MLMANAGE_SECONDARY_KEY``.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
from pathlib import Path

log = logging.getLogger("mlmanage.server.auth")


class KeyStore:
    def __init__(self, keys_file: Path | None, primary: str | None = None, secondary: str | None = None) -> None:
        self.keys_file = keys_file
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
            self._stamp = stamp
        except (OSError, ValueError, TypeError) as e:  # a half-written file: keep the old keys
            log.warning("cannot read keys file %s: %s", self.keys_file, e)

    def check(self, authorization: str | None) -> str | None:
        """None when the header carries a valid key, else the message of the 401."""
        self._reload()
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
