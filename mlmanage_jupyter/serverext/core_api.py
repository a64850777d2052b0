"""The server extension's one door into the core: every core name it uses is imported here.

Only public names (``mlmanage_jupyter`` top-level and ``mlmanage_jupyter.core.*`` public
classes) are used, so a rename inside the core is a fix in this file alone. Every function
is blocking (database, target, HTTP) and returns plain JSON-ready data; the handlers run them
off the event loop.

Errors: the core's exceptions pass through unchanged; :func:`http_status` maps them to an
HTTP status (ValidationError 400, NotFoundError 404, InUseError 409, anything else 500).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mlmanage_jupyter import Environment, Image, InferenceConfig, Model, Webservice, Workspace
from mlmanage_jupyter import __version__ as VERSION
from mlmanage_jupyter.core.errors import InUseError, NotFoundError, ValidationError
from mlmanage_jupyter.core.targets.configs import config_from_json

__all__ = [
    "VERSION",
    "call_service",
    "delete_service",
    "deploy_service",
    "events",
    "get_keys",
    "get_logs",
    "get_model",
    "get_service",
    "get_swagger",
    "http_status",
    "list_images",
    "list_models",
    "list_services",
    "stream_logs",
    "telemetry_summary",
    "update_service",
    "workspace_info",
]


def http_status(error: BaseException) -> int:
    """The HTTP status for a core error: 400 bad input, 404 missing, 409 in use, else 500."""
    if isinstance(error, ValidationError):
        return 400
    if isinstance(error, NotFoundError):
        return 404
    if isinstance(error, InUseError):
        return 409
    return 500


def _ws() -> Workspace:
    # the Jupyter server's workspace: $MLMANAGE_WORKSPACE, else ./.mlmanage of the server's cwd
    return Workspace.get_default()


def _clean(value: Any) -> Any:
    """NaN/inf (JSON has none) become None; datetimes become ISO 8601 strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


# ---------------------------------------------------------------------------- workspace
def workspace_info() -> dict[str, Any]:
    """``{"name", "path", "metadata_url", "artifact_store", "lastEventId", "version"}``."""
    ws = _ws()
    info = dict(ws.get_details())
    info["metadata_url"] = str(info.get("metadata_url", "")).split("@")[-1]  # never a password
    info["lastEventId"] = ws.last_event_id()
    info["version"] = VERSION
    return info


def events(since: int = 0, limit: int = 1000) -> dict[str, Any]:
    """``{"last": newest event id, "events": [...]}`` (events after ``since``; see
    ``Workspace.get_events``). ValidationError for a bad ``since``/``limit``."""
    ws = _ws()
    evs = ws.get_events(since=since, limit=limit)
    return {"last": max([since, ws.last_event_id()] + [e["id"] for e in evs]), "events": _clean(evs)}


# ---------------------------------------------------------------------------- models / images
def _model(m: Any, files: bool = False) -> dict[str, Any]:
    d = m.serialize()
    d["usedBy"] = m.users()
    if files:
        d["files"] = m.get_files()
    return d


def list_models(name: str | None = None) -> dict[str, Any]:
    """``{"models": [Model.serialize() + {"usedBy": {"images", "services"}}]}``, by name then
    version (newest first)."""
    return {"models": [_model(m) for m in Model.list(_ws(), name=name)]}


def get_model(name: str, version: int) -> dict[str, Any]:
    """One model version with its files (``[{"path", "sha256", "size"}]``)."""
    return _model(Model(_ws(), name, version=version), files=True)


def list_images() -> dict[str, Any]:
    """``{"images": [Image.serialize() + {"services": [...]}]}``."""
    out = []
    for img in Image.list(_ws()):
        d = img.serialize()
        d["services"] = img.services()
        out.append(d)
    return {"images": out}


