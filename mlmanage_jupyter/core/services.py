"""Web services: deploy, find again, call, update, delete — Azure ML v1's ``Webservice``.

A service row in the metadata store records the target (``compute_type``), the image it
runs, the models it serves, its configuration, its keys and what the target needs to find
it again (``runtime``: pid and port, container id, namespace). So ``Webservice(ws, name)``
and ``Webservice.list(ws)`` work from a new kernel or process: services outlive the kernel
that started them, and a service whose process or container is gone reports ``Unhealthy``
with a message saying so.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING, Any

import requests
from sqlalchemy import delete, insert, select, update

from mlmanage_jupyter.core.environment import InferenceConfig
from mlmanage_jupyter.core.errors import (
    DeploymentFailedError,
    NotFoundError,
    ValidationError,
    WebserviceException,
)
from mlmanage_jupyter.core.images import Image, build_cache_dir, image_spec
from mlmanage_jupyter.core.registry import Model
from mlmanage_jupyter.core.store import metadata as md
from mlmanage_jupyter.core.targets import base
from mlmanage_jupyter.core.targets.base import (
    AciDeploymentConfig,
    DeploymentConfig,
    DeployRequest,
    DeployResult,
    DockerDeploymentConfig,
    LocalDeploymentConfig,
    get_target,
    workspace_id,
)
from mlmanage_jupyter.core.workspace import Workspace, resolve_workspace
from mlmanage_jupyter.server.config import ConfigError, tuning_env

if TYPE_CHECKING:
    import pandas as pd

_SERVICE_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{1,30}[a-z0-9]$")


@dataclass
class ScoringResponse:
    """One call to a scoring endpoint: ``status_code`` (HTTP; 0 = unreachable),
    ``latency_ms`` (client-side round trip), ``body`` (decoded JSON or text), ``request_id``."""

    status_code: int
    latency_ms: float
    body: Any
    request_id: str | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300


class ServiceNotFoundError(NotFoundError, WebserviceException):
    """No service with that name."""


def validate_service_name(name: Any) -> str:
    """Azure's rule: 3-32 characters, lowercase letters, digits and '-', starting with a
    letter and ending with a letter or digit (it becomes a DNS label on Kubernetes)."""
    if not isinstance(name, str) or not _SERVICE_NAME_RE.match(name):
        raise ValidationError(
            f"invalid service name {name!r}: 3-32 lowercase letters, digits or '-', starting with a letter "
            f"and ending with a letter or digit"
        )
    return name


def _new_keys() -> dict[str, str]:
    return {"primaryKey": secrets.token_urlsafe(24), "secondaryKey": secrets.token_urlsafe(24)}


def _print_progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class Webservice:
    """A deployed web service (Azure ML v1: ``azureml.core.webservice.Webservice``).

    ``Webservice(workspace, name)`` finds an existing service (ServiceNotFoundError if none).

    Attributes:
        name, compute_type ("local" | "docker" | "aci" | "kubernetes"), scoring_uri,
        swagger_uri, models (list of ``"name:version"``), image (:class:`Image`),
        deploy_config (:class:`DeploymentConfig`), auth_enabled, tags, properties,
        description, created_time, updated_time, runtime (target details: pid, port, ...).
        ``state`` is read live from the target: Transitioning, Healthy, Unhealthy or Failed;
        ``error`` holds the reason when not Healthy.
    """

    def __init__(self, workspace: Workspace | str | os.PathLike[str] | None, name: str) -> None:
        self.workspace = resolve_workspace(workspace)
        self.name = name
        self._reload()

    def _reload(self) -> None:
        with self.workspace.read() as conn:
            row = conn.execute(select(md.services).where(md.services.c.name == self.name)).first()
            if row is None:
                raise ServiceNotFoundError(
                    f"no service named {self.name!r} in workspace {self.workspace.path}; see Webservice.list(ws)"
                )
            model_ids = [
                f"{n}:{v}"
                for n, v in conn.execute(
                    select(md.models.c.name, md.models.c.version)
                    .join(md.service_models, md.service_models.c.model_id == md.models.c.id)
                    .where(md.service_models.c.service_name == self.name)
                    .order_by(md.models.c.name)
                )
            ]
        self.compute_type: str = row.compute_type
        self._state: str = row.state
        self.error: str | None = row.error
        self._image_id: int | None = row.image_id
        self.deploy_config: DeploymentConfig = DeploymentConfig.from_dict(dict(row.config or {}))
        self.runtime: dict[str, Any] = dict(row.runtime or {})
        self._keys: dict[str, str] = dict(row.keys or {})
        self.scoring_uri: str | None = row.scoring_uri
        self.swagger_uri: str | None = row.swagger_uri
        self.created_time: str = row.created_time
        self.updated_time: str = row.updated_time
        self.models: list[str] = model_ids
        self.tags: dict[str, str] = dict(self.deploy_config.tags or {})
        self.properties: dict[str, str] = dict(self.deploy_config.properties or {})
        self.description: str | None = self.deploy_config.description

    # ---------------------------------------------------------------- properties
    @property
    def auth_enabled(self) -> bool:
        return bool(self.deploy_config.auth_enabled)

    @property
    def image(self) -> Image | None:
        if self._image_id is None:
            return None
        with self.workspace.read() as conn:
            row = conn.execute(select(md.images).where(md.images.c.id == self._image_id)).first()
        return Image(self.workspace, _row=row) if row is not None else None

    @property
    def target(self) -> base.Target:
        return get_target(self.compute_type)

    @property
    def state(self) -> str:
        """Live state from the target (also stored, so listings show the last known one)."""
        self.update_state()
        return self._state

    def update_state(self) -> str:
        try:
            st = self.target.status(self.name, self.runtime)
        except Exception as e:  # the target itself is unreachable (engine stopped, cluster gone)
            st = base.TargetStatus(base.UNHEALTHY, f"cannot reach the {self.compute_type} target: {e}")
        if st.state != self._state or st.error != self.error:
            self._state, self.error = st.state, st.error
            with self.workspace.write() as conn:
                conn.execute(
                    update(md.services).where(md.services.c.name == self.name).values(state=st.state, error=st.error)
                )
        return self._state

    # ---------------------------------------------------------------- listing
    @staticmethod
    def list(
        workspace: Workspace | str | os.PathLike[str] | None,
        compute_type: str | None = None,
        model_name: str | None = None,
        tags: Sequence[Any] | None = None,
        refresh: bool = True,
    ) -> ServiceList:
        """Services in the workspace, by name. ``refresh`` reads each one's live state."""
        from mlmanage_jupyter.core.registry import _match, _parse_filter

        ws = resolve_workspace(workspace)
        with ws.read() as conn:
            names = [n for (n,) in conn.execute(select(md.services.c.name).order_by(md.services.c.name))]
        out = ServiceList()
        f = _parse_filter(tags, "tags")
        for n in names:
            try:
                s = Webservice(ws, n)
            except ServiceNotFoundError:  # deleted meanwhile
                continue
            if compute_type and s.compute_type != compute_type.lower():
                continue
            if model_name and not any(m.split(":")[0] == model_name for m in s.models):
                continue
            if not _match(s.tags, f):
                continue
            if refresh:
                s.update_state()
            out.append(s)
        return out

    # ---------------------------------------------------------------- waiting
    def wait_for_deployment(self, show_output: bool = False, timeout_sec: float = 600) -> None:
        """Wait until the service is Healthy.

        With ``show_output`` prints the state as it changes and, on failure, the service's
        logs. Raises DeploymentFailedError (with ``.logs``) when it becomes Failed or
        Unhealthy-and-not-recovering, or the timeout (seconds) passes.
        """
        deadline = time.monotonic() + timeout_sec
        last = None
        while True:
            st = self.update_state()
            if show_output and st != last:
                print(f"{self.name}: {st}" + (f" — {self.error}" if self.error and st != base.HEALTHY else ""), flush=True)
                last = st
            if st == base.HEALTHY:
                return
            if st == base.FAILED or time.monotonic() > deadline:
                logs = self.get_logs()
                if show_output and logs:
                    print(logs[-8000:], flush=True)
                why = self.error or ("timed out" if st != base.FAILED else "failed")
                raise DeploymentFailedError(f"service {self.name} is {st}: {why}", logs=logs)
            time.sleep(0.2)

    # ---------------------------------------------------------------- consume
    def _headers(self, key: str | None = "primary") -> dict[str, str]:
        h = {"Content-Type": "application/json"}
        if key not in ("primary", "secondary", None, "none"):
            raise ValidationError(f"key must be 'primary', 'secondary' or None, got {key!r}")
        if self.auth_enabled and key in ("primary", "secondary") and self._keys.get(f"{key}Key"):
            h["Authorization"] = f"Bearer {self._keys[f'{key}Key']}"
        return h

    def call(self, input_data: Any, *, key: str | None = "primary", timeout: float | None = None) -> ScoringResponse:
        """POST ``input_data`` to ``scoring_uri`` once and report what happened, never raising
        for an HTTP error: a :class:`ScoringResponse` with ``status_code`` (0 when the service
        could not be reached), ``latency_ms`` (client-side round trip, ms), ``body`` (decoded
        JSON, or text) and ``request_id``. ``key``: ``"primary"``, ``"secondary"`` or None
        (send no key, e.g. to see the 401). What the endpoint console and ``%test_endpoint`` show.
        """
        if not self.scoring_uri:
            raise WebserviceException(f"service {self.name} has no scoring_uri (state {self._state})")
        body = input_data if isinstance(input_data, (str, bytes)) else json.dumps(input_data)
        t0 = time.perf_counter()
        try:
            r = requests.post(
                self.scoring_uri,
                data=body,
                headers=self._headers(key),
                timeout=timeout or self.deploy_config.scoring_timeout_ms / 1000 + 10,
            )
        except requests.RequestException as e:
            return ScoringResponse(0, (time.perf_counter() - t0) * 1000, f"could not reach {self.scoring_uri}: {e}", None)
        ms = (time.perf_counter() - t0) * 1000
        try:
            decoded: Any = r.json()
        except ValueError:
            decoded = r.text
        return ScoringResponse(r.status_code, ms, decoded, r.headers.get("x-ms-request-id"))

    def run(self, input_data: Any, timeout: float | None = None) -> Any:
        """Call the service: POST ``input_data`` (a JSON string, or anything JSON-serializable)
        to ``scoring_uri`` with the primary key when auth is on; return the decoded JSON answer.

        Raises WebserviceException with the status code and the service's message on any
        non-2xx answer, or when the service can't be reached.
        """
        res = self.call(input_data, timeout=timeout)
        if res.status_code == 0:
            raise WebserviceException(str(res.body))
        if not res.ok:
            msg = res.body
            if isinstance(msg, dict):
                err = msg.get("error")
                msg = err.get("message", msg) if isinstance(err, dict) else msg
            raise WebserviceException(f"{self.name} answered {res.status_code}: {msg}")
        return res.body

    def get_swagger(self) -> dict[str, Any]:
        """The service's OpenAPI document (``swagger_uri``)."""
        if not self.swagger_uri:
            raise WebserviceException(f"service {self.name} has no swagger_uri")
        r = requests.get(self.swagger_uri, timeout=10)
        r.raise_for_status()
        return r.json()

    def get_logs(self, num_lines: int = 5000) -> str:
        """The last ``num_lines`` lines the service printed (init tracebacks included)."""
        try:
            return self.target.logs(self.name, self.runtime, tail=num_lines)
        except Exception as e:
            return f"(logs unavailable: {e})"

    def stream_logs(self, stop: Callable[[], bool] = lambda: False) -> Iterator[str]:
        """Yield log lines as the service writes them, until ``stop()`` returns True."""
        return self.target.stream_logs(self.name, self.runtime, stop=stop)

    # ---------------------------------------------------------------- keys
    def get_keys(self) -> tuple[str, str]:
        """``(primary_key, secondary_key)``. Raises WebserviceException when auth is off."""
        if not self.auth_enabled:
            raise WebserviceException(f"service {self.name} has auth disabled: no keys (deploy with auth_enabled=True)")
        return self._keys["primaryKey"], self._keys["secondaryKey"]

    def regen_key(self, key: str, set_key: str | None = None) -> None:
        """Regenerate the ``"Primary"`` or ``"Secondary"`` key (the old one stops working)."""
        if not self.auth_enabled:
            raise WebserviceException(f"service {self.name} has auth disabled: no keys to regenerate")
        k = {"primary": "primaryKey", "secondary": "secondaryKey"}.get(str(key).lower())
        if k is None:
            raise ValidationError(f"key must be 'Primary' or 'Secondary', got {key!r}")
        keys = dict(self._keys)
        keys[k] = set_key or secrets.token_urlsafe(24)
        self.target.set_keys(self.name, self.runtime, keys)
        with self.workspace.write() as conn:
            conn.execute(update(md.services).where(md.services.c.name == self.name).values(keys=keys, updated_time=md.utcnow()))
            self.workspace.log_event(conn, "service.regen_key", self.name, key=k)
        self._keys = keys

    # ---------------------------------------------------------------- update / delete
    def update(
        self,
        models: Sequence[Model] | None = None,
        inference_config: InferenceConfig | None = None,
        deployment_config: DeploymentConfig | None = None,
        *,
        tags: dict[str, str] | None = None,
        description: str | None = None,
        show_output: bool = False,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        """Roll out new models and/or a new entry script (rolling update: the new version is
        Healthy before the old stops, on the same scoring_uri; no request fails).

        Raises DeploymentFailedError when the new version fails; the old one keeps serving
        and the service record is unchanged.
        """
        img = self.image
        if img is None:
            raise WebserviceException(f"service {self.name} has no image to update from")
        if models is None:
            models = [Model(self.workspace, id=m) for m in self.models]
        if inference_config is None:
            inference_config = _inference_config_of(img)
        cfg = deployment_config or self.deploy_config
        if cfg.compute_type != self.deploy_config.compute_type:
            raise ValidationError(f"can't move service {self.name} from {self.deploy_config.compute_type} to {cfg.compute_type}; deploy a new one")
        if tags is not None:
            cfg.tags = tags
        if description is not None:
            cfg.description = description
        cfg.validate()
        prog = progress or (_print_progress if show_output else base._no_progress)
        prog(f"building image for {self.name} ({', '.join(m.id for m in models)})")
        new_img = Image.create(self.workspace, img.name, models, inference_config)
        req = _deploy_request(self.workspace, self.name, new_img, cfg, self._keys, prog)
        try:
            res = self.target.update(req, self.runtime)
        except DeploymentFailedError:
            with self.workspace.write() as conn:
                self.workspace.log_event(conn, "service.update_failed", self.name, image=new_img.id)
            raise
        _record_docker_image(new_img, res)
        with self.workspace.write() as conn:
            conn.execute(
                update(md.services)
                .where(md.services.c.name == self.name)
                .values(
                    image_id=new_img._id,
                    config=cfg.to_dict(),
                    runtime=res.runtime,
                    scoring_uri=res.scoring_uri,
                    swagger_uri=res.swagger_uri,
                    updated_time=md.utcnow(),
                )
            )
            conn.execute(delete(md.service_models).where(md.service_models.c.service_name == self.name))
            conn.execute(insert(md.service_models), [{"service_name": self.name, "model_id": m._id} for m in models])
            self.workspace.log_event(conn, "service.update", self.name, image=new_img.id, models=[m.id for m in models])
        self._reload()
        prog(f"{self.name} updated to {', '.join(self.models)}")

    def delete(self) -> None:
        """Stop the service and remove what its target created; then forget it."""
        try:
            self.target.delete(self.name, self.runtime)
        finally:
            with self.workspace.write() as conn:
                conn.execute(delete(md.service_models).where(md.service_models.c.service_name == self.name))
                conn.execute(delete(md.services).where(md.services.c.name == self.name))
                self.workspace.log_event(conn, "service.delete", self.name)

    # ---------------------------------------------------------------- monitoring (core/telemetry.py, core/profiling.py)
    def get_telemetry(self, since: Any = None, route: str | None = "/score") -> pd.DataFrame:
        """Per-request records (``time`` UTC datetime64, request_id, route, status, latency_ms,
        request_bytes, response_bytes, models, service, worker), oldest first, of ``route``
        (None: every route). ``since``: datetime (naive = UTC) / ISO string; records after it.
        Raises WebserviceException when a remote engine can't be reached."""
        from mlmanage_jupyter.core import telemetry

        return telemetry.get_telemetry(self, since, route)

    def get_telemetry_summary(self, since: Any = None, route: str | None = "/score") -> Any:
        """A ``TelemetrySummary``: requests, errors, error_rate, p50_ms/p95_ms/p99_ms, req_per_s."""
        from mlmanage_jupyter.core import telemetry

        return telemetry.summarize(telemetry.get_telemetry(self, since, route))

    def get_collected_data(self, start: Any = None, end: Any = None, model: str | None = None) -> pd.DataFrame:
        """Inputs and predictions collected with ``collect_model_data=True`` (start <= time < end),
        read from the workspace's artifact store; see ``core.telemetry.get_collected_data``."""
        from mlmanage_jupyter.core import telemetry

        return telemetry.get_collected_data(self.workspace, self.name, start, end, model)

    def profile(
        self,
        samples: Sequence[Any],
        concurrency: Sequence[int] = (1, 2, 4, 8),
        duration_s: float = 5.0,
        **kwargs: Any,
    ) -> Any:
        """Load-test this service with ``samples`` (any JSON) at each concurrency level for
        ``duration_s`` seconds; returns a ``ModelProfile`` (see ``core.profiling.profile_service``)."""
        from mlmanage_jupyter.core import profiling

        return profiling.profile_service(self, samples, concurrency=concurrency, duration_s=duration_s, **kwargs)

    # ---------------------------------------------------------------- display
    def serialize(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "computeType": self.compute_type,
            "state": self._state,
            "error": self.error,
            "scoringUri": self.scoring_uri,
            "swaggerUri": self.swagger_uri,
            "models": self.models,
            "image": self.image.id if self._image_id else None,
            "authEnabled": self.auth_enabled,
            "tags": self.tags,
            "createdTime": self.created_time,
            "updatedTime": self.updated_time,
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, compute_type={self.compute_type!r}, state={self._state!r}, scoring_uri={self.scoring_uri!r})"

    def _repr_html_(self) -> str:
        color = {"Healthy": "#1a7f37", "Failed": "#cf222e", "Unhealthy": "#bf8700"}.get(self._state, "#57606a")
        rows = [
            ("state", f"<span style='color:{color};font-weight:bold'>{escape(self._state)}</span>"
             + (f" — {escape(self.error)}" if self.error and self._state != "Healthy" else "")),
            ("target", escape(self.compute_type)),
            ("models", escape(", ".join(self.models))),
            ("scoring_uri", f"<code>{escape(self.scoring_uri or '—')}</code>"),
            ("swagger_uri", f"<code>{escape(self.swagger_uri or '—')}</code>"),
            ("auth", "key (see get_keys())" if self.auth_enabled else "none"),
            ("updated", escape(self.updated_time)),
        ]
        body = "".join(f"<tr><th style='text-align:left;padding-right:1em'>{k}</th><td style='text-align:left'>{v}</td></tr>" for k, v in rows)
        return f"<div><b>Webservice</b> <code>{escape(self.name)}</code><table>{body}</table></div>"


class ServiceList(list):  # type: ignore[type-arg]
    """A list of :class:`Webservice`; ``to_dataframe()`` columns: name, compute_type, state,
    models, scoring_uri, auth_enabled, error, updated_time."""

    def to_dataframe(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "name": s.name,
                    "compute_type": s.compute_type,
                    "state": s._state,
                    "models": ", ".join(s.models),
                    "scoring_uri": s.scoring_uri,
                    "auth_enabled": s.auth_enabled,
                    "error": s.error,
                    "updated_time": s.updated_time,
                }
                for s in self
            ],
            columns=["name", "compute_type", "state", "models", "scoring_uri", "auth_enabled", "error", "updated_time"],
        )

    def _repr_html_(self) -> str:
        return self.to_dataframe().to_html(index=False) if self else "<i>no services</i>"


