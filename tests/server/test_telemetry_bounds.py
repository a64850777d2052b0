"""Issue 16: telemetry can't fill the disk or stall a worker.

- a worker's file rotates by size and the folder keeps a bounded number of files;
- requests refused 401 are counted, not recorded one by one (clients without a key can't
  fill the disk), and request ids are stored cut to a bounded length;
- ``read_telemetry`` / ``GET /telemetry?limit=`` read from the end of the files: a huge
  history costs nothing (checked under an address-space limit that the old whole-file read
  could not live with), and the route is auth-protected whenever auth is on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests
from contexts import telemetry_records

from mlmanage_jupyter.server.collector import read_telemetry
from mlmanage_jupyter.server.config import ConfigError, Settings
from mlmanage_jupyter.server.telemetry import MAX_REQUEST_ID, TelemetryWriter, prune

ECHO = "def init():\n    pass\n\ndef run(data):\n    return data\n"


def _rec(w: TelemetryWriter, rid: str, status: int = 200) -> None:
    w.record(request_id=rid, route="/score", status=status, latency_ms=1.0, request_bytes=10, response_bytes=10)


def _line(t: datetime, rid: str) -> bytes:
    return json.dumps({"time": t.isoformat(), "request_id": rid, "route": "/score", "status": 200}).encode() + b"\n"


def test_a_worker_file_rotates_by_size_and_the_folder_keeps_max_files(tmp_path: Path) -> None:
    w = TelemetryWriter(tmp_path, "svc", ("m:1",), max_bytes=4096, max_files=2)
    for batch in range(40):
        for i in range(20):
            _rec(w, f"b{batch}-{i}")
        w.flush()
    files = sorted((tmp_path / "telemetry").glob("*.jsonl"))
    current = [f for f in files if f.name == f"{w.pid}.jsonl"]
    rotated = [f for f in files if f.name != f"{w.pid}.jsonl"]
    assert len(rotated) == 2, [f.name for f in files]  # 40 batches of ~4 KiB: many rotations, 2 kept
    assert len(current) <= 1
    assert all(f.stat().st_size < 2 * 4096 for f in files)
    # what is kept is the newest, and complete lines
    recs = read_telemetry(tmp_path)
    assert recs[-1]["request_id"] == "b39-19"
    assert all(isinstance(r["request_id"], str) for r in recs)


def test_prune_keeps_running_workers_current_files(tmp_path: Path) -> None:
    folder = tmp_path / "telemetry"
    folder.mkdir()
    mine = folder / f"{os.getpid()}.jsonl"  # this process is alive: its current file stays
    mine.write_bytes(b"{}\n")
    dead = folder / "999999999.jsonl"  # no such pid: a closed file
    dead.write_bytes(b"{}\n")
    old = folder / "1-1.jsonl"
    old.write_bytes(b"{}\n")
    os.utime(old, (1, 1))
    assert prune(folder, 1) == [old]
    assert mine.exists() and dead.exists()


def test_request_ids_are_stored_cut_to_a_bounded_length(tmp_path: Path) -> None:
    w = TelemetryWriter(tmp_path, "svc", ())
    _rec(w, "x" * 100_000)
    w.flush()
    (rec,) = read_telemetry(tmp_path)
    assert rec["request_id"] == "x" * MAX_REQUEST_ID


def test_read_telemetry_reads_from_the_end(tmp_path: Path) -> None:
    folder = tmp_path / "telemetry"
    folder.mkdir()
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    a, b = folder / "1-1.jsonl", folder / "2.jsonl"
    a.write_bytes(b"".join(_line(t0 + timedelta(seconds=2 * i), f"a{i}") for i in range(5000)))
    # b: records interleaved in time with a's, a garbage line and a line being written
    b.write_bytes(
        b"".join(_line(t0 + timedelta(seconds=2 * i + 1), f"b{i}") for i in range(5000)) + b"not json\n" + b'{"time": "2026'
    )
    recs = read_telemetry(tmp_path, limit=3)
    assert [r["request_id"] for r in recs] == ["b4998", "a4999", "b4999"]
    since = t0 + timedelta(seconds=9995)
    assert [r["request_id"] for r in read_telemetry(tmp_path, since=since)] == ["a4998", "b4998", "a4999", "b4999"]
    assert len(read_telemetry(tmp_path)) == 10_000
    assert read_telemetry(tmp_path, limit=0) == []


def test_limit_10_on_a_2_gib_history_needs_no_memory(tmp_path: Path) -> None:
    """0.1.0 read every file whole: 20 s and 2 GB for ?limit=10. Here the history is a 2 GiB
    sparse file and the read runs under a 512 MiB address-space limit."""
    folder = tmp_path / "telemetry"
    folder.mkdir()
    big = folder / "1-1.jsonl"
    with open(big, "wb") as f:
        f.truncate(2 * 1024**3)  # 2 GiB of history (a hole: costs no disk)
        f.seek(0, os.SEEK_END)
        t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
        f.write(b"\n" + b"".join(_line(t0 + timedelta(seconds=i), f"r{i}") for i in range(50)))
    code = textwrap.dedent(
        f"""
        import resource, sys
        from mlmanage_jupyter.server.collector import read_telemetry
        resource.setrlimit(resource.RLIMIT_AS, (768 * 1024**2, 768 * 1024**2))
        recs = read_telemetry({str(tmp_path)!r}, limit=10)
        print(",".join(r["request_id"] for r in recs))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == ",".join(f"r{i}" for i in range(40, 50))


