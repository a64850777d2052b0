"""The Webservice surface end to end through the Python API on the local target:
Model.deploy with a real Image, predictions over real HTTP, keys, rolling update, finding
services again from another process, stale services, and bad input that loses nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import joblib
import numpy as np
import pytest
import requests

from mlmanage_jupyter import InferenceConfig, LocalWebservice, Model, Webservice, Workspace
from mlmanage_jupyter.core.errors import (
    DeploymentFailedError,
    InUseError,
    ValidationError,
    WebserviceException,
)
from mlmanage_jupyter.core.store.keys import key_file
from mlmanage_jupyter.core.webservice import ServiceNotFoundError

SCORE = """
import json
import joblib
import numpy as np
from mlmanage_jupyter import Model

def init():
    global model
    model = joblib.load(Model.get_model_path("diabetes"))

def run(data):
    return model.predict(np.array(json.loads(data)["data"])).tolist()
"""


@pytest.fixture
def setup(tmp_path: Path):  # type: ignore[no-untyped-def]
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import LinearRegression, Ridge

    X, y = load_diabetes(return_X_y=True)
    v1, v2 = LinearRegression().fit(X, y), Ridge(alpha=0.5).fit(X, y)
    ws = Workspace(tmp_path / "ws")
    (tmp_path / "score.py").write_text(SCORE)
    joblib.dump(v1, tmp_path / "model.joblib")
    m1 = Model.register(ws, tmp_path / "model.joblib", "diabetes")
    ic = InferenceConfig(entry_script=str(tmp_path / "score.py"))
    services: list[Webservice] = []
    yield ws, m1, ic, X, v1, v2, services
    for s in services:
        try:
            s.delete()
        except Exception:
            pass


def test_deploy_run_keys_update_delete(setup) -> None:  # type: ignore[no-untyped-def]
    ws, m1, ic, X, v1, v2, services = setup
    svc = Model.deploy(ws, "diab", [m1], ic, LocalWebservice.deploy_configuration(auth_enabled=True))
    services.append(svc)
    svc.wait_for_deployment(timeout_sec=120)
    assert svc.state == "Healthy"
    assert svc.scoring_uri.startswith("http://127.0.0.1:") and svc.scoring_uri.endswith("/score")
    np.testing.assert_allclose(svc.run({"data": X[:3].tolist()}), v1.predict(X[:3]))
    # the key guards the endpoint; regen invalidates the old one
    primary, secondary = svc.get_keys()
    body = json.dumps({"data": X[:1].tolist()})
    assert requests.post(svc.scoring_uri, data=body, timeout=10).status_code == 401
    assert requests.post(svc.scoring_uri, data=body, headers={"Authorization": f"Bearer {secondary}"}, timeout=10).ok
    svc.regen_key("Primary")
    assert requests.post(svc.scoring_uri, data=body, headers={"Authorization": f"Bearer {primary}"}, timeout=10).status_code == 401
    assert svc.get_keys()[0] != primary
    np.testing.assert_allclose(svc.run(body), v1.predict(X[:1]))
    with pytest.raises(ValidationError, match="Primary"):
        svc.regen_key("tertiary")
    # the model can't be deleted while the service uses it
    with pytest.raises(InUseError, match="service diab"):
        m1.delete()
    # rolling update to v2 on the same URI
    joblib.dump(v2, Path(ws.path.parent) / "v2.joblib")
    m2 = Model.register(ws, Path(ws.path.parent) / "v2.joblib", "diabetes")
    uri = svc.scoring_uri
    svc.update(models=[m2])
    assert svc.scoring_uri == uri and svc.models == ["diabetes:2"]
    np.testing.assert_allclose(svc.run({"data": X[:2].tolist()}), v2.predict(X[:2]))
    # found again from another process, with its live state
    code = (
        "import sys; from mlmanage_jupyter import Webservice, Workspace\n"
        "s = Webservice(Workspace(sys.argv[1]), 'diab'); print(s.state, s.models[0], s.scoring_uri)"
    )
    out = subprocess.run([sys.executable, "-c", code, str(ws.path)], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["Healthy", "diabetes:2", uri]
    df = Webservice.list(ws).to_dataframe()
    assert df.loc[0, "name"] == "diab" and df.loc[0, "state"] == "Healthy"
    svc.delete()
    services.clear()
    with pytest.raises(ServiceNotFoundError):
        Webservice(ws, "diab")
    with pytest.raises(requests.ConnectionError):
        requests.post(uri, data=body, timeout=5)


def test_broken_entry_script_fails_fast_with_traceback(setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ws, m1, _ic, _X, _v1, _v2, services = setup
    bad = tmp_path / "bad.py"
    bad.write_text("def init():\n    raise RuntimeError('model file is missing a layer')\n\ndef run(data):\n    return 1\n")
    t = time.monotonic()
    svc = Model.deploy(ws, "broken", [m1], InferenceConfig(entry_script=str(bad)))
    services.append(svc)
    with pytest.raises(DeploymentFailedError, match="Failed") as ei:
        svc.wait_for_deployment(timeout_sec=120)
    assert "model file is missing a layer" in ei.value.logs
    assert "Traceback" in svc.get_logs()
    assert time.monotonic() - t < 120  # it ended, not the timeout


def test_bad_input_loses_nothing(setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ws, m1, ic, X, v1, _v2, services = setup
    for name in ("Bad_Name", "../x", "a", "x" * 40, "-x-"):
        with pytest.raises(ValidationError, match="invalid service name"):
            Model.deploy(ws, name, [m1], ic)
    svc = Model.deploy(ws, "keep", [m1], ic)
    services.append(svc)
    svc.wait_for_deployment(timeout_sec=120)
    with pytest.raises(WebserviceException, match="already exists"):
        Model.deploy(ws, "keep", [m1], ic)
    # a port in use: clear error, nothing recorded, the running service untouched
    port = int(svc.scoring_uri.split(":")[2].split("/")[0])
    with pytest.raises(ValidationError, match=str(port)):
        Model.deploy(ws, "other", [m1], ic, LocalWebservice.deploy_configuration(port=port))
    with pytest.raises(ServiceNotFoundError):
        Webservice(ws, "other")
    # an update whose script is broken leaves the old version serving
    broken = tmp_path / "broken.py"
    broken.write_text("def init():\n    1/0\n\ndef run(data):\n    return 0\n")
    with pytest.raises(DeploymentFailedError):
        svc.update(inference_config=InferenceConfig(entry_script=str(broken)))
    np.testing.assert_allclose(svc.run({"data": X[:1].tolist()}), v1.predict(X[:1]))
    assert Webservice(ws, "keep").state == "Healthy"
    with pytest.raises(WebserviceException, match="auth disabled"):
        svc.get_keys()


def test_service_whose_process_died_is_reported_stale(setup) -> None:  # type: ignore[no-untyped-def]
    ws, m1, ic, _X, _v1, _v2, services = setup
    svc = Model.deploy(ws, "stale", [m1], ic)
    services.append(svc)
    svc.wait_for_deployment(timeout_sec=120)
    os.killpg(svc.runtime["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 30
    while Webservice(ws, "stale").state == "Healthy" and time.monotonic() < deadline:
        time.sleep(0.2)
    s = Webservice(ws, "stale")
    assert s.state == "Unhealthy" and "gone" in (s.error or "")
    with pytest.raises(WebserviceException, match="could not reach"):
        s.run("{}")


def test_token_auth_on_the_local_target(setup) -> None:  # type: ignore[no-untyped-def]
    import datetime

    from mlmanage_jupyter import AksWebservice
    from mlmanage_jupyter.core import deployment
    from mlmanage_jupyter.core.targets.configs import config_from_json
    from mlmanage_jupyter.server.auth import issue_token

    ws, m1, ic, X, v1, _, services = setup
    # keys and tokens together: Azure's configuration error, before anything is deployed
    for make in (
        lambda: LocalWebservice.deploy_configuration(auth_enabled=True, token_auth_enabled=True),
        lambda: config_from_json({"computeType": "local", "authEnabled": True, "tokenAuthEnabled": True}),
        lambda: AksWebservice.deploy_configuration(auth_enabled=True, token_auth_enabled=True),
    ):
        with pytest.raises(ValidationError, match="auth_enabled and token_auth_enabled cannot both be true"):
            make()
    aks = AksWebservice.deploy_configuration(token_auth_enabled=True)
    assert aks.token_auth_enabled and not aks.auth_enabled
    svc = Model.deploy(ws, "tok", [m1], ic, LocalWebservice.deploy_configuration(token_auth_enabled=True))
    services.append(svc)
    svc.wait_for_deployment(timeout_sec=120)
    assert svc.token_auth_enabled and not svc.auth_enabled
    token, refresh_after = svc.get_token()
    assert isinstance(refresh_after, datetime.datetime) and refresh_after.tzinfo is not None
    assert refresh_after > datetime.datetime.now(datetime.timezone.utc)
    body = json.dumps({"data": X[:1].tolist()})
    ok = requests.post(svc.scoring_uri, data=body, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert ok.status_code == 200, ok.text
    np.testing.assert_allclose(svc.run(body), v1.predict(X[:1]))  # run() fetches a token itself
    expired, _ = deployment.get_token(ws, svc.record, lifetime_s=-1)
    forged = issue_token("tok", "guessed-secret", 4_000_000_000)
    for bad in (expired, forged, None):
        headers = {"Authorization": f"Bearer {bad}"} if bad else {}
        r = requests.post(svc.scoring_uri, data=body, headers=headers, timeout=10)
        assert r.status_code == 401 and r.json()["error"]["code"] == "Unauthorized", r.text
    # the secret is with the keys (a SQLite workspace: the 0600 keys file), never in the metadata DB
    secret_file = key_file(ws.path, "tok")
    assert secret_file.stat().st_mode & 0o777 == 0o600
    secret = json.loads(secret_file.read_text())["tokenSecret"]
    assert secret.encode() not in b"".join(p.read_bytes() for p in ws.path.glob("metadata.db*"))
    with pytest.raises(WebserviceException, match="auth disabled"):
        svc.get_keys()
