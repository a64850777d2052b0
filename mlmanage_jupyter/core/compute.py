"""Azure ML v1's compute targets (``azureml.core.compute``): ``ComputeTarget``,
``AksCompute``, ``AmlCompute``.

Here a compute target is an existing Kubernetes cluster, named by a kubeconfig context and
attached to the workspace (Azure's "attach an existing AKS cluster" flow)::

    attach_config = AksCompute.attach_configuration(cluster_name="my-context")   # or context=, kubeconfig=
    aks_target = ComputeTarget.attach(ws, "myaks", attach_config)
    aks_target.wait_for_completion(show_output=True)
    Model.deploy(ws, "svc", [model], inference_config, AksWebservice.deploy_configuration(),
                 deployment_target=aks_target)      # deploys with that kubeconfig/context

Attached targets are JSON files ``<workspace>/compute/<name>.json`` (``{"name", "type",
"kubeconfig", "context", "namespace"}``). Provisioning a cloud cluster
(``ComputeTarget.create``) raises one ComputeTargetException saying to attach an existing
cluster instead; ``AmlCompute`` (training clusters) can't be created.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mlmanage_jupyter.core.errors import ComputeTargetException, ValidationError
from mlmanage_jupyter.core.fsutil import read_json_object, write_json_atomic
from mlmanage_jupyter.core.workspace import Workspace

_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9-]{1,23}$")  # Azure: 2-24 chars, letter first

__all__ = [
    "AksAttachConfiguration",
    "AksCompute",
    "AmlCompute",
    "ComputeTarget",
    "ComputeTargetException",
]


@dataclass
class AksAttachConfiguration:
    """What ``AksCompute.attach_configuration`` returns: the kubeconfig file (None:
    ``$KUBECONFIG`` or ``~/.kube/config``), its context (None: the current one) and the
    namespace services go to (None: the deployment configuration's)."""

    kubeconfig: str | None = None
    context: str | None = None
    namespace: str | None = None
    cluster_purpose: str | None = None


@dataclass
class ProvisioningConfiguration:
    """What ``provisioning_configuration`` returns; ``ComputeTarget.create`` refuses it."""

    kind: str
    parameters: dict[str, Any]


def _compute_dir(workspace: Workspace) -> Path:
    if not isinstance(workspace, Workspace):
        raise ValidationError(f"workspace must be a Workspace, got {workspace!r}")
    return workspace.path / "compute"


class ComputeTarget:
    """An attached compute target (Azure: ``ComputeTarget(workspace, name)``).

    Raises ComputeTargetException when no target of that name is attached (Azure's
    behaviour, which notebooks catch to decide to create one)."""

    type = "Kubernetes"

    def __new__(cls, workspace: Workspace | None = None, name: str | None = None) -> ComputeTarget:
        if workspace is None or name is None:
            return super().__new__(cls)
        d = _read_target(workspace, name)
        return super().__new__(_TYPES.get(d.get("type", ""), AksCompute))

    def __init__(self, workspace: Workspace | None = None, name: str | None = None) -> None:
        if workspace is None or name is None:
            raise ValidationError("ComputeTarget(workspace, name) needs both a workspace and a name")
        d = _read_target(workspace, name)
        self.workspace = workspace
        self.name: str = d["name"]
        self.attach_configuration_ = AksAttachConfiguration(
            kubeconfig=d.get("kubeconfig"), context=d.get("context"), namespace=d.get("namespace"),
            cluster_purpose=d.get("cluster_purpose"),
        )  # fmt: skip
        self.provisioning_state = "Succeeded"
        self.provisioning_errors: list[Any] = []

    @property
    def kubeconfig(self) -> str | None:
        return self.attach_configuration_.kubeconfig

    @property
    def context(self) -> str | None:
        return self.attach_configuration_.context

    @property
    def namespace(self) -> str | None:
        return self.attach_configuration_.namespace

    @staticmethod
    def attach(workspace: Workspace, name: str, attach_configuration: AksAttachConfiguration) -> ComputeTarget:
        """Attach an existing cluster (a kubeconfig context) under ``name``; replaces a target
        of the same name. Raises ValidationError for a bad name or configuration."""
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise ValidationError(f"compute target name {name!r}: 2-24 letters, digits or '-', starting with a letter")
        if not isinstance(attach_configuration, AksAttachConfiguration):
            raise ValidationError(
                "ComputeTarget.attach needs AksCompute.attach_configuration(...); got "
                f"{type(attach_configuration).__name__}"
            )
        if attach_configuration.kubeconfig and not Path(attach_configuration.kubeconfig).expanduser().is_file():
            raise ValidationError(f"kubeconfig file not found: {attach_configuration.kubeconfig}")
        folder = _compute_dir(workspace)
        folder.mkdir(parents=True, exist_ok=True)
        write_json_atomic(folder / f"{name}.json", {"name": name, "type": "AKS", **asdict(attach_configuration)})
        return ComputeTarget(workspace, name)

    @staticmethod
    def create(workspace: Workspace, name: str, provisioning_configuration: Any) -> ComputeTarget:
        """Always raises ComputeTargetException: no cloud cluster is provisioned here."""
        raise ComputeTargetException(
            f"can't provision compute target {name!r}: mlmanage-jupyter creates no cloud clusters. Attach an "
            "existing Kubernetes cluster instead: ComputeTarget.attach(ws, name, "
            "AksCompute.attach_configuration(cluster_name='<kubeconfig context>'))"
        )

    @staticmethod
    def list(workspace: Workspace) -> list[ComputeTarget]:
        folder = _compute_dir(workspace)
        if not folder.is_dir():
            return []
        return [ComputeTarget(workspace, p.stem) for p in sorted(folder.glob("*.json"))]

    def wait_for_completion(self, show_output: bool = False, is_delete_operation: bool = False) -> None:
        """Attaching is immediate: nothing to wait for."""
        if show_output:
            print(f"{self.name}: {self.provisioning_state}")

    def get_status(self) -> str:
        return self.provisioning_state

    def detach(self) -> None:
        """Forget this target (the cluster is untouched)."""
        (_compute_dir(self.workspace) / f"{self.name}.json").unlink(missing_ok=True)

    def delete(self) -> None:
        """Azure deletes the cloud resource; here the cluster is not ours: same as :meth:`detach`."""
        self.detach()

    def serialize(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, **asdict(self.attach_configuration_)}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, context={self.context!r}, namespace={self.namespace!r})"


