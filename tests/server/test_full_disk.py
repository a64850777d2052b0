"""Issue 16: a full disk degrades the scoring engine gracefully, and freeing space brings
everything back by itself.

The engine's run folder (status.json, telemetry, metrics files, data collection) sits on a
small tmpfs the test mounts (needs root: CI runs as root), then filled with a filler file:
scoring keeps answering, telemetry is dropped and counted, the supervisor survives status
writes that fail, and once the filler is gone telemetry and status.json are written again.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import requests
from contexts import telemetry_records

from mlmanage_jupyter.server.lifecycle import claim_metric_files

pytestmark = pytest.mark.slow

ECHO = "import json\n\ndef init():\n    pass\n\ndef run(data):\n    return {'echo': json.loads(data)}\n"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs the tests as root)")
    mnt = tmp_path / "small-disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(disk: Path) -> Path:
    """Fill ``disk`` to the last byte with a filler file; return it."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as f:
        chunk = b"\0" * 65536
        while True:
            try:
                f.write(chunk)
            except OSError:
                break
        while True:  # the last partial blocks
            try:
                f.write(b"\0" * 512)
            except OSError:
                break
    return filler


def metric(url: str, name: str) -> float:
    text = requests.get(f"{url}/metrics", timeout=10).text
    return sum(float(x.rsplit(" ", 1)[1]) for x in text.splitlines() if x.startswith(name + " ") or x.startswith(name + "{"))


def wait_for(cond, timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_full_disk_keeps_serving_drops_telemetry_and_recovers(serve, small_disk: Path, tmp_path: Path) -> None:
    run_dir = small_disk / "run"
    run_dir.mkdir()
    (tmp_path / "run0").symlink_to(run_dir)  # serve()'s first run folder, on the small disk (its log is not)
    sp = serve(ECHO, MLMANAGE_WORKERS="2")
    workers = sp.status()["workers"]
    assert sp.score([0]).status_code == 200

    (run_dir / "spec.json").write_text(json.dumps({"id": "bad", "env": {"MLMANAGE_WORKERS": "0"}}))
    filler = fill(small_disk)
    for i in range(300):
        r = sp.score([i], headers={"x-ms-request-id": f"full-{i}"})
        assert r.status_code == 200 and r.json() == {"echo": [i]}
    # the supervisor must survive a status write on the full disk: SIGHUP with a spec that
    # cannot start (written before the disk filled) makes it write last_update_error
    os.kill(sp.proc.pid, signal.SIGHUP)
    time.sleep(3)
    assert sp.proc.poll() is None, sp.logs()
    assert sp.score(["during"]).status_code == 200
    assert all(_alive(p) for p in workers)
    wait_for(lambda: metric(sp.url, "mlmanage_telemetry_disk_dropped_total") > 0, what="dropped telemetry to be counted")

    filler.unlink()  # space is back
    wait_for(lambda: sp.status().get("last_update_error") is not None, what="status.json to be written again")
    assert sp.status()["state"] == "Healthy" and "MLMANAGE_WORKERS" in sp.status()["last_update_error"]
    for i in range(20):
        assert sp.score([i], headers={"x-ms-request-id": f"after-{i}"}).status_code == 200
    wait_for(lambda: any(r["request_id"] == "after-19" for r in telemetry_records(run_dir)), what="telemetry to resume")
    ids = {r["request_id"] for r in telemetry_records(run_dir)}
    assert not any(i.startswith("full-") for i in ids) or len([i for i in ids if i.startswith("full-")]) < 300
    logs = sp.logs()
    assert logs.count("telemetry: cannot write") <= 2  # one line per worker, not one per flush
    assert "telemetry: writing to" in logs and "works again" in logs
    assert "SIGBUS" not in logs and "Bus error" not in logs


def _workers(sp) -> list[int]:
    """The supervisor's worker pids, from the process table (status.json can't be written)."""
    return [c.pid for c in psutil.Process(sp.proc.pid).children() if c.status() != psutil.STATUS_ZOMBIE]


def test_a_worker_killed_on_a_full_disk_is_replaced_and_serves(serve, small_disk: Path, tmp_path: Path) -> None:
    run_dir = small_disk / "run"
    run_dir.mkdir()
    (tmp_path / "run0").symlink_to(run_dir)
    sp = serve(ECHO)  # one worker: once it is killed only its replacement can answer
    [old] = sp.status()["workers"]
    filler = fill(small_disk)
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: "restarting it" in sp.logs(), what="the supervisor to restart the worker")
    # the request waits in the shared socket's backlog until the replacement accepts it
    r = sp.score(["after kill"])
    assert r.status_code == 200 and r.json() == {"echo": ["after kill"]}
    [new] = _workers(sp)
    assert new != old
    wait_for(lambda: f"worker {new} is ready" in sp.logs(), what="the supervisor to see the replacement ready")
    os.kill(new, signal.SIGKILL)  # the supervisor is not stuck waiting: a second restart works too
    assert sp.score(["again"]).json() == {"echo": ["again"]}

    filler.unlink()
    wait_for(lambda: sp.status().get("workers") == _workers(sp), what="status.json to be written again")
    st = sp.status()
    assert st["state"] == "Healthy" and st["error"] is None and old not in st["workers"] and new not in st["workers"]


def test_a_worker_asks_to_be_replaced_on_a_full_disk(serve, small_disk: Path, tmp_path: Path) -> None:
    run_dir = small_disk / "run"
    run_dir.mkdir()
    (tmp_path / "run0").symlink_to(run_dir)
    sp = serve(ECHO, MLMANAGE_MAX_REQUESTS="10", MLMANAGE_MAX_REQUESTS_JITTER="0")
    [old] = sp.status()["workers"]
    filler = fill(small_disk)
    for i in range(12):  # the 11th answer makes it ask (every route counts: score only here)
        assert sp.score([i]).json() == {"echo": [i]}
    wait_for(lambda: not _alive(old), what="the worker past max_requests to be replaced")
    assert sp.score(["after"]).json() == {"echo": ["after"]}
    assert "cannot ask to be replaced" not in sp.logs()
    # a rolling update completes on the full disk too: the new generation reports ready
    [replacement] = _workers(sp)
    os.kill(sp.proc.pid, signal.SIGHUP)
    wait_for(lambda: not _alive(replacement), what="the rolling update to replace the worker")
    assert sp.score(["updated"]).json() == {"echo": ["updated"]}

    filler.unlink()
    wait_for(lambda: sp.status().get("generation") == 2, what="status.json to be written again")
    st = sp.status()
    assert st["state"] == "Healthy" and st["last_update_error"] is None and st["recycles"]["max_requests"] == 1
    assert st["workers"] == _workers(sp) and replacement not in st["workers"]
    assert "SIGBUS" not in sp.logs() and "exited with code -7" not in sp.logs()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_metric_files_on_a_full_disk_are_refused_and_removed(small_disk: Path) -> None:
    fill(small_disk)
    why = claim_metric_files(str(small_disk), ("counter", "histogram"))
    assert why is not None and "No space left on device" in why and "counter_" in why
    assert not list(small_disk.glob("*.db"))  # no empty file left for /metrics to trip on
