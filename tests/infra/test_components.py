"""Each test component works on this machine: Docker Engine + base image, Azurite,
JupyterLab + Chromium (an ipywidgets button clicked in a real browser), kmock."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.fixture
def inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A pytester project using this suite's conftest (with tests/ importable)."""
    pytester.makeconftest((HERE.parent / "conftest.py").read_text())
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(HERE.parent), os.environ.get("PYTHONPATH")])))
    return pytester


# inner runs skip the heavy plugins this suite does not need there (nbval imports nbformat: ~4 s)
FAST = ("-p", "no:cacheprovider", "-p", "no:nbval", "-p", "no:kmock")


# ---------------------------------------------------------------------------- require()
def test_require_skips_or_fails_a_missing_component(inner: pytest.Pytester, monkeypatch):
    inner.makepyfile(
        """
        from infra.components import require

        def test_needs_docker():
            require("docker")

        def test_unknown():
            require("teleporter")
        """
    )
    monkeypatch.setenv("MLMANAGE_BASE_IMAGE", "local/does-not-exist:0")
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    monkeypatch.delenv("MLMANAGE_REQUIRE_COMPONENTS", raising=False)
    res = inner.runpytest_subprocess("-rs", *FAST)
    res.assert_outcomes(skipped=1, failed=1)  # unknown component: ValueError
    res.stdout.fnmatch_lines(["*Docker Engine not reachable*scripts/setup.sh*"])
    monkeypatch.setenv("MLMANAGE_REQUIRE_COMPONENTS", "1")
    res = inner.runpytest_subprocess(*FAST)
    res.assert_outcomes(failed=2)
    res.stdout.fnmatch_lines(["*required component missing: Docker Engine not reachable*"])


def test_component_fixtures_add_markers(inner: pytest.Pytester):
    inner.makepyfile(
        """
        def test_a(docker_client): pass
        def test_b(azurite_connection_string): pass
        def test_c(browser_page): pass
        def test_plain(tmp_path): pass
        """
    )
    res = inner.runpytest_subprocess(*FAST, "--collect-only", "-q",
                                        "-m", "not docker and not azurite and not browser")
    res.stdout.fnmatch_lines(["*test_plain*", "*1/4 tests collected (3 deselected)*"])


# ---------------------------------------------------------------------------- docker
@pytest.mark.docker
def test_docker_builds_from_base_image_and_serves_http(docker_client, base_image, tmp_path):
    import docker

    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "index.html").write_text("hello from the base image\n")
    (ctx / "Dockerfile").write_text(
        f"FROM {base_image}\n"
        'RUN python3 -c "import sys, venv; assert sys.version_info[:2] == (3, 11), sys.version" '
        "&& pip --version\n"
        "WORKDIR /srv\nCOPY index.html /srv/\n"
        'CMD ["python3", "-m", "http.server", "8000", "--bind", "0.0.0.0"]\n'
    )
    tag = f"local/mlmanage-infra-test:{uuid.uuid4().hex[:8]}"
    image, _ = docker_client.images.build(path=str(ctx), tag=tag, rm=True, forcerm=True)
    container = None
    try:
        container = docker_client.containers.run(
            tag, detach=True, ports={"8000/tcp": ("127.0.0.1", None)}, nano_cpus=500_000_000,
            mem_limit="256m", labels={"owner": "mlmanage-tests"},
        )  # fmt: skip
        container.reload()
        host_port = int(container.ports["8000/tcp"][0]["HostPort"])
        body = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and body is None:
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{host_port}/index.html", timeout=2).read()
            except OSError:
                time.sleep(0.2)
        assert body == b"hello from the base image\n", container.logs().decode()[-2000:]
        assert container.attrs["HostConfig"]["NanoCpus"] == 500_000_000
        assert container.attrs["HostConfig"]["Memory"] == 256 * 1024 * 1024
    finally:
        if container is not None:
            container.remove(force=True)
        try:
            docker_client.images.remove(image.id, force=True)
        except docker.errors.APIError:
            pass


