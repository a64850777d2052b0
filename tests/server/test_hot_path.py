"""The pieces of the scoring hot path, in-process: JSON semantics, request ids, header scan,
the timed thread call, telemetry buffering and the worker count."""

from __future__ import annotations

import json
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from infra.aio import run_async

from mlmanage_jupyter.server import jsonio
from mlmanage_jupyter.server.app import RequestIds, headers_dict, scan_head
from mlmanage_jupyter.server.config import ConfigError
from mlmanage_jupyter.server.entry import RunAborted
from mlmanage_jupyter.server.http_limits import accepted_request_id
from mlmanage_jupyter.server.runner import ScoringTimeout, call_in_thread
from mlmanage_jupyter.server.supervisor import cgroup_cpu_quota, usable_cpus, worker_count
from mlmanage_jupyter.server.telemetry import TelemetryWriter

# ------------------------------------------------------------------------------------- JSON
VALUES = [
    {"data": [[1.0, 2.5, -0.0, 1e16, 1e-7, 0.1 + 0.2, 123456789.123456789]]},
    {"ints": [0, -1, 2**53 + 1, 2**63 - 1, -(2**63)], "big": 2**80, "neg_big": -(2**70)},
    {"unicode": "héllo ✓ 日本 😀", "escapes": "quote\" back\\ nl\n tab\t nul\u0000"},
    {"nested": {"a": [True, False, {"b": [1, "2", 3.0]}]}, "empty": {}, "list": []},
    [float("nan"), float("inf"), -float("inf"), 1.5],
    {"none": None, "x": 1},
    {1: "int key", 2.5: "float key", None: "none key"},
    "just a string containing null",
    3.141592653589793,
]


@pytest.mark.parametrize("value", VALUES)
def test_dumps_gives_json_dumps_value(value):
    expected = json.dumps(value)
    got = jsonio.dumps(value)
    # the same JSON document: equal values, NaN/Infinity written as json.dumps writes them
    assert repr(json.loads(got)) == repr(json.loads(expected))
    for token in ("NaN", "Infinity"):
        assert (token in got.decode()) == (token in expected)


def test_dumps_numpy_and_pandas_like_json_default():
    pd = pytest.importorskip("pandas")
    arr32 = np.array([0.1, 1 / 3], dtype=np.float32)
    value = {
        "f32": arr32,
        "f64": np.array([[0.1, np.nan]]),
        "i64": np.int64(7),
        "scalar": np.float64(0.5),
        "df": pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}),
    }
    expected = jsonio.json_dumps(value)
    got = jsonio.dumps(value)
    assert repr(json.loads(got)) == repr(json.loads(expected))
    # float32 values are written as their float64 expansion, as tolist() + json.dumps do
    assert json.loads(got)["f32"] == arr32.tolist()


def test_dumps_refuses_what_json_dumps_refuses():
    import datetime
    from dataclasses import dataclass

    @dataclass
    class Point:
        x: int

    for bad in (object(), Point(1), datetime.datetime(2024, 1, 1)):
        with pytest.raises(TypeError) as ours:
            jsonio.dumps({"v": bad})
        with pytest.raises(TypeError):
            jsonio.json_dumps({"v": bad})
        assert "not JSON serializable" in str(ours.value)


@pytest.mark.parametrize(
    "body",
    [
        b'{"data": [[1.0, 2.0]]}',
        b'{"a": NaN, "b": Infinity, "c": -Infinity}',
        b'{"big": 123456789012345678901234567890}',
        '{"u": "h\u00e9llo \\ud83d\\ude00"}'.encode(),
        b'{"dup": 1, "dup": 2}',
        b'{"lone": "\\ud800"}',
        '{"utf16": 1}'.encode("utf-16"),
        b"  [1, 2.5e300, -0.0]  ",
        b"\xef\xbb\xbf{}",
        b"[1e400, -1e400, 1.0e-400, 18446744073709551615, 18446744073709551616, -9223372036854775809]",
        b"123456789012345678901234567890",
        b"[0.00012345678901234567890, 1.5e-05]",
    ],
)
def test_loads_gives_json_loads_value(body):
    assert repr(jsonio.loads(body)) == repr(json.loads(body))


