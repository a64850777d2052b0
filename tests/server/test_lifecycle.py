"""Worker lifecycle (issue 16): hung run() watchdog, death with the supervisor, max-requests
and memory-cap recycling. Real supervisor and worker processes, real HTTP."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import time
from pathlib import Path

import psutil
import pytest
import requests

from mlmanage_jupyter.server.config import ConfigError, Settings
from mlmanage_jupyter.server.lifecycle import HUNG_RUNS_LIMIT, HungRuns, RequestBudget, parent_gone

pytestmark = pytest.mark.timeout(300)

#: init() waits while the file named HOLD exists (the test holds a replacement's start);
#: run() hangs for good on {"hang": true}, leaks 8 MiB per call on {"leak": true}
SCRIPT = """
import json, os, threading, time
HOLD = {hold!r}
LEAK = []
def init():
    while os.path.exists(HOLD):
        time.sleep(0.05)
def run(raw):
    data = json.loads(raw)
    if data.get("hang"):
        threading.Event().wait()
    if data.get("leak"):
        LEAK.append(b"x" * (8 << 20))
    return {{"pid": os.getpid()}}
"""


def script(tmp_path: Path) -> tuple[str, Path]:
    hold = tmp_path / "hold-init"
    return SCRIPT.format(hold=str(hold)), hold


def poll(pred, timeout: float = 60, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"{what} not reached within {timeout} s")


def metric(url: str, name: str, labels: str) -> float:
    text = requests.get(url + "/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith(f"{name}{{{labels}}}"):
            return float(line.split()[-1])
    return 0.0


# -- hung run() watchdog ----------------------------------------------------------------------


def test_hung_runs_make_the_worker_not_ready_and_it_is_replaced(serve, tmp_path):
    src, hold = script(tmp_path)
    sp = serve(src, MLMANAGE_SCORING_TIMEOUT_MS="300")
    old = sp.status()["workers"][0]
    old_proc = psutil.Process(old)
    hold.touch()  # the replacement's init() waits until the test has seen the wedged state
    s = requests.Session()
    for _ in range(HUNG_RUNS_LIMIT):
        r = s.post(sp.url + "/score", json={"hang": True}, timeout=30)
        assert r.status_code == 504 and r.json()["error"]["code"] == "ScoringTimeout"
    # readiness tells the truth while the worker is wedged, with a JSON reason
    r = requests.get(sp.url + "/health/ready", timeout=10)
    assert r.status_code == 503
    err = r.json()["error"]
    assert err["code"] == "NotReady" and f"{HUNG_RUNS_LIMIT} run() calls are still running" in err["message"]
    st = sp.wait_state("Unhealthy", timeout=30)
    assert f"worker {old}" in st["error"] and "scoring_timeout_ms (300 ms)" in st["error"]
    # the wedged worker still answers with the run threads it has left
    assert s.post(sp.url + "/score", json={}, timeout=30).json() == {"pid": old}
    hold.unlink()
    st = sp.wait_state("Healthy", timeout=60)
    assert st["recycles"]["hung_runs"] == 1 and st["last_recycle"]["worker"] == old
    assert old not in st["workers"] and len(st["workers"]) == 1
    # the old process exits although 4 of its threads never return
    _, alive = psutil.wait_procs([old_proc], timeout=60)
    assert alive == []
    assert requests.get(sp.url + "/health/ready", timeout=10).text == "Ready"
    for _ in range(10):
        r = requests.post(sp.url + "/score", json={}, timeout=30)
        assert r.status_code == 200 and r.json() == {"pid": st["workers"][0]}
    assert metric(sp.url, "mlmanage_worker_recycles_total", 'reason="hung_runs"') == 1.0
    assert f"replacing worker {old} (hung_runs)" in sp.logs()


def test_hung_runs_counter_trips_once_and_counts_returns():
    trips: list[str] = []
    h = HungRuns(500, limit=2, on_trip=trips.append)
    h.expired()
    h.returned()  # that one came back: its thread is free again
    h.expired()
    assert h.reason is None and not trips
    h.expired()
    assert trips and "2 run() calls are still running past scoring_timeout_ms (500 ms)" in trips[0]
    h.expired()
    assert len(trips) == 1 and h.count == 3


# -- death with the supervisor -----------------------------------------------------------------


def test_workers_die_when_the_supervisor_is_killed(serve, tmp_path):
    src, _ = script(tmp_path)
    sp = serve(src, MLMANAGE_WORKERS="2")
    workers = [psutil.Process(pid) for pid in sp.status()["workers"]]
    assert len(workers) == 2
    os.kill(sp.proc.pid, signal.SIGKILL)
    sp.proc.wait(timeout=30)
    _, alive = psutil.wait_procs(workers, timeout=60)
    assert alive == []
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", sp.port))  # nobody serves the port any more
    with pytest.raises(requests.ConnectionError):
        requests.get(sp.url + "/", timeout=5)


def test_parent_gone_compares_with_the_parent_pid():
    assert not parent_gone(os.getppid()) and not parent_gone(None)
    assert parent_gone(os.getppid() + 1_000_000)


# -- max_requests ------------------------------------------------------------------------------


def test_max_requests_replaces_workers_without_a_failed_request(serve, tmp_path):
    src, _ = script(tmp_path)
    sp = serve(src, MLMANAGE_MAX_REQUESTS="15", MLMANAGE_MAX_REQUESTS_JITTER="5")
    pids: set[int] = set()
    failures: list[str] = []
    s = requests.Session()  # keep-alive: a replaced worker drains its connection

    def send() -> bool:
        for _ in range(10):
            try:
                r = s.post(sp.url + "/score", json={}, timeout=30)
                if r.status_code == 200:
                    pids.add(r.json()["pid"])
                else:
                    failures.append(f"{r.status_code} {r.text[:200]}")
            except requests.RequestException as e:
                failures.append(repr(e))
        return (sp.status().get("recycles") or {}).get("max_requests", 0) >= 3

    poll(send, timeout=120, what="3 max_requests recycles")
    assert failures == []
    assert len(pids) >= 3
    st = poll(lambda: (x := sp.status())["last_recycle"]["worker"] not in x["workers"] and x, what="replacement")
    assert st["state"] == "Healthy"
    # new connections reach the new worker (the old one stops accepting as it drains)
    poll(lambda: requests.post(sp.url + "/score", json={}, timeout=30).json() == {"pid": st["workers"][0]})
    assert len(st["workers"]) == 1 and st["last_recycle"]["reason"] == "max_requests"
    assert "max_requests" in st["last_recycle"]["message"]
    assert metric(sp.url, "mlmanage_worker_recycles_total", 'reason="max_requests"') >= 3


def test_request_budget_applies_jitter_and_ends_once():
    limits = {RequestBudget(10, 5, random.Random(seed)).limit for seed in range(50)}
    assert limits <= set(range(10, 16)) and len(limits) > 1
    b = RequestBudget(3)
    assert [b.spend() for _ in range(5)] == [False, False, True, False, False]
    off = RequestBudget(0, 5)
    assert off.limit == 0 and not any(off.spend() for _ in range(10))


# -- memory cap --------------------------------------------------------------------------------


def test_memory_cap_recycles_a_leaking_worker_and_bounds_its_rss(serve, tmp_path):
    cap_gb = 0.15
    src, _ = script(tmp_path)
    sp = serve(src, MLMANAGE_MEMORY_GB=str(cap_gb))
    peak = 0
    failures: list[str] = []
    s = requests.Session()
    sent = 0
    while sent < 80:  # 640 MiB leaked in all
        try:
            r = s.post(sp.url + "/score", json={"leak": True}, timeout=30)
            if r.status_code != 200:
                failures.append(f"{r.status_code} {r.text[:200]}")
        except requests.RequestException as e:
            failures.append(repr(e))
        sent += 1
        for pid in sp.status().get("workers") or []:
            try:
                peak = max(peak, psutil.Process(pid).memory_info().rss)
            except psutil.Error:
                pass
        time.sleep(0.1)  # a paced leak: 80 MiB/s
    st = sp.status()
    assert st["recycles"]["memory"] >= 2, (sent, st)
    assert failures == []
    leaked = sent * 8 << 20
    # bounded: the cap plus what leaks while a replacement starts, far below the total leak
    assert peak < (cap_gb + 0.3) * 1024**3 < leaked, (peak, leaked)
    assert "passed its share of memory_gb" in st["last_recycle"]["message"]
    assert metric(sp.url, "mlmanage_worker_recycles_total", 'reason="memory"') >= 2


# -- the contract ------------------------------------------------------------------------------


def test_lifecycle_settings_round_trip_and_reject_bad_values(tmp_path):
    s = Settings(app_root=Path("/app"), run_dir=tmp_path, max_requests=1000, max_requests_jitter=50, memory_gb=1.5)
    env = s.to_env()
    assert env["MLMANAGE_MAX_REQUESTS"] == "1000" and env["MLMANAGE_MAX_REQUESTS_JITTER"] == "50"
    assert env["MLMANAGE_MEMORY_GB"] == "1.5"
    assert Settings.from_env(env) == s
    default = Settings(app_root=Path("/app"), run_dir=tmp_path)
    assert "MLMANAGE_MEMORY_GB" not in default.to_env() and Settings.from_env(default.to_env()) == default
    for bad, field in (({"memory_gb": 0}, "memory_gb"), ({"max_requests": -1}, "max_requests")):
        with pytest.raises(ConfigError, match=field):
            Settings(app_root=Path("/app"), **bad)
    with pytest.raises(ConfigError, match="MLMANAGE_MEMORY_GB must be a number"):
        Settings.from_env({**env, "MLMANAGE_MEMORY_GB": "lots"})


def test_status_json_reports_no_recycles_at_start(serve, tmp_path):
    src, _ = script(tmp_path)
    sp = serve(src)
    st = sp.status()
    assert st["recycles"] == {"hung_runs": 0, "max_requests": 0, "memory": 0} and st["last_recycle"] is None
    assert json.loads((sp.run_dir / "status.json").read_text())["state"] == "Healthy"


def test_a_worker_whose_supervisor_is_already_gone_exits_at_once(tmp_path):
    import subprocess
    import sys

    # its parent is this test process, not the pid it was told: the supervisor "died" before
    # the worker could ask for PDEATHSIG, so it must not start serving
    env = dict(os.environ, MLMANAGE_SUPERVISOR_PID=str(os.getpid() + 1_000_000), MLMANAGE_RUN_DIR=str(tmp_path))
    proc = subprocess.run(
        [sys.executable, "-m", "mlmanage_jupyter.server.worker"], env=env, capture_output=True, timeout=120
    )
    assert proc.returncode == 4
    assert b"the supervisor (pid" in proc.stderr and b"is gone: exiting" in proc.stderr


BATCH_HANGS = """
import os, threading, time
from inference_schema.schema_decorators import input_schema
from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType
HOLD = {hold!r}
def init():
    while os.path.exists(HOLD):
        time.sleep(0.05)
