"""Azure ML v1's web service classes as users import them (``azureml.core.webservice``):
``Webservice``, ``LocalWebservice``, ``DockerWebservice``, ``AciWebservice``,
``AksWebservice`` and ``deploy``. Each wraps a
:class:`~mlmanage_jupyter.core.entities.records.ServiceRecord` and calls
``core/deployment.py`` (lifecycle), ``core/client.py`` (scoring), ``core/telemetry.py``,
``core/profiling.py`` (monitoring) and ``core/fuzzing.py`` (contract fuzzing)."""

from __future__ import annotations

import dataclasses
import datetime
import os
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar
from urllib.parse import urlparse

from mlmanage_jupyter.core import deployment, fuzzing, images, profiling, telemetry
from mlmanage_jupyter.core.client import ScoringClient
from mlmanage_jupyter.core.compute import apply_deployment_target
from mlmanage_jupyter.core.entities.lists import ResourceList
from mlmanage_jupyter.core.entities.names import match_filter, parse_filter, validate_service_name
from mlmanage_jupyter.core.entities.records import ModelRecord, ScoringResponse, ServiceRecord
from mlmanage_jupyter.core.environment import InferenceConfig
from mlmanage_jupyter.core.errors import ServiceNotFoundError, ValidationError, WebserviceException
from mlmanage_jupyter.core.fsutil import read_json_object, write_json_atomic
from mlmanage_jupyter.core.fuzzing import FuzzReport
from mlmanage_jupyter.core.image import Image, model_record_of
from mlmanage_jupyter.core.profiling import ModelProfile
from mlmanage_jupyter.core.targets.base import (
    AciDeploymentConfig,
    DeploymentConfig,
    DockerDeploymentConfig,
    LocalDeploymentConfig,
)
from mlmanage_jupyter.core.telemetry import TelemetrySummary
from mlmanage_jupyter.core.workspace import Workspace, resolve_workspace

if TYPE_CHECKING:
    import pandas as pd

WorkspaceLike = Workspace | str | os.PathLike[str] | None
_Config = TypeVar("_Config", bound=DeploymentConfig)

__all__ = [
    "AciWebservice",
    "AksWebservice",
    "DockerWebservice",
    "LocalWebservice",
    "ScoringResponse",
    "ServiceList",
    "ServiceNotFoundError",
    "Webservice",
    "deploy",
    "validate_service_name",
]


def _model_refs(models: Sequence[Any]) -> list[ModelRecord | str]:
    return [m if isinstance(m, str) else model_record_of(m) for m in models]


@dataclasses.dataclass(frozen=True)
class AccessToken:
    """Azure's ``AksServiceAccessToken``: ``access_token`` (for ``Authorization: Bearer``),
    ``refresh_after`` and ``expiry_on`` (UTC datetimes), ``token_type``. ``to_dict()`` gives
    ``az ml service get-access-token``'s keys (accessToken, refreshAfter, expiryOn, tokenType;
    Azure ML SDK 1.0.85 release notes)."""

    access_token: str
    refresh_after: datetime.datetime
    expiry_on: datetime.datetime
    token_type: str = "Bearer"

    def to_dict(self) -> dict[str, str]:
        return {"accessToken": self.access_token, "refreshAfter": self.refresh_after.isoformat(),
                "expiryOn": self.expiry_on.isoformat(), "tokenType": self.token_type}


