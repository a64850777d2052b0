"""The local target: real supervisor processes, real HTTP, rolling updates under load."""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
import requests

sys.path.insert(0, str(Path(__file__).parents[1] / "server"))

from contexts import (  # noqa: E402
    SLOW_INIT_FAILS,
    diabetes,
    model_predictions,
)

from mlmanage_jupyter.core.errors import DeploymentFailedError, ValidationError  # noqa: E402

X, _ = diabetes()
ROWS = X[:3].tolist()


def wait_state(target, name, runtime, *states, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = target.status(name, runtime)
        if st.state in states:
            return st
        time.sleep(0.1)
    raise AssertionError(f"{name} not {states}: {target.status(name, runtime)}\n{target.logs(name, runtime)}")


def test_deploy_status_score_keys_logs_delete(target, deploy_request):
    req = deploy_request("svc", keys={"primaryKey": "a1", "secondaryKey": "b1"}, auth_enabled=True)
    res = target.deploy(req)
    port = res.runtime["port"]
    assert res.scoring_uri == f"http://127.0.0.1:{port}/score"
    assert res.swagger_uri == f"http://127.0.0.1:{port}/swagger.json"
    st = wait_state(target, "svc", res.runtime, "Healthy", "Failed")
    assert st.state == "Healthy", target.logs("svc", res.runtime)
    keys_file = Path(res.runtime["run_dir"]) / "keys.json"
    assert keys_file.stat().st_mode & 0o777 == 0o600
    r = requests.post(res.scoring_uri, json={"data": ROWS}, headers={"Authorization": "Bearer a1"}, timeout=10)
    assert r.status_code == 200
    assert r.json() == pytest.approx(model_predictions(req.image.context_path, ROWS))
    assert requests.post(res.scoring_uri, json={"data": ROWS}, timeout=10).status_code == 401
    target.set_keys("svc", res.runtime, {"primaryKey": "a2", "secondaryKey": "b1"})
    assert requests.post(res.scoring_uri, json={"data": ROWS}, headers={"Authorization": "Bearer a1"}, timeout=10).status_code == 401
    assert requests.post(res.scoring_uri, json={"data": ROWS}, headers={"Authorization": "Bearer a2"}, timeout=10).status_code == 200
    assert requests.get(res.swagger_uri, timeout=10).json()["info"]["title"] == "svc"
    log = target.logs("svc", res.runtime)
    assert "init() completed" in log
    assert target.logs("svc", res.runtime, tail=1) == log.splitlines(keepends=True)[-1]
    target.delete("svc", res.runtime)
    assert not Path(res.runtime["run_dir"]).exists()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/", timeout=5)
    assert target.status("svc", res.runtime).state == "Unhealthy"


def test_bytecode_caches_go_to_the_run_folder_not_the_build_context(target, deploy_request, monkeypatch):
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)  # scripts/test.sh sets it; users don't
    req = deploy_request("pyc", script="import helper_mod\ndef init():\n    pass\ndef run(raw):\n    return helper_mod.VALUE\n")
    app = req.image.context_path / "app"
    (app / "helper_mod.py").write_text("VALUE = 42\n")
    res = target.deploy(req)
    assert wait_state(target, "pyc", res.runtime, "Healthy", "Failed").state == "Healthy", target.logs("pyc", res.runtime)
    assert requests.post(res.scoring_uri, data="{}", timeout=10).json() == 42
    assert not list(app.rglob("__pycache__")), "the service wrote bytecode into the image's build context"
    assert list((Path(res.runtime["run_dir"]) / "pycache").rglob("helper_mod*.pyc"))


def test_port_in_use_is_a_validation_error(target, deploy_request):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(ValidationError, match=f"port {port}.*in use"):
            target.deploy(deploy_request("busy", port=port))


def test_dead_supervisor_is_unhealthy_with_a_message(target, deploy_request):
    res = target.deploy(deploy_request("gone"))
    wait_state(target, "gone", res.runtime, "Healthy")
    os.killpg(res.runtime["pid"], 9)
    st = wait_state(target, "gone", res.runtime, "Unhealthy", timeout=20)
    assert "is gone" in st.error


def test_failing_init_is_failed_with_traceback(target, deploy_request):
    res = target.deploy(deploy_request("bad", script=SLOW_INIT_FAILS))
    st = wait_state(target, "bad", res.runtime, "Failed", "Healthy")
    assert st.state == "Failed"
    assert "v2 init failed on purpose" in st.error and "Traceback" in st.error
    assert "v2 init failed on purpose" in target.logs("bad", res.runtime)


def _session_processes(sid: int) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            if os.getsid(p.pid) == sid and p.status() != psutil.STATUS_ZOMBIE:
                found.append(p)
    return found


