"""No-code deployment as Azure's "No-code model deployment" page writes it, with what
``Model.register`` keeps: a swagger generated from ``sample_input_dataset`` /
``sample_output_dataset`` (column names, types, example; requests parsed as those records),
``resource_configuration`` as the deployment size, and ONNX models (``Model.Framework.ONNX``:
an onnxruntime session, inputs by name), on the local target and on Docker."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlmanage_jupyter import DockerWebservice, LocalWebservice, Model, Webservice
from mlmanage_jupyter.core import no_code
from mlmanage_jupyter.core.dataset import Dataset
from mlmanage_jupyter.core.errors import ValidationError
from mlmanage_jupyter.core.resource_configuration import ResourceConfiguration
from mlmanage_jupyter.core.targets.configs import (
    AciDeploymentConfig,
    DockerDeploymentConfig,
    LocalDeploymentConfig,
)

COLUMNS = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]


def _sample_datasets(workspace: Any, sklearn_model: Any) -> tuple[Any, Any]:
    store = workspace.get_default_datastore()
    inputs = Dataset.Tabular.register_pandas_dataframe(
        pd.DataFrame(sklearn_model.X, columns=COLUMNS), (store, "samples"), "diabetes-in", show_progress=False)
    outputs = Dataset.Tabular.register_pandas_dataframe(
        pd.DataFrame({"prediction": sklearn_model.model.predict(sklearn_model.X)}), (store, "samples"), "diabetes-out",
        show_progress=False)  # fmt: skip
    return inputs, outputs


def _onnx_file(sklearn_model: Any, tmp_path: Path) -> Path:
    from skl2onnx import to_onnx

    onx = to_onnx(sklearn_model.model, sklearn_model.X[:1].astype(np.float32))  # input "X", output "variable"
    path = tmp_path / "onnx" / "diabetes.onnx"
    path.parent.mkdir()
    path.write_bytes(onx.SerializeToString())
    return path


@pytest.mark.slow
def test_sample_datasets_give_the_swagger_and_the_request_shape(workspace: Any, sklearn_model: Any) -> None:
    inputs, outputs = _sample_datasets(workspace, sklearn_model)
    model = Model.register(
        workspace, model_path=str(sklearn_model.path), model_name="diabetes-samples",
        model_framework=Model.Framework.SCIKITLEARN, sample_input_dataset=inputs, sample_output_dataset=outputs,
    )  # fmt: skip
    svc = Model.deploy(workspace, "nocode-samples", [model], deployment_config=LocalWebservice.deploy_configuration())
    try:
        svc.wait_for_deployment()
        assert svc.state == "Healthy", svc.get_logs()
        schemas = svc.get_swagger()["components"]["schemas"]
        data = schemas["ServiceInput"]["properties"]["data"]
        assert list(data["items"]["properties"]) == COLUMNS
        assert data["items"]["properties"]["bmi"]["type"] == "number"
        example = schemas["ServiceInput"]["example"]
        assert len(example["data"]) == 5 and example["data"][0]["bmi"] == pytest.approx(sklearn_model.X[0][2])
        assert schemas["ServiceOutput"]["type"] == "array"
        assert schemas["ServiceOutput"]["example"][0] == pytest.approx(sklearn_model.model.predict(sklearn_model.X[:1])[0])
        # the swagger's example, sent as it is, is a valid request
        assert svc.run(example) == pytest.approx(sklearn_model.model.predict(sklearn_model.X).tolist())
        # a request as the swagger describes it (records; column order doesn't matter)
        records = [dict(reversed(list(zip(COLUMNS, row.tolist(), strict=True)))) for row in sklearn_model.X[:2]]
        assert svc.run({"data": records}) == pytest.approx(sklearn_model.model.predict(sklearn_model.X[:2]).tolist())
        # a record without a column of the sample is the caller's error
        assert svc.call({"data": [{"age": 0.1}]}).status_code >= 400
    finally:
        Webservice(workspace, "nocode-samples").delete()


@pytest.mark.slow
def test_classifier_answers_predict_proba_by_default_as_azure(workspace: Any, tmp_path: Path) -> None:
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    clf = LogisticRegression(max_iter=500).fit(X, y)
    joblib.dump(clf, tmp_path / "iris.pkl")
    model = Model.register(workspace, str(tmp_path / "iris.pkl"), "iris", model_framework=Model.Framework.SCIKITLEARN)
    svc = Model.deploy(workspace, "nocode-iris", [model], deployment_config=LocalWebservice.deploy_configuration())
    try:
        svc.wait_for_deployment()
        assert svc.state == "Healthy", svc.get_logs()
        rows = X[:2].tolist()
        assert np.allclose(svc.run({"data": rows}), clf.predict_proba(X[:2]))
        assert svc.run({"data": rows, "method": "predict"}) == clf.predict(X[:2]).tolist()
    finally:
        Webservice(workspace, "nocode-iris").delete()


def test_resource_configuration_is_the_default_size(workspace: Any, sklearn_model: Any) -> None:
    model = Model.register(workspace, str(sklearn_model.path), "sized", model_framework=Model.Framework.SCIKITLEARN,
                           resource_configuration=ResourceConfiguration(cpu=1.5, memory_in_gb=2))
    rec = [model.record]
    given = DockerWebservice.deploy_configuration()
    cfg = no_code.apply_resource_configuration(given, rec, given=True)
    assert (cfg.cpu_cores, cfg.memory_gb) == (1.5, 2.0)
    assert (given.cpu_cores, given.memory_gb) == (None, None)  # the caller's object is unchanged
    aci = no_code.apply_resource_configuration(AciDeploymentConfig(), rec, given=True)
    assert (aci.cpu_cores, aci.memory_gb) == (1.5, 2.0)  # ACI's defaults (0.1, 0.5) give way
    mine = no_code.apply_resource_configuration(DockerDeploymentConfig(cpu_cores=3), rec, given=True)
    assert (mine.cpu_cores, mine.memory_gb) == (3, 2.0)  # a size the user set wins
    with pytest.warns(UserWarning, match=r"resource_configuration .*cpu=1.5.* local target can't apply.*AciWebservice"):
        local = no_code.apply_resource_configuration(LocalDeploymentConfig(), rec, given=False)
    assert isinstance(local, LocalDeploymentConfig)
    plain = Model.register(workspace, str(sklearn_model.path), "unsized", model_framework=Model.Framework.SCIKITLEARN)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert no_code.apply_resource_configuration(DockerDeploymentConfig(), [plain.record], given=True).cpu_cores is None


@pytest.mark.slow
def test_no_code_onnx_on_local(workspace: Any, sklearn_model: Any, tmp_path: Path) -> None:
    model = Model.register(workspace, model_path=str(_onnx_file(sklearn_model, tmp_path)), model_name="mnist-sample",
                           model_framework=Model.Framework.ONNX, model_framework_version="1.3")
    svc = Model.deploy(workspace, "nocode-onnx", [model], deployment_config=LocalWebservice.deploy_configuration())
    try:
        svc.wait_for_deployment()
        assert svc.state == "Healthy", svc.get_logs()
        expected = sklearn_model.model.predict(sklearn_model.X[:3])
        rows = sklearn_model.X[:3].tolist()
        by_name = svc.run({"X": rows})
        assert list(by_name) == ["variable"]
        assert np.allclose(np.ravel(by_name["variable"]), expected, rtol=1e-4)
        assert np.allclose(np.ravel(svc.run({"data": rows})["variable"]), expected, rtol=1e-4)  # one input: "data" too
        bad = svc.call({"x_typo": rows})
        assert bad.status_code == 400 and "missing ['X']" in bad.body["error"]["message"], bad.body
    finally:
        Webservice(workspace, "nocode-onnx").delete()


def test_no_code_onnx_needs_an_onnx_file(workspace: Any, sklearn_model: Any) -> None:
    model = Model.register(workspace, str(sklearn_model.path), "not-onnx", model_framework=Model.Framework.ONNX)
    with pytest.raises(ValidationError, match=r"Onnx model not-onnx:1 needs a .onnx file.*InferenceConfig"):
        Model.deploy(workspace, "nocode-notonnx", [model])
    assert len(Webservice.list(workspace)) == 0


@pytest.mark.docker
@pytest.mark.slow
def test_no_code_onnx_with_samples_on_docker(workspace: Any, sklearn_model: Any, tmp_path: Path, docker_client: Any,
                                            base_image: str, monkeypatch: pytest.MonkeyPatch,
                                            tmp_path_factory: pytest.TempPathFactory) -> None:
    monkeypatch.setenv("MLMANAGE_BASE_IMAGE", base_image)
    monkeypatch.setenv("MLMANAGE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "azure-compat-docker-cache"))
    inputs, _ = _sample_datasets(workspace, sklearn_model)
    model = Model.register(workspace, model_path=str(_onnx_file(sklearn_model, tmp_path)), model_name="diabetes-onnx",
                           model_framework=Model.Framework.ONNX, sample_input_dataset=inputs,
                           resource_configuration=ResourceConfiguration(cpu=1, memory_in_gb=1))
    svc = Model.deploy(workspace, "nocode-onnx-docker", [model], deployment_config=DockerWebservice.deploy_configuration())
    try:
        svc.wait_for_deployment()
        assert svc.state == "Healthy", svc.get_logs()
        # the model's resource_configuration is the container's size
        host = docker_client.containers.get(svc.record.runtime["container"]).attrs["HostConfig"]
        assert (host["NanoCpus"], host["Memory"]) == (1_000_000_000, 1024**3)
        records = [dict(zip(COLUMNS, row.tolist(), strict=True)) for row in sklearn_model.X[:2]]
        got = svc.run({"data": records})["variable"]
        assert np.allclose(np.ravel(got), sklearn_model.model.predict(sklearn_model.X[:2]), rtol=1e-4)
        props = svc.get_swagger()["components"]["schemas"]["ServiceInput"]["properties"]["data"]["items"]["properties"]
        assert list(props) == COLUMNS
    finally:
        Webservice(workspace, "nocode-onnx-docker").delete()


@pytest.mark.slow
def test_azure_register_and_deploy_notebook_cells(workspace: Any, sklearn_model: Any, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The cells of Azure's v1 notebook "Register model and deploy as webservice"
    (how-to-use-azureml/deployment/deploy-to-cloud/model-register-and-deploy), import changed."""
    import json

    import sklearn

    from mlmanage_jupyter import Dataset, ResourceConfiguration

    monkeypatch.chdir(tmp_path)
    np.savetxt("features.csv", sklearn_model.X, delimiter=",")
    np.savetxt("labels.csv", sklearn_model.model.predict(sklearn_model.X), delimiter=",")
    ws = workspace
    datastore = ws.get_default_datastore()
    datastore.upload_files(files=["./features.csv", "./labels.csv"], target_path="sklearn_regression/", overwrite=True)
    input_dataset = Dataset.Tabular.from_delimited_files(path=[(datastore, "sklearn_regression/features.csv")])
    output_dataset = Dataset.Tabular.from_delimited_files(path=[(datastore, "sklearn_regression/labels.csv")])
    model = Model.register(workspace=ws,
                           model_name="my-sklearn-model",
                           model_path=str(sklearn_model.path),
                           model_framework=Model.Framework.SCIKITLEARN,
                           model_framework_version=sklearn.__version__,
                           sample_input_dataset=input_dataset,
                           sample_output_dataset=output_dataset,
                           resource_configuration=ResourceConfiguration(cpu=1, memory_in_gb=0.5),
                           description="Ridge regression model to predict diabetes progression.",
                           tags={"area": "diabetes", "type": "regression"})
    assert (model.name, model.version) == ("my-sklearn-model", 1)
    with pytest.warns(UserWarning, match=r"local target can't apply.*no deployment_config given"):
        service = Model.deploy(ws, "my-sklearn-service", [model], overwrite=True)
    try:
        service.wait_for_deployment(show_output=False)
        assert service.state == "Healthy", service.get_logs()
        input_payload = json.dumps({"data": [sklearn_model.X[0].tolist()], "method": "predict"})
        output = service.run(input_payload)
        assert output == pytest.approx(sklearn_model.model.predict(sklearn_model.X[:1]).tolist())
        # np.savetxt writes no header, and header=True (the default) takes the first line as one, as in Azure
        swagger = service.get_swagger()["components"]["schemas"]["ServiceInput"]
        first_line = Path("features.csv").read_text().splitlines()[0].split(",")
        assert list(swagger["properties"]["data"]["items"]["properties"]) == first_line
    finally:
        service.delete()


def test_dataset_names_import_through_the_azureml_alias(tmp_path: Path) -> None:
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent("""
        import mlmanage_jupyter.azureml_alias
        from azureml.core import Dataset, Datastore
        from azureml.core.dataset import Dataset as D2
        from azureml.core.datastore import Datastore as S2
        from azureml.data import TabularDataset, FileDataset, DataType
        import mlmanage_jupyter.core.dataset as ours
        assert Dataset is D2 is ours.Dataset and Datastore is S2 and TabularDataset is ours.TabularDataset
        print("ok")
    """)
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
