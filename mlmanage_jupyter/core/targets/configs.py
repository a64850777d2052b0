"""Deployment configurations: Azure ML v1's ``deploy_configuration(...)`` parameters as
dataclasses, one per target, and Azure's ``deploymentconfig.json`` reader.

Configurations of other targets register themselves here (:func:`register_config_class`,
:data:`JSON_PARSERS`): ``k8s_config`` does for ``kubernetes``/``aks``; importing
:mod:`.base` loads every configuration.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from mlmanage_jupyter.core.errors import ValidationError
from mlmanage_jupyter.core.fsutil import read_json_object


@dataclass
class DeploymentConfig:
    """Settings shared by every target.

    Attributes:
        auth_enabled: require ``Authorization: Bearer <key>`` on ``/score``.
        token_auth_enabled: require ``Authorization: Bearer <token>`` on ``/score``, a token
            from ``service.get_token()`` (1 h lifetime); not together with ``auth_enabled``
            (Azure's rule and error message).
        collect_model_data: record inputs and predictions (Azure's parameter name).
        scoring_timeout_ms: a ``run()`` taking longer answers 504 (milliseconds).
        max_request_bytes: a larger request body answers 413 (bytes).
        workers: scoring worker processes per instance.
        tags, properties, description: metadata of the service (as in Azure).
    """

    compute_type: ClassVar[str] = ""
    auth_enabled: bool = False
    token_auth_enabled: bool = False
    collect_model_data: bool = False
    scoring_timeout_ms: int = 60_000
    max_request_bytes: int = 100 * 1024 * 1024
    workers: int = 1
    tags: dict[str, str] | None = None
    properties: dict[str, str] | None = None
    description: str | None = None

    def validate(self) -> None:
        """Raise ValidationError naming the first bad field."""
        if self.auth_enabled and self.token_auth_enabled:
            raise ValidationError("Invalid configuration, auth_enabled and token_auth_enabled cannot both be true.")
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
        klass = CONFIG_CLASSES.get(ct) or cls
        names = {f.name for f in dataclasses.fields(klass)}
        return klass(**{k: v for k, v in d.items() if k in names})


@dataclass
class LocalDeploymentConfig(DeploymentConfig):
    """The ``local`` target: a child process on 127.0.0.1 (no Docker).

    Attributes:
        port: TCP port; ``None`` picks a free one. A port in use is a ValidationError.
        memory_gb: memory cap of the service in GiB (Azure's ``memory_gb`` of ACI/AKS;
            ``containerResourceRequirements.memoryInGB`` in deploymentconfig.json): a worker
            whose resident set passes ``memory_gb / workers`` GiB is replaced gracefully (the
            replacement serves before it drains, no request fails); ``None`` for no cap.
        max_requests: replace a worker gracefully after it answered this many requests
            (gunicorn's ``max_requests``; every route counted); 0 = never.
        max_requests_jitter: a random 0..N added to ``max_requests`` per worker (gunicorn's
            ``max_requests_jitter``), so workers are not all replaced at the same moment.
    """

    compute_type: ClassVar[str] = "local"
    port: int | None = None
    memory_gb: float | None = None
    max_requests: int = 0
    max_requests_jitter: int = 0

    def validate(self) -> None:
        super().validate()
        _check_port(self.port)
        v = self.memory_gb
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0):
            raise ValidationError(f"memory_gb must be a positive number of GiB or None, got {v!r}")
        for fname in ("max_requests", "max_requests_jitter"):
            n = getattr(self, fname)
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                raise ValidationError(f"{fname} must be an integer >= 0 (0 = off), got {n!r}")


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
    "tokenAuthEnabled": "token_auth_enabled",
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
        raise ValidationError(f"unknown computeType {d.get('computeType')!r}: use local, docker, ACI or AKS")
    klass = CONFIG_CLASSES[ct]
    kwargs = common_kwargs_from_json(d)
    rr = d.get("containerResourceRequirements") or {}
    if "memoryInGB" in rr:  # the local target's memory cap too
        kwargs["memory_gb"] = float(rr["memoryInGB"])
    if ct != "local":
        if "cpu" in rr:
            kwargs["cpu_cores"] = float(rr["cpu"])
        if "restartPolicy" in d:
            kwargs["restart_policy"] = d["restartPolicy"]
    names = {f.name for f in dataclasses.fields(klass)}
    cfg = klass(**{k: v for k, v in kwargs.items() if k in names})
    cfg.validate()
    return cfg


def common_kwargs_from_json(d: dict[str, Any]) -> dict[str, Any]:
    """The fields every target shares, from a deploymentconfig.json dict."""
    return {ours: d[theirs] for theirs, ours in _JSON_COMMON.items() if theirs in d}
