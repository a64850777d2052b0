"""Azure's deploy-to-local notebook (Azure/MachineLearningNotebooks
how-to-use-azureml/deployment/deploy-to-local/register-model-deploy-local.ipynb), its cells in
order with only the import changed (the alias), on the local target: register, an environment
edited through ``env.python.conda_dependencies``, deploy, ``port``, run, edit score.py +
``reload()``, ``update(...)`` with Azure's ACI/AKS-only parameters, ``Webservice.list``
filters, delete."""

from __future__ import annotations

import json
import socket
import textwrap
import warnings
from pathlib import Path

import pytest

from mlmanage_jupyter import azureml_alias
from mlmanage_jupyter.core.workspace import Workspace

SCORE = """
import json, os
import joblib
import numpy as np

def init():
    global model
    model_path = os.path.join(os.getenv("AZUREML_MODEL_DIR"), "sklearn_regression_model.pkl")
    model = joblib.load(model_path)

def run(raw_data):
    data = np.array(json.loads(raw_data)["data"])
    result = model.predict(data)
    return {answer}
"""


@pytest.fixture
def alias():
    """The notebook's one changed line (``import mlmanage_jupyter.azureml_alias``), undone after
    the test so no other test in this process sees an ``azureml`` package."""
    assert azureml_alias.install()
    yield
    azureml_alias.uninstall()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_deploy_to_local_notebook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sklearn_model, alias) -> None:
    (tmp_path / ".azureml").mkdir()
    (tmp_path / ".azureml" / "config.json").write_text(json.dumps(
        {"subscription_id": "sub", "resource_group": "rg", "workspace_name": "local-nb"}))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLMANAGE_WORKSPACE", raising=False)
    src = tmp_path / "app"
    src.mkdir()
    (src / "score.py").write_text(textwrap.dedent(SCORE.format(answer="result.tolist()")))

    from azureml.core import Workspace as AzWorkspace

    ws = AzWorkspace.from_config()
    print(ws.name, ws.resource_group, ws.location, ws.subscription_id, sep="\n")
    assert isinstance(ws, Workspace) and ws.name == "local-nb"

    from azureml.core.model import Model

    model = Model.register(model_path=str(sklearn_model.path), model_name="sklearn_regression_model.pkl",
                           tags={"area": "diabetes", "type": "regression"},
                           description="Ridge regression model to predict diabetes", workspace=ws)

    from azureml.core import Environment
    from azureml.core.conda_dependencies import CondaDependencies  # noqa: F401

    environment = Environment("LocalDeploy")
    environment.python.conda_dependencies.add_pip_package("inference-schema[numpy-support]")
    environment.python.conda_dependencies.add_pip_package("joblib")
    environment.python.conda_dependencies.add_pip_package("scikit-learn")

    from azureml.core.model import InferenceConfig

    inference_config = InferenceConfig(entry_script="score.py", source_directory=str(src), environment=environment)

    from azureml.core.webservice import LocalWebservice, Webservice

    port = free_port()
    deployment_config = LocalWebservice.deploy_configuration(port=port)
    local_service = Model.deploy(ws, "test", [model], inference_config, deployment_config)
    try:
        local_service.wait_for_deployment()
        print(f"Local service port: {local_service.port}")
        assert local_service.port == port
        assert local_service.token_auth_enabled is False

        sample_input = json.dumps({"data": sklearn_model.X[:2].tolist()})
        expected = sklearn_model.model.predict(sklearn_model.X[:2]).tolist()
        assert local_service.run(sample_input) == pytest.approx(expected)

        # "Reload the service": edit score.py in place, reload, the next run serves the edit
        (src / "score.py").write_text(textwrap.dedent(SCORE.format(answer='{"predictions": result.tolist()}')))
        local_service.reload()
        assert local_service.run(sample_input)["predictions"] == pytest.approx(expected)

        # Azure's update parameters: applied where the target has them, the rest warn once
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            local_service.update(enable_app_insights=True, collect_model_data=True)
            local_service.update(enable_app_insights=True)
        messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
        assert len(messages) == 1, messages  # once, not per call
        assert "update(enable_app_insights=...) is not supported on the local target and is ignored" in messages[0]
        assert local_service.deploy_config.collect_model_data is True
        assert local_service.run(sample_input)["predictions"] == pytest.approx(expected)

        assert [s.name for s in Webservice.list(ws, compute_type="local", model_name=model.name)] == ["test"]
        assert [s.name for s in Webservice.list(ws, image_name=local_service.image.name)] == ["test"]
        assert [s.name for s in Webservice.list(ws, model_id=model.id)] == ["test"]
        assert list(Webservice.list(ws, image_name="no-such-image")) == []
        assert list(Webservice.list(ws, model_id=f"{model.name}:99")) == []
    finally:
        local_service.delete()
    with pytest.raises(Exception, match="test"):
        Webservice(ws, "test")
