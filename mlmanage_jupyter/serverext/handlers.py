"""REST handlers of the server extension: ``<base_url>mlmanage/api/...``.

Every handler is a Jupyter ``APIHandler`` behind Jupyter's own authentication
(``@web.authenticated``: 403 without a token or login cookie) and authorization
(``@authorized``, resource ``mlmanage``), and Jupyter's XSRF check on POST/DELETE for
cookie-authenticated requests (a browser must send the ``_xsrf`` cookie's value in
``X-XSRFToken``; token-authenticated requests are exempt, as everywhere in Jupyter Server).

Routes (JSON in and out; errors are ``{"error": message}`` with 400 bad input, 404 missing,
409 in use, 500 anything else):

    GET    workspace                            workspace details + lastEventId + version
    GET    events?since=<id>&limit=<n>          {"last", "events"} (change feed; poll it)
    GET    models[?name=]                       {"models": [...]} (with usedBy)
    GET    models/<name>/<version>              one version, with its files
    GET    images                               {"images": [...]}
    GET    services                             {"services": [...]} (live state; never keys)
    POST   services                             {"name", "models", "entry_script", ...} -> 202 + the service
                                                (``core_api.deploy_service``; paths inside root_dir)
    GET    services/<name>                      one service
    DELETE services/<name>                      stop and remove it (204)
    POST   services/<name>/update               {"models": ["name:version", ...]} -> the service
    POST   services/<name>/score                raw request body -> {"status", "latencyMs", "body", "requestId"}
    GET    services/<name>/keys                 {"primaryKey", "secondaryKey"} (auth-enabled services)
    GET    services/<name>/swagger              the service's OpenAPI document
    GET    services/<name>/logs[?tail=n]        {"logs": text}
    GET    services/<name>/logs?follow=1        text/event-stream: ``event: line`` per log line
                                                (JSON string data), ``event: error``, ``event: end``
    GET    services/<name>/telemetry[?since=]   telemetry summary (latencies in ms)
    GET    readme                               {"markdown"}: the package's README (its long description)

Blocking core calls run on a thread pool, never on the server's event loop.
"""

from __future__ import annotations

import asyncio
import functools
import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import PackageNotFoundError, metadata
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web
from tornado.iostream import StreamClosedError

from mlmanage_jupyter.serverext import core_api

_POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="mlmanage-api")
AUTH_RESOURCE = "mlmanage"
SSE_KEEPALIVE_S = 15.0


class _Handler(APIHandler):
    auth_resource = AUTH_RESOURCE

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a blocking core call on the pool; a core error becomes an HTTP error."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(_POOL, functools.partial(fn, *args))
        except web.HTTPError:
            raise
        except Exception as e:
            status = core_api.http_status(e)
            if status == 500:
                self.log.error("mlmanage: %s failed", getattr(fn, "__name__", fn), exc_info=e)
            raise web.HTTPError(status, "%s", str(e) or type(e).__name__) from e

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Every error as ``{"error": message}`` (the core's message, or the HTTP reason)."""
        self.set_header("Content-Type", "application/json")
        message = self._reason
        exc_info = kwargs.get("exc_info")
        if exc_info is not None:
            e = exc_info[1]
            if isinstance(e, web.HTTPError) and e.log_message:
                message = e.log_message % e.args if e.args else e.log_message
            elif not isinstance(e, web.HTTPError):
                message = str(e) or type(e).__name__
        self.finish(json.dumps({"error": message}))

    def int_arg(self, name: str, default: int) -> int:
        raw = self.get_query_argument(name, None)
        if raw is None or raw == "":
            return default
        try:
            return int(raw)
        except ValueError:
            raise web.HTTPError(400, "%s", f"query argument {name!r} must be an integer, got {raw!r}") from None

    def json_body(self) -> Any:
        try:
            return json.loads(self.request.body or b"null")
        except ValueError as e:
            raise web.HTTPError(400, "%s", f"the request body is not valid JSON: {e}") from e

    def reply(self, data: Any) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data, default=str))