def _inference_config_of(img: Image) -> InferenceConfig:
    """The inference config an image was built from (its ``app/<source directory>`` folder as source)."""
    from mlmanage_jupyter.core.environment import Environment

    app = img.context_path / "app"
    env = Environment.from_dict(img.spec.get("environment") or {})
    src = img.spec.get("source_directory")
    if src and img.entry_script.startswith(f"{src}/"):
        return InferenceConfig(entry_script=img.entry_script[len(src) + 1 :], source_directory=str(app / src), environment=env)
    if "source_directory" in img.spec:  # built from an entry script alone
        return InferenceConfig(entry_script=str(app / img.entry_script), environment=env)
    # an image made before Azure's layout: app/ was the source directory
    return InferenceConfig(entry_script=img.entry_script, source_directory=str(app), environment=env)


def deploy(
    workspace: Workspace | str | os.PathLike[str] | None,
    name: str,
    models: Sequence[Model],
    inference_config: InferenceConfig,
    deployment_config: DeploymentConfig | None = None,
    deployment_target: Any = None,
    overwrite: bool = False,
    *,
    show_output: bool = False,
    progress: Callable[[str], None] | None = None,
) -> Webservice:
    """Build an image and start it as service ``name`` (Azure ML v1's ``Model.deploy``).

    Returns at once with the service Transitioning; call ``wait_for_deployment()``.
    ``deployment_config`` defaults to ``LocalWebservice.deploy_configuration()``.
    ``overwrite=True`` replaces an existing service of that name (deleted first).

    Raises ValidationError (bad name, config or script), WebserviceException (name taken),
    and whatever the target raises when it can't start (nothing is recorded then).
    """
    ws = resolve_workspace(workspace)
    validate_service_name(name)
    if inference_config is None:
        raise ValidationError("deploy needs an inference_config (entry script)")
    cfg = deployment_config or LocalDeploymentConfig()
    if not isinstance(cfg, DeploymentConfig):
        raise ValidationError(f"deployment_config must come from *.deploy_configuration(...), got {type(cfg).__name__}")
    cfg.validate()
    models = [m if isinstance(m, Model) else Model(ws, id=str(m)) for m in models]
    prog = progress or (_print_progress if show_output else base._no_progress)
    with ws.read() as conn:
        exists = conn.execute(select(md.services.c.name).where(md.services.c.name == name)).first() is not None
    if exists:
        if not overwrite:
            raise WebserviceException(f"service {name!r} already exists: use service.update(...) or deploy(..., overwrite=True)")
        prog(f"replacing existing service {name}")
        Webservice(ws, name).delete()
    target = get_target(cfg.compute_type)
    prog(f"building image {name} from {', '.join(m.id for m in models)}")
    img = Image.create(ws, name, models, inference_config)
    keys = _new_keys() if cfg.auth_enabled else {}
    now = md.utcnow()
    with ws.write() as conn:
        conn.execute(
            insert(md.services).values(
                name=name,
                compute_type=cfg.compute_type,
                state=base.TRANSITIONING,
                image_id=img._id,
                config=cfg.to_dict(),
                runtime={},
                keys=keys,
                created_time=now,
                updated_time=now,
            )
        )
        conn.execute(insert(md.service_models), [{"service_name": name, "model_id": m._id} for m in models])
    try:
        prog(f"starting {name} on the {cfg.compute_type} target")
        res = target.deploy(_deploy_request(ws, name, img, cfg, keys, prog))
    except BaseException:
        with ws.write() as conn:
            conn.execute(delete(md.service_models).where(md.service_models.c.service_name == name))
            conn.execute(delete(md.services).where(md.services.c.name == name))
        raise
    _record_docker_image(img, res)
    with ws.write() as conn:
        conn.execute(
            update(md.services)
            .where(md.services.c.name == name)
            .values(runtime=res.runtime, scoring_uri=res.scoring_uri, swagger_uri=res.swagger_uri)
        )
        ws.log_event(conn, "service.deploy", name, compute_type=cfg.compute_type, image=img.id, models=[m.id for m in models])
    return Webservice(ws, name)


