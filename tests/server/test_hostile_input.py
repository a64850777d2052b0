"""Hostile HTTP input to the scoring engine (issue 16), over real HTTP against a real service
process: every answer is JSON with a 4xx for a client-side fault, no internals reach clients,
and the same worker keeps serving afterwards."""

from __future__ import annotations

import json
import socket
import threading
import time
from typing import Any

import pytest
import requests
from contexts import DECORATED, UNDECORATED, diabetes, telemetry_records

X, _ = diabetes()
ROW = X[0].tolist()
GOOD = {"data": [ROW]}

HEADERS_SCRIPT = """
def init():
    pass
def run(data, request_headers):
    return {"headers": len(request_headers), "ua": request_headers.get("user-agent")}
"""

RAISES_SCRIPT = """
import json
class Boom(BaseException):
    pass
def init():
    pass
def run(raw):
    what = json.loads(raw).get("raise")
    if what == "SystemExit":
        raise SystemExit(3)
    if what == "KeyboardInterrupt":
        raise KeyboardInterrupt()
    if what == "BaseException":
        raise Boom("custom")
    if what == "RuntimeError":
        raise RuntimeError("secret=hunter2 in /srv/private/model.bin")
    if what == "deep":
        out = []
        for _ in range(100_000):
            out = [out]
        return out
    return "ok"
"""

DECORATED_RAISES = """
import numpy as np
from inference_schema.schema_decorators import input_schema
from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType

def init():
    pass

@input_schema("data", NumpyParameterType(np.array([[0.5, 1.5]])))
def run(data):
    if data.shape[0] > 1:
        raise ValueError("secret=hunter2: only one row, please")
    return data.sum().item()
"""

RAWHTTP_JSON = """
from azureml.contrib.services.aml_request import rawhttp
from azureml.contrib.services.aml_response import AMLResponse
def init():
    pass
@rawhttp
def run(request):
    if request.mimetype == "multipart/form-data":
        return AMLResponse(str(len(request.form)), 200)
    return AMLResponse(request.get_json(), 200, json_str=True)
"""

INIT_LEAKS = """
import os
def init():
    raise ValueError("cannot connect with password=hunter2 to " + os.getcwd())
def run(data):
    return data
"""