class WorkspaceHandler(_Handler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(await self.run(core_api.workspace_info))


class EventsHandler(_Handler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        since, limit = self.int_arg("since", 0), self.int_arg("limit", 1000)
        self.reply(await self.run(core_api.events, since, limit))


class ModelsHandler(_Handler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(await self.run(core_api.list_models, self.get_query_argument("name", None)))


class ModelHandler(_Handler):
    @web.authenticated
    @authorized
    async def get(self, name: str, version: str) -> None:
        if not version.isdigit():
            raise web.HTTPError(400, "%s", f"model version must be an integer, got {version!r}")
        self.reply(await self.run(core_api.get_model, name, int(version)))


class ImagesHandler(_Handler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(await self.run(core_api.list_images))


class ServicesHandler(_Handler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply(await self.run(core_api.list_services))

    @web.authenticated
    @authorized
    async def post(self) -> None:
        """Deploy a new service: 202 with it (Transitioning until its target reports it)."""
        root_dir = self.settings.get("server_root_dir") or self.contents_manager.root_dir
        service = await self.run(core_api.deploy_service, root_dir, self.json_body())
        self.set_status(202)
        self.reply(service)


class ServiceHandler(_Handler):
    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        self.reply(await self.run(core_api.get_service, name))

    @web.authenticated
    @authorized
    async def delete(self, name: str) -> None:
        await self.run(core_api.delete_service, name)
        self.set_status(204)
        self.finish()


class UpdateHandler(_Handler):
    @web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        body = self.json_body()
        if not isinstance(body, dict) or "models" not in body:
            raise web.HTTPError(400, "%s", 'the body must be a JSON object {"models": ["name:version", ...]}')
        self.reply(await self.run(core_api.update_service, name, body["models"]))


class ScoreHandler(_Handler):
    @web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        body = (self.request.body or b"").decode("utf-8", errors="replace")
        if not body.strip():
            raise web.HTTPError(400, "%s", "the request body is empty: send the JSON the service's run() expects")
        self.reply(await self.run(core_api.call_service, name, body))


class KeysHandler(_Handler):
    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        self.reply(await self.run(core_api.get_keys, name))


class SwaggerHandler(_Handler):
    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        self.reply(await self.run(core_api.get_swagger, name))


class TelemetryHandler(_Handler):
    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        self.reply(await self.run(core_api.telemetry_summary, name, self.get_query_argument("since", None)))


def readme() -> str:
    """The README this package was built with (the wheel's long description)."""
    try:
        meta = metadata("mlmanage-jupyter")
    except PackageNotFoundError:
        return "mlmanage-jupyter is not installed as a package: no README to show."
    return meta.get_payload() or meta.get("Description") or "(no README in the package metadata)"  # type: ignore[attr-defined]


class ReadmeHandler(_Handler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.reply({"markdown": await self.run(readme)})


class LogsHandler(_Handler):
    _stop: threading.Event | None = None

    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        tail = self.int_arg("tail", 5000)
        if self.get_query_argument("follow", "0") not in ("1", "true"):
            self.reply({"logs": await self.run(core_api.get_logs, name, tail)})
            return
        await self.run(core_api.get_service, name)  # 404 before the stream starts
        await self._follow(name)

    async def _follow(self, name: str) -> None:
        """Server-Sent Events: one ``line`` event per log line until the client goes away."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        stop = self._stop = threading.Event()

        def pump() -> None:  # a thread of its own: the iterator blocks between lines
            try:
                for line in core_api.stream_logs(name, stop.is_set):
                    loop.call_soon_threadsafe(queue.put_nowait, ("line", line))
            except Exception as e:  # the target went away: tell the client, then end
                loop.call_soon_threadsafe(queue.put_nowait, ("error", str(e)))
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, ("end", None))

        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")
        threading.Thread(target=pump, name=f"mlmanage-logs-{name}", daemon=True).start()
        try:
            self.write(": following logs\n\n")
            await self.flush()
            while True:
                try:
                    kind, data = await asyncio.wait_for(queue.get(), SSE_KEEPALIVE_S)
                except asyncio.TimeoutError:
                    self.write(": keep-alive\n\n")
                    await self.flush()
                    continue
                self.write(f"event: {kind}\ndata: {json.dumps(data)}\n\n")
                await self.flush()
                if kind == "end":
                    break
        except StreamClosedError:  # the client went away
            return
        finally:
            stop.set()
        self.finish()

    def on_connection_close(self) -> None:
        if self._stop is not None:
            self._stop.set()


def handlers(base_url: str) -> list[tuple[str, type[web.RequestHandler]]]:
    """The routes under ``<base_url>mlmanage/api/``."""
    api = url_path_join(base_url, "mlmanage", "api")
    svc = url_path_join(api, "services", "([^/]+)")
    return [
        (url_path_join(api, "workspace"), WorkspaceHandler),
        (url_path_join(api, "events"), EventsHandler),
        (url_path_join(api, "models"), ModelsHandler),
        (url_path_join(api, "models", "([^/]+)", "([^/]+)"), ModelHandler),
        (url_path_join(api, "images"), ImagesHandler),
        (url_path_join(api, "readme"), ReadmeHandler),
        (url_path_join(api, "services"), ServicesHandler),
        (svc, ServiceHandler),
        (url_path_join(svc, "update"), UpdateHandler),
        (url_path_join(svc, "score"), ScoreHandler),
        (url_path_join(svc, "keys"), KeysHandler),
        (url_path_join(svc, "swagger"), SwaggerHandler),
        (url_path_join(svc, "logs"), LogsHandler),
        (url_path_join(svc, "telemetry"), TelemetryHandler),
    ]
