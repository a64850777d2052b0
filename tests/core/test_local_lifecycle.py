"""The local target's process lifecycle (issue 16): delete()/update() after a kill -9 of the
supervisor free the port, a port is reusable right after delete (TIME_WAIT), and the memory
cap / max-requests options reach the engine. Real processes, real HTTP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import requests

sys.path.insert(0, str(Path(__file__).parents[1] / "server"))

from contexts import diabetes  # noqa: E402

from mlmanage_jupyter.core.errors import DeploymentFailedError, ValidationError  # noqa: E402
from mlmanage_jupyter.core.targets.base import LocalDeploymentConfig  # noqa: E402
from mlmanage_jupyter.core.targets.configs import config_from_json  # noqa: E402
from mlmanage_jupyter.core.targets.local import LocalTarget, _bindable  # noqa: E402
from mlmanage_jupyter.core.webservice import LocalWebservice  # noqa: E402

pytestmark = pytest.mark.timeout(300)

X, _ = diabetes()
ROWS = X[:3].tolist()


def wait_healthy(target, name, runtime, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = target.status(name, runtime)
        if st.state in ("Healthy", "Failed"):
            assert st.state == "Healthy", f"{st}\n{target.logs(name, runtime)}"
            return
        time.sleep(0.1)
    raise AssertionError(f"{name} not Healthy: {target.status(name, runtime)}\n{target.logs(name, runtime)}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]




def workers_of(runtime) -> list[psutil.Process]:
    st = json.loads((Path(runtime["run_dir"]) / "status.json").read_text())
    return [psutil.Process(pid) for pid in st["workers"]]


def test_delete_after_kill_9_of_the_supervisor_stops_the_workers_and_frees_the_port(target, deploy_request):
    res = target.deploy(deploy_request("orphans", workers=2))
    wait_healthy(target, "orphans", res.runtime)
    workers = workers_of(res.runtime)
    assert len(workers) == 2
    os.kill(res.runtime["pid"], signal.SIGKILL)
    target.delete("orphans", res.runtime)
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in workers)
    assert _bindable(res.runtime["port"])
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{res.runtime['port']}/", timeout=5)


def _stray_worker(runtime) -> subprocess.Popen[bytes]:
    """A worker of the service serving its port on its own, as a supervisor killed before
    workers died with it left them: the generation's environment, its own socket."""
    env = dict(os.environ, **json.loads((Path(runtime["run_dir"]) / "spec.json").read_text())["env"])
    for k in ("MLMANAGE_LISTEN_FD", "MLMANAGE_SUPERVISOR_PID", "MLMANAGE_WORKER_STATUS_FD"):
        env.pop(k, None)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(Path(runtime["run_dir"]) / "prometheus")
    return subprocess.Popen(
        [sys.executable, "-m", "mlmanage_jupyter.server.worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _leave_a_stray_worker(target, name, res) -> subprocess.Popen[bytes]:
    """Once the service is healthy, kill -9 its supervisor and workers and start a stray
    worker of it (:func:`_stray_worker`); return that worker once it serves the port."""
    wait_healthy(target, name, res.runtime)
    os.killpg(res.runtime["pid"], signal.SIGKILL)  # supervisor and workers
    psutil.wait_procs(workers_of(res.runtime), timeout=30)
    stray = _stray_worker(res.runtime)
    deadline = time.monotonic() + 60
    while _serving(res.scoring_uri) != 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    if _serving(res.scoring_uri) != 200:
        stray.kill()
        stray.wait()
        raise AssertionError(f"the stray worker of {name} does not serve {res.scoring_uri}")
    return stray


def _serving(url: str) -> int | None:
    try:
        r = requests.post(url, json={"data": ROWS}, timeout=5)
    except requests.RequestException:
        return None
    return r.status_code


def test_update_after_the_supervisor_died_takes_the_port_back_from_leftover_workers(target, deploy_request):
    port = free_port()
    res = target.deploy(deploy_request("stray", port=port))
    stray = _leave_a_stray_worker(target, "stray", res)  # the leftover serves v1 on the port
    try:
        new = target.update(deploy_request("stray", version=2, port=port), res.runtime)
        assert stray.wait(timeout=30) is not None
        wait_healthy(target, "stray", new.runtime)
        r = requests.post(new.scoring_uri, json={"data": ROWS}, timeout=10)
        assert new.runtime["port"] == port and r.json()["version"] == 2
        target.delete("stray", new.runtime)
        assert _bindable(port)
    finally:
        if stray.poll() is None:
            stray.kill()
            stray.wait()


def test_delete_stops_a_leftover_worker_found_by_its_run_folder(target, deploy_request):
    res = target.deploy(deploy_request("leftover"))
    stray = _leave_a_stray_worker(target, "leftover", res)
    try:
        target.delete("leftover", res.runtime)
        assert stray.wait(timeout=30) is not None
        assert _bindable(res.runtime["port"]) and _serving(res.scoring_uri) is None
    finally:
        if stray.poll() is None:
            stray.kill()
            stray.wait()


def test_delete_names_a_foreign_process_that_holds_the_port(target, monkeypatch, deploy_request):
    import mlmanage_jupyter.core.targets.local as local

    monkeypatch.setattr(local, "PORT_RELEASE_S", 0.5)
    res = target.deploy(deploy_request("foreign"))
    wait_healthy(target, "foreign", res.runtime)
    os.killpg(res.runtime["pid"], signal.SIGKILL)
    psutil.wait_procs(workers_of(res.runtime), timeout=30)
    # a process of the service is still running, and another program took the port meanwhile
    leftover = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)", "mlmanage_jupyter.server"],
        env=dict(os.environ, MLMANAGE_RUN_DIR=res.runtime["run_dir"]),
    )
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.1", res.runtime["port"]))
            s.listen()
            with pytest.raises(DeploymentFailedError) as e:
                target.delete("foreign", res.runtime)
            assert f"port {res.runtime['port']} on 127.0.0.1 is still in use" in str(e.value)
            assert f"held by pid {os.getpid()}" in str(e.value)
        assert leftover.wait(timeout=30) is not None  # the service's own process was stopped
        assert not Path(res.runtime["run_dir"]).exists()
    finally:
        if leftover.poll() is None:
            leftover.kill()
            leftover.wait()
    target.delete("foreign", res.runtime)  # nothing left: no error, whoever has the port now