class Webservice:
    """A deployed web service (Azure ML v1: ``azureml.core.webservice.Webservice``).

    ``Webservice(workspace, name)`` finds an existing service (ServiceNotFoundError if none).

    Attributes:
        name, compute_type ("local" | "docker" | "aci" | "kubernetes"), scoring_uri,
        swagger_uri, models (list of ``"name:version"``), image (:class:`Image`),
        deploy_config (:class:`DeploymentConfig`), auth_enabled, tags, properties,
        description, created_time, updated_time, runtime (target details: pid, port, ...),
        record (the :class:`ServiceRecord`).
        ``state`` is read live from the target: Transitioning, Healthy, Unhealthy or Failed;
        ``error`` holds the reason when not Healthy.
    """

    def __init__(self, workspace: WorkspaceLike, name: str, *, _record: ServiceRecord | None = None) -> None:
        self.workspace = resolve_workspace(workspace)
        self.record = _record if _record is not None else deployment.get(self.workspace, name)

    def _reload(self) -> None:
        self.record = deployment.get(self.workspace, self.record.name)

    # ---------------------------------------------------------------- properties
    @property
    def name(self) -> str:
        return self.record.name

    @property
    def compute_type(self) -> str:
        return self.record.compute_type

    @property
    def error(self) -> str | None:
        return self.record.error

    @property
    def runtime(self) -> dict[str, Any]:
        return self.record.runtime

    @property
    def scoring_uri(self) -> str | None:
        return self.record.scoring_uri

    @property
    def swagger_uri(self) -> str | None:
        return self.record.swagger_uri

    @property
    def created_time(self) -> str:
        return self.record.created_time

    @property
    def updated_time(self) -> str:
        return self.record.updated_time

    @property
    def models(self) -> list[str]:
        return list(self.record.models)

    @property
    def deploy_config(self) -> DeploymentConfig:
        return deployment.config_of(self.record)

    @property
    def tags(self) -> dict[str, str]:
        return dict(self.record.config.get("tags") or {})

    @property
    def properties(self) -> dict[str, str]:
        return dict(self.record.config.get("properties") or {})

    @property
    def description(self) -> str | None:
        return self.record.config.get("description")

    @property
    def auth_enabled(self) -> bool:
        return self.record.auth_enabled

    @property
    def image(self) -> Image | None:
        from_store = images.get_by_pk(self.workspace, self.record.image_pk)
        return Image(self.workspace, _record=from_store) if from_store is not None else None

    @property
    def state(self) -> str:
        """Live state from the target (also stored, so listings show the last known one)."""
        return self.update_state()

    def update_state(self) -> str:
        """Read the live state from the target; returns it."""
        return deployment.refresh_state(self.workspace, self.record)

    # ---------------------------------------------------------------- deploy / list
    @staticmethod
    def deploy_from_models(
        workspace: WorkspaceLike,
        name: str,
        models: Sequence[Any],
        inference_config: InferenceConfig | None,
        deployment_config: DeploymentConfig | None = None,
        overwrite: bool = False,
        *,
        show_output: bool = False,
        progress: Callable[[str], None] | None = None,
    ) -> Webservice:
        """Build an image and start it as service ``name``; see :func:`deploy`."""
        ws = resolve_workspace(workspace)
        rec = deployment.deploy(ws, name, _model_refs(models), inference_config, deployment_config, overwrite,
                                progress=deployment.progress_fn(progress, show_output))
        if inference_config is not None:
            _remember_source(ws, name, inference_config)
        return Webservice(ws, name, _record=rec)

    @staticmethod
    def deploy_from_image(
        workspace: WorkspaceLike,
        name: str,
        image: Image,
        deployment_config: DeploymentConfig | None = None,
        deployment_target: Any = None,
        overwrite: bool = False,
        *,
        show_output: bool = False,
        progress: Callable[[str], None] | None = None,
    ) -> Webservice:
        """Azure's ``Webservice.deploy_from_image``: start a registered :class:`Image` (from
        ``Image.create``/``ContainerImage.create``/``Model.package``) as service ``name``, on
        the target ``deployment_config`` names (default local; ``deployment_target``: an
        attached ``ComputeTarget``, as in :func:`deploy`). The image is run as it is (no new
        image version) and is kept when the service is deleted. Returns at once, Transitioning;
        errors as :func:`deploy`, plus ValidationError when ``image`` is not an Image."""
        if not isinstance(image, Image):
            raise ValidationError(f"image must be an Image (Image(ws, name) or Image.create(...)), got {type(image).__name__}")
        ws = resolve_workspace(workspace)
        cfg = apply_deployment_target(deployment_config, deployment_target)
        rec = deployment.deploy(ws, name, [], None, cfg, overwrite, image=image.record,
                                progress=deployment.progress_fn(progress, show_output))
        return Webservice(ws, name, _record=rec)

    @staticmethod
    def deploy_from_model(
        workspace: WorkspaceLike,
        name: str,
        models: Sequence[Any],
        image_config: Any,
        deployment_config: DeploymentConfig | None = None,
        deployment_target: Any = None,
        overwrite: bool = False,
        *,
        show_output: bool = False,
        progress: Callable[[str], None] | None = None,
    ) -> Webservice:
        """Azure's ``Webservice.deploy_from_model``: ``Image.create(ws, name, models,
        image_config)`` (an image named after the service, deleted with it), then
        :meth:`deploy_from_image`. ``image_config``: ``ContainerImage.image_configuration(...)``
        or an ``InferenceConfig``."""
        ws = resolve_workspace(workspace)
        if overwrite:  # delete first: its image (named after it) would go with it after Image.create
            try:
                Webservice(ws, name).delete()
            except ServiceNotFoundError:
                pass
        img = Image.create(ws, name, models, image_config)
        return Webservice.deploy_from_image(ws, name, img, deployment_config, deployment_target, overwrite,
                                            show_output=show_output, progress=progress)

    @staticmethod
    def list(
        workspace: WorkspaceLike,
        compute_type: str | None = None,
        model_name: str | None = None,
        tags: Sequence[Any] | None = None,
        refresh: bool = True,
        *,
        image_name: str | None = None,
        image_id: str | None = None,
        model_id: str | None = None,
        properties: Sequence[Any] | None = None,
    ) -> ServiceList:
        """Services in the workspace, by name (Azure's ``Webservice.list`` filters:
        ``compute_type``, ``model_name``, ``model_id`` (``"name:version"``), ``image_name``,
        ``image_id``, ``tags`` and ``properties`` (keys, ``[key, value]`` pairs)). ``refresh``
        reads each one's live state."""
        ws = resolve_workspace(workspace)
        recs = deployment.list_services(ws, compute_type, model_name, tags, refresh)
        if model_id is not None:
            recs = [r for r in recs if model_id in r.models]
        if image_name is not None or image_id is not None:
            recs = [r for r in recs if (img := images.get_by_pk(ws, r.image_pk)) is not None
                    and (image_name is None or img.name == image_name) and (image_id is None or img.id == image_id)]
        if properties:
            f = parse_filter(properties, "properties")
            recs = [r for r in recs if match_filter(dict(r.config.get("properties") or {}), f)]
        return ServiceList(Webservice(ws, r.name, _record=r) for r in recs)

    def wait_for_deployment(self, show_output: bool = False, timeout_sec: float = 600) -> None:
        """Wait until the service is Healthy; see :func:`deployment.wait_for_deployment`
        (raises DeploymentFailedError with ``.logs``)."""
        deployment.wait_for_deployment(self.workspace, self.record, show_output, timeout_sec)

    # ---------------------------------------------------------------- consume
    @property
    def client(self) -> ScoringClient:
        """The HTTP client of this service's endpoints (primary key when auth is on, a fresh
        token from :meth:`get_token` when token auth is on)."""
        c = ScoringClient.for_service(self.record)
        if self.token_auth_enabled:
            c.token = lambda: self.get_token()[0]
        return c

    def call(self, input_data: Any, *, key: str | None = "primary", timeout: float | None = None) -> ScoringResponse:
        """POST ``input_data`` to ``scoring_uri`` once and report what happened, never raising
        for an HTTP error: a :class:`ScoringResponse` with ``status_code`` (0 when the service
        could not be reached), ``latency_ms`` (client-side round trip, ms), ``body`` (decoded
        JSON, or text) and ``request_id``. ``key``: ``"primary"``, ``"secondary"`` or None
        (send no key, e.g. to see the 401). What the endpoint console and ``%test_endpoint`` show.
        """
        return self.client.call(input_data, key=key, timeout=timeout)

    def run(self, input_data: Any, timeout: float | None = None) -> Any:
        """Call the service: POST ``input_data`` (a JSON string, or anything JSON-serializable)
        to ``scoring_uri`` with the primary key when auth is on; return the decoded JSON answer.

        Raises WebserviceException with the status code and the service's message on any
        non-2xx answer, or when the service can't be reached. The service tells clients only the
        exception's type when ``run()`` raises (no traceback leaves the service); you own it, so
        this message also carries the traceback the service logged under that request id.
        """
        try:
            return self.client.run(input_data, timeout=timeout)
        except WebserviceException as e:
            if e.status_code != 500 or not e.request_id:
                raise
            tb = _logged_traceback(self.get_logs(), e.request_id)
            if not tb:
                raise
            enriched = WebserviceException(f"{e}\n{tb}")
            enriched.status_code, enriched.request_id = e.status_code, e.request_id
            raise enriched from None

    def get_swagger(self) -> dict[str, Any]:
        """The service's OpenAPI document (``swagger_uri``)."""
        return self.client.get_swagger()

    def get_logs(self, num_lines: int = 5000) -> str:
        """The last ``num_lines`` lines the service printed (init tracebacks included)."""
        return deployment.logs(self.record, num_lines)

    def stream_logs(self, stop: Callable[[], bool] = lambda: False) -> Iterator[str]:
        """Yield log lines as the service writes them, until ``stop()`` returns True."""
        return deployment.stream_logs(self.record, stop)

    # ---------------------------------------------------------------- keys
    def get_keys(self) -> tuple[str, str]:
        """``(primary_key, secondary_key)``. Raises WebserviceException when auth is off."""
        return deployment.get_keys(self.record)

    def regen_key(self, key: str, set_key: str | None = None) -> None:
        """Regenerate the ``"Primary"`` or ``"Secondary"`` key (the old one stops working)."""
        deployment.regen_key(self.workspace, self.record, key, set_key)

    # ---------------------------------------------------------------- update / delete
    def update(
        self,
        models: Sequence[Any] | None = None,
        inference_config: InferenceConfig | None = None,
        deployment_config: DeploymentConfig | None = None,
        *,
        tags: dict[str, str] | None = None,
        description: str | None = None,
        show_output: bool = False,
        progress: Callable[[str], None] | None = None,
        **azure_parameters: Any,
    ) -> None:
        """Roll out new models and/or a new entry script (rolling update: the new version is
        Healthy before the old stops, on the same scoring_uri; no request fails).

        ``azure_parameters``: any other parameter of Azure's ``update`` for this target
        (``auth_enabled=``, ``collect_model_data=``, ``cpu_cores=``, ``port=``, ``properties=``,
        ``autoscale_*``, ...). Those the target's deployment configuration has are applied;
        the others (``enable_app_insights``, ``ssl_*``, ``wait``, ...) warn once each
        (UserWarning) and are ignored.

        Raises DeploymentFailedError when the new version fails; the old one keeps serving
        and the service record is unchanged.
        """
        image = azure_parameters.pop("image", None)
        if image is not None:  # Azure's image-era update(image=new_image): its models and script
            if not isinstance(image, Image):
                raise ValidationError(f"update(image=...) needs an Image, got {type(image).__name__}")
            models = image.model_ids if models is None else models
            inference_config = inference_config or images.inference_config_of(image.record)
        if azure_parameters:
            deployment_config = _apply_azure_update(
                deployment_config or deployment.config_of(self.record), azure_parameters, type(self).__name__
            )
        self.record = deployment.update(
            self.workspace,
            self.record,
            None if models is None else _model_refs(models),
            inference_config,
            deployment_config,
            tags=tags,
            description=description,
            progress=deployment.progress_fn(progress, show_output),
        )
        if inference_config is not None:
            _remember_source(self.workspace, self.name, inference_config)

    def delete(self) -> None:
        """Stop the service and remove what its target created; then forget it."""
        deployment.delete(self.workspace, self.record)
        _source_file(self.workspace, self.name).unlink(missing_ok=True)

    # ---------------------------------------------------------------- Azure's other service members
    @property
    def port(self) -> int | None:
        """The port of ``scoring_uri`` (Azure's ``LocalWebservice.port``), None before it has one."""
        return urlparse(self.scoring_uri).port if self.scoring_uri else None

    @property
    def token_auth_enabled(self) -> bool:
        """Whether ``/score`` takes tokens from :meth:`get_token` (``token_auth_enabled=True``)."""
        return bool(self.record.config.get("token_auth_enabled", False))

    def get_token(self) -> tuple[str, datetime.datetime]:
        """``(token, refresh_after)`` as Azure's ``Webservice.get_token()``: a bearer token for
        ``Authorization: Bearer <token>`` valid for 1 hour, and the UTC datetime after which
        to fetch a new one (half its lifetime). Raises WebserviceException when the service
        was not deployed with ``token_auth_enabled=True``."""
        return deployment.get_token(self.workspace, self.record)

    def get_access_token(self) -> AccessToken:
        """Azure's ``AksWebservice.get_access_token()``: the token of :meth:`get_token` with
        its ``refresh_after`` and ``expiry_on`` (UTC datetimes; valid 1 hour, refresh after
        half of it) and ``token_type`` ``"Bearer"``; what ``mlmanage service get-access-token``
        prints. Raises WebserviceException when token auth is off."""
        issued = time.time()
        token, refresh_after = deployment.get_token(self.workspace, self.record, now=issued)
        expiry = datetime.datetime.fromtimestamp(issued + deployment.TOKEN_LIFETIME_S, tz=datetime.timezone.utc)
        return AccessToken(token, refresh_after, expiry)

    def deploy_to_cloud(
        self, name: str | None = None, deployment_config: DeploymentConfig | None = None, deployment_target: Any = None
    ) -> Webservice:
        """Azure's ``LocalWebservice.deploy_to_cloud``: deploy what this service runs (the same
        models, entry script, source directory and environment: an image with the same
        content hash, named after the new service) to "the cloud", which here means:

        - ``deployment_config`` given: that target (``DockerWebservice``/``AciWebservice``:
          the local Docker Engine; ``AksWebservice``: a Kubernetes cluster);
        - else ``deployment_target`` (an attached AKS ``ComputeTarget``): that cluster, with
          ``AksWebservice.deploy_configuration()``'s defaults;
        - else ``AciWebservice.deploy_configuration()`` (Azure's default, ACI): a container
          on the local Docker Engine with ACI's defaults.

        ``name`` defaults to ``<this name>-cloud`` (the local service keeps its name in the
        same workspace). Returns the new service, Transitioning (``wait_for_deployment()``).
        Raises WebserviceException when this service has no image, and what :func:`deploy`
        raises."""
        img = self.image
        if img is None:
            raise WebserviceException(f"service {self.name} has no image to deploy to the cloud")
        if deployment_config is None:
            deployment_config = (AksWebservice.deploy_configuration() if deployment_target is not None
                                 else AciWebservice.deploy_configuration())
        new_name = name or f"{self.name}-cloud"
        cfg = apply_deployment_target(deployment_config, deployment_target)
        rec = deployment.deploy(self.workspace, new_name, img.model_ids, images.inference_config_of(img.record), cfg)
        return Webservice(self.workspace, new_name, _record=rec)

    def reload(self, wait: bool = False) -> None:
        """Re-read the entry script and source directory the service was deployed from and roll
        them out with the same models and environment (Azure's ``LocalWebservice.reload``; any
        target here). Raises WebserviceException when the service was not deployed from files
        this workspace remembers (e.g. deployed from an image)."""
        src = _source_file(self.workspace, self.name)
        if not src.is_file():
            raise WebserviceException(
                f"service {self.name} was not deployed from an entry script here, so there is nothing to "
                "reload: use update(inference_config=InferenceConfig(...))"
            )
        d, _ = read_json_object(src, "service source")
        img = self.image
        cfg = InferenceConfig(
            entry_script=d["entry_script"], source_directory=d.get("source_directory"),
            environment=img.environment if img is not None else None,
        )  # fmt: skip
        self.update(inference_config=cfg)

    # ---------------------------------------------------------------- monitoring
    def get_telemetry(self, since: Any = None, route: str | None = "/score") -> pd.DataFrame:
        """Per-request records (``time`` UTC datetime64, request_id, route, status, latency_ms,
        request_bytes, response_bytes, models, service, worker), oldest first, of ``route``
        (None: every route). ``since``: datetime (naive = UTC) / ISO string; records after it.
        Raises WebserviceException when a remote engine can't be reached."""
        return telemetry.get_telemetry(self.record, since, route)

    def get_telemetry_summary(self, since: Any = None, route: str | None = "/score") -> TelemetrySummary:
        """A ``TelemetrySummary``: requests, errors, error_rate, p50_ms/p95_ms/p99_ms, req_per_s."""
        return telemetry.summarize(telemetry.get_telemetry(self.record, since, route))

    def get_collected_data(self, start: Any = None, end: Any = None, model: str | None = None) -> pd.DataFrame:
        """Inputs and predictions collected with ``collect_model_data=True`` (start <= time < end),
        read from the workspace's artifact store; see ``core.telemetry.get_collected_data``."""
        return telemetry.get_collected_data(self.workspace, self.name, start, end, model)

    def profile(
        self,
        samples: Sequence[Any],
        concurrency: Sequence[int] = (1, 2, 4, 8),
        duration_s: float = 5.0,
        **kwargs: Any,
    ) -> ModelProfile:
        """Load-test this service with ``samples`` (any JSON) at each concurrency level for
        ``duration_s`` seconds; returns a ``ModelProfile`` (see ``core.profiling.profile_service``)."""
        return profiling.profile_service(self.record, samples, concurrency=concurrency, duration_s=duration_s, **kwargs)

    def fuzz(
        self,
        max_examples: int = 200,
        seed: int | None = None,
        timeout_s: float = 120.0,
        **kwargs: Any,
    ) -> FuzzReport:
        """Contract-fuzz ``/score`` from this service's swagger: valid requests must answer 200
        with output matching the output schema, invalid ones a 4xx JSON error, protocol-level
        ones never a 5xx. Returns a ``FuzzReport`` (``ok``, ``findings`` DataFrame with a
        minimal example per fault, ``summary()``); see ``core.fuzzing.fuzz_service`` for the
        other options (``request_timeout_s``, ``sample_input``, ``strict``)."""
        return fuzzing.fuzz_service(self.client, max_examples=max_examples, seed=seed, timeout_s=timeout_s, **kwargs)

    # ---------------------------------------------------------------- display
    def serialize(self) -> dict[str, Any]:
        img = self.image if self.record.image_pk is not None else None
        return {
            "name": self.name,
            "computeType": self.compute_type,
            "state": self.record.state,
            "error": self.error,
            "scoringUri": self.scoring_uri,
            "swaggerUri": self.swagger_uri,
            "models": self.models,
            "image": img.id if img is not None else None,
            "authEnabled": self.auth_enabled,
            "tags": self.tags,
            "createdTime": self.created_time,
            "updatedTime": self.updated_time,
        }

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.name!r}, compute_type={self.compute_type!r}, "
                f"state={self.record.state!r}, scoring_uri={self.scoring_uri!r})")

    def _repr_html_(self) -> str:
        state = self.record.state
        color = {"Healthy": "#1a7f37", "Failed": "#cf222e", "Unhealthy": "#bf8700"}.get(state, "#57606a")
        rows = [
            ("state", f"<span style='color:{color};font-weight:bold'>{escape(state)}</span>"
             + (f" — {escape(self.error)}" if self.error and state != "Healthy" else "")),
            ("target", escape(self.compute_type)),
            ("models", escape(", ".join(self.models))),
            ("scoring_uri", f"<code>{escape(self.scoring_uri or '—')}</code>"),
            ("swagger_uri", f"<code>{escape(self.swagger_uri or '—')}</code>"),
            ("auth", "key (see get_keys())" if self.auth_enabled
             else "token (see get_token())" if self.token_auth_enabled else "none"),
            ("updated", escape(self.updated_time)),
        ]
        body = "".join(f"<tr><th style='text-align:left;padding-right:1em'>{k}</th><td style='text-align:left'>{v}</td></tr>" for k, v in rows)
        return f"<div><b>Webservice</b> <code>{escape(self.name)}</code><table>{body}</table></div>"