@pytest.mark.parametrize("body", [b'{"a": 1', b"{'a': 1}", b"\xff\xfe{", b"[1,]", b"\xc3\x28", b"[1] x"])
def test_loads_raises_json_loads_error(body):
    with pytest.raises((json.JSONDecodeError, UnicodeDecodeError)) as theirs:
        json.loads(body)
    with pytest.raises(type(theirs.value)) as ours:
        jsonio.loads(body)
    assert str(ours.value) == str(theirs.value)


# ------------------------------------------------------------------------- ids and headers
def test_request_ids_are_uuid_shaped_and_unique():
    a, b = RequestIds(), RequestIds()
    ids = [a.new() for _ in range(1000)] + [b.new() for _ in range(1000)]
    assert len(set(ids)) == 2000
    shape = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}")
    assert all(shape.fullmatch(i) for i in ids)


def _scan_headers(raw):
    head = scan_head(raw)
    return head.request_id, head.authorization, head.refused


def test_scan_headers_prefers_ms_request_id_and_first_occurrence():
    raw = [
        (b"x-request-id", b"plain"),
        (b"authorization", b"Bearer one"),
        (b"x-ms-request-id", b"ms"),
        (b"authorization", b"Bearer two"),
        (b"x-ms-request-id", b"ms2"),
    ]
    assert _scan_headers(raw) == ("ms", "Bearer one", False)
    assert _scan_headers([(b"x-request-id", b"plain")]) == ("plain", None, False)
    assert _scan_headers([(b"x-ms-request-id", b""), (b"x-request-id", b"p")]) == ("p", None, False)
    assert _scan_headers([]) == (None, None, False)
    # client ids only when 1-64 characters of [A-Za-z0-9._-]; else refused (a new id is made)
    assert _scan_headers([(b"x-ms-request-id", b"a" * 65)]) == (None, None, True)
    assert _scan_headers([(b"x-ms-request-id", b"a\nb"), (b"x-request-id", b"ok-1")]) == ("ok-1", None, False)
    assert _scan_headers([(b"x-request-id", b"\xe9")]) == (None, None, True)


def test_headers_dict_is_starlettes_dict_in_one_pass():
    from starlette.datastructures import Headers

    raw = [(b"a", b"1"), (b"b", b"\xe9"), (b"a", b"2"), (b"c", b"")]
    assert headers_dict(raw) == dict(Headers(raw=raw)) == {"a": "1", "b": "\xe9", "c": ""}


def test_accepted_request_id():
    assert accepted_request_id(b"550e8400-e29b-41d4-a716-446655440000") == "550e8400-e29b-41d4-a716-446655440000"
    assert accepted_request_id(b"A.b_c-9" * 9 + b"x") == "A.b_c-9" * 9 + "x"  # 64
    for bad in (None, b"", b"a" * 65, b"a b", b"<x>", b"a/b", b"\xff", b"a\r\n"):
        assert accepted_request_id(bad) is None, bad


# ---------------------------------------------------------------------------- timed thread call
def test_call_in_thread_returns_raises_and_times_out():
    release = threading.Event()

    async def scenario():
        with ThreadPoolExecutor(2) as ex:
            assert await call_in_thread(ex, 5, lambda x: x * 2, 21) == 42
            with pytest.raises(ZeroDivisionError):
                await call_in_thread(ex, 5, lambda: 1 / 0)
            with pytest.raises(ScoringTimeout):
                await call_in_thread(ex, 0.05, release.wait)
            # the other thread still answers while the first is stuck past its deadline
            assert await call_in_thread(ex, 5, lambda: "still serving") == "still serving"
            release.set()
            # SystemExit & co. arrive as an Exception: they must not stop the event loop
            for exc in (SystemExit(3), KeyboardInterrupt(), GeneratorExit()):

                def boom(exc=exc):
                    raise exc

                with pytest.raises(RunAborted) as info:
                    await call_in_thread(ex, 5, boom)
                assert info.value.__cause__ is exc

    run_async(scenario)


