"""The Kubernetes API client of the kubernetes target: kubeconfig / in-cluster
configuration, and one place that turns API failures into plain errors."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from typing import Any

from mlmanage_jupyter.core.errors import ValidationError, WebserviceException


def k8s_module():
    try:
        import kubernetes  # noqa: F401
    except ImportError:
        raise ValidationError(
            "the kubernetes target needs the kubernetes client: pip install 'mlmanage-jupyter[kubernetes]'"
        )
    import kubernetes

    return kubernetes


class Clients:
    def __init__(self, runtime: Mapping[str, Any]) -> None:
        k = k8s_module()
        kubeconfig = runtime.get("kubeconfig") or os.environ.get("KUBECONFIG")
        context = runtime.get("context")
        default_path = os.path.expanduser("~/.kube/config")
        try:
            if kubeconfig or os.path.exists(default_path) or context:
                api = k.config.new_client_from_config(config_file=kubeconfig, context=context)
            elif os.environ.get("KUBERNETES_SERVICE_HOST"):
                cfg = k.client.Configuration()
                k.config.load_incluster_config(client_configuration=cfg)
                api = k.client.ApiClient(cfg)
            else:
                raise ValidationError(
                    "no Kubernetes cluster configured: set kubeconfig= or $KUBECONFIG, or create ~/.kube/config"
                )
        except k.config.ConfigException as e:
            where = kubeconfig or default_path
            raise ValidationError(f"cannot use kubeconfig {where} (context {context or 'current'}): {e}")
        self.api = api
        self.host = api.configuration.host
        self.core = k.client.CoreV1Api(api)
        self.apps = k.client.AppsV1Api(api)
        self.autoscaling = k.client.AutoscalingV2Api(api)
        self.ApiException = k.client.exceptions.ApiException


def api_message(e: Any) -> str:
    try:
        body = json.loads(e.body or "{}")
        return body.get("message") or e.reason or str(e.status)
    except (ValueError, TypeError, AttributeError):
        return getattr(e, "reason", None) or str(e)


def call(cl: Clients, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run one API call; translate failures into one plain MlManageError."""
    try:
        return fn(*args, **kwargs)
    except cl.ApiException as e:
        msg = api_message(e)
        if e.status in (401, 403):
            raise WebserviceException(
                f"the cluster at {cl.host} refused to {what} ({e.status}): {msg}; check the kubeconfig "
                "context and your RBAC permissions in that namespace"
            )
        if e.status in (400, 422):
            raise ValidationError(f"the cluster rejected {what}: {msg}")
        raise
    except Exception as e:  # connection refused, DNS, TLS: urllib3 errors
        if type(e).__module__.startswith(("urllib3", "ssl", "socket")) or isinstance(e, OSError):
            raise WebserviceException(f"cannot reach the Kubernetes API at {cl.host} to {what}: {e}")
        raise