def test_redeploy_on_the_same_port_right_after_delete_despite_time_wait(target, deploy_request):
    port = free_port()
    res = target.deploy(deploy_request("tw1", port=port, workers=2))
    wait_healthy(target, "tw1", res.runtime)
    sessions = [requests.Session() for _ in range(4)]
    for s in sessions:  # live keep-alive connections, closed by the server when it stops
        for _ in range(3):
            assert s.post(res.scoring_uri, json={"data": ROWS}, timeout=10).status_code == 200
    target.delete("tw1", res.runtime)
    for s in sessions:
        s.close()
    # the server closed first, so its side of those connections lingers on the port
    # (FIN_WAIT2, then TIME_WAIT once the client closed too: about a minute)
    lingering = (psutil.CONN_TIME_WAIT, psutil.CONN_FIN_WAIT2)
    assert any(
        c.laddr and c.laddr.port == port and c.status in lingering for c in psutil.net_connections("tcp")
    ), "no lingering connection on the port: the test would prove nothing"
    again = target.deploy(deploy_request("tw2", port=port))
    wait_healthy(target, "tw2", again.runtime)
    assert requests.post(again.scoring_uri, json={"data": ROWS}, timeout=10).status_code == 200


def test_memory_cap_and_max_requests_reach_the_engine(tmp_path, deploy_request):
    cfg = LocalWebservice.deploy_configuration(memory_gb=0.5, max_requests=1000, max_requests_jitter=50)
    req = deploy_request("knobs")
    req.config = cfg
    env = LocalTarget.generation_env(req, tmp_path / "run", 5555)
    assert env["MLMANAGE_MEMORY_GB"] == "0.5"
    assert env["MLMANAGE_MAX_REQUESTS"] == "1000" and env["MLMANAGE_MAX_REQUESTS_JITTER"] == "50"
    plain = LocalTarget.generation_env(deploy_request("plain"), tmp_path / "run", 5555)
    assert "MLMANAGE_MEMORY_GB" not in plain and plain["MLMANAGE_MAX_REQUESTS"] == "0"
    with pytest.raises(ValidationError, match="memory_gb must be a positive number"):
        LocalWebservice.deploy_configuration(memory_gb=0)
    with pytest.raises(ValidationError, match="max_requests_jitter must be an integer >= 0"):
        LocalWebservice.deploy_configuration(max_requests_jitter=-1)
    dc = config_from_json({"computeType": "local", "port": 6789, "containerResourceRequirements": {"memoryInGB": 0.25}})
    assert isinstance(dc, LocalDeploymentConfig) and dc.memory_gb == 0.25
