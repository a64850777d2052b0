"""Azure ML v1 entry scripts, in the shape Azure's docs give them, run unchanged on the local
and the docker target (scripts in ``azure_docs_scripts.py``; every test runs on both): binary ``@rawhttp``, CORS, the Power BI schema,
several models, ``ModelDataCollector``."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
import requests
from azure_docs_scripts import (
    BINARY_SCORE,
    CORS_SCORE,
    DATA_COLLECTION_SCORE,
    MULTI_MODEL_SCORE,
    POWER_BI_SCORE,
    write_source,
)
from PIL import Image as PILImage

pytestmark = pytest.mark.slow


def _png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    PILImage.new("RGB", (width, height), (200, 30, 30)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def placeholder_model(workspace: Any, tmp_path: Path) -> Any:
    from mlmanage_jupyter import Model

    f = tmp_path / "models" / "placeholder.txt"
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text("unused\n")
    return Model.register(workspace, str(f), "placeholder")


@pytest.fixture
def ridge_model(workspace: Any, tmp_path: Path) -> Any:
    """A Ridge regression on 10 features saved as ``sklearn_regression_model.pkl`` (the docs' file)."""
    from sklearn.linear_model import Ridge

    from mlmanage_jupyter import Model

    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 10))
    y = X @ np.arange(1, 11) + 3.0
    f = tmp_path / "ridge" / "sklearn_regression_model.pkl"
    f.parent.mkdir(parents=True)
    joblib.dump(Ridge(alpha=1e-6).fit(X, y), f)
    return Model.register(workspace, str(f), "best_model")