# ---------------------------------------------------------------------------- services
def _service(s: Any) -> dict[str, Any]:
    img = s.image
    return {
        "name": s.name,
        "state": s.state,  # live, from the target
        "error": s.error,
        "computeType": s.compute_type,
        "scoringUri": s.scoring_uri,
        "swaggerUri": s.swagger_uri,
        "models": list(s.models),
        "image": img.id if img is not None else None,
        "authEnabled": s.auth_enabled,
        "tags": s.tags,
        "description": s.description,
        "createdTime": s.created_time,
        "updatedTime": s.updated_time,
    }


def list_services() -> dict[str, Any]:
    """``{"services": [...]}``: name, live state (Transitioning | Healthy | Unhealthy | Failed),
    error, computeType, scoringUri, swaggerUri, models (``"name:version"``), image, authEnabled,
    tags, description, createdTime, updatedTime. Never the keys."""
    return {"services": [_service(s) for s in Webservice.list(_ws(), refresh=False)]}


def get_service(name: str) -> dict[str, Any]:
    """One service (as in :func:`list_services`); NotFoundError when there is none."""
    return _service(Webservice(_ws(), name))


def get_keys(name: str) -> dict[str, str]:
    """``{"primaryKey", "secondaryKey"}``; WebserviceException (500) when auth is off."""
    primary, secondary = Webservice(_ws(), name).get_keys()
    return {"primaryKey": primary, "secondaryKey": secondary}


def get_swagger(name: str) -> dict[str, Any]:
    """The service's OpenAPI document, fetched from its ``swagger_uri``."""
    return Webservice(_ws(), name).get_swagger()


def get_logs(name: str, tail: int = 5000) -> str:
    """The last ``tail`` lines the service printed."""
    if tail < 1:
        raise ValidationError(f"tail must be a number of lines >= 1, got {tail}")
    return Webservice(_ws(), name).get_logs(num_lines=tail)


def stream_logs(name: str, stop: Callable[[], bool]) -> Iterator[str]:
    """Log lines as the service writes them (existing ones first) until ``stop()``."""
    return Webservice(_ws(), name).stream_logs(stop=stop)


def call_service(name: str, body: str) -> dict[str, Any]:
    """POST ``body`` (the raw request text) to the service with its primary key (the browser
    never sees key or port): ``{"status", "latencyMs", "body", "requestId"}``; status 0 when
    the service could not be reached (``Webservice.call``)."""
    res = Webservice(_ws(), name).call(body)
    return {"status": res.status_code, "latencyMs": res.latency_ms, "body": _clean(res.body), "requestId": res.request_id}


def update_service(name: str, models: list[str]) -> dict[str, Any]:
    """Roll the service to ``models`` (``["name:version", ...]``); returns the service.
    ValidationError when ``models`` is not a non-empty list of ``"name:version"`` strings."""
    if not isinstance(models, list) or not models or not all(isinstance(m, str) and ":" in m for m in models):
        raise ValidationError(f'"models" must be a non-empty list of "name:version" strings, got {models!r}')
    ws = _ws()
    svc = Webservice(ws, name)
    svc.update(models=[Model(ws, id=m) for m in models])
    return _service(Webservice(ws, name))


_DEPLOY_KEYS = {"name", "models", "entry_script", "source_directory", "environment", "deployment_config", "overwrite"}


