"""Bounds on what a client controls in a request's head: header count and sizes, URL length,
request ids.

Why: llhttp (httptools, uvicorn's fast parser) has no header-count or size limit, and work per
header that the app or a library does can be quadratic (Starlette's ``dict(request.headers)``
looks every key up again: 20,000 headers blocked a worker's event loop for ~13 s). A request
whose head is over the bounds is answered before any per-header work, and its connection is
closed:

* ``431 RequestHeaderFieldsTooLarge``: more than ``limit_request_fields`` header fields, one
  field (name + value) longer than ``limit_request_field_size`` bytes, or a head (request line
  and all fields) longer than :attr:`HeadLimits.head_bytes`;
* ``414 URITooLong``: a request target (URL) longer than ``limit_request_line`` bytes.

The bounds are gunicorn's options, with its defaults (100 fields, 8190 bytes, 4094 bytes;
https://docs.gunicorn.org/en/stable/settings.html#security), which is what Azure's inference
server (azureml-inference-server-http, on gunicorn) enforces. They are checked in two places:

* :func:`uvicorn_http_options`: the HTTP protocol uvicorn runs. With httptools, a subclass of
  uvicorn's ``HttpToolsProtocol`` counts fields and bytes as the parser reports them and stops
  parsing at the first one over a bound (so 1,000,000 headers cost no more than 101); with
  h11 (when httptools is not installed), h11's own ``max_incomplete_event_size`` bounds the head;
* :class:`HeaderGuard`: an ASGI middleware answering the same 431 before the app runs, for any
  server the app is mounted in (one ``len()`` and at most ``limit_request_fields`` sizes).

Error bodies are the engine's ``{"error": {"code", "message", "request_id"}}``.

Request ids: :func:`accepted_request_id` takes a client's ``x-ms-request-id`` /
``x-request-id`` only if it is 1-64 characters of ``[A-Za-z0-9._-]`` (a UUID fits); else the
engine uses a generated one and says so in the ``x-mlmanage-request-id-rejected`` response
header, so no unbounded or unsafe client text reaches logs, telemetry or response headers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid
from dataclasses import dataclass
from typing import Any

from starlette.responses import JSONResponse

from mlmanage_jupyter.server.config import Settings

log = logging.getLogger("mlmanage.server")

#: a client's request id is used when it matches this (else a generated id is)
REQUEST_ID_PATTERN = re.compile(rb"[A-Za-z0-9._-]{1,64}")
#: the response header telling that a client's request id was replaced by a generated one
REQUEST_ID_REJECTED_HEADER = b"x-mlmanage-request-id-rejected"
REQUEST_ID_REJECTED_VALUE = b"the client's request id is not 1-64 characters of [A-Za-z0-9._-]: a generated one is used"


def accepted_request_id(value: bytes | None) -> str | None:
    """``value`` (a request-id header's raw bytes) as the request id, or None when it is
    missing, empty, longer than 64 bytes or has a character outside ``[A-Za-z0-9._-]``."""
    if value is None or len(value) > 64 or REQUEST_ID_PATTERN.fullmatch(value) is None:
        return None
    return value.decode("ascii")


@dataclass(frozen=True)
class HeadLimits:
    """Bounds on a request's head (gunicorn's names and defaults, see the module doc)."""

    fields: int = 100
    field_size: int = 8190
    line: int = 4094

    @classmethod
    def of(cls, settings: Settings) -> HeadLimits:
        return cls(settings.limit_request_fields, settings.limit_request_field_size, settings.limit_request_line)

    @property
    def head_bytes(self) -> int:
        """Most bytes a head within the bounds can take: the request line (method, target,
        version) and every field with its ``": "`` and CRLF, and the final CRLF."""
        return self.line + 32 + self.fields * (self.field_size + 4) + 2

    def problem(self, headers: list[tuple[bytes, bytes]]) -> str | None:
        """Why ``headers`` (an ASGI scope's) is over the bounds, or None. Looks at no more
        than ``fields`` headers."""
        if len(headers) > self.fields:
            return self.too_many()
        size = self.field_size
        for name, value in headers:
            if len(name) + len(value) > size:
                return self.too_long()
        return None

    def too_many(self) -> str:
        return f"the request has more than {self.fields} header fields (limit_request_fields)"

    def too_long(self) -> str:
        return f"a request header field (name and value) is longer than {self.field_size} bytes (limit_request_field_size)"

    def head_too_long(self) -> str:
        return (
            f"the request head is longer than {self.head_bytes} bytes: at most {self.fields} header fields "
            f"(limit_request_fields) of {self.field_size} bytes (limit_request_field_size)"
        )

    def url_too_long(self) -> str:
        return f"the request target (URL) is longer than {self.line} bytes (limit_request_line)"


def error_json(code: str, message: str, request_id: str) -> dict[str, Any]:
    """The engine's error body: ``{"error": {"code", "message", "request_id"}}``."""
    return {"error": {"code": code, "message": message, "request_id": request_id}}


class HeaderGuard:
    """ASGI middleware: a request over ``limits`` answers 431 JSON without reaching ``app``."""

    def __init__(self, app: Any, limits: HeadLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            problem = self.limits.problem(scope["headers"])
            if problem is not None:
                rid = str(uuid.uuid4())
                log.warning("request %s rejected (431): %s", rid, problem)
                response = JSONResponse(
                    error_json("RequestHeaderFieldsTooLarge", problem, rid),
                    status_code=431,
                    headers={"x-ms-request-id": rid, "connection": "close"},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


_REASONS = {414: b"URI Too Long", 431: b"Request Header Fields Too Large"}


def rejection_bytes(status: int, code: str, message: str) -> bytes:
    """A whole HTTP/1.1 error response closing the connection (what the protocol below writes
    when it stops parsing a head, where no ASGI app runs)."""
    rid = str(uuid.uuid4())
    log.warning("request %s rejected (%d): %s", rid, status, message)
    body = json.dumps(error_json(code, message, rid)).encode()
    return b"".join(
        [
            b"HTTP/1.1 %d %s\r\n" % (status, _REASONS[status]),
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"x-ms-request-id: %s\r\n" % rid.encode(),
            b"connection: close\r\n\r\n",
            body,
        ]
    )


#: seconds a rejected connection keeps reading (and dropping) what the client still sends, so
#: that closing it does not reset the connection before the client has read the answer
#: (closing a socket with unread data sends a TCP RST, which discards the answer at the client)
LINGER_S = 2.0


class _HeadRejected(Exception):
    """Raised in a parser callback to stop parsing a head over the bounds."""


def httptools_protocol(limits: HeadLimits) -> type:
    """uvicorn's ``HttpToolsProtocol`` enforcing ``limits`` while it parses (see the module
    doc). Raises ImportError when httptools is not installed."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class LimitedHttpToolsProtocol(HttpToolsProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._fields = 0
            self._head_bytes = 0
            self._in_head = True
            self._rejection: tuple[int, str, str] | None = None
            self._discarding = False

        def _reject(self, status: int, code: str, message: str) -> None:
            self._rejection = (status, code, message)
            raise _HeadRejected(message)

        def data_received(self, data: bytes) -> None:
            if self._discarding:
                return
            if self._in_head:
                self._head_bytes += len(data)
                if self._head_bytes > limits.head_bytes:
                    # llhttp would go on collecting the field in pieces (quadratic joins): stop here
                    self._in_head = False
                    self._rejection = (431, "RequestHeaderFieldsTooLarge", limits.head_too_long())
                    self.send_400_response("")
                    return
            super().data_received(data)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._fields = 0

        def on_url(self, url: bytes) -> None:
            super().on_url(url)
            if len(self.url) > limits.line:
                self._reject(414, "URITooLong", limits.url_too_long())

        def on_header(self, name: bytes, value: bytes) -> None:
            self._fields += 1
            if self._fields > limits.fields:
                self._reject(431, "RequestHeaderFieldsTooLarge", limits.too_many())
            if len(name) + len(value) > limits.field_size:
                self._reject(431, "RequestHeaderFieldsTooLarge", limits.too_long())
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            self._in_head = False
            self._head_bytes = 0
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._in_head = True

        def send_400_response(self, msg: str) -> None:
            # uvicorn calls this for any parser error, ours (raised in a callback) included
            if self._rejection is None:
                super().send_400_response(msg)
                return
            self.transport.write(rejection_bytes(*self._rejection))
            # a lingering close: drop what still arrives, close at the client's EOF or after LINGER_S
            self._discarding = True
            if self.transport.can_write_eof():
                self.transport.write_eof()
            asyncio.get_running_loop().call_later(LINGER_S, self.transport.close)

    return LimitedHttpToolsProtocol


def uvicorn_http_options(limits: HeadLimits) -> dict[str, Any]:
    """``uvicorn.Config`` keyword arguments enforcing ``limits`` in the HTTP protocol: the
    bounded httptools protocol, or h11 with its head-size bound when httptools is missing."""
    try:
        return {"http": httptools_protocol(limits)}
    except ImportError:  # pragma: no cover - httptools is in the serve extra
        return {"http": "h11", "h11_max_incomplete_event_size": limits.head_bytes}
