"""Kubernetes deployment configuration and manifest rendering (no cluster needed).

:class:`KubernetesDeploymentConfig` mirrors Azure ML v1's
``AksWebservice.deploy_configuration(...)`` (``AksServiceDeploymentConfiguration``): same
parameter names and, where they make sense here, the same defaults (0.1 cores, 0.5 GiB,
auth on, autoscaling 1..10 replicas at 70 % CPU, liveness probe every 10 s after 310 s).
:func:`config_from_aks_json` reads Azure's ``deploymentconfig.json`` with
``"computeType": "AKS"``.

:func:`render_manifests` turns a service name, an image reference, the served models and a
config into the Kubernetes objects the ``kubernetes`` target applies (Namespace, Secret,
Deployment, Service, HorizontalPodAutoscaler ``autoscaling/v2``); :func:`manifests_yaml`
prints them as multi-document YAML (the ``--dry-run`` of the magics and CLI), secrets
redacted unless asked. Both are pure functions: no cluster, no ``kubernetes`` package.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import yaml

from mlmanage_jupyter.core.errors import ValidationError
from mlmanage_jupyter.core.targets.base import DeploymentConfig, common_kwargs_from_json
from mlmanage_jupyter.core.targets.dockerfile import APP_ROOT
from mlmanage_jupyter.server.config import ConfigError, Settings

#: the entry script's folder in every image the docker target builds
IMAGE_APP_ROOT = f"{APP_ROOT}/app"

MANAGED_BY = "mlmanage-jupyter"
LABEL_NAME = "app.kubernetes.io/name"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_SERVICE = "mlmanage.io/service"
LABEL_MODEL_PREFIX = "model.mlmanage.io/"  # model.mlmanage.io/<model name> = <version>
LABEL_IMAGE_TAG = "mlmanage.io/image-tag"
ANNOTATION_MODELS = "mlmanage.io/models"  # "name:version,name:version" (exact names)
ANNOTATION_IMAGE = "mlmanage.io/image"  # the full image reference
ANNOTATION_TEMPLATE_HASH = "mlmanage.io/template-hash"  # on the pod template: which rollout a pod belongs to

CONTAINER_NAME = "scoring"
CONTAINER_PORT = 5001
SERVICE_PORT = 80
KEYS_MOUNT_DIR = "/etc/mlmanage/keys"
KEYS_FILE_NAME = "keys.json"
RUN_DIR = "/var/run/mlmanage"
REDACTED = "<redacted>"

SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"[^A-Za-z0-9._-]")


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
        if self.namespace is not None and not _DNS_LABEL.match(str(self.namespace)):
            raise ValidationError(
                f"namespace {self.namespace!r} is not a valid Kubernetes name: lowercase letters, digits and '-', at most 63"
            )
        if self.service_type not in SERVICE_TYPES:
            raise ValidationError(f"service_type must be one of {', '.join(SERVICE_TYPES)}, got {self.service_type!r}")
        if self.image_pull_secrets is not None:
            if not isinstance(self.image_pull_secrets, list) or not all(
                isinstance(s, str) and _DNS_LABEL.match(s) for s in self.image_pull_secrets
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
    raise ValidationError naming them. Azure parameters with no meaning here
    (``enable_app_insights``, ``replica_max_concurrent_requests``, ``max_request_wait_time``,
    ``token_auth_enabled``, ``compute_target_name``, ``gpu_cores``, ``blobfuse_enabled``,
    ``primary_key``, ``secondary_key``) are accepted and ignored."""
    ignored = {
        "enable_app_insights",
        "replica_max_concurrent_requests",
        "max_request_wait_time",
        "token_auth_enabled",
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
    cfg = KubernetesDeploymentConfig(**{k: v for k, v in kwargs.items() if k in names})
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


def check_service_name(name: str) -> None:
    """Raise ValidationError unless ``name`` is a DNS-1123 label (Service names must be)."""
    if not isinstance(name, str) or not _DNS_LABEL.match(name):
        raise ValidationError(
            f"service name {name!r} cannot be a Kubernetes name: use lowercase letters, digits and '-', "
            "starting and ending with a letter or digit, at most 63 characters"
        )


def _label_value(v: str) -> str:
    v = _LABEL_VALUE.sub("-", str(v))[:63].strip("-._")
    return v


def normalize_models(models: Iterable[Any]) -> list[tuple[str, str]]:
    """``[(name, version)]`` from ``"name:version"`` strings, ``(name, version)`` pairs,
    ``{"name", "version"}`` dicts or objects with ``.name`` and ``.version`` (Model)."""
    out: list[tuple[str, str]] = []
    for m in models or []:
        if isinstance(m, str):
            name, sep, version = m.rpartition(":")
            if not sep or not name:
                raise ValidationError(f"model {m!r} must be written name:version")
        elif isinstance(m, Mapping):
            name, version = m.get("name"), m.get("version")
        elif isinstance(m, (tuple, list)) and len(m) == 2:
            name, version = m
        else:
            name, version = getattr(m, "name", None), getattr(m, "version", None)
        if not name or version is None:
            raise ValidationError(f"cannot tell the name and version of model {m!r}")
        out.append((str(name), str(version)))
    return out


def object_labels(name: str, component: str) -> dict[str, str]:
    """The labels every object of service ``name`` carries (delete finds them by these)."""
    return {
        LABEL_NAME: name,
        LABEL_MANAGED_BY: MANAGED_BY,
        LABEL_SERVICE: name,
        LABEL_COMPONENT: component,
    }


def selector_labels(name: str) -> dict[str, str]:
    return {LABEL_SERVICE: name, LABEL_MANAGED_BY: MANAGED_BY}


def _quantity_cpu(cores: float) -> str:
    return f"{max(1, round(cores * 1000))}m"


def _quantity_memory(gib: float) -> str:
    return f"{max(1, round(gib * 1024))}Mi"


def keys_json(keys: Mapping[str, str]) -> str:
    return json.dumps({"primaryKey": keys.get("primaryKey", ""), "secondaryKey": keys.get("secondaryKey", "")})


def render_manifests(
    name: str,
    image_ref: str,
    models: Iterable[Any],
    config: KubernetesDeploymentConfig,
    keys: Mapping[str, str] | None = None,
    *,
    redact: bool = False,
    settings: Settings | None = None,
) -> list[dict[str, Any]]:
    """The Kubernetes objects for service ``name`` running ``image_ref``, in apply order.

    Args:
        name: service name (a DNS-1123 label).
        image_ref: image reference the cluster pulls (``registry/name:tag``).
        models: served models (see :func:`normalize_models`); they become labels
            ``model.mlmanage.io/<name>: <version>`` and the ``mlmanage.io/models`` annotation.
        config: the deployment configuration (validated here).
        keys: ``{"primaryKey", "secondaryKey"}``; written only into the Secret (which exists
            when ``config.auth_enabled``). Missing keys render as empty strings.
        redact: replace secret values by ``<redacted>``.
        settings: the scoring engine's settings (``DeployRequest.settings``); default: those
            of ``config`` and ``models``. Rendered into the container's ``env`` with
            :func:`pod_settings` (``Settings.to_env()``).

    Returns:
        plain dicts: Namespace (unless ``default``), Secret (when auth is on), Service,
        Deployment, HorizontalPodAutoscaler (``autoscaling/v2``, when autoscaling is on).

    Raises:
        ValidationError: a bad name, image reference, model or config field.
    """
    check_service_name(name)
    if not isinstance(image_ref, str) or not image_ref.strip() or any(c.isspace() for c in image_ref):
        raise ValidationError(f"image reference {image_ref!r} is not valid (no spaces, not empty)")
    if not isinstance(config, KubernetesDeploymentConfig):
        raise ValidationError(f"the kubernetes target needs a KubernetesDeploymentConfig, got {type(config).__name__}")
    config.validate()
    model_list = normalize_models(models)
    ns = config.resolved_namespace
    tag = image_ref.rsplit("@", 1)[0].rsplit("/", 1)[-1]
    tag = tag.split(":", 1)[1] if ":" in tag else "latest"

    def meta(component: str, extra_labels: bool = True) -> dict[str, Any]:
        labels = object_labels(name, component)
        annotations: dict[str, str] = {}
        if extra_labels:
            for mname, mver in model_list:
                key = _label_value(mname)
                if key:
                    labels[LABEL_MODEL_PREFIX + key] = _label_value(mver) or "unknown"
            if model_list:
                annotations[ANNOTATION_MODELS] = ",".join(f"{n}:{v}" for n, v in model_list)
            annotations[ANNOTATION_IMAGE] = image_ref
            if _label_value(tag):
                labels[LABEL_IMAGE_TAG] = _label_value(tag)
        m: dict[str, Any] = {"name": name, "namespace": ns, "labels": labels}
        if annotations:
            m["annotations"] = annotations
        return m

    objs: list[dict[str, Any]] = []
    if ns != "default":
        objs.append(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": ns, "labels": {LABEL_MANAGED_BY: MANAGED_BY}},
            }
        )
    secret_name = f"{name}-keys"
    if config.auth_enabled:
        value = REDACTED if redact else keys_json(keys or {})
        secret_meta = meta("keys", extra_labels=False)
        secret_meta["name"] = secret_name
        objs.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": secret_meta,
                "type": "Opaque",
                "stringData": {KEYS_FILE_NAME: value},
            }
        )

    if settings is None:
        try:
            settings = Settings(
                app_root=Path(IMAGE_APP_ROOT),
                models=tuple(f"{n}:{v}" for n, v in model_list),
                service_name=name,
                workers=config.workers,
                auth_enabled=config.auth_enabled,
                scoring_timeout_ms=config.scoring_timeout_ms,
                max_request_bytes=config.max_request_bytes,
                collect_model_data=config.collect_model_data,
            )
        except ConfigError as e:
            raise ValidationError(str(e)) from None
    env = [{"name": k, "value": v} for k, v in pod_settings(settings, config).to_env().items()]
    volume_mounts: list[dict[str, Any]] = [{"name": "run", "mountPath": RUN_DIR}]
    volumes: list[dict[str, Any]] = [{"name": "run", "emptyDir": {}}]
    if config.auth_enabled:
        volume_mounts.append({"name": "keys", "mountPath": KEYS_MOUNT_DIR, "readOnly": True})
        volumes.append({"name": "keys", "secret": {"secretName": secret_name, "defaultMode": 0o400}})

    requests = {"cpu": _quantity_cpu(config.cpu_cores), "memory": _quantity_memory(config.memory_gb)}
    limits = {
        "cpu": _quantity_cpu(config.cpu_cores_limit or config.cpu_cores),
        "memory": _quantity_memory(config.memory_gb_limit or config.memory_gb),
    }
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": image_ref,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": CONTAINER_PORT, "protocol": "TCP"}],
        "env": env,
        "resources": {"requests": requests, "limits": limits},
        "livenessProbe": {
            "httpGet": {"path": "/", "port": "http"},
            "periodSeconds": config.period_seconds,
            "initialDelaySeconds": config.initial_delay_seconds,
            "timeoutSeconds": config.timeout_seconds,
            "successThreshold": config.success_threshold,
            "failureThreshold": config.failure_threshold,
        },
        "readinessProbe": {
            "httpGet": {"path": "/health/ready", "port": "http"},
            "periodSeconds": min(config.period_seconds, 5),
            "initialDelaySeconds": 0,
            "timeoutSeconds": config.timeout_seconds,
            "successThreshold": 1,
            "failureThreshold": config.failure_threshold,
        },
        "volumeMounts": volume_mounts,
    }
    pod_spec: dict[str, Any] = {
        "containers": [container],
        "volumes": volumes,
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": 30,
    }
    if config.image_pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": s} for s in config.image_pull_secrets]

    deploy_meta = meta("scoring")
    template_labels = dict(deploy_meta["labels"])
    template_annotations = dict(deploy_meta.get("annotations", {}))
    template = {"metadata": {"labels": template_labels, "annotations": template_annotations}, "spec": pod_spec}
    template_annotations[ANNOTATION_TEMPLATE_HASH] = template_hash(template)
    replicas = config.autoscale_min_replicas if config.autoscaling else (config.num_replicas or 1)
    service_meta = meta("scoring")
    objs.append(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": service_meta,
            "spec": {
                "type": config.service_type,
                "selector": selector_labels(name),
                "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}],
            },
        }
    )
    objs.append(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": deploy_meta,
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": selector_labels(name)},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
                "template": template,
            },
        }
    )
    if config.autoscaling:
        period = config.autoscale_refresh_seconds
        objs.append(
            {
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "metadata": meta("autoscaler"),
                "spec": {
                    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                    "minReplicas": config.autoscale_min_replicas,
                    "maxReplicas": config.autoscale_max_replicas,
                    "metrics": [
                        {
                            "type": "Resource",
                            "resource": {
                                "name": "cpu",
                                "target": {
                                    "type": "Utilization",
                                    "averageUtilization": config.autoscale_target_utilization,
                                },
                            },
                        }
                    ],
                    "behavior": {
                        "scaleUp": {"policies": [{"type": "Percent", "value": 100, "periodSeconds": period}]},
                        "scaleDown": {"policies": [{"type": "Percent", "value": 100, "periodSeconds": period}]},
                    },
                },
            }
        )
    return objs


