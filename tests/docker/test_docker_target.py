"""The docker target against a real Docker Engine: build, run, score, auth, logs, rolling
update under load, OOM, broken init(), delete."""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def _deploy(ws: Any, name: str, model: Any, ic: Any, services: list[Any], **cfg: Any) -> Any:
    from mlmanage_jupyter.core.webservice import DockerWebservice, deploy

    lines: list[str] = []
    svc = deploy(ws, name, [model], ic, DockerWebservice.deploy_configuration(**cfg), progress=lines.append)
    services.append(svc)
    svc._progress_lines = lines  # type: ignore[attr-defined]
    return svc


def test_build_run_score_logs_delete(
    workspace: Any, quickstart: Any, sklearn_model: Any, services: list[Any], docker_env: Any, containers_of: Any
) -> None:
    model, make_config = quickstart
    ic = make_config(1)
    # a script no earlier run has built, so this deploy really builds (and streams) its layers
    script = Path(ic.source_directory) / "score.py"
    script.write_text(script.read_text() + f"\n# build {uuid.uuid4().hex}\n")
    svc = _deploy(workspace, "dk-quick", model, ic, services)
    svc.wait_for_deployment(timeout_sec=300)
    assert svc.state == "Healthy"
    # build output streamed line by line to progress
    assert any(line.startswith("Step ") for line in svc._progress_lines)
    out = svc.run({"data": sklearn_model.X.tolist()})
    np.testing.assert_allclose(out["predictions"], sklearn_model.model.predict(sklearn_model.X))
    assert svc.get_swagger()["openapi"].startswith(("2", "3")) or "swagger" in svc.get_swagger()
    # runs as the non-root user, from the image it built, with the limits asked
    c = docker_env.containers.get(svc.runtime["container"])
    assert c.attrs["Config"]["User"].startswith("10001")
    assert c.attrs["Config"]["Healthcheck"]["Test"][0] == "CMD"
    assert "generation 1 is serving" in svc.get_logs()
    assert len(containers_of("dk-quick")) == 2
    svc.delete()
    assert containers_of("dk-quick") == []


def test_limits_and_auth(workspace: Any, quickstart: Any, sklearn_model: Any, services: list[Any], docker_env: Any) -> None:
    model, make_config = quickstart
    svc = _deploy(workspace, "dk-auth", model, make_config(1), services, auth_enabled=True, cpu_cores=0.5, memory_gb=0.5)
    svc.wait_for_deployment(timeout_sec=300)
    c = docker_env.containers.get(svc.runtime["container"])
    assert c.attrs["HostConfig"]["NanoCpus"] == 500_000_000
    assert c.attrs["HostConfig"]["Memory"] == 512 * 1024**2
    body = json.dumps({"data": sklearn_model.X.tolist()})
    assert requests.post(svc.scoring_uri, data=body, timeout=30).status_code == 401
    primary, secondary = svc.get_keys()
    r = requests.post(svc.scoring_uri, data=body, headers={"Authorization": f"Bearer {secondary}"}, timeout=30)
    assert r.status_code == 200
    # the key is not in any image layer or the container's environment
    img = docker_env.images.get(svc.runtime["image"])
    assert primary not in json.dumps(img.attrs) and primary not in json.dumps(c.attrs)
    # regenerated key: the old one stops working, the new one works
    svc.regen_key("Secondary")
    new_secondary = svc.get_keys()[1]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if requests.post(svc.scoring_uri, data=body, headers={"Authorization": f"Bearer {secondary}"}, timeout=30).status_code == 401:
            break
        time.sleep(0.2)
    assert requests.post(svc.scoring_uri, data=body, headers={"Authorization": f"Bearer {secondary}"}, timeout=30).status_code == 401
    r = requests.post(svc.scoring_uri, data=body, headers={"Authorization": f"Bearer {new_secondary}"}, timeout=30)
    assert r.status_code == 200


