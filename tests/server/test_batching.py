"""Adaptive micro-batching: merged calls split back, errors per request, limits, timeouts;
and end to end through the engine with MLMANAGE_MAX_BATCH_SIZE."""

from __future__ import annotations

import asyncio
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from infra.aio import run_async

from mlmanage_jupyter.server.batching import MicroBatcher, batchable
from mlmanage_jupyter.server.entry import EntryScript
from mlmanage_jupyter.server.runner import ScoringTimeout

BATCH_SCRIPT = """
import time
from inference_schema.schema_decorators import input_schema
from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType

CALLS = []

def init():
    pass

@input_schema("data", StandardPythonParameterType([[1.0, 2.0]]))
def run(data):
    CALLS.append(len(data))
    for row in data:
        if row == ["sleep"]:
            time.sleep(0.5)
        if any(isinstance(v, (int, float)) and v < 0 for v in row):
            raise ValueError("negative value in row %r" % (row,))
    return [sum(row) for row in data]
"""


def load(tmp_path: Path, source: str = BATCH_SCRIPT) -> EntryScript:
    (tmp_path / "score.py").write_text(source)
    script = EntryScript(tmp_path, "score.py")
    script.init()
    return script


def batcher(script: EntryScript, ex: ThreadPoolExecutor, size: int = 64, latency_ms: float = 50, timeout_s: float = 5):
    return MicroBatcher(script, ex, size, latency_ms, timeout_s, ScoringTimeout)


def gather(b: MicroBatcher, requests_rows: list[list[list[float]]]) -> list[object]:
    async def go():
        return await asyncio.gather(*(b.submit(rows) for rows in requests_rows), return_exceptions=True)

    return run_async(go)


def test_concurrent_requests_merge_into_one_call_and_split_back(tmp_path):
    script = load(tmp_path)
    reqs = [[[i, 1.0]] for i in range(10)] + [[[1.0, 1.0], [2.0, 2.0]]]
    with ThreadPoolExecutor(2) as ex:
        b = batcher(script, ex)
        out = gather(b, reqs)
    assert out == [[i + 1.0] for i in range(10)] + [[2.0, 4.0]]
    assert script.module.CALLS == [12] and b.batches == 1


def test_a_failing_request_gets_its_error_the_others_their_answers(tmp_path):
    script = load(tmp_path)
    reqs = [[[1.0, 2.0]], [[-1.0, 2.0]], [[3.0, 4.0], [5.0, 6.0]]]
    with ThreadPoolExecutor(2) as ex:
        out = gather(batcher(script, ex), reqs)
    assert out[0] == [3.0] and out[2] == [7.0, 11.0]
    assert isinstance(out[1], ValueError) and "negative value" in str(out[1])
    assert script.module.CALLS == [4, 1, 1, 2]  # the merged call failed: each ran alone


def test_batches_hold_at_most_max_batch_size_rows_and_never_split_a_request(tmp_path):
    script = load(tmp_path)
    reqs = [[[1.0, 1.0]] * 3 for _ in range(5)] + [[[2.0, 2.0]] * 7]
    with ThreadPoolExecutor(2) as ex:
        out = gather(batcher(script, ex, size=6), reqs)
    assert out == [[2.0] * 3] * 5 + [[4.0] * 7]
    # in arrival order: 3+3, 3+3, 3 (3+7 is over the limit), then the 7-row request alone
    assert script.module.CALLS == [6, 6, 3, 7]


def test_a_slow_batch_times_out_per_request(tmp_path):
    script = load(tmp_path)
    with ThreadPoolExecutor(2) as ex:
        out = gather(batcher(script, ex, timeout_s=0.1, latency_ms=0), [[["sleep"]]])
    assert isinstance(out[0], ScoringTimeout)


def test_which_scripts_and_requests_can_batch(tmp_path):
    script = load(tmp_path)
    assert batchable(script) is None
    with ThreadPoolExecutor(1) as ex:
        b = batcher(script, ex)
        assert b.accepts({"data": [[1.0, 2.0]]}) == [[1.0, 2.0]]
        assert b.accepts({"data": []}) is None
        assert b.accepts({"data": 3}) is None
        assert b.accepts({"data": [[1.0]], "other": 1}) is None
        assert b.accepts([1, 2]) is None
    # an undecorated run(): test_batching_asked_of_a_script_that_cannot_batch_... (one script a
    # process: inference_schema keeps its registry by function name)


# -------------------------------------------------------------------------------- end to end
BATCH_ENGINE_SCRIPT = """
import os
from inference_schema.schema_decorators import input_schema
from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType

def init():
    pass

@input_schema("data", StandardPythonParameterType([[1.0, 2.0]]))
def run(data):
    if any(v < 0 for row in data for v in row):
        raise ValueError("negative")
    return [[sum(row), os.getpid()] for row in data]
"""


def test_engine_batches_concurrent_requests_and_keeps_errors_per_request(serve):
    sp = serve(BATCH_ENGINE_SCRIPT, MLMANAGE_MAX_BATCH_SIZE="32", MLMANAGE_MAX_LATENCY_MS="20")
    results: dict[int, requests.Response] = {}

    def client(i: int) -> None:
        rows = [[float(i), -1.0 if i == 5 else 1.0]]
        results[i] = requests.post(sp.url + "/score", data=json.dumps({"data": rows}), timeout=30)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, r in results.items():
        if i == 5:
            assert r.status_code == 500 and "run() raised ValueError" in r.json()["error"]["message"]
        else:
            assert r.status_code == 200, r.text
            assert r.json()[0][0] == i + 1.0
    # a non-batchable body (no data array) takes the usual path and its usual error
    r = requests.post(sp.url + "/score", json={"nope": 1}, timeout=30)
    assert r.status_code == 400 and r.json()["error"]["code"] == "BadRequest"


def test_batching_asked_of_a_script_that_cannot_batch_fails_with_what_to_fix(serve):
    sp = serve("def init():\n    pass\n\ndef run(raw):\n    return raw\n", wait=False, MLMANAGE_MAX_BATCH_SIZE="8")
    st = sp.wait_state("Failed", timeout=60)
    assert "MLMANAGE_MAX_BATCH_SIZE=8 (max_batch_size)" in st["error"]
    assert "run() is not decorated with inference_schema" in st["error"]
