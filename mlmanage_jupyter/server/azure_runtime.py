"""The ``azureml`` names entry scripts import, provided by the scoring engine.

Azure ML v1 entry scripts import a few ``azureml`` modules at run time. When the real
Azure SDK is not installed in the deployment, :func:`install_azureml_shim` makes these
importable (a meta-path finder placed LAST on ``sys.meta_path``, so a real ``azureml``
install, regular or namespace package, always wins, module by module):

=====================================================  ==========================================
``azureml.core.model.Model.get_model_path``            :func:`.model_path.model_path_in_deployment`
``azureml.contrib.services.aml_request``               :class:`AMLRequest` (a Werkzeug ``Request``), :func:`rawhttp`
``azureml.contrib.services.aml_response``              :class:`AMLResponse` (a Werkzeug ``Response``)
``azureml.monitoring.ModelDataCollector``              :class:`.collector.ScriptDataCollector`
``azureml.core.run.Run.get_context()``                 :class:`OfflineRun`: ``log*`` go to the service log
``azureml.core.Workspace`` / ``Experiment`` / ``VERSION``  names; cloud calls raise :class:`CloudNotAvailable`
=====================================================  ==========================================

Behaviour follows Azure's documentation (MicrosoftDocs azure-docs ``articles/machine-learning/
v1/how-to-deploy-advanced-entry-script.md`` and ``how-to-enable-data-collection.md``) and
``azureml-inference-server-http``'s ``aml_request``/``aml_response`` API: ``@rawhttp`` makes
the server call ``run(request)`` with the whole HTTP request; ``AMLResponse(message,
status_code, response_headers={}, json_str=False)`` is returned as-is.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import json
import logging
import sys
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

from werkzeug.wrappers import Request as _WerkzeugRequest
from werkzeug.wrappers import Response as _WerkzeugResponse

from mlmanage_jupyter.server.model_path import ModelPathError, model_path_in_deployment

log = logging.getLogger("azureml.run")

#: the shim's package tree (``azureml/...`` files that re-export this module's names)
SHIM_ROOT = Path(__file__).with_name("azureml_shim")

#: ``azureml.core.VERSION`` inside a deployment without the real SDK
VERSION = "1.0.0+mlmanage.shim"

F = TypeVar("F", bound=Callable[..., Any])


class CloudNotAvailable(RuntimeError):
    """An ``azureml`` cloud API (Workspace, Experiment, Model registry, ...) called inside a
    deployment that has no Azure SDK: the engine provides only what entry scripts use to serve."""


def _no_cloud(what: str) -> CloudNotAvailable:
    return CloudNotAvailable(
        f"{what} needs the Azure ML cloud SDK, which is not available inside this mlmanage-jupyter service: "
        "inside a service use Model.get_model_path(name) and AZUREML_MODEL_DIR for model files, "
        "Run.get_context() for logging, ModelDataCollector for data collection; "
        "do cloud work (workspaces, experiments, registration) from the notebook with mlmanage_jupyter"
    )


# ------------------------------------------------------------------ azureml.core.model
class Model:
    """``azureml.core.model.Model`` inside a deployment: only :meth:`get_model_path` works."""

    def __init__(self, workspace: Any = None, name: str | None = None, *args: Any, **kwargs: Any) -> None:
        raise _no_cloud(f"Model(workspace, {name!r}) (the model registry)")

    @staticmethod
    def get_model_path(model_name: str, version: int | None = None, _workspace: Any = None) -> str:
        """Path of the deployed model's file (one-file model) or folder, Azure's layout.

        Raises ModelPathError (a LookupError) naming the deployed models when ``model_name``
        (or that ``version``) is not in this deployment; ``_workspace`` raises CloudNotAvailable.
        """
        if _workspace is not None:
            raise _no_cloud("Model.get_model_path(..., _workspace=...)")
        return model_path_in_deployment(model_name, version)


# ------------------------------------------------------------------ azureml.core.run
class OfflineRun:
    """What ``Run.get_context()`` returns inside a service: Azure's offline run, whose
    ``log*`` calls write one line each to the service log (logger ``azureml.run``)."""

    def __init__(self) -> None:
        self.id = f"OfflineRun_{uuid.uuid4()}"
        self.name = self.id
        self.tags: dict[str, str] = {}
        self.properties: dict[str, str] = {}
        self.experiment = None
        self.parent = None

    def _log(self, kind: str, name: str, value: Any, description: str = "") -> None:
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        log.info("run %s %s %s=%s%s", self.id, kind, name, text, f" ({description})" if description else "")

    def log(self, name: str, value: Any, description: str = "", step: int | None = None) -> None:
        self._log("metric", name, value, description)

    def log_list(self, name: str, value: Sequence[Any], description: str = "") -> None:
        self._log("list", name, list(value), description)

    def log_row(self, name: str, description: str | None = None, **kwargs: Any) -> None:
        self._log("row", name, kwargs, description or "")

    def log_table(self, name: str, value: Mapping[str, Any], description: str = "") -> None:
        self._log("table", name, dict(value), description)

    def log_accuracy_table(self, name: str, value: Any, description: str = "") -> None:
        self._log("accuracy_table", name, value, description)

    def log_confusion_matrix(self, name: str, value: Any, description: str = "") -> None:
        self._log("confusion_matrix", name, value, description)

    def log_predictions(self, name: str, value: Any, description: str = "") -> None:
        self._log("predictions", name, value, description)

    def log_residuals(self, name: str, value: Any, description: str = "") -> None:
        self._log("residuals", name, value, description)

    def log_image(self, name: str, path: str | None = None, plot: Any = None, description: str = "") -> None:
        self._log("image", name, path or "<plot>", description)

    def tag(self, key: str, value: str | None = None) -> None:
        self.tags[key] = "" if value is None else str(value)
        self._log("tag", key, self.tags[key])

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        for k, v in tags.items():
            self.tag(k, v)

    def get_tags(self) -> dict[str, str]:
        return dict(self.tags)

    def add_properties(self, properties: Mapping[str, Any]) -> None:
        self.properties.update({k: str(v) for k, v in properties.items()})

    def get_properties(self) -> dict[str, str]:
        return dict(self.properties)

    def get_status(self) -> str:
        return "Running"

    def complete(self, _set_status: bool = True) -> None:
        pass

    def flush(self, timeout_seconds: int = 300) -> None:
        pass

    def upload_file(self, name: str, path_or_stream: Any) -> None:
        raise _no_cloud("Run.upload_file")

    def __repr__(self) -> str:
        return f"Run(id={self.id!r}, offline=True)"


class Run:
    """``azureml.core.run.Run``: inside a service only :meth:`get_context` works."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise _no_cloud("Run(experiment, run_id)")

    @classmethod
    def get_context(cls, allow_offline: bool = True, **kwargs: Any) -> OfflineRun:
        """An offline run (Azure's behaviour outside a submitted run); ``allow_offline=False``
        raises CloudNotAvailable, as Azure raises outside a submitted run."""
        if not allow_offline:
            raise _no_cloud("Run.get_context(allow_offline=False)")
        return OfflineRun()