def pod_settings(settings: Settings, config: KubernetesDeploymentConfig) -> Settings:
    """``settings`` placed in a pod: listening on ``0.0.0.0:5001``, run folder on an
    ``emptyDir``, the keys file from the Secret's mount when auth is on. Collected data stays
    in the pod's run folder (``$RUN_DIR/modeldata``): a folder or storage account of the
    notebook's machine is not the pod's to use, so those destinations are dropped."""
    return settings.replace(
        host="0.0.0.0",
        port=CONTAINER_PORT,
        run_dir=Path(RUN_DIR),
        auth_enabled=config.auth_enabled,
        keys_file=Path(f"{KEYS_MOUNT_DIR}/{KEYS_FILE_NAME}") if config.auth_enabled else None,
        data_collection_dir=None,
        storage_connection_string=None,
        data_collection_container=None,
    )


def template_hash(template: Mapping[str, Any]) -> str:
    """A short hash of a pod template (without its own hash annotation): which rollout a pod is from."""
    t = json.loads(json.dumps(template))
    t.get("metadata", {}).get("annotations", {}).pop(ANNOTATION_TEMPLATE_HASH, None)
    return hashlib.sha256(json.dumps(t, sort_keys=True).encode()).hexdigest()[:16]


def manifests_yaml(
    name: str,
    image_ref: str,
    models: Iterable[Any],
    config: KubernetesDeploymentConfig,
    keys: Mapping[str, str] | None = None,
    *,
    show_secrets: bool = False,
    settings: Settings | None = None,
) -> str:
    """:func:`render_manifests` as multi-document YAML (``kubectl apply -f -`` reads it).
    Secret values read ``<redacted>`` unless ``show_secrets``."""
    objs = render_manifests(name, image_ref, models, config, keys, redact=not show_secrets, settings=settings)
    return yaml.safe_dump_all(objs, sort_keys=False, default_flow_style=False)


def labels_of(obj: Any) -> dict[str, str]:
    meta = obj.get("metadata") if isinstance(obj, dict) else getattr(obj, "metadata", None)
    if meta is None:
        return {}
    labels = meta.get("labels") if isinstance(meta, dict) else meta.labels
    return dict(labels or {})


def is_ours(obj: Any, name: str) -> bool:
    """True when ``obj`` (a dict or a client model) is labelled as this tool's object of service ``name``."""
    labels = labels_of(obj)
    return labels.get(LABEL_MANAGED_BY) == MANAGED_BY and labels.get(LABEL_SERVICE) == name
