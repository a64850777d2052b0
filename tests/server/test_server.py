"""The scoring engine as a real process, over real HTTP."""

from __future__ import annotations

import json
import socket
import time

import pytest
import requests
from contexts import (
    DECORATED,
    INIT_RAISES,
    NO_RUN,
    SYNTAX_ERROR,
    UNDECORATED,
    diabetes,
    model_predictions,
    telemetry_records,
)

X, _ = diabetes()
ROWS = X[:5].tolist()


def test_undecorated_run_gets_raw_json_and_matches_model(serve):
    sp = serve(UNDECORATED)
    r = sp.score({"data": ROWS}, headers={"x-ms-request-id": "req-123"})
    assert r.status_code == 200, r.text
    assert r.json() == pytest.approx(model_predictions(sp.context, ROWS))
    assert r.headers["x-ms-request-id"] == "req-123"
    assert requests.get(sp.url + "/", timeout=5).text == "Healthy"
    assert requests.get(sp.url + "/health/ready", timeout=5).status_code == 200
    assert requests.post(sp.url + "/score", json={"data": ROWS}, timeout=5).headers["x-ms-request-id"]
    swagger = requests.get(sp.url + "/swagger.json", timeout=5).json()
    assert swagger["openapi"].startswith("3.")
    assert swagger["components"]["schemas"]["ServiceInput"]["type"] == "object"
    r = requests.get(sp.url + "/nope", timeout=5)
    assert r.status_code == 404 and r.json()["error"]["code"] == "NotFound"


def test_inference_schema_decorated_run_and_swagger(serve):
    sp = serve(DECORATED)
    r = sp.score({"data": ROWS})
    assert r.status_code == 200, r.text
    assert r.json() == pytest.approx(model_predictions(sp.context, ROWS))
    swagger = requests.get(sp.url + "/swagger.json", timeout=5).json()
    schema = swagger["components"]["schemas"]["ServiceInput"]
    assert schema["properties"]["data"]["format"] == "numpy.ndarray"
    example = swagger["paths"]["/score"]["post"]["requestBody"]["content"]["application/json"]["example"]
    assert len(example["data"][0]) == 10
    assert swagger["components"]["schemas"]["ServiceOutput"]["example"] == [152.1]
    # the example itself scores
    assert sp.score(example).status_code == 200
    # a body that is JSON but not an object with the run() parameter
    r = sp.score([1, 2])
    assert r.status_code == 400 and "'data'" in r.json()["error"]["message"]
    r = sp.score({"other": 1})
    assert r.status_code == 400 and "'data'" in r.json()["error"]["message"]