class _CloudMeta(type):
    """Class attributes of a cloud class (``Workspace.from_config`` ...) raise CloudNotAvailable."""

    def __getattr__(cls, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        raise _no_cloud(f"{cls.__name__}.{name}")


class _CloudOnly(metaclass=_CloudMeta):
    """A cloud class (Workspace, Experiment, ...): any use raises CloudNotAvailable."""

    _what = "this class"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise _no_cloud(f"{self._what}(...)")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._what = cls.__name__


class Workspace(_CloudOnly):
    """``azureml.core.Workspace``: ``Workspace(...)``, ``Workspace.from_config()``, ``Workspace.get(...)``
    raise CloudNotAvailable inside a service."""


class Experiment(_CloudOnly):
    """``azureml.core.Experiment``: raises CloudNotAvailable inside a service."""


class Environment(_CloudOnly):
    """``azureml.core.Environment``: raises CloudNotAvailable inside a service."""


class Datastore(_CloudOnly):
    """``azureml.core.Datastore``: raises CloudNotAvailable inside a service."""


class Dataset(_CloudOnly):
    """``azureml.core.Dataset``: raises CloudNotAvailable inside a service."""


# ------------------------------------------------------------------ azureml.contrib.services
#: set by :func:`rawhttp` (Azure's module-level flag, which the server reads)
_rawHttpRequested = False  # noqa: N816 - Azure's name
RAWHTTP_ATTR = "__aml_rawhttp__"


def rawhttp(func: F) -> F:
    """Decorator on ``run``: the server calls ``run(request)`` with the whole HTTP request (an
    :class:`AMLRequest`), for GET, POST and OPTIONS on ``/score``; ``run`` returns an
    :class:`AMLResponse` (sent as-is) or any JSON-serializable value (sent as JSON)."""
    global _rawHttpRequested
    _rawHttpRequested = True
    setattr(func, RAWHTTP_ATTR, True)
    return func


class AMLRequest(_WerkzeugRequest):
    """The request ``@rawhttp`` scripts receive: a Werkzeug ``Request`` (as Azure's, a Flask one):
    ``method``, ``headers``, ``args``, ``get_data()``, ``data``, ``form``/``files`` (multipart),
    ``get_json()``, ``full_path``, ``url`` ..."""


class AMLResponse(_WerkzeugResponse):
    """A response a ``@rawhttp`` script returns (Azure's signature).

    Args:
        message: body (str or bytes); None sends ``{}`` as JSON.
        status_code: HTTP status.
        response_headers: extra headers; a value with commas becomes one header per item
            (as Azure does for repeated headers).
        json_str: True sends ``json.dumps(message)`` as ``application/json``.
        run_function_failed: sets the ``x-ms-run-function-failed`` header (Azure's).
    """

    def __init__(
        self,
        message: Any,
        status_code: int,
        response_headers: Mapping[str, str] | None = None,
        json_str: bool = False,
        run_function_failed: bool = False,
    ) -> None:
        headers = dict(response_headers or {})
        if message is None:
            super().__init__(json.dumps({}), status=status_code, mimetype="application/json")
        elif json_str:
            super().__init__(json.dumps(message), status=status_code, mimetype="application/json")
        else:
            super().__init__(message, status=status_code)
            if any(k.lower() == "content-type" for k in headers):
                del self.headers["Content-Type"]
        self.headers["x-ms-run-function-failed"] = str(bool(run_function_failed))
        for name, value in headers.items():
            for item in str(value).split(","):
                self.headers.add(name, item.strip())


def is_rawhttp(run_fn: Callable[..., Any]) -> bool:
    """True when ``run_fn`` was decorated with ``@rawhttp``: ours, or the real
    ``azureml.contrib.services`` one (which only sets its module flag)."""
    if getattr(run_fn, RAWHTTP_ATTR, False):
        return True
    real = sys.modules.get("azureml.contrib.services.aml_request")
    return bool(getattr(real, "_rawHttpRequested", False)) and getattr(real, "rawhttp", None) is not rawhttp


def build_request(
    method: str,
    path: str,
    query_string: bytes,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    *,
    scheme: str = "http",
    server: tuple[str, int] | None = None,
    client: tuple[str, int] | None = None,
) -> AMLRequest:
    """An :class:`AMLRequest` from an ASGI request's parts (a WSGI environ per PEP 3333; Werkzeug
    parses query, form, multipart and cookies from it)."""
    import io

    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": query_string.decode("latin-1"),
        "SERVER_NAME": server[0] if server else "localhost",
        "SERVER_PORT": str(server[1]) if server else "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": client[0] if client else "",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scheme,
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "CONTENT_LENGTH": str(len(body)),
    }
    for name, value in headers:
        key = name.upper().replace("-", "_")
        if key == "CONTENT_TYPE":
            environ["CONTENT_TYPE"] = value
        elif key == "CONTENT_LENGTH":
            continue
        else:
            k = f"HTTP_{key}"
            environ[k] = f"{environ[k]},{value}" if k in environ else value
    return AMLRequest(environ)