def _deploy_request(
    ws: Workspace, name: str, img: Image, cfg: DeploymentConfig, keys: dict[str, str], progress: Callable[[str], None]
) -> DeployRequest:
    """The plain-data request a target takes for service ``name``: the engine's tuning knobs
    set in this process's environment (``server.config.TUNING_VARS``) apply to the service;
    data collection goes to the workspace's artifact store when ``cfg.collect_model_data``.
    Raises ValidationError for a bad knob value."""
    req = DeployRequest(
        name=name,
        image=image_spec(img),
        config=cfg,
        service_dir=ws.path / "services" / name,
        cache_dir=build_cache_dir(ws),
        workspace_id=workspace_id(ws.path),
        keys=dict(keys),
        progress=progress,
    )
    try:
        req.settings = req.engine.update_from_env(tuning_env())
    except ConfigError as e:
        raise ValidationError(str(e)) from None
    if cfg.collect_model_data:
        from mlmanage_jupyter.core.telemetry import data_collection_env

        req.settings = req.engine.update_from_env(data_collection_env(ws))
    return req


def _record_docker_image(img: Image, res: DeployResult) -> None:
    """Record the Docker image a target built (targets never write to the workspace)."""
    if res.docker_image and res.docker_image != img.docker_image:
        img.set_docker_image(res.docker_image)