# ---------------------------------------------------------------- helpers of Azure's members
# Where a service's entry script came from, for reload(): <workspace>/service_sources/<name>.json
# {"entry_script", "source_directory"} (absolute paths; entry_script relative to the folder).
def _source_file(ws: Workspace, name: str) -> Path:
    return ws.path / "service_sources" / f"{name}.json"


def _remember_source(ws: Workspace, name: str, inference_config: InferenceConfig) -> None:
    if inference_config.source_directory:
        d = {"entry_script": inference_config.entry_script_relpath(),
             "source_directory": str(inference_config.source_dir_path().resolve())}
    else:
        d = {"entry_script": str(inference_config.entry_script_path().resolve()), "source_directory": None}
    _source_file(ws, name).parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(_source_file(ws, name), d)


_warned: set[tuple[str, str]] = set()


def _apply_azure_update(cfg: DeploymentConfig, params: dict[str, Any], cls_name: str) -> DeploymentConfig:
    """A copy of ``cfg`` with the Azure ``update`` parameters it has set (None = unchanged);
    the others warn once per (class, parameter)."""
    fields = {f.name for f in dataclasses.fields(cfg)}
    changes = {}
    for key, value in params.items():
        if key in fields:
            if value is not None:
                changes[key] = value
        elif (cls_name, key) not in _warned and value is not None:
            _warned.add((cls_name, key))
            warnings.warn(
                f"{cls_name}.update({key}=...) is not supported on the {cfg.compute_type} target and is ignored",
                UserWarning, stacklevel=3,
            )  # fmt: skip
    if not changes:
        return cfg
    try:
        new = dataclasses.replace(cfg, **changes)
    except TypeError as e:  # an init=False field
        raise ValidationError(f"{cls_name}.update: {e}") from None
    new.validate()
    return new


