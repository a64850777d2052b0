"""``LocalWebservice.deploy_to_cloud(deployment_target=aks_target)`` (Azure ML v1): a local
service's content sent to an attached Kubernetes cluster (kmock's API emulator here, through the
real ``kubernetes`` client), with ``image=`` naming an already pushed image so nothing is built."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlmanage_jupyter.core.compute import AksCompute, ComputeTarget
from mlmanage_jupyter.core.environment import InferenceConfig
from mlmanage_jupyter.core.model import Model
from mlmanage_jupyter.core.webservice import AksWebservice, LocalWebservice, Webservice
from mlmanage_jupyter.core.workspace import Workspace

pytest.importorskip("kubernetes")
pytestmark = pytest.mark.kubernetes

IMAGE = os.environ.get("MLMANAGE_TEST_K8S_IMAGE", "registry.example:5000/ml/echo:v1")


def test_deploy_to_cloud_on_an_attached_cluster(kube, namespace, tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    (tmp_path / "model.txt").write_text("weights")
    model = Model.register(ws, tmp_path / "model.txt", "echo")
    src = tmp_path / "src"
    src.mkdir()
    (src / "score.py").write_text("def init():\n    pass\n\ndef run(data):\n    return data\n")
    local = Model.deploy(ws, "echo", [model], InferenceConfig(entry_script="score.py", source_directory=str(src)),
                         LocalWebservice.deploy_configuration())
    try:
        local.wait_for_deployment()
        aks_target = ComputeTarget.attach(
            ws, "myaks", AksCompute.attach_configuration(cluster_name="kmock", kubeconfig=kube.kubeconfig, namespace=namespace)
        )
        cloud = local.deploy_to_cloud(deployment_config=AksWebservice.deploy_configuration(image=IMAGE, service_type="ClusterIP"),
                                      deployment_target=aks_target)
        try:
            assert cloud.name == "echo-cloud" and cloud.compute_type == "kubernetes"
            assert cloud.image.content_hash == local.image.content_hash and cloud.models == ["echo:1"]
            assert (cloud.deploy_config.namespace, cloud.deploy_config.context) == (namespace, "kmock")
            _, apps, _ = kube.clients()
            images = [c.image for d in apps.list_namespaced_deployment(namespace).items for c in d.spec.template.spec.containers]
            assert IMAGE in images
        finally:
            cloud.delete()
        assert sorted(s.name for s in Webservice.list(ws, refresh=False)) == ["echo"]
    finally:
        local.delete()
        ws.close()