def test_binary_image_with_rawhttp(deploy_azure: Any, placeholder_model: Any, tmp_path: Path) -> None:
    src = write_source(tmp_path / "binary_src", {"score.py": BINARY_SCORE})
    svc = deploy_azure("az-binary", [placeholder_model], src)
    # the client from the docs: requests' multipart upload of the image
    r = requests.post(svc.scoring_uri, files={"image": _png(37, 21)}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json() == [37, 21]
    r = requests.get(svc.scoring_uri, params={"a": "1", "b": "x y"}, timeout=30)
    assert (r.status_code, r.text) == (200, "/score?a=1&b=x+y")
    # a POST without the multipart field: request.files["image"] raises Werkzeug's
    # BadRequestKeyError (a KeyError and a 400), a client fault: 400 naming the field
    r = requests.post(svc.scoring_uri, data=_png(5, 5), headers={"Content-Type": "application/octet-stream"}, timeout=30)
    assert r.status_code == 400 and "no 'image'" in r.json()["error"]["message"]
    # the script's own answer for a method it does not handle
    r = requests.options(svc.scoring_uri, timeout=30)
    assert (r.status_code, r.text) == (500, "bad request")
    assert "scoring a POST" in svc.get_logs()  # print() reaches the service log


def test_cors_preflight_and_echo(deploy_azure: Any, placeholder_model: Any, tmp_path: Path) -> None:
    src = write_source(tmp_path / "cors_src", {"score.py": CORS_SCORE})
    svc = deploy_azure("az-cors", [placeholder_model], src, auth_enabled=True)
    key = svc.get_keys()[0]
    # a browser's preflight carries no credentials: it reaches the script, which answers it
    r = requests.options(
        svc.scoring_uri,
        headers={"Origin": "http://www.example.com", "Access-Control-Request-Method": "POST"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    assert r.headers["Access-Control-Allow-Origin"] == "http://www.example.com"
    assert r.headers["Access-Control-Allow-Methods"] == "OPTIONS, GET, POST"
    assert r.headers["Allow"] == "OPTIONS, GET, POST"
    # POST echoes the raw body (binary too), with the script's headers
    body = bytes(range(256))
    r = requests.post(svc.scoring_uri, data=body, headers={"Authorization": f"Bearer {key}"}, timeout=30)
    assert r.status_code == 200 and r.content == body
    assert r.headers["Access-Control-Allow-Origin"] == "http://www.example.com"
    assert r.headers["x-ms-request-id"]
    # GET and POST still need the key
    assert requests.post(svc.scoring_uri, data=b"x", timeout=30).status_code == 401
    r = requests.get(svc.scoring_uri + "?q=1", headers={"Authorization": f"Bearer {key}"}, timeout=30)
    assert (r.status_code, r.text) == (200, "/score?q=1")
    # an empty POST body is allowed for raw scripts
    r = requests.post(svc.scoring_uri, data=b"", headers={"Authorization": f"Bearer {key}"}, timeout=30)
    assert (r.status_code, r.content) == (200, b"")
    # a method the route does not serve
    assert requests.put(svc.scoring_uri, data=b"x", timeout=30).status_code == 405


def test_power_bi_schema(deploy_azure: Any, ridge_model: Any, tmp_path: Path) -> None:
    src = write_source(tmp_path / "pbi_src", {"score.py": POWER_BI_SCORE})
    svc = deploy_azure("az-powerbi", [ridge_model], src)
    swagger = requests.get(svc.swagger_uri, timeout=30).json()
    schema = swagger["components"]["schemas"]["ServiceInput"]
    assert set(schema["properties"]) == {"Inputs", "GlobalParameters"}
    assert set(schema["properties"]["Inputs"]["properties"]) == {"input1", "input2", "input3"}
    assert "Results" in swagger["components"]["schemas"]["ServiceOutput"]["properties"]
    rows = [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [0] * 10]
    payload = {
        "Inputs": {"input1": rows, "input2": [{"name": "Sarah", "age": 25}], "input3": 0.0},
        "GlobalParameters": 1.0,
    }
    r = requests.post(svc.scoring_uri, json=payload, timeout=30)
    assert r.status_code == 200, r.text
    expected = np.array(rows) @ np.arange(1, 11) + 3.0
    assert np.allclose(r.json(), expected, atol=1e-3)
    # a missing 'Inputs' key: one precise 400
    r = requests.post(svc.scoring_uri, json={"GlobalParameters": 1.0}, timeout=30)
    assert r.status_code == 400 and "'Inputs'" in r.json()["error"]["message"]
    # a plain GET is not served for a non-raw script
    assert requests.get(svc.scoring_uri, timeout=30).status_code == 405


def test_multiple_models_source_directory_and_run_context(deploy_azure: Any, workspace: Any, tmp_path: Path) -> None:
    from mlmanage_jupyter import Model

    def reg(name: str, value: str) -> Any:
        f = tmp_path / "reg" / name / f"{name}.pkl"
        f.parent.mkdir(parents=True, exist_ok=True)
        joblib.dump(value, f)
        return Model.register(workspace, str(f), name)

    first = reg("my_first_model", "first v1")
    reg("my_second_model", "second v1")
    second = reg("my_second_model", "second v2")
    assert (first.version, second.version) == (1, 2)
    src = write_source(
        tmp_path / "my_project",
        {"score.py": MULTI_MODEL_SCORE, "helper.py": "HELLO = 'from helper'\n", "extra.json": '{"threshold": 0.5}'},
    )
    svc = deploy_azure("az-multi", [first, second], src)
    out = svc.run(json.dumps({"data": []}))
    assert (out["first"], out["second"], out["extra"], out["helper"]) == ("first v1", "second v2", {"threshold": 0.5}, "from helper")
    p = out["paths"]
    assert p["first"] == p["first_file"] and p["first"].endswith("/my_first_model/1/my_first_model.pkl")
    assert p["second"].endswith("/my_second_model/2/my_second_model.pkl")
    assert p["first_mlmanage"] == p["first"]
    assert out["env"]["AZUREML_SOURCE_DIRECTORY"] == "my_project"
    assert out["env"]["AZUREML_ENTRY_SCRIPT"] == "my_project/score.py"
    assert out["cwd"] == out["env"]["AML_APP_ROOT"]
    assert out["cloud"].startswith("CloudNotAvailable: Workspace.from_config needs the Azure ML cloud SDK")
    assert "'not_deployed' is not deployed with this service; deployed: my_first_model, my_second_model" in out["missing"]
    logs = svc.get_logs()
    assert "metric init_done=1" in logs


def _collected(svc: Any, n: int) -> Any:
    deadline = time.monotonic() + 30
    while True:
        df = svc.get_collected_data()
        if len(df) >= n or time.monotonic() > deadline:
            return df
        time.sleep(0.3)


def test_model_data_collector(deploy_azure: Any, ridge_model: Any, tmp_path: Path) -> None:
    src = write_source(tmp_path / "dc_src", {"score.py": DATA_COLLECTION_SCORE})
    svc = deploy_azure("az-collect", [ridge_model], src, collect_model_data=True)
    rows = [[1.0] * 10, [0.0] * 10]
    preds = svc.run(json.dumps({"data": rows}))
    assert len(preds) == 2
    # engine's own record (1) + the script's inputs (1) and predictions (1)
    df = _collected(svc, 3)
    script = df[df["designation"].notna()].set_index("designation")
    assert set(script.index) == {"inputs", "predictions"}
    assert script.loc["inputs", "input"] == rows
    assert script.loc["inputs", "feature_names"][:2] == ["feat1", "feat2"]
    assert np.allclose(script.loc["predictions", "prediction"], preds)
    assert script.loc["inputs", "model"] == "best_model" and str(script.loc["inputs", "model_version"]) == "1"
    # both records carry the id of the request that produced them
    assert script.loc["inputs", "request_id"] == script.loc["predictions", "request_id"] != ""
    own = df[df["designation"].isna()]
    assert len(own) == 1 and own.iloc[0]["request_id"] == script.loc["inputs", "request_id"]


def test_model_data_collector_is_a_noop_when_collection_is_off(deploy_azure: Any, ridge_model: Any, tmp_path: Path) -> None:
    src = write_source(tmp_path / "dc_off_src", {"score.py": DATA_COLLECTION_SCORE})
    svc = deploy_azure("az-collect-off", [ridge_model], src)
    assert len(svc.run(json.dumps({"data": [[1.0] * 10]}))) == 1
    assert "data collection is off for this service" in svc.get_logs()
    assert svc.get_collected_data().empty


def test_token_auth_as_azure_documents_it(deploy_azure: Any, ridge_model: Any, workspace: Any, tmp_path: Path) -> None:
    """Azure's token flow (AksWebservice docs: ``token, refresh_by = service.get_token()`` then
    ``Authorization: Bearer <token>``), on every target: a fresh token works; an expired one, a
    forged one and none answer 401."""
    import datetime

    from mlmanage_jupyter.core import deployment
    from mlmanage_jupyter.server.auth import issue_token

    src = write_source(tmp_path / "tok_src", {"score.py": DATA_COLLECTION_SCORE})
    svc = deploy_azure("az-token", [ridge_model], src, token_auth_enabled=True)
    token, refresh_by = svc.get_token()
    assert refresh_by > datetime.datetime.now(datetime.timezone.utc)
    body = json.dumps({"data": [[1.0] * 10]})
    r = requests.post(svc.scoring_uri, data=body, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert r.status_code == 200 and len(r.json()) == 1, r.text
    expired, _ = deployment.get_token(workspace, svc.record, lifetime_s=-1)
    forged = issue_token(svc.name, "guessed-secret", 4_000_000_000)
    for bad in (expired, forged, None):
        headers = {"Authorization": f"Bearer {bad}"} if bad else {}
        r = requests.post(svc.scoring_uri, data=body, headers=headers, timeout=30)
        assert r.status_code == 401 and r.json()["error"]["code"] == "Unauthorized", r.text