class ServiceList(ResourceList[Webservice]):
    """A list of :class:`Webservice`; ``to_dataframe()`` columns: name, compute_type, state,
    models, scoring_uri, auth_enabled, error, updated_time."""

    columns: ClassVar[list[str]] = ["name", "compute_type", "state", "models", "scoring_uri", "auth_enabled", "error", "updated_time"]
    empty_text: ClassVar[str] = "no services"

    def row(self, s: Webservice) -> dict[str, Any]:
        return {
            "name": s.name,
            "compute_type": s.compute_type,
            "state": s.record.state,
            "models": ", ".join(s.models),
            "scoring_uri": s.scoring_uri,
            "auth_enabled": s.auth_enabled,
            "error": s.error,
            "updated_time": s.updated_time,
        }


def deploy(
    workspace: WorkspaceLike,
    name: str,
    models: Sequence[Any],
    inference_config: InferenceConfig | None,
    deployment_config: DeploymentConfig | None = None,
    deployment_target: Any = None,
    overwrite: bool = False,
    *,
    show_output: bool = False,
    progress: Callable[[str], None] | None = None,
) -> Webservice:
    """Build an image and start it as service ``name`` (Azure ML v1's ``Model.deploy``).

    ``models``: ``Model`` objects or ``"name[:version]"`` strings. Returns at once with the
    service Transitioning; call ``wait_for_deployment()``. ``deployment_config`` defaults to
    ``LocalWebservice.deploy_configuration()``. ``overwrite=True`` replaces an existing
    service of that name (deleted first). ``deployment_target``: an attached
    ``ComputeTarget`` (``core/compute.py``) giving a Kubernetes configuration its cluster.

    Raises ValidationError (bad name, config or script), WebserviceException (name taken),
    and whatever the target raises when it can't start (nothing is recorded then).
    """
    deployment_config = apply_deployment_target(deployment_config, deployment_target)
    return Webservice.deploy_from_models(workspace, name, models, inference_config, deployment_config, overwrite,
                                         show_output=show_output, progress=progress)