# ---------------------------------------------------------------------------- azurite
@pytest.mark.azurite
def test_azurite_round_trip(azurite_connection_string, blob_container):
    from azure.storage.blob import BlobServiceClient

    assert os.environ["AZURE_STORAGE_CONNECTION_STRING"] == azurite_connection_string
    svc = BlobServiceClient.from_connection_string(azurite_connection_string)
    cc = svc.get_container_client(blob_container)
    cc.create_container()
    payload = os.urandom(3 * 1024 * 1024 + 7)
    cc.upload_blob("m1/model.bin", payload, metadata={"v": "1"})
    assert cc.download_blob("m1/model.bin").readall() == payload
    assert [(b.name, b.size) for b in cc.list_blobs(name_starts_with="m1/")] == [("m1/model.bin", len(payload))]
    assert cc.get_blob_client("m1/model.bin").get_blob_properties().metadata == {"v": "1"}


# ---------------------------------------------------------------------------- kmock
@pytest.fixture
def kmock_url(tmp_path):
    from infra.components import free_port, require

    require("kmock")
    port = free_port()
    log = tmp_path / "kmock.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, str(HERE.parents[1] / "scripts" / "kmock_server.py"), str(port)], stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while "listening" not in log.read_text() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert "listening" in log.read_text(), log.read_text()
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.mark.kubernetes
def test_kmock_serves_the_official_client(kmock_url):
    from kubernetes import client

    cfg = client.Configuration()
    cfg.host = kmock_url
    with client.ApiClient(cfg) as api:
        core = client.CoreV1Api(api)
        core.create_namespaced_config_map(
            "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="cm1"), data={"k": "v"}),
            _request_timeout=10,
        )  # fmt: skip
        got = core.read_namespaced_config_map("cm1", "default", _request_timeout=10)
        assert got.data == {"k": "v"}
        apps = client.AppsV1Api(api)
        names = [d.metadata.name for d in apps.list_namespaced_deployment("default", _request_timeout=10).items]
        assert names == []


# ---------------------------------------------------------------------------- browser
WIDGET_NB = {
    "cells": [
        {
            "cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
            "source": textwrap.dedent(
                """\
                import ipywidgets as w
                out = w.Output()
                b = w.Button(description="Click me")
                def on_click(_):
                    with out:
                        print("clicked!")
                b.on_click(on_click)
                w.VBox([b, out])
                """
            ),
        },  # fmt: skip
        {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": "print(6 * 7)"},
    ],
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    "nbformat": 4,
    "nbformat_minor": 5,
}


@pytest.mark.browser
def test_jupyterlab_chromium_click_ipywidgets_button(jupyter_root, run_notebook, browser_page, screenshot):
    from playwright.sync_api import expect

    nb = jupyter_root / "infra" / "widget_test.ipynb"
    nb.parent.mkdir(exist_ok=True)
    nb.write_text(json.dumps(WIDGET_NB))
    run = run_notebook("infra/widget_test.ipynb")
    assert run.ok
    assert any(o.get("text") == "42\n" for o in run.outputs[1])
    button = browser_page.locator(".jp-OutputArea-output .widget-button", has_text="Click me")
    expect(button).to_be_visible(timeout=60_000)
    button.click()
    stdout = browser_page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stdout']")
    expect(stdout.filter(has_text="clicked!")).to_be_visible(timeout=30_000)
    path = screenshot("infra-widget-clicked")
    assert path.stat().st_size > 1000


@pytest.mark.browser
def test_run_notebook_reports_the_failing_cell(jupyter_root, run_notebook):
    nb = dict(WIDGET_NB)
    nb["cells"] = [
        {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": "x = 1"},
        {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": "1 / 0"},
        {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": "print('never')"},
    ]
    (jupyter_root / "infra").mkdir(exist_ok=True)
    (jupyter_root / "infra" / "failing.ipynb").write_text(json.dumps(nb))
    run = run_notebook("infra/failing.ipynb", check=False)
    assert not run.ok
    assert run.errors == ["cell 1: ZeroDivisionError: division by zero"]
    assert run.outputs[2] == []