@input_schema("data", StandardPythonParameterType([[1.0, 2.0]]))
def run(data):
    if ["hang"] in data:
        threading.Event().wait()
    return [sum(row) for row in data]
"""


def test_one_hung_micro_batch_wedges_the_worker_and_it_is_replaced(serve, tmp_path):
    hold = tmp_path / "hold-init"
    sp = serve(
        BATCH_HANGS.format(hold=str(hold)),
        MLMANAGE_MAX_BATCH_SIZE="8",
        MLMANAGE_MAX_LATENCY_MS="1",
        MLMANAGE_SCORING_TIMEOUT_MS="300",
    )
    old = sp.status()["workers"][0]
    assert sp.score({"data": [[1.0, 2.0]]}).json() == [3.0]
    hold.touch()
    assert sp.score({"data": [["hang"]]}).status_code == 504
    # batches run one at a time: every later batched request would wait behind the hung one
    r = requests.get(sp.url + "/health/ready", timeout=10)
    assert r.status_code == 503 and "micro-batched run() call is still running" in r.json()["error"]["message"]
    hold.unlink()
    st = poll(lambda: (s := sp.status()).get("state") == "Healthy" and old not in s["workers"] and s, what="replacement")
    assert st["recycles"]["hung_runs"] == 1
    # the replaced worker stops accepting at its first tick after SIGTERM (a request it took
    # before that may still time out: a known window); then the replacement answers
    poll(lambda: sp.score({"data": [[1.0, 2.0], [3.0, 4.0]]}).json() == [3.0, 7.0], what="recovery")
    poll(lambda: not psutil.pid_exists(old), what="the wedged worker's exit")
    for _ in range(5):
        assert sp.score({"data": [[1.0, 2.0], [3.0, 4.0]]}).json() == [3.0, 7.0]
