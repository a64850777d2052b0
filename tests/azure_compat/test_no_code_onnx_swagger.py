"""The swagger of a no-code ONNX service describes its answer, ``{"<output name>": value}``,
from the model's outputs (onnxruntime's ``get_outputs()``: names, element types, shapes), and
its request from the model's inputs; real answers of real services validate against it.

The two service tests failed before (ServiceOutput was ``{"type": "object"}`` with no
properties, ServiceInput had none either)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pandas as pd
import pytest

from mlmanage_jupyter import LocalWebservice, Model, Webservice
from mlmanage_jupyter.core.dataset import Dataset
from mlmanage_jupyter.core.no_code import TEMPLATES


def _templates_helper() -> Any:
    spec = importlib.util.spec_from_file_location("no_code_samples_helper", TEMPLATES / "_no_code_samples.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _onnx(estimator: Any, X: np.ndarray, path: Path, input_name: str = "X") -> Path:
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    onx = to_onnx(estimator, initial_types=[("X", FloatTensorType([None, X.shape[1]]))])
    if input_name != "X":  # skl2onnx makes names identifiers: rename in the graph
        onx.graph.input[0].name = input_name
        for node in onx.graph.node:
            node.input[:] = [input_name if n == "X" else n for n in node.input]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(onx.SerializeToString())
    return path


def _deploy(workspace: Any, name: str, model: Any) -> Any:
    svc = Model.deploy(workspace, name, [model], deployment_config=LocalWebservice.deploy_configuration())
    svc.wait_for_deployment()
    assert svc.state == "Healthy", svc.get_logs()
    return svc


def _schemas(svc: Any) -> dict[str, Any]:
    return svc.get_swagger()["components"]["schemas"]


@pytest.fixture
def iris(tmp_path: Path) -> tuple[Any, np.ndarray, Path]:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    X = X.astype(np.float32)
    clf = LogisticRegression(max_iter=500).fit(X, y)
    return clf, X, _onnx(clf, X, tmp_path / "onnx" / "iris.onnx")


@pytest.mark.slow
def test_classifier_swagger_describes_labels_and_probability_maps(workspace: Any, iris: tuple[Any, np.ndarray, Path]) -> None:
    clf, X, path = iris
    model = Model.register(workspace, str(path), "iris-onnx", model_framework=Model.Framework.ONNX)
    svc = _deploy(workspace, "nocode-onnx-swagger", model)
    try:
        schemas = _schemas(svc)
        out = schemas["ServiceOutput"]
        assert out["required"] == ["output_label", "output_probability"]
        assert out["properties"]["output_label"] == {"type": "array", "items": {"type": "integer", "format": "int64"}}
        assert out["properties"]["output_probability"]["items"]["type"] == "object"
        x_schema = schemas["ServiceInput"]["properties"]["X"]
        assert (x_schema["items"]["minItems"], x_schema["items"]["maxItems"]) == (4, 4)

        answer = svc.run({"X": X[:3].tolist()})
        jsonschema.validate(answer, out)
        assert answer["output_label"] == clf.predict(X[:3]).tolist()
        # the swagger's request example, sent as it is, answers what the swagger describes
        example = svc.get_swagger()["paths"]["/score"]["post"]["requestBody"]["content"]["application/json"]["example"]
        jsonschema.validate(svc.run(example), out)
        jsonschema.validate({"X": X[:2].tolist()}, schemas["ServiceInput"])
        # the schema is not a catch-all: other shapes of answer are refused
        for wrong in ({"output_label": answer["output_label"]},
                      {**answer, "output_probability": [[0.1, 0.9]]},
                      {**answer, "output_label": [0.5]}):  # fmt: skip
            with pytest.raises(jsonschema.ValidationError):
                jsonschema.validate(wrong, out)
        # requests keep their forms and their 400s
        assert svc.run({"data": X[:1].tolist()})["output_label"] == clf.predict(X[:1]).tolist()
        bad = svc.call({"x_typo": X[:1].tolist()})
        assert bad.status_code == 400 and "missing ['X']" in bad.body["error"]["message"], bad.body
        bad = svc.call({"X": [["a", "b", "c", "d"]]})
        assert bad.status_code == 400 and "input schema" in bad.body["error"]["message"], bad.body
    finally:
        Webservice(workspace, "nocode-onnx-swagger").delete()


@pytest.mark.slow
def test_regressor_with_sample_dataset_gets_the_output_schema_too(workspace: Any, sklearn_model: Any, tmp_path: Path) -> None:
    columns = [f"c{i}" for i in range(sklearn_model.X.shape[1])]
    store = workspace.get_default_datastore()
    inputs = Dataset.Tabular.register_pandas_dataframe(
        pd.DataFrame(sklearn_model.X, columns=columns), (store, "samples"), "onnx-in", show_progress=False)
    path = _onnx(sklearn_model.model, sklearn_model.X.astype(np.float32), tmp_path / "onnx" / "diabetes.onnx")
    model = Model.register(workspace, str(path), "diabetes-onnx", model_framework=Model.Framework.ONNX,
                           sample_input_dataset=inputs)  # fmt: skip
    svc = _deploy(workspace, "nocode-onnx-samples", model)
    try:
        schemas = _schemas(svc)
        assert list(schemas["ServiceInput"]["properties"]["data"]["items"]["properties"]) == columns
        out = schemas["ServiceOutput"]
        assert out["required"] == ["variable"]
        assert out["properties"]["variable"]["items"] == {
            "type": "array", "items": {"type": "number", "format": "float"}, "minItems": 1, "maxItems": 1}  # fmt: skip
        answer = svc.run({"data": [dict(zip(columns, row.tolist(), strict=True)) for row in sklearn_model.X[:2]]})
        jsonschema.validate(answer, out)
        assert np.allclose(np.ravel(answer["variable"]), sklearn_model.model.predict(sklearn_model.X[:2]), rtol=1e-4)
    finally:
        Webservice(workspace, "nocode-onnx-samples").delete()


@pytest.mark.slow
def test_input_names_that_cannot_be_parameters_keep_the_raw_form(workspace: Any, iris: tuple[Any, np.ndarray, Path],
                                                                 tmp_path: Path) -> None:  # fmt: skip
    clf, X, _ = iris
    path = _onnx(clf, X, tmp_path / "onnx2" / "iris-dotted.onnx", input_name="input.1")  # as torch.onnx names them
    model = Model.register(workspace, str(path), "iris-dotted", model_framework=Model.Framework.ONNX)
    svc = _deploy(workspace, "nocode-onnx-dotted", model)
    try:
        assert svc.run({"input.1": X[:2].tolist()})["output_label"] == clf.predict(X[:2]).tolist()
        bad = svc.call({"input.1": X[:1].tolist(), "extra": 1})
        assert bad.status_code == 400 and "unknown ['extra']" in bad.body["error"]["message"], bad.body
    finally:
        Webservice(workspace, "nocode-onnx-dotted").delete()


@pytest.mark.parametrize(
    ("kind", "shape", "value", "schema"),
    [
        ("tensor(float)", [None, 2], [[1.5, 2.0]], {"type": "array", "items": {"type": "array", "items": {"type": "number", "format": "float"}, "minItems": 2, "maxItems": 2}}),
        ("tensor(int64)", ["batch"], [1, 2, 3], {"type": "array", "items": {"type": "integer", "format": "int64"}}),
        ("tensor(string)", [], "label", {"type": "string"}),
        ("tensor(bool)", None, [[True]], {}),
        ("seq(map(string,tensor(float)))", [], [{"a": 0.5}], {"type": "array", "items": {"type": "object", "additionalProperties": {"type": "number", "format": "float"}}}),
        ("seq(tensor(double))", [], [[1.0], [2.0, 3.0]], {"type": "array", "items": {}}),
        ("optional(tensor(float))", [], None, {}),
    ],
)  # fmt: skip
def test_onnx_type_strings_to_json_schema(kind: str, shape: Any, value: Any, schema: dict[str, Any]) -> None:
    helper = _templates_helper()
    got = helper.onnx_schema(kind, shape)
    assert got == schema
    jsonschema.validate(value, got)
    jsonschema.validate(helper.onnx_example(got), got)  # the swagger's example fits its schema
    json.dumps(helper.onnx_example(got))