# ------------------------------------------------------------------ the meta-path finder
class _ShimFinder(importlib.abc.MetaPathFinder):
    """Serves ``azureml`` and ``azureml.*`` modules from :data:`SHIM_ROOT` when no other finder
    found them (it sits last on ``sys.meta_path``)."""

    def find_spec(self, fullname: str, path: Any = None, target: ModuleType | None = None) -> Any:
        if fullname != "azureml" and not fullname.startswith("azureml."):
            return None
        parts = fullname.split(".")
        folder = SHIM_ROOT.joinpath(*parts[:-1])
        return importlib.machinery.PathFinder.find_spec(fullname, [str(folder)])


_FINDER = _ShimFinder()


def install_azureml_shim() -> None:
    """Make the ``azureml`` names above importable when the real SDK is not (idempotent)."""
    if not any(isinstance(f, _ShimFinder) for f in sys.meta_path):
        sys.meta_path.append(_FINDER)


__all__ = [
    "VERSION",
    "AMLRequest",
    "AMLResponse",
    "CloudNotAvailable",
    "Datastore",
    "Dataset",
    "Environment",
    "Experiment",
    "Model",
    "ModelPathError",
    "OfflineRun",
    "Run",
    "Workspace",
    "build_request",
    "install_azureml_shim",
    "is_rawhttp",
    "rawhttp",
]
