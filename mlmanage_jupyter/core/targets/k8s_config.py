"""The ``kubernetes`` target's configuration (Azure's AKS target):
:class:`KubernetesDeploymentConfig` mirrors Azure ML v1's ``AksWebservice.deploy_configuration(...)``
(``AksServiceDeploymentConfiguration``): same parameter names and, where they make sense
here, the same defaults (0.1 cores, 0.5 GiB, auth on, autoscaling 1..10 replicas at 70 %
CPU, liveness probe every 10 s after 310 s). :func:`config_from_aks_json` reads Azure's
``deploymentconfig.json`` with ``"computeType": "AKS"``. Registers both with
:mod:`.configs` on import.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from mlmanage_jupyter.core.errors import ValidationError
from mlmanage_jupyter.core.targets.configs import (
    JSON_PARSERS,
    DeploymentConfig,
    common_kwargs_from_json,
    register_config_class,
)

SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


@dataclass
class KubernetesDeploymentConfig(DeploymentConfig):
    """The ``kubernetes`` target (Azure's AKS target) on any cluster.

    Attributes (Azure's ``AksWebservice.deploy_configuration`` names):
        auth_enabled: bearer-key auth on ``/score``; on by default, as on AKS.
        cpu_cores: CPU request per replica in cores (default 0.1).
        memory_gb: memory request per replica in GiB (default 0.5).
        cpu_cores_limit: CPU limit in cores; default = ``cpu_cores``.
        memory_gb_limit: memory limit in GiB; default = ``memory_gb``.
        num_replicas: fixed replica count; setting it turns autoscaling off (as in Azure).
        autoscale_enabled: HorizontalPodAutoscaler on; default True unless ``num_replicas``.
        autoscale_min_replicas, autoscale_max_replicas: replica bounds (1, 10).
        autoscale_target_utilization: target average CPU, percent of the request (70).
        autoscale_refresh_seconds: period of the HPA scaling policies, seconds (1).
        scoring_timeout_ms: a ``run()`` taking longer answers 504 (60000 ms).
        namespace: Kubernetes namespace (default ``"default"``); created when missing.
        period_seconds, initial_delay_seconds, timeout_seconds, success_threshold,
            failure_threshold: the liveness probe on ``GET /`` (Azure: 10, 310, 2, 1, 3).
            The readiness probe on ``/health/ready`` uses the same timeout and thresholds.
        image_pull_secrets: names of ``kubernetes.io/dockerconfigjson`` Secrets in the
            namespace, for a private registry.

    Attributes (this project's):
        registry: where to push the built image (``"myregistry.example:5000/team"``); the
            cluster pulls it from there. ``None`` with no ``image``: the local Docker tag is
            used as is (clusters sharing the local Docker Engine: Docker Desktop, minikube).
        image: an existing image reference to run; nothing is built or pushed.
        context: kubeconfig context (default: the current context, or in-cluster config).
        kubeconfig: path of a kubeconfig file (default ``$KUBECONFIG`` or ``~/.kube/config``).
        service_type: ``ClusterIP``, ``NodePort`` or ``LoadBalancer`` (default, as AKS).
        port_forward: reach the service through a local forward to a pod (local clusters);
            ``scoring_uri`` is then ``http://127.0.0.1:<port>/score`` in this process.
        service_address_timeout_seconds: how long ``deploy`` waits for a LoadBalancer
            address or NodePort before falling back to the in-cluster DNS name (s).
        rollout_timeout_seconds: how long ``update`` waits for the rollout (s).
    """

    compute_type: ClassVar[str] = "kubernetes"
    auth_enabled: bool = True
    cpu_cores: float = 0.1
    memory_gb: float = 0.5
    cpu_cores_limit: float | None = None
    memory_gb_limit: float | None = None
    num_replicas: int | None = None
    autoscale_enabled: bool | None = None
    autoscale_min_replicas: int = 1
    autoscale_max_replicas: int = 10
    autoscale_target_utilization: int = 70
    autoscale_refresh_seconds: int = 1
    namespace: str | None = None
    period_seconds: int = 10
    initial_delay_seconds: int = 310
    timeout_seconds: int = 2
    success_threshold: int = 1
    failure_threshold: int = 3
    image_pull_secrets: list[str] | None = None
    registry: str | None = None
    image: str | None = None
    context: str | None = None
    kubeconfig: str | None = None
    service_type: str = "LoadBalancer"
    port_forward: bool = False
    service_address_timeout_seconds: int = 60
    rollout_timeout_seconds: int = 600

    @property
    def autoscaling(self) -> bool:
        """Whether an HPA is created (Azure: on unless ``num_replicas`` is given)."""
        if self.autoscale_enabled is None:
            return self.num_replicas is None
        return bool(self.autoscale_enabled)

    @property
    def resolved_namespace(self) -> str:
        return self.namespace or "default"

    def validate(self) -> None:
        """Raise ValidationError naming the first bad field."""
        super().validate()
        for fname in ("cpu_cores", "memory_gb", "cpu_cores_limit", "memory_gb_limit"):
            v = getattr(self, fname)
            if v is None and fname.endswith("_limit"):
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
                raise ValidationError(f"{fname} must be a positive number, got {v!r}")
        if self.cpu_cores_limit is not None and self.cpu_cores_limit < self.cpu_cores:
            raise ValidationError(
                f"cpu_cores_limit ({self.cpu_cores_limit}) must be >= cpu_cores ({self.cpu_cores})"
            )
        if self.memory_gb_limit is not None and self.memory_gb_limit < self.memory_gb:
            raise ValidationError(
                f"memory_gb_limit ({self.memory_gb_limit}) must be >= memory_gb ({self.memory_gb})"
            )
        if self.num_replicas is not None:
            _check_int("num_replicas", self.num_replicas, 1)
            if self.autoscale_enabled:
                raise ValidationError("num_replicas cannot be set when autoscale_enabled is True; choose one")
        _check_int("autoscale_min_replicas", self.autoscale_min_replicas, 1)
        _check_int("autoscale_max_replicas", self.autoscale_max_replicas, 1)
        if self.autoscale_min_replicas > self.autoscale_max_replicas:
            raise ValidationError(
                f"autoscale_min_replicas ({self.autoscale_min_replicas}) must be <= "
                f"autoscale_max_replicas ({self.autoscale_max_replicas})"
            )
        _check_int("autoscale_target_utilization", self.autoscale_target_utilization, 1)
        if self.autoscale_target_utilization > 100:
            raise ValidationError(
                f"autoscale_target_utilization is a percentage from 1 to 100, got {self.autoscale_target_utilization}"
            )
        _check_int("autoscale_refresh_seconds", self.autoscale_refresh_seconds, 1)
        if self.autoscale_refresh_seconds > 1800:
            raise ValidationError(f"autoscale_refresh_seconds must be <= 1800, got {self.autoscale_refresh_seconds}")
        _check_int("period_seconds", self.period_seconds, 1)
        _check_int("initial_delay_seconds", self.initial_delay_seconds, 0)
        _check_int("timeout_seconds", self.timeout_seconds, 1)
        _check_int("success_threshold", self.success_threshold, 1)
        if self.success_threshold != 1:
            raise ValidationError("success_threshold must be 1 for a liveness probe (a Kubernetes rule)")
        _check_int("failure_threshold", self.failure_threshold, 1)
        if self.namespace is not None and not DNS_LABEL.match(str(self.namespace)):
            raise ValidationError(
                f"namespace {self.namespace!r} is not a valid Kubernetes name: lowercase letters, digits and '-', at most 63"
            )
        if self.service_type not in SERVICE_TYPES:
            raise ValidationError(f"service_type must be one of {', '.join(SERVICE_TYPES)}, got {self.service_type!r}")
        if self.image_pull_secrets is not None:
            if not isinstance(self.image_pull_secrets, list) or not all(
                isinstance(s, str) and DNS_LABEL.match(s) for s in self.image_pull_secrets
            ):
                raise ValidationError(f"image_pull_secrets must be a list of Secret names, got {self.image_pull_secrets!r}")
        if self.registry is not None and self.image is not None:
            raise ValidationError("give either registry= (build and push) or image= (use as is), not both")
        for fname in ("registry", "image", "context", "kubeconfig"):
            v = getattr(self, fname)
            if v is not None and (not isinstance(v, str) or not v.strip()):
                raise ValidationError(f"{fname} must be a non-empty string, got {v!r}")
        _check_int("service_address_timeout_seconds", self.service_address_timeout_seconds, 0)
        _check_int("rollout_timeout_seconds", self.rollout_timeout_seconds, 1)


def _check_int(name: str, v: Any, minimum: int) -> None:
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise ValidationError(f"{name} must be an integer >= {minimum}, got {v!r}")


def deploy_configuration(**kwargs: Any) -> KubernetesDeploymentConfig:
    """``AksWebservice.deploy_configuration(...)``: a validated config; unknown parameters
    raise ValidationError naming them. ``token_auth_enabled=True`` turns the default key auth
    off (both explicitly on is Azure's configuration error). Azure parameters with no meaning here
    (``enable_app_insights``, ``replica_max_concurrent_requests``, ``max_request_wait_time``,
    ``compute_target_name``, ``gpu_cores``, ``blobfuse_enabled``,
    ``primary_key``, ``secondary_key``) are accepted and ignored."""
    ignored = {
        "enable_app_insights",
        "replica_max_concurrent_requests",
        "max_request_wait_time",
        "compute_target_name",
        "gpu_cores",
        "blobfuse_enabled",
        "primary_key",
        "secondary_key",
    }
    names = {f.name for f in dataclasses.fields(KubernetesDeploymentConfig)}
    unknown = sorted(k for k in kwargs if k not in names and k not in ignored)
    if unknown:
        raise ValidationError(f"unknown deploy_configuration parameter(s) for kubernetes: {', '.join(unknown)}")
    fields = {k: v for k, v in kwargs.items() if k in names}
    if fields.get("token_auth_enabled") and "auth_enabled" not in fields:
        fields["auth_enabled"] = False  # key auth is only the default when tokens are not asked for
    cfg = KubernetesDeploymentConfig(**fields)
    cfg.validate()
    return cfg


# deploymentconfig.json (Azure ML v1 CLI schema) -> KubernetesDeploymentConfig
_AKS_TOP = {
    "numReplicas": "num_replicas",
    "namespace": "namespace",
    # this project's additions, same camelCase style
    "registry": "registry",
    "image": "image",
    "context": "context",
    "kubeconfig": "kubeconfig",
    "serviceType": "service_type",
    "portForward": "port_forward",
    "imagePullSecrets": "image_pull_secrets",
}
_AKS_RESOURCES = {
    "cpu": "cpu_cores",
    "memoryInGB": "memory_gb",
    "cpuLimit": "cpu_cores_limit",
    "memoryInGBLimit": "memory_gb_limit",
}
_AKS_AUTOSCALER = {
    "autoscaleEnabled": "autoscale_enabled",
    "minReplicas": "autoscale_min_replicas",
    "maxReplicas": "autoscale_max_replicas",
    "targetUtilization": "autoscale_target_utilization",
    "refreshPeriodInSeconds": "autoscale_refresh_seconds",
}
_AKS_PROBE = {
    "periodSeconds": "period_seconds",
    "initialDelaySeconds": "initial_delay_seconds",
    "timeoutSeconds": "timeout_seconds",
    "successThreshold": "success_threshold",
    "failureThreshold": "failure_threshold",
}


def config_from_aks_json(d: Mapping[str, Any]) -> KubernetesDeploymentConfig:
    """Azure's ``deploymentconfig.json`` with ``computeType`` ``AKS`` (or ``kubernetes``).

    Keys: ``containerResourceRequirements`` {cpu, memoryInGB, cpuLimit, memoryInGBLimit},
    ``autoScaler`` {autoscaleEnabled, minReplicas, maxReplicas, targetUtilization,
    refreshPeriodInSeconds}, ``numReplicas``, ``authEnabled``, ``scoringTimeoutMs``,
    ``livenessProbeRequirements`` {periodSeconds, initialDelaySeconds, timeoutSeconds,
    successThreshold, failureThreshold}, ``namespace``; plus this project's ``registry``,
    ``image``, ``context``, ``kubeconfig``, ``serviceType``, ``portForward``,
    ``imagePullSecrets``. Other keys are ignored, as Azure's CLI does. Raises ValidationError.
    """
    kwargs: dict[str, Any] = {k: v for k, v in common_kwargs_from_json(dict(d)).items() if k != "port"}
    for theirs, ours in _AKS_TOP.items():
        if theirs in d:
            kwargs[ours] = d[theirs]
    for section, table in (
        ("containerResourceRequirements", _AKS_RESOURCES),
        ("autoScaler", _AKS_AUTOSCALER),
        ("livenessProbeRequirements", _AKS_PROBE),
    ):
        sub = d.get(section) or {}
        if not isinstance(sub, Mapping):
            raise ValidationError(f"{section} must be a JSON object, got {sub!r}")
        for theirs, ours in table.items():
            if theirs in sub and sub[theirs] is not None:
                kwargs[ours] = sub[theirs]
    for ours in ("cpu_cores", "memory_gb", "cpu_cores_limit", "memory_gb_limit"):
        if ours in kwargs and isinstance(kwargs[ours], (int, str)) and not isinstance(kwargs[ours], bool):
            try:
                kwargs[ours] = float(kwargs[ours])
            except ValueError:
                raise ValidationError(f"{ours} must be a number, got {kwargs[ours]!r}")
    cfg = KubernetesDeploymentConfig(**kwargs)
    cfg.validate()
    return cfg


# ---------------------------------------------------------------------------------------
# manifests


register_config_class(KubernetesDeploymentConfig)
JSON_PARSERS["aks"] = config_from_aks_json
JSON_PARSERS["kubernetes"] = config_from_aks_json