def test_rolling_update_under_load_has_no_failed_request(
    workspace: Any, quickstart: Any, sklearn_model: Any, services: list[Any], containers_of: Any
) -> None:
    model, make_config = quickstart
    svc = _deploy(workspace, "dk-roll", model, make_config(1), services)
    svc.wait_for_deployment(timeout_sec=300)
    uri = svc.scoring_uri
    body = json.dumps({"data": sklearn_model.X[:1].tolist()})
    results: list[tuple[int, Any]] = []
    stop = threading.Event()

    def load() -> None:
        deadline = time.monotonic() + 600  # bounded even if the test dies
        with requests.Session() as s:
            while not stop.is_set() and time.monotonic() < deadline:
                try:
                    # a new connection per request, so every request goes through the listeners' accept queues
                    r = requests.post(uri, data=body, timeout=60, headers={"Connection": "close"})
                    results.append((r.status_code, r.json().get("version") if r.ok else r.text))
                except requests.RequestException as e:
                    results.append((0, repr(e)))
        del s

    threads = [threading.Thread(target=load, daemon=True) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        time.sleep(1)
        svc.update(inference_config=make_config(2))
        time.sleep(1)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=90)
    failed = [r for r in results if r[0] != 200]
    assert not failed, f"{len(failed)} of {len(results)} requests failed during the update: {failed[:5]}"
    versions = [v for _, v in results]
    assert 1 in versions and 2 in versions and versions[-1] == 2
    assert svc.scoring_uri == uri
    # the old generation is gone; sandbox + one app container remain
    assert len(containers_of("dk-roll")) == 2


def test_broken_init_is_failed_with_traceback(workspace: Any, quickstart: Any, services: list[Any]) -> None:
    from mlmanage_jupyter.core.errors import DeploymentFailedError

    model, make_config = quickstart
    broken = "def init():\n    raise ValueError('cannot load the model: boom')\ndef run(data):\n    return data\n"
    svc = _deploy(workspace, "dk-broken", model, make_config(7, broken), services)
    with pytest.raises(DeploymentFailedError) as ei:
        svc.wait_for_deployment(timeout_sec=300)
    assert svc.state == "Failed"
    assert "Traceback" in svc.error and "cannot load the model: boom" in svc.error
    assert "boom" in ei.value.logs


def test_update_to_broken_version_keeps_old_serving(workspace: Any, quickstart: Any, sklearn_model: Any, services: list[Any]) -> None:
    from mlmanage_jupyter.core.errors import DeploymentFailedError

    model, make_config = quickstart
    svc = _deploy(workspace, "dk-keep", model, make_config(1), services)
    svc.wait_for_deployment(timeout_sec=300)
    broken = "def init():\n    raise ValueError('v2 is broken')\ndef run(data):\n    return data\n"
    with pytest.raises(DeploymentFailedError, match="previous version keeps serving"):
        svc.update(inference_config=make_config(2, broken))
    assert svc.run({"data": sklearn_model.X[:1].tolist()})["version"] == 1
    assert svc.state == "Healthy"


def test_over_memory_limit_is_reported_as_oom(workspace: Any, quickstart: Any, services: list[Any]) -> None:
    model, make_config = quickstart
    hog = (
        "def init():\n    global blob\n    blob = bytearray(600 * 1024 * 1024)\n"
        "    for i in range(0, len(blob), 4096):\n        blob[i] = 1\n"
        "def run(data):\n    return len(blob)\n"
    )
    svc = _deploy(workspace, "dk-oom", model, make_config(9, hog), services, memory_gb=0.25)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and svc.state not in ("Failed", "Unhealthy"):
        time.sleep(0.5)
    assert svc.state in ("Failed", "Unhealthy")
    assert "out of memory" in svc.error and "0.25 GiB" in svc.error


def test_stream_logs_stops_when_asked(workspace: Any, quickstart: Any, services: list[Any]) -> None:
    model, make_config = quickstart
    svc = _deploy(workspace, "dk-logs", model, make_config(1), services)
    svc.wait_for_deployment(timeout_sec=300)
    got: list[str] = []
    stop_at = time.monotonic() + 3
    for line in svc.stream_logs(stop=lambda: time.monotonic() > stop_at or len(got) >= 1000):
        got.append(line)
    assert any("supervisor" in line for line in got)