# ------------------------------------------------------------------------------------ telemetry
def test_telemetry_records_are_formatted_at_flush_and_bounded(tmp_path: Path):
    w = TelemetryWriter(tmp_path, "svc", ("m:1",), max_buffer=3)
    for i in range(5):
        w.record(request_id=f"r{i}", route="/score", status=200, latency_ms=1.23456, request_bytes=10, response_bytes=4)
    w.flush()
    lines = [json.loads(x) for x in w.path.read_text().splitlines()]
    assert [r["request_id"] for r in lines] == ["r0", "r1", "r2"]  # r3, r4 dropped: buffer full
    first = lines[0]
    assert first["latency_ms"] == 1.235 and first["models"] == ["m:1"] and first["service"] == "svc"
    assert first["time"].endswith("+00:00") and first["worker"] == w.pid
    w.record(request_id="r5", route="/", status=200, latency_ms=1, request_bytes=0, response_bytes=7)
    w.flush()
    assert json.loads(w.path.read_text().splitlines()[-1])["request_id"] == "r5"


# -------------------------------------------------------------------------------- worker count
def test_worker_count_azure_then_env_then_cpus():
    assert worker_count({"MLMANAGE_WORKERS": "3", "WORKER_COUNT": "5"}) == 5
    assert worker_count({"MLMANAGE_WORKERS": "3"}) == 3
    assert worker_count({}) == usable_cpus() >= 1
    with pytest.raises(ConfigError, match="WORKER_COUNT must be an integer"):
        worker_count({"WORKER_COUNT": "two"})
    with pytest.raises(ConfigError, match="MLMANAGE_WORKERS must be >= 1"):
        worker_count({"MLMANAGE_WORKERS": "0"})


