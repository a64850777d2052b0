"""Inside a built image (only the engine's dependencies: no SQLAlchemy, no Azure SDK),
``azureml.core.model.Model.get_model_path`` and ``mlmanage_jupyter.Model.get_model_path``
return Azure's paths, with one model and with two."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from azure_docs_scripts import write_source

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SCORE = '''
import importlib.util
import json
import os
from azureml.core.model import Model
import azureml
import mlmanage_jupyter


def init():
    pass


def run(raw_data):
    names = json.loads(raw_data)["names"]
    return {
        "azureml": {n: Model.get_model_path(n) for n in names},
        "mlmanage": {n: mlmanage_jupyter.Model.get_model_path(n) for n in names},
        "model_dir": os.environ["AZUREML_MODEL_DIR"],
        "shim": getattr(azureml, "MLMANAGE_SHIM", False),
        "sqlalchemy": importlib.util.find_spec("sqlalchemy") is not None,
    }
'''


def test_get_model_path_inside_an_image(workspace: Any, docker_env: Any, tmp_path: Path) -> None:
    from mlmanage_jupyter import DockerWebservice, InferenceConfig, Model, Webservice

    a = tmp_path / "a" / "model_a.pkl"
    a.parent.mkdir(parents=True)
    a.write_bytes(b"a")
    folder = tmp_path / "b_folder"
    folder.mkdir()
    (folder / "x.bin").write_bytes(b"x")
    (folder / "y.bin").write_bytes(b"y")
    model_a = Model.register(workspace, str(a), "model_a")
    model_b = Model.register(workspace, str(folder), "model_b")
    ic = InferenceConfig(entry_script="score.py", source_directory=str(write_source(tmp_path / "src", {"score.py": SCORE})))
    root = "/var/azureml-app/azureml-models"
    services = []
    try:
        one = Model.deploy(workspace, "az-dk-one", [model_a], ic, DockerWebservice.deploy_configuration())
        services.append(one)
        one.wait_for_deployment()
        out = one.run(json.dumps({"names": ["model_a"]}))
        assert out["shim"] is True and out["sqlalchemy"] is False
        assert out["model_dir"] == f"{root}/model_a/1"
        assert out["azureml"] == out["mlmanage"] == {"model_a": f"{root}/model_a/1/model_a.pkl"}

        two = Model.deploy(workspace, "az-dk-two", [model_a, model_b], ic, DockerWebservice.deploy_configuration())
        services.append(two)
        two.wait_for_deployment()
        out = two.run(json.dumps({"names": ["model_a", "model_b"]}))
        assert out["model_dir"] == root
        expected = {"model_a": f"{root}/model_a/1/model_a.pkl", "model_b": f"{root}/model_b/1/b_folder"}
        assert out["azureml"] == out["mlmanage"] == expected
    finally:
        for svc in services:
            try:
                Webservice(workspace, svc.name).delete()
            except Exception:  # noqa: BLE001 - best effort cleanup
                pass