def _read_target(workspace: Workspace, name: str) -> dict[str, Any]:
    p = _compute_dir(workspace) / f"{name}.json"
    if not isinstance(name, str) or not _NAME_RE.match(name) or not p.is_file():
        attached = sorted(q.stem for q in _compute_dir(workspace).glob("*.json")) if _compute_dir(workspace).is_dir() else []
        raise ComputeTargetException(
            f"no compute target named {name!r} is attached (attached: {attached or 'none'}); attach one with "
            "ComputeTarget.attach(ws, name, AksCompute.attach_configuration(cluster_name='<kubeconfig context>'))"
        )
    d, _ = read_json_object(p, "compute target")
    return d


class AksCompute(ComputeTarget):
    """A Kubernetes cluster named by a kubeconfig context (Azure: an AKS cluster)."""

    type = "AKS"

    @staticmethod
    def attach_configuration(
        resource_group: str | None = None,
        cluster_name: str | None = None,
        resource_id: str | None = None,
        cluster_purpose: str | None = None,
        load_balancer_type: str | None = None,
        load_balancer_subnet: str | None = None,
        *,
        kubeconfig: str | os.PathLike[str] | None = None,
        context: str | None = None,
        namespace: str | None = None,
    ) -> AksAttachConfiguration:
        """Azure's parameters plus ours: the kubeconfig ``context`` is ``context``, else
        ``cluster_name`` (Azure's AKS cluster name is usually its kubeconfig context), else the
        current one; ``resource_group``, ``resource_id`` and the load balancer settings are
        accepted and unused."""
        ctx = context or cluster_name
        for label, value in (("context", ctx), ("namespace", namespace)):
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ValidationError(f"AksCompute.attach_configuration {label} must be a non-empty string, got {value!r}")
        return AksAttachConfiguration(
            kubeconfig=str(Path(kubeconfig).expanduser()) if kubeconfig else None, context=ctx, namespace=namespace,
            cluster_purpose=cluster_purpose,
        )  # fmt: skip

    @staticmethod
    def provisioning_configuration(**kwargs: Any) -> ProvisioningConfiguration:
        """Accepted so a notebook's configuration cell runs; ``ComputeTarget.create`` refuses it."""
        return ProvisioningConfiguration("AKS", kwargs)


class AmlCompute(ComputeTarget):
    """Azure's training clusters: importable; creating one raises ComputeTargetException."""

    type = "AmlCompute"

    @staticmethod
    def provisioning_configuration(**kwargs: Any) -> ProvisioningConfiguration:
        return ProvisioningConfiguration("AmlCompute", kwargs)


_TYPES: dict[str, type[ComputeTarget]] = {"AKS": AksCompute}


def apply_deployment_target(deployment_config: Any, deployment_target: Any) -> Any:
    """Fill a Kubernetes deployment configuration's unset ``kubeconfig``/``context``/``namespace``
    from an attached :class:`ComputeTarget`; returns the configuration (None target: unchanged).
    Raises ValidationError when a compute target is given for a non-Kubernetes configuration."""
    if deployment_target is None:
        return deployment_config
    if not isinstance(deployment_target, ComputeTarget):
        raise ValidationError(f"deployment_target must be a ComputeTarget (ComputeTarget(ws, name)), got {deployment_target!r}")
    if deployment_config is None or not hasattr(deployment_config, "context"):
        raise ValidationError(
            f"deployment_target={deployment_target.name!r} is a Kubernetes cluster: give "
            "deployment_config=AksWebservice.deploy_configuration(...)"
        )
    for attr in ("kubeconfig", "context", "namespace"):
        value = getattr(deployment_target, attr)
        if value and hasattr(deployment_config, attr) and not getattr(deployment_config, attr):
            setattr(deployment_config, attr, value)
    return deployment_config
