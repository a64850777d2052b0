"""Loading the entry script, calling ``run()`` as Azure's inference server does, and its OpenAPI.

Calling convention (the one of ``azureml-inference-server-http``):

* ``run`` undecorated: ``run(<raw request body as str>)``;
* ``run`` decorated with ``inference_schema`` (``@input_schema``): the body must be a JSON
  object; each parameter of ``run`` is passed by keyword from the body key of the same
  name (or its default), so the decorators convert the values (numpy, pandas, ...);
* a ``request_headers`` parameter receives the request headers as a dict;
* ``run`` decorated with ``@rawhttp`` (``azureml.contrib.services.aml_request``): ``run(request)``
  with the whole request, an ``AMLRequest`` (Werkzeug ``Request``), for GET, POST and OPTIONS.

Before the script is imported, the ``azureml`` names entry scripts use are made importable
when the real SDK is not installed (:mod:`.azure_runtime`). Layout as Azure's server sets it:
``app_root`` (``AML_APP_ROOT``) and ``app_root/<source_directory>`` (``AZUREML_SOURCE_DIRECTORY``)
on ``sys.path``, plus the entry script's folder; ``init()`` runs with ``app_root`` as cwd.

The return value is serialized with ``json.dumps`` (numpy arrays/scalars and pandas objects
are converted too); a Starlette ``Response`` is passed through.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from inference_schema.schema_util import get_input_schema, get_output_schema, is_schema_decorated

from mlmanage_jupyter.server.azure_runtime import AMLRequest, install_azureml_shim, is_rawhttp
from mlmanage_jupyter.server.lifecycle import RunTimedOut

#: ``EntryScript.call``'s marker for "the caller did not decode the body"
_UNPARSED: Any = object()


class EntryScriptError(Exception):
    """The entry script cannot be loaded or does not define init() and run() properly."""


class BadInput(Exception):
    """The request body does not fit what run() expects (answers 400)."""


class RunAborted(Exception):
    """run() raised a BaseException that is not an Exception (SystemExit, KeyboardInterrupt,
    GeneratorExit, a custom one): carried as an Exception (``__cause__`` is the original) so
    it answers 500 and never reaches the event loop, which such an exception would stop."""

    @classmethod
    def wrap(cls, exc: BaseException) -> RunAborted:
        wrapped = cls(f"run() raised {type(exc).__name__}")
        wrapped.__cause__ = exc
        return wrapped


def _innermost(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The function under decorators (``__wrapped__`` chains: wrapt's, functools.wraps')."""
    seen = 0
    while hasattr(fn, "__wrapped__") and seen < 100:
        fn = fn.__wrapped__
        seen += 1
    return fn


def _entered(exc: BaseException, code: Any) -> bool:
    """True when ``exc``'s traceback passes through a frame running ``code``."""
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code is code:
            return True
        tb = tb.tb_next
    return False