def test_rotation_settings_render_and_are_checked() -> None:
    s = Settings(app_root=Path("/app"), telemetry_max_bytes=1 << 20, telemetry_max_files=2)
    env = s.to_env()
    assert env["MLMANAGE_TELEMETRY_MAX_BYTES"] == str(1 << 20) and env["MLMANAGE_TELEMETRY_MAX_FILES"] == "2"
    assert Settings.from_env({**env, "MLMANAGE_RUN_DIR": "/tmp/x"}).telemetry_max_files == 2
    with pytest.raises(ConfigError, match="telemetry_max_bytes must be an integer >= 4096"):
        Settings(app_root=Path("/app"), telemetry_max_bytes=10)
    with pytest.raises(ConfigError, match="MLMANAGE_TELEMETRY_MAX_FILES must be >= 1"):
        Settings.from_env({"MLMANAGE_TELEMETRY_MAX_FILES": "0", "MLMANAGE_RUN_DIR": "/tmp/x"})


def test_unauthorized_requests_are_counted_not_recorded_and_telemetry_needs_the_key(serve) -> None:
    sp = serve(ECHO, MLMANAGE_AUTH_ENABLED="1", MLMANAGE_PRIMARY_KEY="pk-1", MLMANAGE_SECONDARY_KEY="sk-1")
    big_id = "a" * 4000
    for _ in range(30):
        r = sp.score([1], headers={"x-ms-request-id": big_id})
        assert r.status_code == 401
    ok = sp.score([1], headers={"Authorization": "Bearer pk-1", "x-ms-request-id": "good-1"})
    assert ok.status_code == 200
    # /telemetry: 401 without the key, the records with it
    assert requests.get(f"{sp.url}/telemetry", timeout=10).status_code == 401
    r = requests.get(f"{sp.url}/telemetry", params={"limit": 5}, headers={"Authorization": "Bearer sk-1"}, timeout=10)
    assert r.status_code == 200
    ids = [x["request_id"] for x in r.json()["records"]]
    assert "good-1" in ids and big_id not in ids
    recs = telemetry_records(sp.run_dir)
    assert not any(x["status"] == 401 for x in recs)
    metrics = requests.get(f"{sp.url}/metrics", timeout=10).text
    line = next(x for x in metrics.splitlines() if x.startswith("mlmanage_requests_total") and 'status="401"' in x)
    assert float(line.rsplit(" ", 1)[1]) == 30.0
