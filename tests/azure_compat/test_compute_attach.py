"""Compute targets as Azure's AKS notebooks use them (production-deploy-to-aks: "attach an
existing AKS cluster", and the ``try: ComputeTarget(ws, name) except ComputeTargetException``
cell), with a kubeconfig context standing for the AKS cluster."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlmanage_jupyter.core.compute import AksCompute, AmlCompute, ComputeTarget, apply_deployment_target
from mlmanage_jupyter.core.errors import ComputeTargetException, ValidationError
from mlmanage_jupyter.core.model import Model
from mlmanage_jupyter.core.webservice import AksWebservice, LocalWebservice
from mlmanage_jupyter.core.workspace import Workspace


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "ws")


def test_notebook_cell_attach_when_missing(ws: Workspace, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")
    aks_name = "myaks"
    try:
        aks_target = ComputeTarget(workspace=ws, name=aks_name)
        found = True
    except ComputeTargetException:
        found = False
        attach_config = AksCompute.attach_configuration(resource_group="rg", cluster_name="kind-ml",
                                                        kubeconfig=kubeconfig, namespace="ml")
        aks_target = ComputeTarget.attach(ws, aks_name, attach_config)
    aks_target.wait_for_completion(show_output=True)
    assert not found
    assert isinstance(aks_target, AksCompute) and aks_target.provisioning_state == "Succeeded"
    again = ComputeTarget(ws, aks_name)
    assert type(again) is AksCompute
    assert (again.context, again.kubeconfig, again.namespace) == ("kind-ml", str(kubeconfig), "ml")
    assert [t.name for t in ComputeTarget.list(ws)] == ["myaks"]
    again.detach()
    with pytest.raises(ComputeTargetException, match=r"no compute target named 'myaks' is attached \(attached: none\)"):
        ComputeTarget(ws, aks_name)


def test_provisioning_is_one_clear_error(ws: Workspace) -> None:
    prov_config = AksCompute.provisioning_configuration(vm_size="Standard_D3_v2", agent_count=3)
    with pytest.raises(ComputeTargetException, match="creates no cloud clusters. Attach an existing Kubernetes cluster"):
        ComputeTarget.create(workspace=ws, name="newaks", provisioning_configuration=prov_config)
    with pytest.raises(ComputeTargetException, match="Attach an existing"):
        ComputeTarget.create(ws, "cpu-cluster", AmlCompute.provisioning_configuration(vm_size="STANDARD_D2_V2"))
    assert ComputeTarget.list(ws) == []


def test_bad_attach_arguments(ws: Workspace, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="compute target name '1bad'"):
        ComputeTarget.attach(ws, "1bad", AksCompute.attach_configuration(cluster_name="c"))
    with pytest.raises(ValidationError, match="kubeconfig file not found"):
        ComputeTarget.attach(ws, "aks", AksCompute.attach_configuration(kubeconfig=tmp_path / "none"))
    with pytest.raises(ValidationError, match="needs AksCompute.attach_configuration"):
        ComputeTarget.attach(ws, "aks", {"cluster_name": "c"})  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="namespace must be a non-empty string"):
        AksCompute.attach_configuration(cluster_name="c", namespace=" ")
    assert ComputeTarget.list(ws) == []


def test_deployment_target_gives_the_kubernetes_config_its_cluster(ws: Workspace, tmp_path: Path) -> None:
    pytest.importorskip("kubernetes")
    target = ComputeTarget.attach(ws, "myaks", AksCompute.attach_configuration(cluster_name="kind-ml", namespace="ml"))
    cfg = apply_deployment_target(AksWebservice.deploy_configuration(cpu_cores=1, memory_gb=1), target)
    assert (cfg.context, cfg.namespace) == ("kind-ml", "ml")
    explicit = apply_deployment_target(AksWebservice.deploy_configuration(namespace="mine"), target)
    assert explicit.namespace == "mine"  # the deployment configuration's own setting wins
    with pytest.raises(ValidationError, match="is a Kubernetes cluster: give deployment_config=AksWebservice"):
        Model.deploy(ws, "svc", [], None, LocalWebservice.deploy_configuration(), deployment_target=target)
    with pytest.raises(ValidationError, match="deployment_target must be a ComputeTarget"):
        Model.deploy(ws, "svc", [], None, None, deployment_target="myaks")