def test_auth_primary_secondary_and_live_key_rotation(serve, tmp_path):
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"primaryKey": "p1", "secondaryKey": "s1"}))
    sp = serve(UNDECORATED, MLMANAGE_AUTH_ENABLED="1", MLMANAGE_KEYS_FILE=str(keys))
    r = sp.score({"data": ROWS})
    assert r.status_code == 401 and "Authorization" in r.json()["error"]["message"]
    r = sp.score({"data": ROWS}, headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401 and "invalid key" in r.json()["error"]["message"]
    for key in ("p1", "s1"):
        assert sp.score({"data": ROWS}, headers={"Authorization": f"Bearer {key}"}).status_code == 200
    # swagger and liveness need no key
    assert requests.get(sp.url + "/swagger.json", timeout=5).status_code == 200
    tmp = tmp_path / "keys.tmp"
    tmp.write_text(json.dumps({"primaryKey": "p2", "secondaryKey": "s1"}))
    tmp.replace(keys)
    assert sp.score({"data": ROWS}, headers={"Authorization": "Bearer p1"}).status_code == 401
    assert sp.score({"data": ROWS}, headers={"Authorization": "Bearer p2"}).status_code == 200


def test_env_keys_when_no_keys_file(serve):
    sp = serve(UNDECORATED, MLMANAGE_AUTH_ENABLED="1", MLMANAGE_PRIMARY_KEY="k1", MLMANAGE_SECONDARY_KEY="k2")
    assert sp.score({"data": ROWS}, headers={"Authorization": "Bearer k2"}).status_code == 200
    assert sp.score({"data": ROWS}, headers={"Authorization": "Basic k2"}).status_code == 401


def test_bad_requests_answer_clear_errors_and_service_keeps_serving(serve):
    sp = serve(UNDECORATED, MLMANAGE_MAX_REQUEST_BYTES="2000")
    ok = {"data": ROWS[:1]}
    r = requests.post(sp.url + "/score", data='{"data": [[1, 2,\n  oops]]}', timeout=5)
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == "BadRequest" and "line 2 column 3" in err["message"]
    assert sp.score(ok).status_code == 200
    r = requests.post(sp.url + "/score", data=b"", timeout=5)
    assert r.status_code == 400 and "empty" in r.json()["error"]["message"]
    # too large: declared Content-Length
    r = requests.post(sp.url + "/score", data=b"[" + b"1," * 2000 + b"1]", timeout=5)
    assert r.status_code == 413 and "2000" in r.json()["error"]["message"]
    assert sp.score(ok).status_code == 200

    # too large: chunked upload without Content-Length (the streamed length is counted)
    def chunks():
        for _ in range(10):
            yield b"1" * 500

    r = requests.post(sp.url + "/score", data=chunks(), timeout=5)
    assert r.status_code == 413
    assert sp.score(ok).status_code == 200
    # run() raises
    r = sp.score({"data": ROWS, "raise": "the model exploded"})
    assert r.status_code == 500
    rid = r.headers["x-ms-request-id"]
    assert r.json()["error"] == {
        "code": "ScoringError",
        "message": f"run() raised RuntimeError; its traceback is in the service's logs (service.get_logs()) "
        f"under request id {rid}",
        "request_id": rid,
    }
    assert sp.score(ok).status_code == 200
    deadline = time.monotonic() + 10
    while "Traceback" not in sp.logs() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "RuntimeError: the model exploded" in sp.logs()


def test_slow_run_answers_504_and_service_keeps_serving(serve):
    sp = serve(UNDECORATED, MLMANAGE_SCORING_TIMEOUT_MS="300")
    r = sp.score({"data": ROWS, "sleep": 1.5})
    assert r.status_code == 504
    assert r.json()["error"]["code"] == "ScoringTimeout" and "300 ms" in r.json()["error"]["message"]
    r = sp.score({"data": ROWS})
    assert r.status_code == 200
    assert r.json() == pytest.approx(model_predictions(sp.context, ROWS))


def test_slow_run_does_not_block_other_requests(serve):
    import threading

    sp = serve(UNDECORATED)
    slow: dict[str, int] = {}
    t = threading.Thread(target=lambda: slow.update(code=sp.score({"data": ROWS, "sleep": 2}).status_code))
    t.start()
    time.sleep(0.3)
    # served while the slow run() is still sleeping
    assert requests.get(sp.url + "/", timeout=5).text == "Healthy"
    assert sp.score({"data": ROWS}).status_code == 200
    assert t.is_alive()
    t.join(timeout=30)
    assert slow["code"] == 200


@pytest.mark.parametrize(
    "script,expected",
    [
        (SYNTAX_ERROR, "SyntaxError"),
        (NO_RUN, "does not define a run() function"),
        (INIT_RAISES, "ValueError: cannot load the model: boom"),
    ],
)
def test_broken_entry_script_reports_failed_with_traceback(serve, script, expected):
    sp = serve(script, wait=False)
    st = sp.wait_state("Failed", timeout=60)
    assert expected in st["error"]
    assert expected in sp.logs()
    if script != NO_RUN:
        assert "Traceback" in st["error"]
    # clients get an answer, not a hang, and no traceback (it is in the logs)
    r = requests.post(sp.url + "/score", json={"data": ROWS}, timeout=10)
    assert r.status_code == 503 and r.json()["error"]["code"] == "NotReady"
    assert expected not in r.text and "service.get_logs()" in r.json()["error"]["message"]
    assert requests.get(sp.url + "/health/ready", timeout=10).status_code == 503


def test_exit_on_failure_writes_failed_then_exits_releasing_the_port(serve):
    sp = serve(INIT_RAISES, wait=False, MLMANAGE_EXIT_ON_FAILURE="1", MLMANAGE_WORKERS="2")
    assert sp.proc.wait(timeout=60) == 1  # bounded wait for the exit, not a timing assert
    st = sp.status()
    assert st["state"] == "Failed" and st["workers"] == []
    assert "Traceback" in st["error"] and "cannot load the model: boom" in st["error"]
    assert "cannot load the model: boom" in sp.logs()
    with socket.socket() as s:
        s.bind(("127.0.0.1", sp.port))  # nothing holds the port any more

    sp = serve(UNDECORATED, MLMANAGE_WORKERS="2")
    st = sp.status()
    assert len(st["workers"]) == 2
    n = 0
    pids: set[int] = set()
    deadline = time.monotonic() + 60
    while len(pids) < 2 and time.monotonic() < deadline:
        # a new connection per request so both workers get to accept
        for _ in range(20):
            r = requests.post(sp.url + "/score", json={"data": ROWS}, timeout=10, headers={"Connection": "close"})
            assert r.status_code == 200
            n += 1
        time.sleep(0.6)
        pids = {rec["worker"] for rec in telemetry_records(sp.run_dir)}
    assert pids == set(st["workers"])
    metrics = requests.get(sp.url + "/metrics", timeout=5).text
    line = next(x for x in metrics.splitlines() if x.startswith('mlmanage_requests_total{route="/score",status="200"}'))
    assert float(line.split()[-1]) == n
    assert "mlmanage_request_latency_seconds_bucket" in metrics
    # telemetry: one record per request, all fields
    deadline = time.monotonic() + 10
    recs = []
    while time.monotonic() < deadline:
        recs = [r for r in telemetry_records(sp.run_dir) if r["route"] == "/score"]
        if len(recs) >= n:
            break
        time.sleep(0.2)
    assert len(recs) == n
    rec = recs[0]
    assert rec["status"] == 200 and rec["service"] == "svc" and rec["models"] == ["diabetes:1"]
    assert rec["request_bytes"] > 0 and rec["response_bytes"] > 0 and rec["latency_ms"] > 0
    assert rec["time"].endswith("+00:00") and rec["request_id"]


def test_rolling_reload_on_sighup_keeps_the_socket(serve):
    import os
    import signal

    sp = serve(UNDECORATED)
    first = sp.status()
    spec = {"id": "v2", "env": {"MLMANAGE_SERVICE_NAME": "svc2"}}
    (sp.run_dir / "spec.json").write_text(json.dumps(spec))
    os.kill(sp.proc.pid, signal.SIGHUP)
    deadline = time.monotonic() + 60
    while sp.status().get("spec_id") != "v2" and time.monotonic() < deadline:
        time.sleep(0.05)
    st = sp.status()
    assert st["generation"] == 2 and st["state"] == "Healthy"
    assert st["port"] == first["port"] and not set(st["workers"]) & set(first["workers"])
    assert sp.score({"data": ROWS}).status_code == 200
    assert requests.get(sp.url + "/swagger.json", timeout=5).json()["info"]["title"] == "svc2"


def test_token_auth_fresh_token_works_expired_forged_and_keys_answer_401(serve, tmp_path):
    from mlmanage_jupyter.server.auth import issue_token

    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"tokenSecret": "s3cret"}))
    sp = serve(UNDECORATED, MLMANAGE_TOKEN_AUTH_ENABLED="1", MLMANAGE_KEYS_FILE=str(keys))
    fresh = issue_token("svc", "s3cret", time.time() + 3600)
    r = sp.score({"data": ROWS}, headers={"Authorization": f"Bearer {fresh}"})
    assert r.status_code == 200, r.text
    for token, reason in (
        (issue_token("svc", "s3cret", time.time() - 1), "expired token"),
        (issue_token("svc", "forged", time.time() + 3600), "invalid token"),
        (issue_token("other-svc", "s3cret", time.time() + 3600), "invalid token"),
    ):
        r = sp.score({"data": ROWS}, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401 and r.json()["error"]["code"] == "Unauthorized"
        assert reason in r.json()["error"]["message"]
    r = sp.score({"data": ROWS})
    assert r.status_code == 401 and "get_token()" in r.json()["error"]["message"]