def _inside_root(root_dir: str, value: Any, field: str) -> Path:
    """``value`` (a path relative to the Jupyter root, or absolute inside it) resolved;
    ValidationError naming ``field`` when it is not a string or leads outside ``root_dir``
    (``..``, an absolute path elsewhere, a symlink out)."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f'"{field}" must be a path relative to the Jupyter root directory, got {value!r}')
    root = Path(root_dir).expanduser().resolve()
    path = (root / value).resolve()  # an absolute value replaces root; resolve() follows .. and symlinks
    if not path.is_relative_to(root):
        raise ValidationError(f'"{field}" {value!r} is outside the Jupyter root directory {root}')
    return path


def _environment(name: str, spec: Any) -> Environment | None:
    if spec is None:
        return None  # the server's interpreter and its packages (InferenceConfig's default)
    pip = spec.get("pip") if isinstance(spec, dict) else None
    if (not isinstance(spec, dict) or set(spec) - {"pip"} or not isinstance(pip, list)
            or not all(isinstance(r, str) and r.strip() and not r.lstrip().startswith("-") for r in pip)):  # fmt: skip
        raise ValidationError(f'"environment" must be {{"pip": ["package==version", ...]}} or omitted, got {spec!r}')
    return Environment.from_dict({"name": f"{name}-env", "pip_requirements": [r.strip() for r in pip]})


def deploy_service(root_dir: str, spec: Any) -> dict[str, Any]:
    """Deploy a new service from a JSON request (``Model.deploy``); returns the service as
    :func:`get_service` does, usually Transitioning (poll it or the event feed).

    ``spec``: ``{"name": str, "models": ["name:version" | "name" (latest), ...],
    "entry_script": path, "source_directory": optional path (must contain the script),
    "environment": optional {"pip": [requirement lines]} (omitted: the server's interpreter),
    "deployment_config": optional dict in Azure's deploymentconfig.json shape (computeType
    local by default; :func:`config_from_json`), "overwrite": bool (default false)}``.
    Paths are relative to ``root_dir`` (the Jupyter server's root) and must stay inside it.

    Raises ValidationError naming the field (unknown key, wrong type, path outside the root,
    bad script/config), NotFoundError for an unknown model, InUseError when a service of that
    name exists and ``overwrite`` is not true.
    """
    if not isinstance(spec, dict):
        raise ValidationError('the body must be a JSON object {"name", "models", "entry_script", ...}')
    unknown = sorted(set(spec) - _DEPLOY_KEYS)
    if unknown:
        raise ValidationError(f"unknown field(s) {unknown}: use {sorted(_DEPLOY_KEYS)}")
    name, models, overwrite = spec.get("name"), spec.get("models"), spec.get("overwrite", False)
    if not isinstance(name, str) or not name:
        raise ValidationError(f'"name" must be the service name (a string), got {name!r}')
    if not isinstance(models, list) or not models or not all(isinstance(m, str) and m for m in models):
        raise ValidationError(f'"models" must be a non-empty list of "name:version" or "name" strings, got {models!r}')
    if not isinstance(overwrite, bool):
        raise ValidationError(f'"overwrite" must be true or false, got {overwrite!r}')
    script = _inside_root(root_dir, spec.get("entry_script"), "entry_script")
    source = spec.get("source_directory")
    source_dir = None if source is None else _inside_root(root_dir, source, "source_directory")
    dc = spec.get("deployment_config")
    if dc is not None and not isinstance(dc, dict):
        raise ValidationError(f'"deployment_config" must be a JSON object (deploymentconfig.json), got {dc!r}')
    config = config_from_json(dc or {"computeType": "local"})
    inference = InferenceConfig(entry_script=str(script), source_directory=None if source_dir is None else str(source_dir),
                                environment=_environment(name, spec.get("environment")))  # fmt: skip
    inference.validate()
    ws = _ws()
    if not overwrite:
        try:
            Webservice(ws, name)
        except NotFoundError:
            pass
        else:
            raise InUseError(f"service {name!r} already exists: update it, delete it, or send \"overwrite\": true")
    svc = Model.deploy(ws, name, models, inference, config, overwrite=overwrite)
    return _service(svc)


def delete_service(name: str) -> None:
    """Stop and remove the service (NotFoundError when there is none)."""
    Webservice(_ws(), name).delete()


def telemetry_summary(name: str, since: str | None = None) -> dict[str, Any]:
    """Aggregates of the service's ``/score`` requests (``TelemetrySummary.to_dict``:
    requests, errors, error_rate, p50/p95/p99/mean/max latency in ms, req_per_s, start, end);
    NaN figures (no requests) are null."""
    s = Webservice(_ws(), name).get_telemetry_summary(since=since)
    return _clean(s.to_dict())
