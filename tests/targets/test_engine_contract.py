"""One engine contract on every target: the settings a deployment asks for (service name,
workers, timeouts, body limit, auth, data collection, Azure's
``Environment.environment_variables``) reach the scoring process on local, docker and
kubernetes alike.

local and docker: the entry script answers with the ``os.environ`` it was given, parsed back
with ``Settings.from_env``. kubernetes (kmock: no pod runs): the rendered Deployment's
container ``env``, parsed the same way.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from mlmanage_jupyter.core.environment import Environment, InferenceConfig
from mlmanage_jupyter.core.model import Model
from mlmanage_jupyter.core.targets.base import DockerDeploymentConfig, LocalDeploymentConfig
from mlmanage_jupyter.core.webservice import deploy
from mlmanage_jupyter.server.config import Settings

SCORE = """
import json, os
def init():
    pass
def run(raw_data):
    return {"env": dict(os.environ), "model_dir_exists": os.path.isdir(os.environ["AZUREML_MODEL_DIR"])}
"""

USER_VARS = {
    "GREETING": "hello from Azure, with spaces",
    "MLM_TEST_EMPTY": "",
    "MLM_TEST_JSON": '{"a": [1, 2]}',
    "MLM_TEST_QUOTING": 'say "hi" \\ $HOME ${PATH} caf\u00e9',  # nothing expanded or unescaped on the way
}
ASKED = dict(workers=2, scoring_timeout_ms=23456, max_request_bytes=765432, auth_enabled=True, collect_model_data=True)


def _config(target: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    if target == "local":
        return LocalDeploymentConfig(**ASKED)
    if target == "docker":
        monkeypatch.setenv("MLMANAGE_BASE_IMAGE", request.getfixturevalue("base_image"))
        return DockerDeploymentConfig(**ASKED)
    pytest.importorskip("kubernetes")
    from mlmanage_jupyter.core.targets.kubernetes import KubernetesDeploymentConfig

    kube = request.getfixturevalue("kube")
    return KubernetesDeploymentConfig(
        image="registry.example:5000/ml/contract:v1",
        namespace=request.getfixturevalue("namespace"),
        kubeconfig=kube.kubeconfig,
        service_type="ClusterIP",
        **ASKED,
    )


def _engine_env(svc: Any, target: str, request: pytest.FixtureRequest) -> tuple[dict[str, str], bool | None]:
    """(the scoring process's environment, whether its AZUREML_MODEL_DIR exists there)."""
    if target == "kubernetes":
        _, apps, _ = request.getfixturevalue("kube").clients()
        dep = apps.read_namespaced_deployment(svc.name, svc.runtime["namespace"])
        container = dep.spec.template.spec.containers[0]
        return {e.name: e.value for e in container.env}, None
    if target == "docker":  # the image's own ENV (what a `docker run` of an exported image gets)
        image_env = request.getfixturevalue("docker_client").images.get(svc.runtime["image"]).attrs["Config"]["Env"]
        baked = Settings.from_env(dict(e.split("=", 1) for e in image_env))
        assert dict(baked.environment_variables) == USER_VARS
        assert baked.models == ("contract-model:1",)
        assert (baked.entry_script, baked.source_directory) == ("src/score.py", "src")  # Azure's layout
    svc.wait_for_deployment(timeout_sec=600)
    assert svc.state == "Healthy", svc.get_logs()
    resp = svc.call({"ask": "env"})
    assert resp.status_code == 200, resp.body
    body = resp.body if isinstance(resp.body, dict) else json.loads(resp.body)
    return body["env"], body["model_dir_exists"]


@pytest.mark.parametrize(
    "target",
    [
        "local",
        pytest.param("docker", marks=[pytest.mark.docker, pytest.mark.slow]),
        pytest.param("kubernetes", marks=pytest.mark.kubernetes),
    ],
)
def test_the_engine_gets_what_the_deployment_asked_for(
    target: str, workspace: Any, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "weights.txt").write_text("weights")
    model = Model.register(workspace, tmp_path / "weights.txt", "contract-model")
    src = tmp_path / "src"
    src.mkdir()
    (src / "score.py").write_text(SCORE)
    env = Environment("contract")
    env.environment_variables = dict(USER_VARS)
    env.python.user_managed_dependencies = True  # nothing to install besides the engine
    ic = InferenceConfig(entry_script="score.py", source_directory=str(src), environment=env)
    name = f"contract-{target[:4]}-{uuid.uuid4().hex[:6]}"
    svc = deploy(workspace, name, [model], ic, _config(target, request, tmp_path, monkeypatch))
    try:
        raw, model_dir_exists = _engine_env(svc, target, request)
        got = Settings.from_env(raw)
        assert dict(got.environment_variables) == USER_VARS
        assert {k: raw[k] for k in USER_VARS} == USER_VARS  # verbatim, under their own names
        assert got.service_name == name
        assert got.models == ("contract-model:1",)
        # Azure's layout: the source directory is the folder app/<its name> (AZUREML_SOURCE_DIRECTORY)
        assert (got.entry_script, got.source_directory) == ("src/score.py", "src")
        assert (raw["AZUREML_ENTRY_SCRIPT"], raw["AZUREML_SOURCE_DIRECTORY"]) == ("src/score.py", "src")
        assert (got.workers, got.scoring_timeout_ms, got.max_request_bytes) == (2, 23456, 765432)
        assert got.auth_enabled and got.keys_file is not None
        assert got.collect_model_data
        assert got.model_dir is not None and got.model_dir.endswith("azureml-models/contract-model/1")
        assert model_dir_exists in (True, None)
    finally:
        svc.delete()
