"""The deployment-target protocol and the deployment configurations.

A target (``local``, ``docker``, ``kubernetes``) turns an :class:`ImageSpec` (plain data) and
a :class:`DeploymentConfig` into a running scoring server. ``core/services.py`` owns the
service rows and the ``Webservice`` surface; targets only run things and report on them.

Every target runs the same scoring engine (``python -m mlmanage_jupyter.server``),
configured by environment variables rendered from one
:class:`~mlmanage_jupyter.server.config.Settings` (``Settings.to_env()``).

Field names of the configurations follow Azure ML v1's ``deploy_configuration(...)``
parameters; :func:`config_from_json` reads Azure's ``deploymentconfig.json``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from mlmanage_jupyter.core.environment import Environment
from mlmanage_jupyter.core.errors import ValidationError
from mlmanage_jupyter.core.fsutil import read_json_object
from mlmanage_jupyter.server.config import ConfigError, Settings

#: the models folder of a build context (Azure's ``azureml-models``)
MODELS_DIRNAME = "azureml-models"

# Service states, as Azure ML names them.
TRANSITIONING = "Transitioning"
HEALTHY = "Healthy"
UNHEALTHY = "Unhealthy"
FAILED = "Failed"
STATES = (TRANSITIONING, HEALTHY, UNHEALTHY, FAILED)

ProgressFn = Callable[[str], None]


def _no_progress(_msg: str) -> None:
    pass


@dataclass
class DeploymentConfig:
    """Settings shared by every target.

    Attributes:
        auth_enabled: require ``Authorization: Bearer <key>`` on ``/score``.
        collect_model_data: record inputs and predictions (Azure's parameter name).
        scoring_timeout_ms: a ``run()`` taking longer answers 504 (milliseconds).
        max_request_bytes: a larger request body answers 413 (bytes).
        workers: scoring worker processes per instance.
        tags, properties, description: metadata of the service (as in Azure).
    """

    compute_type: ClassVar[str] = ""
    auth_enabled: bool = False
    collect_model_data: bool = False
    scoring_timeout_ms: int = 60_000
    max_request_bytes: int = 100 * 1024 * 1024
    workers: int = 1
    tags: dict[str, str] | None = None
    properties: dict[str, str] | None = None
    description: str | None = None

    def validate(self) -> None:
        """Raise ValidationError naming the first bad field."""
        if not isinstance(self.workers, int) or self.workers < 1:
            raise ValidationError(f"workers must be an integer >= 1, got {self.workers!r}")
        if not isinstance(self.scoring_timeout_ms, int) or self.scoring_timeout_ms < 1:
            raise ValidationError(f"scoring_timeout_ms must be a positive integer (ms), got {self.scoring_timeout_ms!r}")
        if not isinstance(self.max_request_bytes, int) or self.max_request_bytes < 1:
            raise ValidationError(f"max_request_bytes must be a positive integer, got {self.max_request_bytes!r}")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["compute_type"] = self.compute_type
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DeploymentConfig:
        ct = d.get("compute_type") or cls.compute_type
        if ct in ("kubernetes", "aks") and ct not in CONFIG_CLASSES:
            import mlmanage_jupyter.core.targets.kubernetes  # noqa: F401  (registers its config class)
        klass = CONFIG_CLASSES.get(ct) or cls
        names = {f.name for f in dataclasses.fields(klass)}
        return klass(**{k: v for k, v in d.items() if k in names})


@dataclass
class LocalDeploymentConfig(DeploymentConfig):
    """The ``local`` target: a child process on 127.0.0.1 (no Docker).

    Attributes:
        port: TCP port; ``None`` picks a free one. A port in use is a ValidationError.
    """

    compute_type: ClassVar[str] = "local"
    port: int | None = None

    def validate(self) -> None:
        super().validate()
        _check_port(self.port)


@dataclass
class DockerDeploymentConfig(DeploymentConfig):
    """The ``docker`` target: a container on a Docker Engine (``DOCKER_HOST`` honoured).

    Attributes:
        port: host port published to the container's 5001; ``None`` picks a free one.
        cpu_cores: CPU limit in cores (``nano_cpus``); ``None`` for no limit.
        memory_gb: memory limit in GiB (``mem_limit``); ``None`` for no limit.
        restart_policy: Docker restart policy name ("no", "on-failure", "always", "unless-stopped").
    """

    compute_type: ClassVar[str] = "docker"
    port: int | None = None
    cpu_cores: float | None = None
    memory_gb: float | None = None
    restart_policy: str = "on-failure"

    def validate(self) -> None:
        super().validate()
        _check_port(self.port)
        for fname in ("cpu_cores", "memory_gb"):
            v = getattr(self, fname)
            if v is not None and (not isinstance(v, (int, float)) or v <= 0):
                raise ValidationError(f"{fname} must be a positive number, got {v!r}")


@dataclass
class AciDeploymentConfig(DockerDeploymentConfig):
    """Azure's ACI target, run on the local Docker Engine; Azure's defaults: 0.1 cores, 0.5 GiB."""

    compute_type: ClassVar[str] = "aci"
    cpu_cores: float | None = 0.1
    memory_gb: float | None = 0.5


CONFIG_CLASSES: dict[str, type[DeploymentConfig]] = {
    "local": LocalDeploymentConfig,
    "docker": DockerDeploymentConfig,
    "aci": AciDeploymentConfig,
}


def register_config_class(klass: type[DeploymentConfig]) -> None:
    """Targets defined in other modules (kubernetes) register their config class here."""
    CONFIG_CLASSES[klass.compute_type] = klass


def _check_port(port: Any) -> None:
    if port is not None and (not isinstance(port, int) or not 1 <= port <= 65535):
        raise ValidationError(f"port must be an integer from 1 to 65535, got {port!r}")


# Azure deploymentconfig.json -> our config. Keys: computeType, port, authEnabled,
# containerResourceRequirements {cpu, memoryInGB, cpuLimit, memoryInGBLimit},
# scoringTimeoutMs, collectModelData/appInsightsEnabled, numReplicas, autoScaler{...}, ...
_JSON_COMMON = {
    "authEnabled": "auth_enabled",
    "collectModelData": "collect_model_data",
    "scoringTimeoutMs": "scoring_timeout_ms",
    "maxRequestBytes": "max_request_bytes",
    "workers": "workers",
    "port": "port",
    "tags": "tags",
    "properties": "properties",
    "description": "description",
}

#: parsers for other compute types (kubernetes registers "aks"/"kubernetes")
JSON_PARSERS: dict[str, Callable[[dict[str, Any]], DeploymentConfig]] = {}


def config_from_json(source: str | os.PathLike[str] | dict[str, Any]) -> DeploymentConfig:
    """Read Azure ML's ``deploymentconfig.json`` (a path or a parsed dict).

    ``computeType`` selects the target: ``local`` (default), ``docker``, ``ACI`` (docker
    with ACI defaults), ``AKS``/``kubernetes``. Unknown keys are ignored, as Azure's CLI
    does. Raises ValidationError for a missing file, bad JSON or an unknown computeType.
    """
    d, _ = read_json_object(source, "deployment config")
    ct = str(d.get("computeType", "local")).lower()
    if ct in JSON_PARSERS:
        return JSON_PARSERS[ct](d)
    if ct not in ("local", "docker", "aci"):
        if ct in ("aks", "kubernetes"):
            # the kubernetes module registers its parser on import
            import mlmanage_jupyter.core.targets.kubernetes  # noqa: F401

            return JSON_PARSERS[ct](d)
        raise ValidationError(f"unknown computeType {d.get('computeType')!r}: use local, docker, ACI or AKS")
    klass = CONFIG_CLASSES[ct]
    kwargs = common_kwargs_from_json(d)
    rr = d.get("containerResourceRequirements") or {}
    if ct != "local":
        if "cpu" in rr:
            kwargs["cpu_cores"] = float(rr["cpu"])
        if "memoryInGB" in rr:
            kwargs["memory_gb"] = float(rr["memoryInGB"])
        if "restartPolicy" in d:
            kwargs["restart_policy"] = d["restartPolicy"]
    names = {f.name for f in dataclasses.fields(klass)}
    cfg = klass(**{k: v for k, v in kwargs.items() if k in names})
    cfg.validate()
    return cfg


def common_kwargs_from_json(d: dict[str, Any]) -> dict[str, Any]:
    """The fields every target shares, from a deploymentconfig.json dict."""
    return {ours: d[theirs] for theirs, ours in _JSON_COMMON.items() if theirs in d}


@dataclass(frozen=True)
class ModelRef:
    """A model an image serves: ``name``, ``version``, ``framework`` (Azure's
    ``model_framework``, e.g. "ScikitLearn", or None)."""

    name: str
    version: int | str
    framework: str | None = None

    @property
    def id(self) -> str:
        return f"{self.name}:{self.version}"


@dataclass(frozen=True)
class ImageSpec:
    """What a target needs of an image, as plain data (no workspace, no database).

    Attributes:
        name, version: the image's name and version.
        content_hash: sha256 hex of the image's content (models, files, environment).
        context_path: the build context folder (CONTRIBUTING.md, "Image build context").
        entry_script: entry script path relative to ``<context>/app``.
        source_directory: the source directory's folder name under ``app/`` (Azure's
            ``AZUREML_SOURCE_DIRECTORY``), or None.
        environment: the image's :class:`~mlmanage_jupyter.core.environment.Environment`.
        models: the models it serves, in image order.
        model_dir_env: ``AZUREML_MODEL_DIR`` relative to the context (``azureml-models/<name>/<version>``
            for one model, ``azureml-models`` for several: Azure's layout); computed when empty.
        docker_image: the Docker tag it was last built into, or None.
    """

    name: str
    version: int
    content_hash: str
    context_path: Path
    entry_script: str
    environment: Environment
    models: tuple[ModelRef, ...]
    model_dir_env: str = ""
    docker_image: str | None = None
    source_directory: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "context_path", Path(self.context_path))
        object.__setattr__(self, "models", tuple(self.models))
        if not self.model_dir_env:
            ms = self.models
            rel = f"{MODELS_DIRNAME}/{ms[0].name}/{ms[0].version}" if len(ms) == 1 else MODELS_DIRNAME
            object.__setattr__(self, "model_dir_env", rel)

    @property
    def id(self) -> str:
        return f"{self.name}:{self.version}"

    @classmethod
    def from_context(cls, context_path: str | os.PathLike[str], frameworks: dict[str, str] | None = None) -> ImageSpec:
        """Read a build context's ``image.json``; ``frameworks`` maps model names to their
        framework (image.json does not record it). Raises ValidationError when the file is
        missing or not an image spec."""
        ctx = Path(context_path)
        d, _ = read_json_object(ctx / "image.json", "image spec")
        fw = frameworks or {}
        try:
            models = tuple(ModelRef(m["name"], m["version"], fw.get(m["name"])) for m in d.get("models", []))
            return cls(
                name=str(d.get("name") or ctx.name),
                version=int(d.get("version") or 1),
                content_hash=str(d.get("content_hash") or ""),
                context_path=ctx,
                entry_script=str(d.get("entry_script") or "score.py"),
                environment=Environment.from_dict(d.get("environment") or {}),
                models=models,
                source_directory=d.get("source_directory") or None,
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ValidationError(f"{ctx / 'image.json'} is not an image spec: {e}") from None


def engine_settings(name: str, image: ImageSpec, config: DeploymentConfig) -> Settings:
    """The scoring engine's settings of service ``name`` (the target-neutral part: service
    name, models, entry script, workers, auth, timeouts, body limit, data collection on/off,
    ``Environment.environment_variables``). Each target then places the paths, listen address
    and keys file with ``Settings.replace``. Raises ValidationError naming a bad value."""
    try:
        return Settings(
            app_root=Path("app"),
            entry_script=image.entry_script,
            source_directory=image.source_directory,
            models=tuple(m.id for m in image.models),
            service_name=name,
            workers=config.workers,
            auth_enabled=config.auth_enabled,
            scoring_timeout_ms=config.scoring_timeout_ms,
            max_request_bytes=config.max_request_bytes,
            collect_model_data=config.collect_model_data,
            environment_variables=dict(image.environment.environment_variables or {}),
        )
    except ConfigError as e:
        raise ValidationError(str(e)) from None


def workspace_id(workspace_path: str | os.PathLike[str]) -> str:
    """8 hex digits naming a workspace folder (labels and container names on a shared engine)."""
    return hashlib.sha256(str(Path(workspace_path).resolve()).encode()).hexdigest()[:8]


@dataclass
class DeployRequest:
    """What a target needs to start (or update) a service: plain data, no workspace.

    Attributes:
        name: the service name (already validated).
        image: the image, as an :class:`ImageSpec`.
        config: the deployment configuration (validated).
        service_dir: a folder of this service's own (the local target keeps its run folder
            and log there).
        cache_dir: build caches (the docker target's wheelhouse, engine wheel, base-image probes).
        workspace_id: tells apart services of two workspaces on a shared Docker Engine.
        keys: ``{"primaryKey": str, "secondaryKey": str}`` (empty when auth is off).
        progress: called with one line of human-readable progress at a time.
        settings: the engine's settings (:func:`engine_settings` when omitted), including the
            data-collection destination a caller adds with ``Settings.update_from_env``.
            ``data_collection_dir`` is a folder on this machine: the docker target
            bind-mounts ``<it>/<name>``.
    """

    name: str
    image: ImageSpec
    config: DeploymentConfig
    service_dir: Path
    cache_dir: Path
    workspace_id: str = "default"
    keys: dict[str, str] = field(default_factory=dict)
    progress: ProgressFn = _no_progress
    settings: Settings | None = None

    def __post_init__(self) -> None:
        self.service_dir = Path(self.service_dir)
        self.cache_dir = Path(self.cache_dir)
        if self.settings is None:
            self.settings = engine_settings(self.name, self.image, self.config)

    @property
    def engine(self) -> Settings:
        """``settings``, never None."""
        assert self.settings is not None
        return self.settings


@dataclass
class DeployResult:
    """What a target reports after deploy/update: where the service is, how to find it again
    (``runtime``), and the Docker image it built (``docker_image``, for the caller to record)."""

    scoring_uri: str
    swagger_uri: str
    runtime: dict[str, Any] = field(default_factory=dict)  # pid / container id / namespace ...
    docker_image: str | None = None


@dataclass
class TargetStatus:
    state: str  # one of STATES
    error: str | None = None  # a plain message a person can act on


class Target(ABC):
    """A deployment target: the extension point for running services somewhere new.

    Contract (every implementation; ``tests/core/test_local_target.py``,
    ``tests/docker`` and ``tests/kubernetes`` hold each one to it):

    * A target gets plain data (:class:`DeployRequest`) and never touches the workspace's
      metadata store: what it must remember about a service goes in ``DeployResult.runtime``
      (a JSON-serialisable dict the caller stores and hands back to every later call, also
      from another process), what it built in ``DeployResult.docker_image``.
    * It renders the scoring engine's whole environment from ``req.settings``
      (``Settings.replace(...)`` for its own paths and listen address, then ``to_env()``);
      it spells no engine variable by hand.
    * Errors: ValidationError for a request it cannot honour (port in use, a config value
      the target rejects), WebserviceException when its platform can't be reached,
      DeploymentFailedError (with ``logs``) when the service does not come up in ``update``.
    * ``compute_type`` is the name ``get_target`` finds it by; register with
      :func:`register_target`.
    """

    compute_type: ClassVar[str]

    @abstractmethod
    def deploy(self, req: DeployRequest) -> DeployResult:
        """Start the service and return without waiting for Healthy (``status`` tells). On
        failure nothing of the service is left running."""

    @abstractmethod
    def update(self, req: DeployRequest, runtime: dict[str, Any]) -> DeployResult:
        """Rolling update: the new version is Healthy before the old one stops, on the same
        ``scoring_uri``; no request fails. If the new version fails, the old keeps serving
        and this raises DeploymentFailedError with the new version's logs. A service whose
        process/containers are gone is started again."""

    @abstractmethod
    def delete(self, name: str, runtime: dict[str, Any]) -> None:
        """Stop and remove what this target created for the service, nothing else; a service
        already gone is no error."""

    @abstractmethod
    def status(self, name: str, runtime: dict[str, Any]) -> TargetStatus:
        """The service's state now (one of :data:`STATES`), with a message a person can act
        on when it is not Healthy. Never raises for a service that is gone (Unhealthy)."""

    @abstractmethod
    def logs(self, name: str, runtime: dict[str, Any], *, tail: int | None = None) -> str:
        """The service's log text (the last ``tail`` lines when given); "" when there is none."""

    def stream_logs(self, name: str, runtime: dict[str, Any], *, stop: Callable[[], bool]) -> Iterator[str]:
        """Yield log lines as they are written until ``stop()`` is true (default: polls ``logs``)."""
        seen = 0
        while not stop():
            text = self.logs(name, runtime)
            lines = text.splitlines()
            yield from lines[seen:]
            seen = len(lines)
            time.sleep(0.25)

    @abstractmethod
    def set_keys(self, name: str, runtime: dict[str, Any], keys: dict[str, str]) -> None:
        """Make the running service accept exactly these keys (after ``regen_key``)."""


_TARGETS: dict[str, Callable[[], Target]] = {}


def register_target(compute_type: str, factory: Callable[[], Target]) -> None:
    _TARGETS[compute_type] = factory


def get_target(compute_type: str) -> Target:
    """The target for a compute type ("local", "docker", "aci", "kubernetes")."""
    if compute_type not in _TARGETS:
        mod = {"local": "local", "docker": "docker", "aci": "docker", "kubernetes": "kubernetes", "aks": "kubernetes"}.get(
            compute_type
        )
        if mod is None:
            raise ValidationError(f"unknown deployment target {compute_type!r}: use local, docker, aci or kubernetes")
        import importlib

        importlib.import_module(f"mlmanage_jupyter.core.targets.{mod}")
    return _TARGETS[compute_type]()