def test_cgroup_quota_v2_and_v1(tmp_path: Path):
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cpu.max").write_text("150000 100000\n")
    assert cgroup_cpu_quota(v2) == 1.5
    (v2 / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_quota(v2) is None
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("200000\n")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_cpu_quota(v1) == 2.0
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert cgroup_cpu_quota(v1) is None
    assert cgroup_cpu_quota(tmp_path / "missing") is None


# ----------------------------------------------------------------------------- data collection
def test_collector_splices_checked_json_into_the_same_records(tmp_path: Path):
    from mlmanage_jupyter.server.collector import ModelDataCollector, _FolderSink

    bodies = [
        b'{\n  "data": [[1.5, 2],\r\n [3, NaN]],\n  "s": "line\\nbreak \\u00e9 \xc3\xa9"\n}',
        b'\xef\xbb\xbf{"data": [[123456789012345678901234567890]]}',
        '{"utf16": [1]}'.encode("utf-16"),
    ]
    answer = jsonio.dumps([1.25, "é", None])
    for valid_json in (False, True):
        out = tmp_path / str(valid_json)
        c = ModelDataCollector(_FolderSink(out), "svc", ("m:1",))
        for i, body in enumerate(bodies):
            c.collect(f"r{i}", body, answer, valid_json=valid_json)
        c.flush()
        lines = [line for f in sorted(out.rglob("*.jsonl")) for line in f.read_text().splitlines()]
        recs = [json.loads(line) for line in lines]
        assert len(recs) == len(bodies)
        for body, rec in zip(bodies, recs, strict=True):
            assert repr(rec["input"]) == repr(json.loads(body))
            assert rec["prediction"] == [1.25, "é", None]
        assert [r["seq"] for r in recs] == [0, 1, 2] and list(recs[0])[-2:] == ["input", "prediction"]


def test_telemetry_lines_carry_each_records_values(tmp_path):
    from datetime import datetime, timezone

    w = TelemetryWriter(tmp_path, "svc \"x\"", ("m:1", "n:2"))
    recs = [
        (1764700000.0, "plain-id", "/score", 200, 1.23456, 10, 20),
        (1764700000.999999, 'quote"back\\slash ✓', "/", 500, 0.0, 0, 0),
        (1764700001.5, "x", "/health/ready", 503, 12345.6789, 1, 2**40),
    ]
    for line, (t, rid, route, status, latency, nin, nout) in zip(w.format(recs), recs, strict=True):
        rec = json.loads(line)
        when = datetime.fromisoformat(rec.pop("time"))
        assert abs((when - datetime.fromtimestamp(t, timezone.utc)).total_seconds()) < 2e-6
        assert rec == {
            "request_id": rid,
            "route": route,
            "status": status,
            "latency_ms": round(latency, 3),
            "request_bytes": nin,
            "response_bytes": nout,
            "models": ["m:1", "n:2"],
            "service": 'svc "x"',
            "worker": w.pid,
        }


def test_startup_objects_are_frozen_out_of_full_collections():
    import gc

    from mlmanage_jupyter.server.worker import freeze_startup_objects

    try:
        frozen = freeze_startup_objects()
        assert frozen > 1000 and gc.get_freeze_count() == frozen  # this process's modules at least
    finally:
        gc.unfreeze()
    assert gc.get_freeze_count() == 0


# ------------------------------------------------------------------------------ the ASGI front
def test_asgi_front_answers_hot_routes_and_leaves_the_rest_to_starlette(tmp_path):
    from starlette.testclient import TestClient

    from mlmanage_jupyter.server.app import ScoringApp, create_app
    from mlmanage_jupyter.server.config import Settings

    settings = Settings(app_root=tmp_path, run_dir=tmp_path / "run", limit_request_fields=20)
    many = {f"x-h{i}": "v" for i in range(30)}
    for head_checked in (False, True):
        app = create_app(settings, None, failure="init() failed", head_checked=head_checked)
        assert isinstance(app, ScoringApp)
        with TestClient(app) as client:
            r = client.get("/", headers={"x-request-id": "abc"})
            assert r.status_code == 200 and r.text == "Healthy" and r.headers["x-ms-request-id"] == "abc"
            assert client.post("/score", json={}).json()["error"]["code"] == "NotReady"
            r = client.put("/score")
            assert r.status_code == 405 and r.json()["error"]["code"] == "MethodNotAllowed"
            r = client.get("/nope")
            assert r.status_code == 404 and r.json()["error"]["code"] == "NotFound"
            assert client.get("/metrics").status_code == 200
            r = client.get("/", headers=many)
            if head_checked:  # the server's protocol checked the head: not done twice
                assert r.status_code == 200
            else:  # a server that does not check: the app answers 431 itself
                assert r.status_code == 431 and r.json()["error"]["code"] == "RequestHeaderFieldsTooLarge"


def test_the_engine_imports_without_numpy_or_inference_schema():
    """A service's environment need not have numpy or inference_schema (a @rawhttp echo
    script's conda file): the engine's own modules must import without them."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['numpy'] = None; sys.modules['inference_schema'] = None\n"
        "import mlmanage_jupyter.server.worker, mlmanage_jupyter.server.schema_fast as f\n"
        "assert f.install() is False\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


def test_collected_records_carry_the_request_and_its_answer(tmp_path):
    from datetime import datetime, timezone

    from mlmanage_jupyter.server.collector import ModelDataCollector, _FolderSink

    c = ModelDataCollector(_FolderSink(tmp_path), 'svc "q"', ("m:1",))
    before = datetime.now(timezone.utc)
    c.collect("rid-1", b'{"data": [[1.5, 2]]}\n', b"[3.25]", valid_json=True)  # spliced as is
    c.collect('odd "id" ✓', b"not json", b"[1]")  # parsed, kept as text
    assert c.flush() == 2
    [path] = list(tmp_path.rglob("*.jsonl"))
    recs = [json.loads(line) for line in path.read_text().splitlines()]
    for rec, rid, seq in zip(recs, ["rid-1", 'odd "id" ✓'], [0, 1], strict=True):
        assert rec["request_id"] == rid and rec["seq"] == seq and rec["service"] == 'svc "q"'
        assert rec["model"] == "m" and rec["model_version"] == "1" and rec["models"] == ["m:1"]
        assert abs((datetime.fromisoformat(rec["time"]) - before).total_seconds()) < 60
    assert recs[0]["input"] == {"data": [[1.5, 2]]} and recs[0]["prediction"] == [3.25]
    assert recs[1]["input"] == "not json" and recs[1]["prediction"] == [1]