def send_raw(port: int, head: bytes, body: bytes = b"", timeout: float = 60) -> tuple[int, dict[str, str], bytes]:
    """Send bytes over one TCP connection; (status, headers, body) of the answer (read until the
    server closes the connection or Content-Length is reached)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(head + body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before taking everything
        data = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
            if b"\r\n\r\n" in data:
                top, _, rest = data.partition(b"\r\n\r\n")
                lengths = [ln for ln in top.split(b"\r\n") if ln.lower().startswith(b"content-length:")]
                if lengths and len(rest) >= int(lengths[0].split(b":")[1]):
                    break
    top, _, rest = data.partition(b"\r\n\r\n")
    lines = top.split(b"\r\n")
    status = int(lines[0].split()[1])
    headers = {k.decode().lower(): v.decode().strip() for k, _, v in (ln.partition(b":") for ln in lines[1:])}
    return status, headers, rest


def score_head(n_headers: int, body: bytes, path: bytes = b"/score", extra: bytes = b"") -> bytes:
    """A POST head with Host, Content-Type and Content-Length plus ``n_headers - 3`` more fields."""
    fields = b"".join(b"x-h%d: v\r\n" % i for i in range(n_headers - 3))
    return (
        b"POST " + path + b" HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n" % len(body) + fields + extra + b"\r\n"
    )


def assert_error(status: int, body: bytes, want_status: int, code: str) -> dict[str, Any]:
    assert status == want_status, body[:500]
    err = json.loads(body)["error"]
    assert err["code"] == code and err["request_id"]
    return err


def test_20000_headers_answer_431_while_a_concurrent_request_is_served(serve):
    # run(data, request_headers): the path whose per-header work was quadratic (~13 s at 20,000)
    sp = serve(HEADERS_SCRIPT)
    body = json.dumps(GOOD).encode()
    answer: dict[str, Any] = {}
    attack = threading.Thread(target=lambda: answer.update(r=send_raw(sp.port, score_head(20_000, body), body)))
    attack.start()
    ok = requests.post(sp.url + "/score", json=GOOD, timeout=30)
    attack.join(timeout=120)
    assert ok.status_code == 200 and ok.json()["ua"].startswith("python-requests")
    status, headers, rbody = answer["r"]
    err = assert_error(status, rbody, 431, "RequestHeaderFieldsTooLarge")
    assert "100 header fields" in err["message"] and "limit_request_fields" in err["message"]
    assert headers["connection"] == "close" and headers["x-ms-request-id"] == err["request_id"]

    # the bounds themselves: 100 fields pass, 101 do not; one field of 8190 bytes passes, 8191 not
    status, _, rbody = send_raw(sp.port, score_head(100, body), body)
    assert status == 200 and json.loads(rbody)["headers"] == 100
    status, _, rbody = send_raw(sp.port, score_head(101, body), body)
    assert_error(status, rbody, 431, "RequestHeaderFieldsTooLarge")
    value = b"v" * (8190 - len(b"x-big"))
    status, _, rbody = send_raw(sp.port, score_head(4, body, extra=b"x-big: " + value + b"\r\n"), body)
    assert status == 200, rbody
    status, _, rbody = send_raw(sp.port, score_head(4, body, extra=b"x-big: " + value + b"v\r\n"), body)
    err = assert_error(status, rbody, 431, "RequestHeaderFieldsTooLarge")
    assert "8190 bytes" in err["message"]
    # one header value of 3 MB, which the parser would collect piece by piece: stopped early
    status, _, rbody = send_raw(sp.port, score_head(4, body, extra=b"x-huge: " + b"v" * 3_000_000 + b"\r\n"), body)
    assert_error(status, rbody, 431, "RequestHeaderFieldsTooLarge")
    # a URL longer than limit_request_line
    status, _, rbody = send_raw(sp.port, score_head(3, body, path=b"/score?q=" + b"a" * 5000), body)
    err = assert_error(status, rbody, 414, "URITooLong")
    assert "4094 bytes" in err["message"]
    assert requests.post(sp.url + "/score", json=GOOD, timeout=30).status_code == 200


def test_head_limits_are_settings(serve):
    sp = serve(HEADERS_SCRIPT, MLMANAGE_LIMIT_REQUEST_FIELDS="10", MLMANAGE_LIMIT_REQUEST_FIELD_SIZE="100")
    body = json.dumps(GOOD).encode()
    assert send_raw(sp.port, score_head(10, body), body)[0] == 200
    status, _, rbody = send_raw(sp.port, score_head(11, body), body)
    assert "10 header fields" in assert_error(status, rbody, 431, "RequestHeaderFieldsTooLarge")["message"]
    r = requests.post(sp.url + "/score", json=GOOD, headers={"x-a": "v" * 200}, timeout=30)
    assert r.status_code == 431 and "100 bytes" in r.json()["error"]["message"]


def test_header_guard_answers_431_on_any_asgi_server():
    """The ASGI guard alone (here under uvicorn's h11 protocol, which has no field limits)."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from mlmanage_jupyter.server.http_limits import HeaderGuard, HeadLimits

    async def hello(request):
        return PlainTextResponse(str(len(request.headers)))

    app = HeaderGuard(Starlette(routes=[Route("/", hello)]), HeadLimits(fields=20, field_size=50))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, http="h11", log_level="warning"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    try:
        for _ in range(200):
            if server.started:
                break
            threading.Event().wait(0.05)
        url = f"http://127.0.0.1:{port}/"
        assert requests.get(url, headers={f"x-{i}": "v" for i in range(10)}, timeout=10).status_code == 200
        r = requests.get(url, headers={f"x-{i}": "v" for i in range(30)}, timeout=10)
        assert r.status_code == 431 and r.json()["error"]["code"] == "RequestHeaderFieldsTooLarge"
        r = requests.get(url, headers={"x-long": "v" * 60}, timeout=10)
        assert r.status_code == 431 and "50 bytes" in r.json()["error"]["message"]
    finally:
        server.should_exit = True
        t.join(timeout=10)


CLIENT_IDS = [
    ("req-123_ABC.z", True),
    ("a" * 64, True),
    ("a" * 65, False),
    ("b" * 8000, False),
    ("<script>alert(1)</script>", False),
    ("id with spaces", False),
    ("tab\tinside", False),
    ("\xe9-latin1", False),
]


def test_client_request_ids_are_used_only_when_short_and_safe(serve):
    sp = serve(RAISES_SCRIPT)
    used_ids: list[str] = []
    body_ids: list[str | None] = []
    for client_id, used in CLIENT_IDS:
        r = requests.post(
            sp.url + "/score",
            data=json.dumps({"raise": "RuntimeError"}),
            headers={"x-ms-request-id": client_id.encode("latin-1")},
            timeout=30,
        )
        assert r.status_code == 500
        rid = r.headers["x-ms-request-id"]
        if used:
            assert rid == client_id and "x-mlmanage-request-id-rejected" not in r.headers
        else:
            assert rid != client_id and len(rid) == 36, client_id  # a generated UUID-shaped id
            assert "generated" in r.headers["x-mlmanage-request-id-rejected"]
        used_ids.append(rid)
        body_ids.append(r.json()["error"].get("request_id"))
    assert body_ids == used_ids
    # the logs and the telemetry carry the ids used, never a refused one
    deadline = time.monotonic() + 30
    recs: list[dict[str, Any]] = []
    while len(recs) < len(CLIENT_IDS) and time.monotonic() < deadline:
        time.sleep(0.2)
        recs = [rec for rec in telemetry_records(sp.run_dir) if rec["route"] == "/score"]
    assert [rec["request_id"] for rec in recs] == used_ids
    logs = sp.logs()
    for rid in used_ids:
        assert f"request {rid}: run() raised" in logs
    for client_id, used in CLIENT_IDS:
        if not used:
            assert client_id not in logs and client_id not in json.dumps(recs)


def test_a_refused_x_ms_request_id_falls_back_to_a_valid_x_request_id(serve):
    sp = serve(UNDECORATED)
    r = requests.post(
        sp.url + "/score", json=GOOD, headers={"x-ms-request-id": "x" * 100, "x-request-id": "corr-7"}, timeout=30
    )
    assert r.status_code == 200 and r.headers["x-ms-request-id"] == "corr-7"
    assert "x-mlmanage-request-id-rejected" not in r.headers


def test_failed_init_answers_generic_503_and_keeps_the_traceback_in_the_logs(serve):
    sp = serve(INIT_LEAKS, wait=False)
    st = sp.wait_state("Failed", timeout=60)
    assert "password=hunter2" in st["error"] and "Traceback" in st["error"]
    for method, path in (("POST", "/score"), ("GET", "/swagger.json"), ("GET", "/health/ready")):
        r = requests.request(method, sp.url + path, json=GOOD, timeout=10)
        assert r.status_code == 503, (path, r.text)
        for leak in ("hunter2", "Traceback", "score.py", str(sp.context), "ValueError"):
            assert leak not in r.text, (path, leak)
        err = r.json()["error"]
        assert err["code"] == "NotReady" and err["request_id"] == r.headers["x-ms-request-id"]
        assert "service.get_logs()" in err["message"]
    assert "password=hunter2" in sp.logs() and "Traceback" in sp.logs()


def test_run_exceptions_answer_generic_json_500_and_the_worker_survives(serve):
    sp = serve(RAISES_SCRIPT)
    workers = sp.status()["workers"]
    for what in ("RuntimeError", "SystemExit", "KeyboardInterrupt", "BaseException"):
        r = requests.post(sp.url + "/score", data=json.dumps({"raise": what}), timeout=30)
        assert r.status_code == 500, (what, r.text)
        assert "hunter2" not in r.text and "/srv/private" not in r.text and "Traceback" not in r.text
        err = r.json()["error"]
        assert err["code"] == "ScoringError", (what, r.text)
        # the same worker answers the next request
        ok = requests.post(sp.url + "/score", data=json.dumps({}), timeout=30)
        assert ok.status_code == 200 and ok.json() == "ok", what
        name = "Boom" if what == "BaseException" else what
        assert f"run() raised {name};" in err["message"] and err["request_id"] in err["message"]
        assert r.headers["x-ms-run-function-failed"] == "True"
    # an output nested too deep to serialize: a JSON 500, not a dropped connection
    r = requests.post(sp.url + "/score", data=json.dumps({"raise": "deep"}), timeout=30)
    assert r.status_code == 500 and r.json()["error"]["code"] == "ScoringError"
    assert requests.post(sp.url + "/score", data=json.dumps({}), timeout=30).json() == "ok"
    assert sp.status()["workers"] == workers and sp.status()["state"] == "Healthy"
    logs = sp.logs()
    assert "secret=hunter2 in /srv/private/model.bin" in logs and "SystemExit: 3" in logs


BAD_BODIES = [
    ("malformed", b'{"data": [', "not valid JSON"),
    ("bad UTF-8", b'{"data": "\xff\xfe"}', "not UTF-8"),
    ("nested 100,000 deep", b"[" * 100_000 + b"]" * 100_000, "nested deeper"),
    ("5,000-digit integer", b'{"data": ' + b"9" * 5000 + b"}", "4300 digits"),
    ("empty", b"", "empty"),
]

SCHEMA_FAULTS = [
    ("string for an array", {"data": "abc"}),
    ("strings in rows", {"data": [["a", "b"]]}),
    ("object for an array", {"data": {"x": 1}}),
    ("null", {"data": None}),
    ("ragged rows", {"data": [[1, 2], [3]]}),
    ("missing parameter", {"rows": [[1, 2]]}),
    ("not an object", [[1, 2]]),
]


@pytest.mark.parametrize("script", [UNDECORATED, DECORATED_RAISES], ids=["undecorated", "inference-schema"])
def test_every_client_side_fault_answers_400_json_and_the_service_keeps_serving(serve, script):
    sp = serve(script)
    good = GOOD if script == UNDECORATED else {"data": [[1.0, 2.0]]}
    workers = sp.status()["workers"]
    for name, body, says in BAD_BODIES:
        r = requests.post(sp.url + "/score", data=body, headers={"Content-Type": "application/json"}, timeout=60)
        assert r.status_code == 400, (name, r.text[:300])
        err = r.json()["error"]
        assert err["code"] == "BadRequest" and says in err["message"], (name, err)
        assert sp.score(good).status_code == 200
    if script == DECORATED_RAISES:
        for name, payload in SCHEMA_FAULTS:
            r = sp.score(payload)
            assert r.status_code == 400, (name, r.text[:300])
            assert r.json()["error"]["code"] == "BadRequest", name
            assert len(r.content) < 1000  # client text is echoed bounded, if at all
        # NaN is JSON to Python's json module; the schema then refuses it
        r = requests.post(sp.url + "/score", data=b'{"data": NaN}', timeout=30)
        assert r.status_code == 400 and "input schema" in r.json()["error"]["message"]
        # an error raised by run()'s own code stays a (generic) 500
        r = sp.score({"data": [[1.0, 2.0], [3.0, 4.0]]})
        assert r.status_code == 500 and "hunter2" not in r.text
        assert sp.score(good).json() == 3.0
    # the Content-Type is not looked at (Azure's server reads every body as JSON)
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "nonsense"):
        r = requests.post(sp.url + "/score", data=json.dumps(good), headers={"Content-Type": ctype}, timeout=30)
        assert r.status_code == 200, (ctype, r.text)
    r = requests.post(
        sp.url + "/score",
        data=b'--b\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--b--\r\n',
        headers={"Content-Type": "multipart/form-data; boundary=b"},
        timeout=30,
    )
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]["message"]
    assert sp.status()["workers"] == workers and sp.score(good).status_code == 200


