"""The Starlette app of one worker: ``/``, ``/score``, ``/swagger.json``, ``/health/ready``, ``/metrics``.

Every error answers ``{"error": {"code": <str>, "message": <str>, "request_id": <str>}}`` with
codes ``BadRequest`` (400), ``Unauthorized`` (401), ``NotFound`` (404), ``PayloadTooLarge``
(413), ``URITooLong`` (414), ``RequestHeaderFieldsTooLarge`` (431), ``ScoringError`` (500),
``NotReady`` (503), ``ScoringTimeout`` (504). Each response carries ``x-ms-request-id``: the
request's ``x-ms-request-id``/``x-request-id`` when it is 1-64 characters of
``[A-Za-z0-9._-]``, else a new UUID (:mod:`.http_limits`).

Every client-side fault answers 400 JSON: a body that is not UTF-8 or not JSON as Python's
``json`` module reads it (Azure's parser: malformed, an integer of more than 4300 digits),
arrays/objects nested more than 128 levels (:mod:`.json_depth`: deeper than that a script
that parses or walks the value itself would fail with RecursionError), a JSON body that is not what an ``@input_schema`` run()
takes (missing parameter, or a value its ``inference_schema`` types cannot convert: the
conversion's error before run()'s own code starts). The ``Content-Type`` is not looked at
(as Azure's server: the body is read as JSON). Server-side faults never show internals to
clients (Azure's answers are generic too): a run() that raises (any ``BaseException``,
``SystemExit`` included; the worker keeps serving) answers 500 naming the exception's type
only, with ``x-ms-run-function-failed: True`` (Azure's header); a service whose ``init()``
failed answers 503 on ``/score``, ``/swagger.json`` and ``/health/ready``; the traceback of
either is only in the service's logs (``service.get_logs()``), under the request id.

A ``@rawhttp`` entry script (Azure's ``azureml.contrib.services``) gets ``/score`` for GET,
POST and OPTIONS with the whole request (any body, binary too, empty allowed); the Werkzeug
response it returns (``AMLResponse``) is sent with its status, headers and body, any other
value as JSON. OPTIONS needs no key (CORS preflights carry no credentials); the engine's own
data collection skips raw requests (scripts collect with ``ModelDataCollector``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from werkzeug.exceptions import HTTPException as WerkzeugHTTPException
from werkzeug.wrappers import Response as WerkzeugResponse

from mlmanage_jupyter.server.auth import KeyStore
from mlmanage_jupyter.server.azure_runtime import build_request
from mlmanage_jupyter.server.batching import MicroBatcher, batchable
from mlmanage_jupyter.server.collector import (
    ModelDataCollector,
    current_request_id,
    parse_since,
    read_telemetry,
    stop_script_collectors,
)
from mlmanage_jupyter.server.config import Settings
from mlmanage_jupyter.server.entry import BadInput, EntryScript, RunAborted
from mlmanage_jupyter.server.http_limits import (
    REQUEST_ID_REJECTED_HEADER,
    REQUEST_ID_REJECTED_VALUE,
    HeaderGuard,
    HeadLimits,
    accepted_request_id,
)
from mlmanage_jupyter.server.json_depth import JSONTooDeep, check_json_depth
from mlmanage_jupyter.server.jsonio import dumps, loads
from mlmanage_jupyter.server.lifecycle import HungRuns, RequestBudget
from mlmanage_jupyter.server.runner import Runner, ScoringTimeout
from mlmanage_jupyter.server.telemetry import RouteMetrics, TelemetryWriter, metrics_text

log = logging.getLogger("mlmanage.server")

#: records ``GET /telemetry`` answers at most (the newest ones; also its default ``limit``)
TELEMETRY_LIMIT = 100_000


def error(status: int, code: str, message: str, request_id: str | None = None) -> Response:
    """The engine's JSON error answer (``request_id`` also goes in the body when given)."""
    body: dict[str, Any] = {"code": code, "message": message}
    if request_id is not None:
        body["request_id"] = request_id
    return JSONResponse({"error": body}, status_code=status)


