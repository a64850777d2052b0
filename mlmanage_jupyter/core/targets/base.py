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

import hashlib
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from mlmanage_jupyter.core.environment import Environment
from mlmanage_jupyter.core.errors import ValidationError
from mlmanage_jupyter.core.fsutil import read_json_object
from mlmanage_jupyter.core.targets import k8s_config  # noqa: F401  (registers the kubernetes configuration)
from mlmanage_jupyter.core.targets.configs import (
    CONFIG_CLASSES,
    JSON_PARSERS,
    AciDeploymentConfig,
    DeploymentConfig,
    DockerDeploymentConfig,
    LocalDeploymentConfig,
    common_kwargs_from_json,
    config_from_json,
    register_config_class,
)
from mlmanage_jupyter.server.config import ConfigError, Settings

#: the models folder of a build context (Azure's ``azureml-models``)
MODELS_DIRNAME = "azureml-models"

__all__ = [
    "CONFIG_CLASSES",
    "JSON_PARSERS",
    "AciDeploymentConfig",
    "DeploymentConfig",
    "DockerDeploymentConfig",
    "LocalDeploymentConfig",
    "common_kwargs_from_json",
    "config_from_json",
    "register_config_class",
]

# Service states, as Azure ML names them.
TRANSITIONING = "Transitioning"
HEALTHY = "Healthy"
UNHEALTHY = "Unhealthy"
FAILED = "Failed"
STATES = (TRANSITIONING, HEALTHY, UNHEALTHY, FAILED)

ProgressFn = Callable[[str], None]


def _no_progress(_msg: str) -> None:
    pass


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


def engine_settings(
    name: str,
    image: ImageSpec | None,
    config: DeploymentConfig,
    *,
    models: Sequence[str] = (),
    app_root: Path = Path("app"),
) -> Settings:
    """The scoring engine's settings of service ``name`` (the target-neutral part: service
    name, models, entry script, workers, auth, timeouts, body limit, data collection on/off,
    ``Environment.environment_variables``). Each target then places the paths, listen address
    and keys file with ``Settings.replace``.

    ``image`` gives the models, entry script, source directory and environment variables;
    without one (the Kubernetes manifests rendered from a bare image reference), ``models``
    (``"name:version"``) and the engine's defaults for the rest. ``app_root``: where the entry
    script's folder is (relative here; the image's folder on Kubernetes).
    Raises ValidationError naming a bad value."""
    scripts: dict[str, Any] = {}
    if image is not None:
        models = tuple(m.id for m in image.models)
        scripts = {
            "entry_script": image.entry_script,
            "source_directory": image.source_directory,
            "environment_variables": dict(image.environment.environment_variables or {}),
        }
    try:
        return Settings(
            app_root=app_root,
            models=tuple(models),
            service_name=name,
            workers=config.workers,
            auth_enabled=config.auth_enabled,
            token_auth_enabled=config.token_auth_enabled,
            scoring_timeout_ms=config.scoring_timeout_ms,
            max_request_bytes=config.max_request_bytes,
            collect_model_data=config.collect_model_data,
            **scripts,
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

    def preflight(self, req: DeployRequest, released_port: int | None = None) -> None:
        """Raise now what :meth:`deploy` would raise for reasons known before starting (a port
        another process holds, the platform unreachable), changing nothing; ``deploy(...,
        overwrite=True)`` calls it before it stops the service it replaces. ``released_port``:
        the port that service listens on (it is stopped before ``deploy``, so its port is no
        conflict). Default: the configuration's own checks."""
        req.config.validate()

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