def _validated_config(cls: type[_Config], params: dict[str, Any]) -> _Config:
    """``cls(**params)`` validated, for the ``deploy_configuration`` factories: ``params`` is
    the factory's own arguments (``locals()``; each names a field of ``cls``), less the
    ``_``-prefixed ones (``**_ignored``: Azure-only parameters). Raises ValidationError naming
    a bad value."""
    cfg = cls(**{k: v for k, v in params.items() if not k.startswith("_")})
    cfg.validate()
    return cfg


class LocalWebservice(Webservice):
    """Services on the ``local`` target (Azure ML v1's ``LocalWebservice``)."""

    @staticmethod
    def deploy_configuration(
        port: int | None = None,
        auth_enabled: bool = False,
        token_auth_enabled: bool = False,
        workers: int = 1,
        collect_model_data: bool = False,
        scoring_timeout_ms: int = 60_000,
        max_request_bytes: int = 100 * 1024 * 1024,
        tags: dict[str, str] | None = None,
        description: str | None = None,
        memory_gb: float | None = None,
        max_requests: int = 0,
        max_requests_jitter: int = 0,
    ) -> LocalDeploymentConfig:
        """A child process on 127.0.0.1 (no Docker). ``port=None`` picks a free port;
        ``workers`` scoring processes share it. ``memory_gb`` (GiB, Azure's name) caps the
        service's memory: a worker past ``memory_gb / workers`` GiB resident is replaced
        gracefully; ``max_requests`` (+ random ``0..max_requests_jitter``, gunicorn's names)
        replaces a worker after that many requests. Returns a validated
        LocalDeploymentConfig; raises ValidationError naming a bad value."""
        return _validated_config(LocalDeploymentConfig, locals())


