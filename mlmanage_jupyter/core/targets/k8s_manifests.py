"""Kubernetes manifest rendering (no cluster needed); the configuration is in :mod:`.k8s_config`.

:func:`render_manifests` turns a service name, an image reference, the served models and a
config into the Kubernetes objects the ``kubernetes`` target applies (Namespace, Secret,
Deployment, Service, HorizontalPodAutoscaler ``autoscaling/v2``); :func:`manifests_yaml`
prints them as multi-document YAML (the ``--dry-run`` of the magics and CLI), secrets
redacted unless asked. Both are pure functions: no cluster, no ``kubernetes`` package.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from mlmanage_jupyter.core.errors import ValidationError
from mlmanage_jupyter.core.targets.base import engine_settings
from mlmanage_jupyter.core.targets.dockerfile import APP_ROOT
from mlmanage_jupyter.core.targets.k8s_config import (
    DNS_LABEL,
    KubernetesDeploymentConfig,
)
from mlmanage_jupyter.server.auth import TOKEN_SECRET_FIELD
from mlmanage_jupyter.server.config import Settings

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

_LABEL_VALUE = re.compile(r"[^A-Za-z0-9._-]")


def check_service_name(name: str) -> None:
    """Raise ValidationError unless ``name`` is a DNS-1123 label (Service names must be)."""
    if not isinstance(name, str) or not DNS_LABEL.match(name):
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
    """The keys file's JSON: both keys (empty when unset) and, with token auth, ``tokenSecret``."""
    data = {"primaryKey": keys.get("primaryKey", ""), "secondaryKey": keys.get("secondaryKey", "")}
    if keys.get(TOKEN_SECRET_FIELD):
        data[TOKEN_SECRET_FIELD] = keys[TOKEN_SECRET_FIELD]
    return json.dumps(data)


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
    if config.auth_enabled or config.token_auth_enabled:
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
        settings = engine_settings(name, None, config, models=[f"{n}:{v}" for n, v in model_list], app_root=Path(IMAGE_APP_ROOT))
    env = [{"name": k, "value": v} for k, v in pod_settings(settings, config).to_env().items()]
    volume_mounts: list[dict[str, Any]] = [{"name": "run", "mountPath": RUN_DIR}]
    volumes: list[dict[str, Any]] = [{"name": "run", "emptyDir": {}}]
    if config.auth_enabled or config.token_auth_enabled:
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
        token_auth_enabled=config.token_auth_enabled,
        keys_file=Path(f"{KEYS_MOUNT_DIR}/{KEYS_FILE_NAME}")
        if config.auth_enabled or config.token_auth_enabled
        else None,
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