def not_ready(request_id: str) -> Response:
    """The 503 of a service whose entry script failed to start: no traceback (it is in the logs)."""
    return error(
        503,
        "NotReady",
        "the service failed to start: its entry script could not be loaded or its init() raised; "
        "the traceback is in the service's logs (service.get_logs())",
        request_id,
    )


def _bounded(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


class RequestIds:
    """New request ids for requests without one: UUID-shaped (8-4-4-4-12 hex), unique per
    worker start (80 random bits) and then a counter - as unique as ``uuid4()`` across
    workers, without its ``os.urandom`` call per request."""

    def __init__(self) -> None:
        r = os.urandom(10).hex()
        self._prefix = f"{r[:8]}-{r[8:12]}-4{r[13:16]}-{r[16:20]}-"
        self._count = itertools.count()

    def new(self) -> str:
        return f"{self._prefix}{next(self._count) & 0xFFFFFFFFFFFF:012x}"


class Head:
    """What one pass over a request's ASGI headers (names are lower-case) finds (:func:`scan_head`)."""

    __slots__ = ("request_id", "authorization", "refused", "content_length")

    def __init__(
        self, request_id: str | None, authorization: str | None, refused: bool, content_length: int | None
    ) -> None:
        #: the first acceptable (:func:`.http_limits.accepted_request_id`) of ``x-ms-request-id``
        #: and ``x-request-id``, else None
        self.request_id = request_id
        self.authorization = authorization
        #: a client request id was given and refused
        self.refused = refused
        #: the ``content-length`` the client declared (bytes), None when absent or not a number
        self.content_length = content_length


def scan_head(raw: list[tuple[bytes, bytes]]) -> Head:
    """A request's :class:`Head` in one pass over its ASGI headers; the first of repeated
    headers counts, as in ``Headers.get()``."""
    ms_rid = rid = auth = length = None
    for name, value in raw:
        if name == b"content-length":
            length = value if length is None else length
        elif name == b"x-ms-request-id":
            ms_rid = value if ms_rid is None else ms_rid
        elif name == b"x-request-id":
            rid = value if rid is None else rid
        elif name == b"authorization":
            auth = value if auth is None else auth
    chosen = accepted_request_id(ms_rid) or accepted_request_id(rid)
    declared = None
    if length is not None and length.isdigit() and len(length) < 20:
        declared = int(length)
    return Head(
        chosen,
        auth.decode("latin-1") if auth is not None else None,
        chosen is None and bool(ms_rid or rid),
        declared,
    )


def headers_dict(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """The ASGI headers as ``{name: value}`` (the first of repeated names wins, as in
    ``dict(request.headers)``) in one pass; Starlette's ``dict(Headers)`` looks every key up
    again, quadratic in the number of headers."""
    out: dict[str, str] = {}
    for name, value in raw:
        key = name.decode("latin-1")
        if key not in out:
            out[key] = value.decode("latin-1")
    return out


class _TooLarge(Exception):
    pass


def from_werkzeug(resp: WerkzeugResponse) -> Response:
    """A Starlette response with a Werkzeug response's status, headers (repeats kept) and body."""
    body = resp.get_data()
    out = Response(body, status_code=resp.status_code)
    raw = [(k.lower().encode("latin-1"), str(v).encode("latin-1")) for k, v in resp.headers.items() if k.lower() != "content-length"]
    raw.append((b"content-length", str(len(body)).encode("latin-1")))
    out.raw_headers = raw
    return out


def run_failed(rid: str, exc: BaseException) -> Response:
    """The 500 of a run() that raised: its traceback to the log under the request id, only
    the exception's type to the client (Azure answers "An unexpected error occurred in scoring
    script. Check the logs for more info." with ``x-ms-run-function-failed: True``)."""
    cause = exc.__cause__ if isinstance(exc, RunAborted) and exc.__cause__ is not None else exc
    log.error(
        "request %s: run() raised:\n%s", rid, "".join(traceback.format_exception(type(cause), cause, cause.__traceback__))
    )
    response = error(
        500,
        "ScoringError",
        f"run() raised {type(cause).__name__}; its traceback is in the service's logs (service.get_logs()) "
        f"under request id {rid}",
        rid,
    )
    response.headers["x-ms-run-function-failed"] = "True"
    return response


def _with_request_id(rid: str, fn: Callable[..., Any], *args: Any) -> Any:
    """Call ``fn`` in a worker thread with ``current_request_id`` set (ModelDataCollector reads it)."""
    token = current_request_id.set(rid)
    try:
        return fn(*args)
    finally:
        current_request_id.reset(token)


async def _read_body(request: Request, declared: int | None, limit: int) -> bytes:
    """The whole request body (ASGI ``receive``), at most ``limit`` bytes: raises _TooLarge
    when the declared ``content-length`` or the bytes received pass it, ClientDisconnect when
    the client left."""
    if declared is not None and declared > limit:
        raise _TooLarge(declared)
    receive = request.receive
    message = await receive()
    if message["type"] != "http.request":
        raise ClientDisconnect()
    body = message.get("body", b"")
    if not message.get("more_body", False):  # the usual case: one message
        if len(body) > limit:
            raise _TooLarge(len(body))
        return body
    chunks = [body]
    size = len(body)
    while True:
        if size > limit:
            raise _TooLarge(size)
        message = await receive()
        if message["type"] != "http.request":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    if size > limit:
        raise _TooLarge(size)
    return b"".join(chunks)


class JSONBody(Response):
    """A JSON answer from already serialized bytes: the headers built at once (no
    ``init_headers`` pass), ``content-type: application/json``."""

    media_type = "application/json"

    def __init__(self, body: bytes, status_code: int = 200) -> None:
        self.status_code = status_code
        self.body = body
        self.background = None
        self.raw_headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]


Handler = Callable[[Request, str, Head], Awaitable[tuple[Response, int]]]


class ScoringApp:
    """The ASGI app of one worker: ``/score``, ``/``, ``/health/ready`` and ``/swagger.json``
    for their methods are answered here directly; anything else (``/metrics``, ``/telemetry``,
    404, 405, lifespan) by ``fallback``, a Starlette app with the same routes.

    Starlette's router and middleware stack cost ~15 us per request, more than the rest of
    the engine's own work on a 1-row request. ``limits``: also check the request head's
    bounds here (``HeadLimits.problem``; over them, ``fallback``'s :class:`HeaderGuard`
    answers 431); None when the HTTP protocol checks them while parsing (the worker's).
    ``state``: the fallback's ``app.state``.
    """

    def __init__(self, routes: dict[str, tuple[frozenset[str], Callable[..., Awaitable[None]]]], fallback: Starlette,
                 limits: HeadLimits | None) -> None:  # fmt: skip
        self.routes = routes
        self.fallback = fallback
        self.limits = limits
        self.state = fallback.state

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            route = self.routes.get(scope["path"])
            if (
                route is not None
                and scope["method"] in route[0]
                and (self.limits is None or self.limits.problem(scope["headers"]) is None)
            ):
                await route[1](scope, receive, send)
                return
        await self.fallback(scope, receive, send)


def create_app(
    settings: Settings,
    script: EntryScript | None,
    *,
    on_ready: Callable[[], None] | None = None,
    failure: str | None = None,
    on_recycle: Callable[[str, str], None] | None = None,
    head_checked: bool = False,
) -> ScoringApp:
    """The app of one worker, serving an initialised ``script``.

    ``head_checked``: the HTTP server enforces the request-head bounds while parsing (the
    worker's httptools protocol, :func:`.http_limits.uvicorn_http_options`), so the app does
    not check them again; False (the default) checks them in the app.

    ``failure`` (a message/traceback) instead makes every route but ``/`` and ``/metrics``
    answer 503 NotReady: what a generation whose init() failed serves.

    ``on_recycle(reason, message)`` is called once when this worker should be replaced
    (``server/lifecycle.py``): ``"hung_runs"`` (then ``/health/ready`` answers 503 NotReady
    with the message too) or ``"max_requests"`` (``settings.max_requests``).
    ``app.state.hung_runs`` is the :class:`HungRuns` counter, ``app.state.runner`` the
    :class:`.runner.Runner` calling run().
    """
    keys = KeyStore(
        settings.keys_file,
        settings.primary_key,
        settings.secondary_key,
        token_service=settings.service_name if settings.token_auth_enabled else None,
    )
    auth_on = settings.auth_enabled or settings.token_auth_enabled
    telemetry = TelemetryWriter(
        settings.run_dir,
        settings.service_name,
        settings.models,
        max_bytes=settings.telemetry_max_bytes,
        max_files=settings.telemetry_max_files,
    )
    collector = ModelDataCollector.from_env(settings.service_name, settings.models) if script else None
    timeout_s = settings.scoring_timeout_ms / 1000
    recycle = on_recycle or (lambda reason, message: None)
    hung = HungRuns(settings.scoring_timeout_ms, on_trip=lambda message: recycle("hung_runs", message))
    runner = Runner(timeout_s, hung, settings.inline_run_ms)
    budget = RequestBudget(settings.max_requests, settings.max_requests_jitter)
    swagger_body = dumps(script.openapi(settings.service_name)) if script else b"{}"
    ids = RequestIds()
    wants_headers = script is not None and script.wants_headers
    batcher = None
    if script is not None and settings.max_batch_size > 1 and batchable(script) is None:
        batcher = MicroBatcher(
            script, runner.executor, settings.max_batch_size, settings.max_latency_ms, timeout_s, ScoringTimeout, hung
        )

    def instrumented(route: str, handler: Handler) -> tuple[Callable[[Request], Awaitable[Response]], Any]:
        """(a Starlette endpoint, a raw ASGI endpoint) answering ``route`` with ``handler``:
        request id, metrics, telemetry, max_requests."""
        metrics = RouteMetrics(route)
        record = telemetry.record

        async def answer(request: Request) -> Response:
            t0 = time.perf_counter()
            head = scan_head(request.scope["headers"])
            rid = head.request_id
            if rid is None:
                rid = ids.new()
            response, nbytes = await handler(request, rid, head)
            raw = response.raw_headers
            if any(k == b"x-ms-request-id" for k, _ in raw):  # a Response returned by run()
                response.headers["x-ms-request-id"] = rid
            else:
                raw.append((b"x-ms-request-id", rid.encode("latin-1")))
            if head.refused:
                raw.append((REQUEST_ID_REJECTED_HEADER, REQUEST_ID_REJECTED_VALUE))
            elapsed = time.perf_counter() - t0
            status = response.status_code
            metrics.observe(status, elapsed)
            if budget.limit and budget.spend():
                recycle("max_requests", f"answered max_requests={budget.limit} requests (max_requests with its jitter)")
            if status == 401:  # refused: counted above, never one record each (no key, no disk)
                return response
            record(
                request_id=rid,
                route=route,
                status=status,
                latency_ms=elapsed * 1000,
                request_bytes=nbytes,
                response_bytes=len(response.body) if hasattr(response, "body") else 0,
            )
            return response

        async def raw_endpoint(scope: Any, receive: Any, send: Any) -> None:
            try:
                response = await answer(Request(scope, receive))
            except ClientDisconnect:
                return  # nobody to answer
            except Exception as e:  # noqa: BLE001 - a bug of ours must answer, not drop the connection
                log.exception("%s %s: the engine failed", scope["method"], route)
                response = error(500, "InternalError", f"the scoring engine failed: {type(e).__name__}")
            await response(scope, receive, send)

        return answer, raw_endpoint

    async def score(request: Request, rid: str, head: Head) -> tuple[Response, int]:
        if failure is not None:
            return not_ready(rid), 0
        if auth_on and request.method != "OPTIONS":
            problem = keys.check(head.authorization)
            if problem:
                return error(401, "Unauthorized", problem, rid), 0
        try:
            body = await _read_body(request, head.content_length, settings.max_request_bytes)
        except _TooLarge as e:
            return (
                error(
                    413,
                    "PayloadTooLarge",
                    f"request body of {e.args[0]} bytes or more exceeds the limit of {settings.max_request_bytes} bytes "
                    "(max_request_bytes)",
                    rid,
                ),
                e.args[0],
            )
        assert script is not None
        rows = None
        if script.rawhttp:
            raw = build_request(
                request.method,
                request.url.path,
                request.scope.get("query_string", b""),
                [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.scope["headers"]],
                body,
                scheme=request.url.scheme,
                server=request.scope.get("server"),
                client=request.scope.get("client"),
            )
            call: tuple[Any, ...] = (script.call_raw, raw)
        elif request.method != "POST":
            return error(405, "MethodNotAllowed", f"{request.method} is not allowed on /score: use POST", rid), 0
        else:
            if not body or body.isspace():
                return error(400, "BadRequest", "the request body is empty: send a JSON document", rid), 0
            try:
                check_json_depth(body)  # what run() or inference_schema would recurse on
                parsed = loads(body)
            except JSONTooDeep as e:
                return error(400, "BadRequest", str(e), rid), len(body)
            except UnicodeDecodeError as e:
                return error(400, "BadRequest", f"the request body is not UTF-8 text: {e}", rid), len(body)
            except json.JSONDecodeError as e:
                return (
                    error(
                        400,
                        "BadRequest",
                        f"the request body is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}",
                        rid,
                    ),
                    len(body),
                )
            except RecursionError:
                return (
                    error(
                        400,
                        "BadRequest",
                        "the request body is JSON nested deeper than Python's json module reads (about 1000 levels)",
                        rid,
                    ),
                    len(body),
                )
            except ValueError as e:  # e.g. an integer of more than 4300 digits (Python's int/str limit)
                return error(400, "BadRequest", f"the request body cannot be read as JSON: {_bounded(str(e))}", rid), len(body)
            headers = headers_dict(request.scope["headers"]) if wants_headers else {}
            rows = batcher.accepts(parsed) if batcher is not None else None
            call = (script.call, body, headers, parsed)
        try:
            if rows is not None:
                result = await batcher.submit(rows)  # type: ignore[union-attr]
            else:
                result = await runner.call(_with_request_id, rid, *call)
        except ScoringTimeout:
            log.error("request %s: run() did not finish within %d ms", rid, settings.scoring_timeout_ms)
            return (
                error(
                    504,
                    "ScoringTimeout",
                    f"run() did not finish within {settings.scoring_timeout_ms} ms (scoring_timeout_ms)",
                    rid,
                ),
                len(body),
            )
        except BadInput as e:
            return error(400, "BadRequest", str(e), rid), len(body)
        except WerkzeugHTTPException as e:
            if e.code is not None and 400 <= e.code < 500:
                # a @rawhttp run() reading the request: request.get_json() on a body that is not
                # JSON, request.files["image"] without that field (Werkzeug's BadRequestKeyError)
                what = f"it has no {_bounded(repr(e.args[0]), 80)}" if isinstance(e, KeyError) and e.args else e.description
                code = "PayloadTooLarge" if e.code == 413 else "BadRequest"  # 413: Werkzeug's max_form_parts
                return error(e.code, code, f"run() could not read the request: {what}", rid), len(body)
            return run_failed(rid, e), len(body)
        except Exception as e:
            return run_failed(rid, e), len(body)
        if isinstance(result, WerkzeugResponse):
            return from_werkzeug(result), len(body)
        if isinstance(result, Response):
            return result, len(body)
        try:
            payload = dumps(result)
        except (TypeError, ValueError, RecursionError) as e:
            log.error("request %s: cannot serialize run()'s output as JSON: %s", rid, _bounded(repr(e), 1000))
            return (
                error(500, "ScoringError", f"cannot serialize run()'s output as JSON: {_bounded(str(e))}", rid),
                len(body),
            )
        if collector is not None and not script.rawhttp:
            collector.collect(rid, body, payload, valid_json=True)
        return JSONBody(payload), len(body)

    async def liveness(request: Request, rid: str, head: Head) -> tuple[Response, int]:
        return PlainTextResponse("Healthy"), 0

    async def ready(request: Request, rid: str, head: Head) -> tuple[Response, int]:
        if failure is not None or script is None:
            return not_ready(rid), 0
        if hung.reason is not None:
            return error(503, "NotReady", hung.reason), 0
        return PlainTextResponse("Ready"), 0

    async def swagger(request: Request, rid: str, head: Head) -> tuple[Response, int]:
        if failure is not None:
            return not_ready(rid), 0
        return Response(swagger_body, media_type="application/json"), 0

    async def telemetry_records(request: Request) -> Response:
        # GET /telemetry?since=<ISO 8601 | unix s>&limit=<n>: {"records": [...]} (the newest
        # `limit`, at most TELEMETRY_LIMIT, oldest first), auth like /score
        if auth_on:
            problem = keys.check(request.headers.get("authorization"))
            if problem:
                return error(401, "Unauthorized", problem)
        try:
            since = parse_since(request.query_params.get("since"))
            limit = int(request.query_params["limit"]) if request.query_params.get("limit") else None
        except ValueError as e:
            return error(400, "BadRequest", f"since must be ISO 8601 or Unix seconds, limit an integer: {e}")
        limit = TELEMETRY_LIMIT if limit is None else max(0, min(limit, TELEMETRY_LIMIT))

        def read() -> list[dict[str, Any]]:
            telemetry.flush()
            return read_telemetry(settings.run_dir, since, limit)

        # off the event loop: reading files must never stall the worker's requests
        return JSONResponse({"records": await asyncio.to_thread(read)})

    async def metrics(request: Request) -> Response:
        data, ctype = metrics_text()
        return Response(data, media_type=ctype)

    async def not_found(request: Request, exc: Exception) -> Response:
        return error(404, "NotFound", f"no route {request.method} {_bounded(request.url.path)}: use POST /score")

    async def method_not_allowed(request: Request, exc: Exception) -> Response:
        return error(405, "MethodNotAllowed", f"{request.method} is not allowed on {_bounded(request.url.path)}")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        telemetry.start()
        if collector is not None:
            collector.start()
        if on_ready:
            on_ready()
        try:
            yield
        finally:
            await telemetry.stop()
            if collector is not None:
                collector.stop()
            stop_script_collectors()
            runner.shutdown()

    hot = {
        "/": (frozenset({"GET"}), instrumented("/", liveness)),
        "/score": (frozenset({"GET", "POST", "OPTIONS"}), instrumented("/score", score)),
        "/swagger.json": (frozenset({"GET"}), instrumented("/swagger.json", swagger)),
        "/health/ready": (frozenset({"GET"}), instrumented("/health/ready", ready)),
    }
    routes = [Route(path, endpoints[0], methods=sorted(methods)) for path, (methods, endpoints) in hot.items()]
    routes += [
        Route("/metrics", metrics, methods=["GET"]),
        Route("/telemetry", telemetry_records, methods=["GET"]),
    ]
    limits = HeadLimits.of(settings)
    fallback = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={404: not_found, 405: method_not_allowed},
        middleware=[Middleware(HeaderGuard, limits=limits)],
    )
    fallback.state.hung_runs = hung
    fallback.state.runner = runner
    return ScoringApp(
        {path: (methods, endpoints[1]) for path, (methods, endpoints) in hot.items()},
        fallback,
        None if head_checked else limits,
    )