class LocalWebservice(Webservice):
    """Services on the ``local`` target (Azure ML v1's ``LocalWebservice``)."""

    @staticmethod
    def deploy_configuration(
        port: int | None = None,
        auth_enabled: bool = False,
        workers: int = 1,
        collect_model_data: bool = False,
        scoring_timeout_ms: int = 60_000,
        max_request_bytes: int = 100 * 1024 * 1024,
        tags: dict[str, str] | None = None,
        description: str | None = None,
    ) -> LocalDeploymentConfig:
        """A child process on 127.0.0.1 (no Docker). ``port=None`` picks a free port;
        ``workers`` scoring processes share it. Returns a validated LocalDeploymentConfig."""
        cfg = LocalDeploymentConfig(
            port=port,
            auth_enabled=auth_enabled,
            workers=workers,
            collect_model_data=collect_model_data,
            scoring_timeout_ms=scoring_timeout_ms,
            max_request_bytes=max_request_bytes,
            tags=tags,
            description=description,
        )
        cfg.validate()
        return cfg


class DockerWebservice(Webservice):
    """Services on the ``docker`` target (a container on the local Docker Engine)."""

    @staticmethod
    def deploy_configuration(
        port: int | None = None,
        cpu_cores: float | None = None,
        memory_gb: float | None = None,
        auth_enabled: bool = False,
        workers: int = 1,
        collect_model_data: bool = False,
        scoring_timeout_ms: int = 60_000,
        restart_policy: str = "on-failure",
        tags: dict[str, str] | None = None,
        description: str | None = None,
    ) -> DockerDeploymentConfig:
        """``cpu_cores`` (cores) and ``memory_gb`` (GiB) become the container's limits."""
        cfg = DockerDeploymentConfig(
            port=port,
            cpu_cores=cpu_cores,
            memory_gb=memory_gb,
            auth_enabled=auth_enabled,
            workers=workers,
            collect_model_data=collect_model_data,
            scoring_timeout_ms=scoring_timeout_ms,
            restart_policy=restart_policy,
            tags=tags,
            description=description,
        )
        cfg.validate()
        return cfg


