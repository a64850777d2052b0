"""The HTTP client of a scoring endpoint: headers (bearer key), ``call``, ``run``, swagger.

Used by ``Webservice``, telemetry and profiling (they never build headers themselves).
The wire format is the scoring engine's (``server/app.py``; Azure's inference server):
``POST /score`` with a JSON body, ``Authorization: Bearer <key>`` when auth is on, errors
as ``{"error": {"message": ...}}``, the request id in ``x-ms-request-id``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import requests

from mlmanage_jupyter.core.entities.records import ScoringResponse, ServiceRecord
from mlmanage_jupyter.core.errors import ValidationError, WebserviceException


class ScoringClient:
    """Calls one service's endpoints.

    Args:
        name: the service name (messages). scoring_uri, swagger_uri: its URLs (None while
        it has none). keys: ``{"primaryKey", "secondaryKey"}`` when ``auth_enabled``.
        token: called for a fresh bearer token when the service has token auth (then sent
        instead of a key).
        timeout_s: default request timeout in seconds. state: the last known state (messages).
    """

    def __init__(
        self,
        name: str,
        scoring_uri: str | None,
        swagger_uri: str | None = None,
        *,
        auth_enabled: bool = False,
        keys: dict[str, str] | None = None,
        timeout_s: float = 70.0,
        state: str = "",
        token: Callable[[], str] | None = None,
    ) -> None:
        self.token = token
        self.name = name
        self.scoring_uri = scoring_uri
        self.swagger_uri = swagger_uri
        self.auth_enabled = auth_enabled
        self.keys = dict(keys or {})
        self.timeout_s = timeout_s
        self.state = state

    @classmethod
    def for_service(cls, record: ServiceRecord) -> ScoringClient:
        """The client of a recorded service (default timeout: its scoring timeout + 10 s)."""
        return cls(
            record.name,
            record.scoring_uri,
            record.swagger_uri,
            auth_enabled=record.auth_enabled,
            keys=record.keys,
            timeout_s=record.scoring_timeout_ms / 1000 + 10,
            state=record.state,
        )

    def headers(self, key: str | None = "primary") -> dict[str, str]:
        """JSON content type plus ``Authorization: Bearer <key>`` when auth is on.
        ``key``: ``"primary"``, ``"secondary"`` or None/``"none"`` (no key)."""
        h = {"Content-Type": "application/json"}
        if key not in ("primary", "secondary", None, "none"):
            raise ValidationError(f"key must be 'primary', 'secondary' or None, got {key!r}")
        if self.token is not None and key in ("primary", "secondary"):
            h["Authorization"] = f"Bearer {self.token()}"
        elif self.auth_enabled and key in ("primary", "secondary") and self.keys.get(f"{key}Key"):
            h["Authorization"] = f"Bearer {self.keys[f'{key}Key']}"
        return h

    def auth_headers(self) -> dict[str, str]:
        """Only the ``Authorization`` header (primary key), or ``{}``."""
        return {k: v for k, v in self.headers().items() if k == "Authorization"}

    def base_uri(self) -> str:
        """The engine's root URL (``scoring_uri`` without ``/score``)."""
        if not self.scoring_uri:
            raise WebserviceException(f"service {self.name} has no scoring_uri (state {self.state})")
        return self.scoring_uri.rsplit("/score", 1)[0]

    def call(self, input_data: Any, *, key: str | None = "primary", timeout: float | None = None) -> ScoringResponse:
        """POST ``input_data`` (str/bytes as is, else JSON) to ``scoring_uri`` once and report
        what happened, never raising for an HTTP error: ``status_code`` 0 when unreachable,
        ``latency_ms`` the client-side round trip (ms), ``body`` decoded JSON or text."""
        if not self.scoring_uri:
            raise WebserviceException(f"service {self.name} has no scoring_uri (state {self.state})")
        body = input_data if isinstance(input_data, (str, bytes)) else json.dumps(input_data)
        t0 = time.perf_counter()
        try:
            r = requests.post(self.scoring_uri, data=body, headers=self.headers(key), timeout=timeout or self.timeout_s)
        except requests.RequestException as e:
            return ScoringResponse(0, (time.perf_counter() - t0) * 1000, f"could not reach {self.scoring_uri}: {e}", None)
        ms = (time.perf_counter() - t0) * 1000
        try:
            decoded: Any = r.json()
        except ValueError:
            decoded = r.text
        return ScoringResponse(r.status_code, ms, decoded, r.headers.get("x-ms-request-id"))

    def run(self, input_data: Any, timeout: float | None = None) -> Any:
        """:meth:`call` with the primary key; the decoded JSON answer. Raises
        WebserviceException with the status code and the service's message on any non-2xx
        answer, or when the service can't be reached."""
        res = self.call(input_data, timeout=timeout)
        if res.status_code == 0:
            raise WebserviceException(str(res.body))
        if not res.ok:
            msg = res.body
            if isinstance(msg, dict):
                err = msg.get("error")
                msg = err.get("message", msg) if isinstance(err, dict) else msg
            exc = WebserviceException(f"{self.name} answered {res.status_code}: {msg}")
            exc.status_code, exc.request_id = res.status_code, res.request_id
            raise exc
        return res.body

    def get_swagger(self) -> dict[str, Any]:
        """The service's OpenAPI document (``swagger_uri``)."""
        if not self.swagger_uri:
            raise WebserviceException(f"service {self.name} has no swagger_uri")
        r = requests.get(self.swagger_uri, timeout=10)
        r.raise_for_status()
        return r.json()