class EntryScript:
    """An entry script loaded from ``app_root/entry_script`` (not yet initialised).

    ``source_directory``: the source directory's folder name under ``app_root`` (Azure's
    ``AZUREML_SOURCE_DIRECTORY``), put on ``sys.path`` too. Raises EntryScriptError for a
    missing script, missing init()/run(), or a run() the server cannot call.
    """

    def __init__(self, app_root: Path, entry_script: str, source_directory: str | None = None) -> None:
        self.app_root = Path(app_root)
        self.path = self.app_root / entry_script
        if not self.path.is_file():
            raise EntryScriptError(f"entry script not found: {self.path}")
        install_azureml_shim()
        folders = [self.app_root]
        if source_directory:
            folders.append(self.app_root / source_directory)
        folders.append(self.path.parent)
        for folder in reversed(folders):
            if str(folder) not in sys.path:
                sys.path.insert(0, str(folder))
        spec = importlib.util.spec_from_file_location("entry_module", self.path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules["entry_module"] = module
        spec.loader.exec_module(module)  # exceptions propagate with their traceback
        for fn in ("init", "run"):
            if not callable(getattr(module, fn, None)):
                raise EntryScriptError(f"entry script {self.path} does not define a {fn}() function")
        self.module = module
        self._init: Callable[[], Any] = module.init
        # Azure's driver modules forward run() to the real score script: call that one.
        driver = getattr(module, "driver_module", None)
        self.run_fn: Callable[..., Any] = getattr(driver, "run", None) or module.run
        self.decorated = is_schema_decorated(self.run_fn)
        #: the code of run() under its decorators: an exception that did not pass through it
        #: came from the inference_schema decorators converting the input (a client fault)
        self._user_code = getattr(_innermost(self.run_fn), "__code__", None)
        self.rawhttp = is_rawhttp(self.run_fn)
        if self.rawhttp and self.decorated:
            raise EntryScriptError("run() cannot be decorated with both @rawhttp and @input_schema: keep one")
        params = list(inspect.signature(self.run_fn).parameters.values())
        if any(p.kind not in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params):
            raise EntryScriptError("run() cannot accept positional-only arguments, *args or **kwargs")
        self.wants_headers = any(p.name == "request_headers" for p in params)
        self.params = [p for p in params if p.name != "request_headers"]
        if not self.params:
            raise EntryScriptError("run() needs a parameter for the input data")

    def init(self) -> None:
        """Call the script's init() with the app root as working directory."""
        os.chdir(self.app_root)
        self._init()

    def call_raw(self, request: AMLRequest) -> Any:
        """Run a ``@rawhttp`` script on the whole request (``request_headers`` too if it asks)."""
        kwargs: dict[str, Any] = {self.params[0].name: request}
        if self.wants_headers:
            kwargs["request_headers"] = dict(request.headers)
        return self.invoke(kwargs)

    def invoke(self, kwargs: dict[str, Any]) -> Any:
        """``run(**kwargs)``. Raises BadInput when an ``@input_schema`` decorator could not
        convert an argument (the exception came before run()'s own code started: wrong types
        for its ``inference_schema`` parameter types), RunAborted for a BaseException that is
        not an Exception; run()'s own exceptions propagate as they are."""
        try:
            return self.run_fn(**kwargs)
        except Exception as e:
            if self.decorated and self._user_code is not None and not _entered(e, self._user_code):
                text = str(e)
                text = text if len(text) <= 300 else text[:300] + "..."
                raise BadInput(
                    f"the request body does not fit run()'s input schema (GET /swagger.json shows it): "
                    f"{type(e).__name__}: {text}"
                ) from e
            raise
        except RunTimedOut:  # the deadline of a run() on the event loop (server/runner.py)
            raise
        except BaseException as e:
            raise RunAborted.wrap(e) from e

    def call(self, body: bytes, headers: dict[str, str], parsed: Any = _UNPARSED) -> Any:
        """Run the script on one request body (already checked to be valid JSON); ``parsed``
        is the body already decoded, when the caller has it (the app does: no second parse)."""
        if self.decorated:
            if parsed is _UNPARSED:
                parsed = json.loads(body)
            if not isinstance(parsed, dict):
                raise BadInput(
                    "the request body must be a JSON object with a key per run() parameter: "
                    + ", ".join(repr(p.name) for p in self.params)
                )
            kwargs: dict[str, Any] = {}
            for p in self.params:
                value = parsed.get(p.name, p.default)
                if value is inspect.Parameter.empty:
                    raise BadInput(f"the request body has no value for run()'s {p.name!r} parameter")
                kwargs[p.name] = value
        else:
            try:
                kwargs = {self.params[0].name: body.decode("utf-8")}
            except UnicodeDecodeError as e:
                raise BadInput(f"the request body is not UTF-8: {e}")
        if self.wants_headers:
            kwargs["request_headers"] = headers
        return self.invoke(kwargs)

    def openapi(self, service_name: str) -> dict[str, Any]:
        """OpenAPI 3 document of the service (Azure's swagger3 layout)."""
        user = self.app_root / "swagger3.json"
        if user.is_file():
            try:
                return json.loads(user.read_text(encoding="utf-8"))
            except ValueError:
                pass
        if self.decorated:
            input_schema = get_input_schema(self.run_fn) or {"type": "object", "example": {}}
            output_schema = get_output_schema(self.run_fn) or {"type": "object", "example": {}}
        else:
            input_schema = {"type": "object", "example": {}}
            output_schema = {"type": "object", "example": {}}
        return openapi_document(service_name, input_schema, output_schema)


def _error_response_ref() -> dict[str, Any]:
    return {
        "description": "The service failed to execute due to an error.",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
    }


def openapi_document(service_name: str, input_schema: dict[str, Any], output_schema: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI 3.0.3 document: input schema + example in ``/score``'s requestBody, output schema in its 200."""
    request_media: dict[str, Any] = {"schema": {"$ref": "#/components/schemas/ServiceInput"}}
    if "example" in input_schema:
        request_media["example"] = input_schema["example"]
    return {
        "openapi": "3.0.3",
        "info": {
            "title": service_name,
            "description": f"API specification for the mlmanage-jupyter service {service_name}",
            "version": "1.0",
        },
        "security": [{"Bearer": []}],
        "paths": {
            "/": {
                "get": {
                    "operationId": "ServiceHealthCheck",
                    "description": "Liveness: answers 'Healthy' while the service is up.",
                    "responses": {
                        "200": {
                            "description": "The service is up.",
                            "content": {"text/plain": {"schema": {"type": "string", "example": "Healthy"}}},
                        },
                        "default": _error_response_ref(),
                    },
                }
            },
            "/score": {
                "post": {
                    "operationId": "RunMLService",
                    "description": "Run the web service's model and get the prediction output",
                    "security": [{"Bearer": []}],
                    "requestBody": {
                        "description": "The input payload for executing the real-time machine learning service.",
                        "required": True,
                        "content": {"application/json": request_media},
                    },
                    "responses": {
                        "200": {
                            "description": "The prediction output.",
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/ServiceOutput"}}
                            },
                        },
                        "default": _error_response_ref(),
                    },
                }
            },
            "/swagger.json": {
                "get": {
                    "operationId": "GetSwaggerSpec",
                    "description": "Get the OpenAPI specification.",
                    "responses": {
                        "200": {"description": "The OpenAPI specification.", "content": {"application/json": {}}},
                        "default": _error_response_ref(),
                    },
                }
            },
        },
        "components": {
            "schemas": {
                "ServiceInput": input_schema,
                "ServiceOutput": output_schema,
                "ErrorResponse": {
                    "type": "object",
                    "properties": {
                        "error": {
                            "type": "object",
                            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                        }
                    },
                },
            },
            "securitySchemes": {
                "Bearer": {
                    "type": "apiKey",
                    "name": "Authorization",
                    "in": "header",
                    "description": "For example: Bearer abc123",
                }
            },
        },
    }