def test_save_and_export(workspace: Any, quickstart: Any, tmp_path: Path, docker_env: Any) -> None:
    from mlmanage_jupyter.core.image import Image
    from mlmanage_jupyter.core.images import build_cache_dir, image_spec
    from mlmanage_jupyter.core.targets.docker import export_tarball

    model, make_config = quickstart
    img = Image.create(workspace, "dk-export", [model], make_config(1))
    out = Path(img.save(tmp_path / "ctx"))
    dockerfile = (out / "Dockerfile").read_text()
    assert "--no-index --find-links /tmp/wheels" in dockerfile and "HEALTHCHECK" in dockerfile
    assert any(p.name.startswith("scikit_learn-") for p in (out / "wheels").iterdir())
    assert list((out / "engine").glob("mlmanage_jupyter-*.whl"))
    # layer order: deps before models before app code
    assert dockerfile.index("COPY --from=deps") < dockerfile.index("COPY azureml-models/") < dockerfile.index("COPY app/")
    tar = export_tarball(image_spec(img), tmp_path / "img.tar", cache_dir=build_cache_dir(workspace))
    assert Path(tar).stat().st_size > 10 * 1024 * 1024
    import tarfile

    with tarfile.open(tar) as t:
        assert "manifest.json" in t.getnames()


def test_failed_build_shows_the_step_log(workspace: Any, quickstart: Any, docker_env: Any) -> None:
    from mlmanage_jupyter.core.environment import Environment
    from mlmanage_jupyter.core.image import Image
    from mlmanage_jupyter.core.images import build_cache_dir, image_spec
    from mlmanage_jupyter.core.targets.docker import ImageBuildError, build_image

    model, make_config = quickstart
    ic = make_config(1)
    ic.environment = Environment("bad")
    ic.environment.pip_requirements = ["joblib", "scikit-learn", "numpy"]
    ic.environment.docker.extra_docker_file_steps = "RUN echo this-step-fails-on-purpose && exit 3"
    img = Image.create(workspace, "dk-badbuild", [model], ic)
    lines: list[str] = []
    with pytest.raises(ImageBuildError) as ei:
        build_image(image_spec(img), lines.append, cache_dir=build_cache_dir(workspace))
    assert "this-step-fails-on-purpose" in str(ei.value) and "exit 3" in str(ei.value)
    assert any("this-step-fails-on-purpose" in line for line in lines)


def test_collected_model_data_lands_in_the_workspace(
    workspace: Any, quickstart: Any, sklearn_model: Any, services: list[Any], docker_env: Any
) -> None:
    """collect_model_data=True on the docker target: what the container collects is read back
    by get_collected_data() from the workspace's artifact store; a clean stop loses nothing."""
    model, make_config = quickstart
    svc = _deploy(workspace, "dk-collect", model, make_config(1), services, collect_model_data=True)
    svc.wait_for_deployment(timeout_sec=300)
    rows = sklearn_model.X[:5].tolist()
    for i, row in enumerate(rows):
        assert svc.call({"data": [row], "i": i}).ok
    svc.delete()  # flushes the engine's last batch into the bind-mounted folder
    df = svc.get_collected_data()
    assert len(df) == len(rows)
    assert [rec["data"] for rec in df["input"]] == [[r] for r in rows]



def test_image_ships_the_lean_engine(workspace: Any, quickstart: Any, docker_env: Any) -> None:
    """What ships in an image is the scoring engine alone (the engine wheel ``--no-deps`` plus
    its ``serve`` extra): none of the notebook-side packages are importable there."""
    from mlmanage_jupyter.core.image import Image
    from mlmanage_jupyter.core.images import build_cache_dir, image_spec
    from mlmanage_jupyter.core.targets.docker import build_image

    model, make_config = quickstart
    img = Image.create(workspace, "dk-lean", [model], make_config(1))
    tag = build_image(image_spec(img), cache_dir=build_cache_dir(workspace))
    probe = (
        "import importlib.util, json; "
        "print(json.dumps({m: importlib.util.find_spec(m) is not None for m in "
        "['sqlalchemy', 'pandas', 'matplotlib', 'IPython', 'ipywidgets', 'starlette', 'uvicorn', 'sklearn']}))"
    )
    out = docker_env.containers.run(tag, entrypoint=["python", "-c", probe], command=[], remove=True)
    found = json.loads(out.decode().strip().splitlines()[-1])
    assert found == {
        "sqlalchemy": False,
        "pandas": False,
        "matplotlib": False,
        "IPython": False,
        "ipywidgets": False,
        "starlette": True,
        "uvicorn": True,
        "sklearn": True,  # the entry script's own requirement (inferred from the model pickle)
    }
    # and without them the engine still starts: importing its app pulls in nothing missing
    docker_env.containers.run(tag, entrypoint=["python", "-c", "import mlmanage_jupyter.server.app"], command=[], remove=True)