class DockerWebservice(Webservice):
    """Services on the ``docker`` target (a container on the local Docker Engine)."""

    @staticmethod
    def deploy_configuration(
        port: int | None = None,
        cpu_cores: float | None = None,
        memory_gb: float | None = None,
        auth_enabled: bool = False,
        token_auth_enabled: bool = False,
        workers: int = 1,
        collect_model_data: bool = False,
        scoring_timeout_ms: int = 60_000,
        restart_policy: str = "on-failure",
        tags: dict[str, str] | None = None,
        description: str | None = None,
    ) -> DockerDeploymentConfig:
        """``cpu_cores`` (cores) and ``memory_gb`` (GiB) become the container's limits.
        Returns a validated DockerDeploymentConfig."""
        return _validated_config(DockerDeploymentConfig, locals())


class AciWebservice(Webservice):
    """Azure's ACI target, run on the local Docker Engine with ACI's defaults."""

    @staticmethod
    def deploy_configuration(
        cpu_cores: float = 0.1,
        memory_gb: float = 0.5,
        auth_enabled: bool = False,
        token_auth_enabled: bool = False,
        port: int | None = None,
        collect_model_data: bool = False,
        scoring_timeout_ms: int = 60_000,
        tags: dict[str, str] | None = None,
        description: str | None = None,
        **_ignored: Any,
    ) -> AciDeploymentConfig:
        """Azure's defaults: 0.1 cores, 0.5 GiB. Azure-only parameters (location, dns_name_label,
        ssl_*) are accepted and ignored. Returns a validated AciDeploymentConfig."""
        return _validated_config(AciDeploymentConfig, locals())


class AksWebservice(Webservice):
    """Services on the ``kubernetes`` target (Azure's AKS target, any cluster)."""

    @staticmethod
    def deploy_configuration(**kwargs: Any) -> DeploymentConfig:
        """Azure's AKS parameters; see ``KubernetesDeploymentConfig``."""
        from mlmanage_jupyter.core.targets import kubernetes  # needs the optional kubernetes client

        return kubernetes.deploy_configuration(**kwargs)


def _logged_traceback(logs: str, request_id: str) -> str:
    """The traceback the engine logged for ``request_id`` (``request <id>: run() raised:`` and
    the lines after it, up to and including the exception line), '' when not found."""
    lines = logs.splitlines()
    marker = f"request {request_id}: run() raised"
    for i in range(len(lines) - 1, -1, -1):
        if marker in lines[i]:
            out: list[str] = []
            for line in lines[i + 1 : i + 200]:
                out.append(line)
                if line and not line[0].isspace() and not line.startswith(("Traceback", "During handling", "The above exception")):
                    break  # "KeyError: 'data'": the exception line closes the traceback
            return "\n".join(out)
    return ""

