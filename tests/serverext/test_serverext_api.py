"""The server extension's REST API in a real Jupyter Server (pytest-jupyter): Jupyter's auth
and XSRF, errors as JSON, and a real local service listed, scored through the proxy, its
logs streamed (SSE), updated and deleted."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from lab_env import SAMPLE, SCORE, deploy_local, make_lab_env
from tornado.httpclient import HTTPClientError

API = ("mlmanage", "api")


async def get_json(jp_fetch: Any, *parts: str, **kw: Any) -> Any:
    r = await jp_fetch(*API, *parts, **kw)
    return json.loads(r.body) if r.body else None


async def error_of(jp_fetch: Any, *parts: str, **kw: Any) -> tuple[int, dict[str, Any]]:
    with pytest.raises(HTTPClientError) as e:
        await jp_fetch(*API, *parts, **kw)
    assert e.value.response is not None
    assert e.value.response.headers["Content-Type"].startswith("application/json")
    return e.value.code, json.loads(e.value.response.body)


# ---------------------------------------------------------------------------- auth / xsrf
async def test_every_route_needs_jupyters_auth(jp_fetch: Any, http_server_client: Any, jp_base_url: str, workspace: Any) -> None:
    for method, path, body in [
        ("GET", "workspace", None), ("GET", "models", None), ("GET", "services", None), ("GET", "events", None),
        ("GET", "services/x-svc/keys", None), ("POST", "services/x-svc/score", "{}"), ("DELETE", "services/x-svc", None),
        ("POST", "services", "{}"),
    ]:  # fmt: skip
        r = await http_server_client.fetch(f"{jp_base_url}mlmanage/api/{path}", method=method, body=body, raise_error=False)
        assert r.code == 403, (method, path, r.code)
        assert "error" in json.loads(r.body)
    # with the token the same route answers
    info = await get_json(jp_fetch, "workspace")
    assert Path(info["path"]) == workspace.path and info["lastEventId"] == 0
    assert "# mlmanage-jupyter" in (await get_json(jp_fetch, "readme"))["markdown"]


async def test_xsrf_enforced_for_cookie_sessions(jp_fetch: Any, http_server_client: Any, jp_base_url: str,
                                                 jp_auth_header: dict[str, str], workspace: Any) -> None:  # fmt: skip
    # a token request logs the browser in: Jupyter sets its login cookie
    r = await jp_fetch(*API, "workspace", headers=jp_auth_header)
    login = [c.split(";", 1)[0] for c in r.headers.get_list("Set-Cookie") if not c.startswith("_xsrf=")]
    assert login, r.headers
    cookie = "; ".join(login)
    url = f"{jp_base_url}mlmanage/api/services/nope-svc"
    # GET with the cookie alone works (the cookie authenticates)
    r = await http_server_client.fetch(f"{jp_base_url}mlmanage/api/services", headers={"Cookie": cookie}, raise_error=False)
    assert r.code == 200, r.body
    # DELETE / POST with the cookie but without X-XSRFToken: refused before reaching the core
    for method, path, body, headers in [
        ("DELETE", url, None, {"Cookie": cookie}),
        ("POST", url + "/score", "{}", {"Cookie": cookie}),
        ("POST", url + "/update", "{}", {"Cookie": f"{cookie}; _xsrf=a3f1c0ffee", "X-XSRFToken": "another"}),
        ("POST", f"{jp_base_url}mlmanage/api/services", "{}", {"Cookie": cookie}),
    ]:
        r = await http_server_client.fetch(path, method=method, body=body, headers=headers, raise_error=False)
        assert r.code == 403, (method, r.code, r.body)
        assert "xsrf" in json.loads(r.body)["error"].lower()
    # with an _xsrf cookie and the same value in the header it gets through (to the core's 404)
    token = "a3f1c0ffee"
    headers = {"Cookie": f"{cookie}; _xsrf={token}", "X-XSRFToken": token}
    r = await http_server_client.fetch(url, method="DELETE", headers=headers, raise_error=False)
    assert r.code == 404 and "nope-svc" in json.loads(r.body)["error"]


# ---------------------------------------------------------------------------- errors / listings
async def test_errors_are_json_with_the_cores_message(jp_fetch: Any, workspace: Any) -> None:
    code, body = await error_of(jp_fetch, "services", "no-such-svc")
    assert code == 404 and "no service named 'no-such-svc'" in body["error"]
    code, body = await error_of(jp_fetch, "models", "diabetes", "1")
    assert code == 404 and "diabetes" in body["error"]
    code, body = await error_of(jp_fetch, "models", "diabetes", "one")
    assert code == 400 and "integer" in body["error"]
    code, body = await error_of(jp_fetch, "events", params={"since": "-1"})
    assert code == 400 and "since" in body["error"]
    code, body = await error_of(jp_fetch, "events", params={"since": "x"})
    assert code == 400 and "'since'" in body["error"]
    code, body = await error_of(jp_fetch, "services", "no-such-svc", "update", method="POST", body="{not json")
    assert code == 400 and "not valid JSON" in body["error"]
    code, body = await error_of(jp_fetch, "services", "no-such-svc", "update", method="POST", body=json.dumps({"models": "diabetes:1"}))
    assert code == 400 and '"models"' in body["error"]
    code, body = await error_of(jp_fetch, "services", "no-such-svc", "score", method="POST", body=" ")
    assert code == 400 and "empty" in body["error"]
    code, body = await error_of(jp_fetch, "services", "no-such-svc", "logs", params={"tail": "0"})
    assert code == 400 and "tail" in body["error"]


def test_core_errors_map_to_http_codes() -> None:
    from mlmanage_jupyter.core.errors import (
        InUseError,
        ModelNotFoundError,
        ValidationError,
        WebserviceException,
    )
    from mlmanage_jupyter.serverext.core_api import http_status

    assert [http_status(e("x")) for e in (ValidationError, ModelNotFoundError, InUseError, WebserviceException, RuntimeError)] == [
        400, 404, 409, 500, 500]  # fmt: skip


async def test_models_with_versions_files_and_events(jp_fetch: Any, workspace: Any, tmp_path: Path) -> None:
    env = make_lab_env(workspace, tmp_path)
    models = (await get_json(jp_fetch, "models"))["models"]
    assert [m["id"] for m in models] == ["diabetes:2", "diabetes:1"]
    m1 = models[1]
    assert m1["modelFramework"] == "ScikitLearn" and m1["tags"] == {"area": "health", "v": "1"}
    assert m1["size"] == env.models[0].size > 0 and m1["usedBy"] == {"images": [], "services": []}
    one = await get_json(jp_fetch, "models", "diabetes", "1")
    assert [f["path"] for f in one["files"]] == ["sklearn_regression_model.pkl"]
    feed = await get_json(jp_fetch, "events")
    assert [e["kind"] for e in feed["events"]] == ["model.register", "model.register"] and feed["last"] == feed["events"][-1]["id"]
    assert (await get_json(jp_fetch, "events", params={"since": str(feed["last"])}))["events"] == []
    assert (await get_json(jp_fetch, "services"))["services"] == []


# ---------------------------------------------------------------------------- a real service
@pytest.mark.slow
async def test_a_local_service_through_the_api(jp_fetch: Any, jp_http_port: int, jp_base_url: str,
                                               jp_auth_header: dict[str, str], workspace: Any, tmp_path: Path) -> None:  # fmt: skip
    env = make_lab_env(workspace, tmp_path)
    svc = deploy_local(env, "lab-api-svc", auth=True)
    try:
        (listed,) = (await get_json(jp_fetch, "services"))["services"]
        assert listed["name"] == "lab-api-svc" and listed["state"] == "Healthy" and listed["computeType"] == "local"
        assert listed["models"] == ["diabetes:1"] and listed["authEnabled"] and listed["scoringUri"] == svc.scoring_uri
        assert "primaryKey" not in json.dumps(listed)
        used = (await get_json(jp_fetch, "models", params={"name": "diabetes"}))["models"]
        assert used[1]["usedBy"]["services"] == ["lab-api-svc"]
        assert (await get_json(jp_fetch, "images"))["images"][0]["services"] == ["lab-api-svc"]

        # scoring through the server: the browser sends no key, the proxy adds it
        res = await get_json(jp_fetch, "services", "lab-api-svc", "score", method="POST", body=json.dumps({"data": SAMPLE}))
        assert res["status"] == 200 and res["body"] == [pytest.approx(env.expected)] and res["latencyMs"] > 0
        bad = await get_json(jp_fetch, "services", "lab-api-svc", "score", method="POST", body='{"data": "x"}')
        assert bad["status"] >= 400 and bad["body"]  # the service's own error, passed on
        keys = await get_json(jp_fetch, "services", "lab-api-svc", "keys")
        assert (keys["primaryKey"], keys["secondaryKey"]) == svc.get_keys()
        swagger = await get_json(jp_fetch, "services", "lab-api-svc", "swagger")
        assert "/score" in json.dumps(swagger["paths"])
        for _ in range(300):  # records are written after the answer: wait for them (bounded)
            tel = await get_json(jp_fetch, "services", "lab-api-svc", "telemetry")
            if tel["requests"] >= 2:
                break
            await asyncio.sleep(0.1)
        assert tel["requests"] == 2 and tel["errors"] == 1 and tel["p50_ms"] > 0
        logs = (await get_json(jp_fetch, "services", "lab-api-svc", "logs", params={"tail": "200"}))["logs"]
        assert "lab-test: model loaded" in logs

        # logs followed (SSE): a new request's line arrives on the open stream
        url = f"http://127.0.0.1:{jp_http_port}{jp_base_url}mlmanage/api/services/lab-api-svc/logs?" + urlencode({"follow": 1})
        seen: list[str] = []
        async with httpx.AsyncClient(headers=jp_auth_header, timeout=60) as client:
            async with client.stream("GET", url) as stream:
                assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")
                scored = False
                event = None
                async for line in stream.aiter_lines():
                    if line.startswith("event: "):
                        event = line[7:]
                    elif line.startswith("data: ") and event == "line":
                        seen.append(json.loads(line[6:]))
                        if not scored and any("model loaded" in s for s in seen):
                            scored = True  # the backlog arrived: now make a new line
                            await jp_fetch(*API, "services", "lab-api-svc", "score", method="POST",
                                           body=json.dumps({"data": SAMPLE * 3}))  # fmt: skip
                        if any("scoring 3 rows" in s for s in seen):
                            break
        assert any("scoring 3 rows" in s for s in seen)

        # update to v2 (rolling), then delete; the event feed saw both
        before = (await get_json(jp_fetch, "workspace"))["lastEventId"]
        updated = await get_json(jp_fetch, "services", "lab-api-svc", "update", method="POST", body=json.dumps({"models": ["diabetes:2"]}))
        assert updated["models"] == ["diabetes:2"] and updated["state"] == "Healthy"
        code, body = await error_of(jp_fetch, "services", "lab-api-svc", "update", method="POST", body=json.dumps({"models": ["diabetes:9"]}))
        assert code == 404 and "diabetes" in body["error"]
        r = await jp_fetch(*API, "services", "lab-api-svc", method="DELETE")
        assert r.code == 204
        code, _ = await error_of(jp_fetch, "services", "lab-api-svc")
        assert code == 404
        kinds = [e["kind"] for e in (await get_json(jp_fetch, "events", params={"since": str(before)}))["events"]]
        assert "service.update" in kinds and "service.delete" in kinds
    finally:
        from mlmanage_jupyter import Webservice

        for s in Webservice.list(workspace, refresh=False):
            s.delete()


@pytest.mark.slow
async def test_a_failed_service_is_listed_with_its_reason(jp_fetch: Any, workspace: Any, tmp_path: Path) -> None:
    from mlmanage_jupyter import InferenceConfig, LocalWebservice, Model, Webservice
    from mlmanage_jupyter.core.errors import DeploymentFailedError

    env = make_lab_env(workspace, tmp_path)
    bad = tmp_path / "bad.py"
    bad.write_text("def init():\n    raise ValueError('cannot load the model: boom')\ndef run(data):\n    return data\n")
    svc = Model.deploy(workspace, "lab-bad-svc", [env.models[0]], InferenceConfig(entry_script=str(bad)),
                       LocalWebservice.deploy_configuration())  # fmt: skip
    try:
        with pytest.raises(DeploymentFailedError):
            svc.wait_for_deployment(timeout_sec=120)
        (listed,) = (await get_json(jp_fetch, "services"))["services"]
        assert listed["name"] == "lab-bad-svc" and listed["state"] == "Failed" and listed["error"]
        logs = (await get_json(jp_fetch, "services", "lab-bad-svc", "logs"))["logs"]
        assert "cannot load the model: boom" in logs
        res = await get_json(jp_fetch, "services", "lab-bad-svc", "score", method="POST", body="{}")
        assert res["status"] == 0 or res["status"] >= 500  # not serving: reported, not raised
    finally:
        Webservice(workspace, "lab-bad-svc").delete()


# ---------------------------------------------------------------------------- deploy (POST services)
def deploy_body(**kw: Any) -> str:
    return json.dumps({"name": "lab-new-svc", "models": ["diabetes:1"], "entry_script": "score.py"} | kw)


async def test_deploy_rejects_bad_requests_naming_the_field(jp_fetch: Any, jp_root_dir: Path, workspace: Any, tmp_path: Path) -> None:
    (jp_root_dir / "score.py").write_text(SCORE)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "score.py").write_text(SCORE)
    (jp_root_dir / "escape").symlink_to(outside)
    cases = [
        (deploy_body(entry_script="../outside/score.py"), "entry_script", "outside the Jupyter root"),
        (deploy_body(entry_script=str(outside / "score.py")), "entry_script", "outside the Jupyter root"),
        (deploy_body(entry_script="escape/score.py"), "entry_script", "outside the Jupyter root"),
        (deploy_body(source_directory="..", entry_script="score.py"), "source_directory", "outside the Jupyter root"),
        (deploy_body(entry_script=7), "entry_script", "relative to the Jupyter root"),
        (deploy_body(entry_script="missing.py"), "missing.py", ""),
        (deploy_body(models="diabetes:1"), '"models"', "non-empty list"),
        (deploy_body(name=None), '"name"', ""),
        (deploy_body(overwrite="yes"), '"overwrite"', ""),
        (deploy_body(environment={"conda": []}), '"environment"', "pip"),
        (deploy_body(environment={"pip": ["-e ."]}), '"environment"', "pip"),
        (deploy_body(deployment_config={"computeType": "moon"}), "computeType", "moon"),
        (deploy_body(deployment_config=[]), '"deployment_config"', ""),
        (deploy_body(entryScript="score.py"), "entryScript", "unknown field"),
        ("[1]", "JSON object", ""),
        ("{nope", "not valid JSON", ""),
    ]
    for body, must, also in cases:
        code, err = await error_of(jp_fetch, "services", method="POST", body=body)
        assert code == 400 and must in err["error"] and also in err["error"], (body, code, err)
    # a well-formed request for a model that is not registered: 404 with the model's name
    code, err = await error_of(jp_fetch, "services", method="POST", body=deploy_body(models=["nosuchmodel:3"]))
    assert code == 404 and "nosuchmodel" in err["error"], err
    assert (await get_json(jp_fetch, "services"))["services"] == []  # nothing recorded


@pytest.mark.slow
async def test_deploy_through_the_api_then_score_through_the_proxy(jp_fetch: Any, jp_root_dir: Path, workspace: Any,
                                                                   tmp_path: Path) -> None:  # fmt: skip
    env = make_lab_env(workspace, tmp_path)
    src = jp_root_dir / "svc"
    src.mkdir()
    (src / "score.py").write_text(SCORE)
    body = deploy_body(models=["diabetes:1"], source_directory="svc", entry_script="svc/score.py",
                       deployment_config={"computeType": "local", "authEnabled": True})  # fmt: skip
    try:
        r = await jp_fetch(*API, "services", method="POST", body=body)
        created = json.loads(r.body)
        assert r.code == 202 and created["name"] == "lab-new-svc" and created["computeType"] == "local"
        assert created["models"] == ["diabetes:1"] and created["authEnabled"]
        for _ in range(600):  # bounded wait for the target to report Healthy (or Failed)
            svc = await get_json(jp_fetch, "services", "lab-new-svc")
            if svc["state"] in ("Healthy", "Failed"):
                break
            await asyncio.sleep(0.2)
        assert svc["state"] == "Healthy", svc
        res = await get_json(jp_fetch, "services", "lab-new-svc", "score", method="POST", body=json.dumps({"data": SAMPLE}))
        assert res["status"] == 200 and res["body"] == [pytest.approx(env.expected)]
        # the name is taken now: 409 unless overwrite
        code, err = await error_of(jp_fetch, "services", method="POST", body=body)
        assert code == 409 and "lab-new-svc" in err["error"] and "overwrite" in err["error"]
        # "name" alone deploys the latest version
        latest = await jp_fetch(*API, "services", method="POST", body=deploy_body(name="lab-latest-svc", models=["diabetes"], entry_script="svc/score.py"))
        assert latest.code == 202 and json.loads(latest.body)["models"] == ["diabetes:2"]
    finally:
        from mlmanage_jupyter import Webservice

        for s in Webservice.list(workspace, refresh=False):
            s.delete()