def test_schema_faults_answer_400_through_micro_batching_too(serve):
    sp = serve(DECORATED, MLMANAGE_MAX_BATCH_SIZE="8")
    r = sp.score({"data": [["a"] * 10]})
    assert r.status_code == 400 and r.json()["error"]["code"] == "BadRequest"
    assert sp.score({"data": [ROW]}).status_code == 200


def test_rawhttp_script_reading_a_bad_body_answers_400(serve):
    sp = serve(RAWHTTP_JSON)
    r = requests.post(sp.url + "/score", data=b"{", headers={"Content-Type": "application/json"}, timeout=30)
    assert r.status_code == 400 and r.json()["error"]["code"] == "BadRequest"
    r = requests.post(sp.url + "/score", json={"a": 1}, timeout=30)
    assert r.status_code == 200 and r.json() == {"a": 1}
    # more multipart parts than Werkzeug's max_form_parts (1000): its 413, as JSON
    fields = {f"f{i}": (None, "v") for i in range(1500)}
    r = requests.post(sp.url + "/score", files=fields, timeout=30)
    assert r.status_code == 413 and r.json()["error"]["code"] == "PayloadTooLarge", r.text[:300]
    r = requests.post(sp.url + "/score", files={f"f{i}": (None, "v") for i in range(10)}, timeout=30)
    assert r.status_code == 200 and r.text == "10"


def test_non_ascii_bearer_token_answers_401_not_500(serve, tmp_path):
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"tokenSecret": "s3cret"}))
    sp = serve(UNDECORATED, MLMANAGE_TOKEN_AUTH_ENABLED="1", MLMANAGE_KEYS_FILE=str(keys))
    for token in ("é.x".encode("latin-1"), b"\xff\xfe.abc", "a.é".encode("latin-1")):
        r = requests.post(sp.url + "/score", json=GOOD, headers={"Authorization": b"Bearer " + token}, timeout=30)
        assert r.status_code == 401 and r.json()["error"]["code"] == "Unauthorized", r.text