class AciWebservice(Webservice):
    """Azure's ACI target, run on the local Docker Engine with ACI's defaults."""

    @staticmethod
    def deploy_configuration(
        cpu_cores: float = 0.1,
        memory_gb: float = 0.5,
        auth_enabled: bool = False,
        port: int | None = None,
        collect_model_data: bool = False,
        scoring_timeout_ms: int = 60_000,
        tags: dict[str, str] | None = None,
        description: str | None = None,
        **_ignored: Any,
    ) -> AciDeploymentConfig:
        """Azure's defaults: 0.1 cores, 0.5 GiB. Azure-only parameters (location, dns_name_label,
        ssl_*) are accepted and ignored."""
        cfg = AciDeploymentConfig(
            port=port,
            cpu_cores=cpu_cores,
            memory_gb=memory_gb,
            auth_enabled=auth_enabled,
            collect_model_data=collect_model_data,
            scoring_timeout_ms=scoring_timeout_ms,
            tags=tags,
            description=description,
        )
        cfg.validate()
        return cfg


class AksWebservice(Webservice):
    """Services on the ``kubernetes`` target (Azure's AKS target, any cluster)."""

    @staticmethod
    def deploy_configuration(**kwargs: Any) -> DeploymentConfig:
        """Azure's AKS parameters; see ``KubernetesDeploymentConfig``."""
        from mlmanage_jupyter.core.targets import kubernetes

        return kubernetes.deploy_configuration(**kwargs)