def test_failed_service_releases_its_processes_and_port(target, deploy_request):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res = target.deploy(deploy_request("dead", script=SLOW_INIT_FAILS, port=port, workers=2))
    st = wait_state(target, "dead", res.runtime, "Failed", "Healthy")
    assert st.state == "Failed"
    pid = res.runtime["pid"]
    # the supervisor exits right after writing Failed: wait for it (bounded), then nothing of
    # the service's session (supervisor, workers, a failure server) is left
    with contextlib.suppress(psutil.NoSuchProcess):
        psutil.Process(pid).wait(timeout=60)
    assert _session_processes(pid) == []
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # the port is free
    st = target.status("dead", res.runtime)
    assert st.state == "Failed"
    assert "v2 init failed on purpose" in st.error and "Traceback" in st.error
    log = target.logs("dead", res.runtime)
    assert "Traceback" in log and "v2 init failed on purpose" in log
    # a new deploy on the same port serves right away
    ok = target.deploy(deploy_request("again", port=port))
    assert wait_state(target, "again", ok.runtime, "Healthy", "Failed").state == "Healthy", target.logs("again", ok.runtime)
    assert requests.post(ok.scoring_uri, json={"data": ROWS}, timeout=10).status_code == 200
    target.delete("dead", res.runtime)
    assert not Path(res.runtime["run_dir"]).exists()


class Load:
    """A bounded load generator on loopback: keep-alive sessions, counts every outcome."""

    def __init__(self, url: str, threads: int = 4, max_seconds: float = 120) -> None:
        self.url = url
        self.stop = threading.Event()
        self.ok = 0
        self.failures: list[str] = []
        self.versions: list[int] = []
        self.lock = threading.Lock()
        self.deadline = time.monotonic() + max_seconds
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        s = requests.Session()
        while not self.stop.is_set() and time.monotonic() < self.deadline:
            try:
                r = s.post(self.url, json={"data": ROWS}, timeout=30)
                with self.lock:
                    if r.status_code == 200:
                        self.ok += 1
                        body = r.json()
                        self.versions.append(body["version"] if isinstance(body, dict) else 1)
                    else:
                        self.failures.append(f"{r.status_code} {r.text[:200]}")
            except requests.RequestException as e:
                with self.lock:
                    self.failures.append(repr(e))

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)


@pytest.mark.slow
def test_rolling_update_under_load_loses_no_request(tmp_path, target, deploy_request):
    res = target.deploy(deploy_request("roll", workers=1))
    wait_state(target, "roll", res.runtime, "Healthy")
    with Load(res.scoring_uri) as load:
        time.sleep(1.0)
        res2 = target.update(deploy_request("roll", version=2, workers=2), res.runtime)
        time.sleep(1.0)
    assert res2.scoring_uri == res.scoring_uri
    assert load.failures == []
    assert load.ok > 20
    assert 1 in load.versions and load.versions[-1] == 2
    r = requests.post(res.scoring_uri, json={"data": ROWS}, timeout=10)
    assert r.json()["version"] == 2
    assert r.json()["predictions"] == pytest.approx(model_predictions(tmp_path / "ctx-roll-2", ROWS))
    assert target.status("roll", res.runtime).state == "Healthy"


@pytest.mark.slow
def test_update_with_failing_init_keeps_v1_serving(tmp_path, target, deploy_request):
    res = target.deploy(deploy_request("keep"))
    wait_state(target, "keep", res.runtime, "Healthy")
    with Load(res.scoring_uri, threads=2) as load:
        with pytest.raises(DeploymentFailedError, match="v2 init failed on purpose") as ei:
            target.update(deploy_request("keep", script=SLOW_INIT_FAILS, version=2), res.runtime)
    assert "Traceback" in str(ei.value)
    assert "v2 init failed on purpose" in ei.value.logs
    assert load.failures == [] and load.ok > 0
    r = requests.post(res.scoring_uri, json={"data": ROWS}, timeout=10)
    assert r.status_code == 200 and r.json() == pytest.approx(model_predictions(tmp_path / "ctx-keep-1", ROWS))
    assert target.status("keep", res.runtime).state == "Healthy"
    # a later good update still works
    target.update(deploy_request("keep", version=3), res.runtime)
    assert requests.post(res.scoring_uri, json={"data": ROWS}, timeout=10).json()["version"] == 3


ENV_SCRIPT = """
import json, os
def init():
    pass
def run(raw_data):
    return {n: os.environ.get(n) for n in json.loads(raw_data)["names"]}
"""


def test_update_replaces_the_environment_variables(target, monkeypatch, deploy_request):
    """Azure's environment_variables belong to a generation: an update that drops one drops it,
    and engine variables left in the notebook's own environment never reach the service."""
    monkeypatch.setenv("MLMANAGE_PRIMARY_KEY", "leaked-from-the-notebook")

    def req(version, variables):
        r = deploy_request("envs", script=ENV_SCRIPT, version=version)
        r.settings = r.engine.replace(environment_variables=variables)
        return r

    names = {"names": ["FIRST", "SECOND", "MLMANAGE_PRIMARY_KEY"]}
    res = target.deploy(req(1, {"FIRST": "1"}))
    assert wait_state(target, "envs", res.runtime, "Healthy", "Failed").state == "Healthy", target.logs("envs", res.runtime)
    assert requests.post(res.scoring_uri, json=names, timeout=10).json() == {
        "FIRST": "1",
        "SECOND": None,
        "MLMANAGE_PRIMARY_KEY": None,
    }
    target.update(req(2, {"SECOND": "2"}), res.runtime)
    assert requests.post(res.scoring_uri, json=names, timeout=10).json() == {
        "FIRST": None,
        "SECOND": "2",
        "MLMANAGE_PRIMARY_KEY": None,
    }
