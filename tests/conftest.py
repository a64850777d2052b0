"""Shared test fixtures: real components (Docker Engine, Azurite, JupyterLab + Chromium, kmock).

Components are installed and started by ``bash scripts/setup.sh``. A test asks for one with
``require(component)`` (``from infra.components import require``; or through a fixture that
does it, or the ``require_component`` fixture): when the component is missing the test
is skipped with a message saying how to get it, except under ``MLMANAGE_REQUIRE_COMPONENTS=1``
(CI), where a missing component fails the test.

Fixtures:
    workspace                 a Workspace in tmp_path, also the default workspace for the test
    docker_client             docker SDK client (marker docker)
    base_image                tag of the local base image, $MLMANAGE_BASE_IMAGE (marker docker)
    azurite_connection_string connection string of Azurite; the test gets a fresh container
                              name in $MLMANAGE_BLOB_CONTAINER, deleted afterwards (marker azurite)
    blob_container            that fresh container name (marker azurite)
    postgres_url              SQLAlchemy URL of a fresh, empty PostgreSQL database of its own,
                              dropped afterwards (marker postgres)
    jupyter_root              the folder JupyterLab serves (session)
    jupyter_lab               base URL of a token-less JupyterLab on a free port (session; marker browser)
    browser_page              a Playwright page in Debian's Chromium; screenshot saved on failure
    screenshot                screenshot(name) -> path under artifacts/screenshots/
    run_notebook              run_notebook(path) opens a notebook in JupyterLab, runs all cells,
                              waits for the kernel to be idle, returns a NotebookRun
    sklearn_model             SklearnModel(path, model, X): a fitted LinearRegression (diabetes)

Using a fixture adds its marker to the test, so ``-m "not docker"`` deselects it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import pytest

# tests/ on sys.path whatever the import mode, so tests can `from infra.components import ...`
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from infra.components import (  # noqa: E402
    ARTIFACTS,
    AZURITE_KEY,
    BASE_IMAGE,
    CHROMIUM,
    CHROMIUM_ARGS,
    FIXTURE_MARKERS,
    POSTGRES_URL,
    SCREENSHOTS,
    azurite_bin,
    azurite_conn_string,
    azurite_url,
    free_port,
    http_answers,
    missing,
    postgres_dsn,
    require,
    stop_process_group,
    wait_http,
)

pytest_plugins = ["pytester"]
__all__ = ["AZURITE_KEY", "require", "free_port", "azurite_conn_string"]


# ---------------------------------------------------------------------------- hooks
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Give each test the markers of the component fixtures it uses (before ``-m`` selects);
    notebook cells collected by nbval get the ``notebook`` marker."""
    for item in items:
        present = {m.name for m in item.iter_markers()}
        if item.path.suffix == ".ipynb" and "notebook" not in present:
            item.add_marker(pytest.mark.notebook)
        for fixture in getattr(item, "fixturenames", ()):
            marker = FIXTURE_MARKERS.get(fixture)
            if marker and marker not in present:
                item.add_marker(getattr(pytest.mark, marker))
                present.add(marker)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture(scope="session", autouse=True)
def _isolated_default_workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No test writes to ``./.mlmanage``: the default workspace is a session temp folder
    unless a test (or the ``workspace`` fixture) sets ``MLMANAGE_WORKSPACE`` itself."""
    old = os.environ.get("MLMANAGE_WORKSPACE")
    os.environ["MLMANAGE_WORKSPACE"] = str(tmp_path_factory.mktemp("default-workspace"))
    yield
    if old is None:
        os.environ.pop("MLMANAGE_WORKSPACE", None)
    else:
        os.environ["MLMANAGE_WORKSPACE"] = old


@pytest.fixture
def require_component() -> Callable[[str], None]:
    """The :func:`infra.components.require` function: ``require_component("docker")``."""
    return require


# ---------------------------------------------------------------------------- workspace
@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A fresh ``Workspace`` at ``tmp_path/"workspace"``, also the process default
    (``MLMANAGE_WORKSPACE`` and ``Workspace.get_default()``) for the test."""
    from mlmanage_jupyter.core.workspace import Workspace

    ws = Workspace(tmp_path / "workspace")
    monkeypatch.setenv("MLMANAGE_WORKSPACE", str(ws.path))
    Workspace.set_default(ws)
    yield ws
    Workspace.set_default(None)
    ws.close()


class SklearnModel(NamedTuple):
    """A fitted model saved with joblib: ``path`` (a ``.pkl`` file), the ``model`` itself and
    ``X``, 5 sample rows (float64, shape (5, 10)) of the diabetes data set."""

    path: Path
    model: Any
    X: Any


@pytest.fixture
def sklearn_model(tmp_path: Path) -> SklearnModel:
    """``LinearRegression`` fitted on scikit-learn's ``load_diabetes``, saved to
    ``tmp_path/"model"/"sklearn_regression_model.pkl"`` (the name Azure ML's samples use)."""
    import joblib
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import LinearRegression

    X, y = load_diabetes(return_X_y=True)
    model = LinearRegression().fit(X, y)
    path = tmp_path / "model" / "sklearn_regression_model.pkl"
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, path)
    return SklearnModel(path, model, X[:5].copy())


# ---------------------------------------------------------------------------- docker
@pytest.fixture(scope="session")
def _docker_session() -> Iterator[Any]:
    import docker

    client = docker.from_env(timeout=300)
    yield client
    client.close()


@pytest.fixture
def docker_client(_docker_session: Any) -> Any:
    """A ``docker.DockerClient`` for the local engine (session-wide, 300 s API timeout).
    Tests remove the containers and images they create themselves."""
    require("docker")
    return _docker_session


@pytest.fixture
def base_image() -> str:
    """The local base image (``$MLMANAGE_BASE_IMAGE``, default ``local/python:3.11-bookworm``):
    Debian bookworm's python3 with a venv at /opt/venv on PATH. Nothing can be pulled here."""
    require("docker")
    return BASE_IMAGE


# ---------------------------------------------------------------------------- azurite
@pytest.fixture(scope="session")
def _azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The Azurite connection string: $AZURE_STORAGE_CONNECTION_STRING when it answers, else
    a session-private in-memory Azurite started from scripts/setup.sh's install."""
    require("azurite")
    conn = os.environ.get("AZURE_STORAGE_CONNECTION_STRING") or azurite_conn_string(10000)
    if http_answers(azurite_url(conn) + "?comp=list"):
        yield conn
        return
    binary = azurite_bin()
    assert binary is not None
    port = free_port()
    log = tmp_path_factory.mktemp("azurite") / "azurite.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(binary), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--inMemoryPersistence",
             "--skipApiVersionCheck", "--disableTelemetry", "--loose"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    try:
        conn = azurite_conn_string(port)
        if not wait_http(azurite_url(conn) + "?comp=list", 60, proc):
            missing(f"Azurite did not start on port {port}: {log.read_text()[-2000:]}")
        yield conn
    finally:
        stop_process_group(proc)


@pytest.fixture
def azurite_connection_string(_azurite: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The Azurite connection string, also in ``AZURE_STORAGE_CONNECTION_STRING``; the test's
    own fresh container name is in ``MLMANAGE_BLOB_CONTAINER`` (and the ``blob_container``
    fixture); that container is deleted after the test."""
    name = "t-" + uuid.uuid4().hex[:20]
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", _azurite)
    monkeypatch.setenv("MLMANAGE_BLOB_CONTAINER", name)
    yield _azurite
    from azure.core.exceptions import ResourceNotFoundError
    from azure.storage.blob import BlobServiceClient

    with BlobServiceClient.from_connection_string(_azurite) as svc:
        try:
            svc.delete_container(name)
        except ResourceNotFoundError:
            pass


@pytest.fixture
def blob_container(azurite_connection_string: str) -> str:
    """A container name unique to the test (not created; deleted after the test)."""
    return os.environ["MLMANAGE_BLOB_CONTAINER"]


# ---------------------------------------------------------------------------- postgres
@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A SQLAlchemy URL (``postgresql+psycopg://...``) of a new empty database on the test
    PostgreSQL ($MLMANAGE_TEST_POSTGRES_URL), dropped after the test (its connections ended)."""
    require("postgres")
    import psycopg

    name = "t_" + uuid.uuid4().hex[:16]
    admin = postgres_dsn(POSTGRES_URL)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _db = POSTGRES_URL.rpartition("/")
    yield f"{base}/{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# ---------------------------------------------------------------------------- jupyterlab
LAB_OVERRIDES = {
    # no news / update toast covering the UI
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
    # render every cell (no virtualization), so DOM queries and screenshots see all of them
    "@jupyterlab/notebook-extension:tracker": {"windowingMode": "none"},
}


@pytest.fixture(scope="session")
def jupyter_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder JupyterLab serves (its ``root_dir``); put notebooks here."""
    return tmp_path_factory.mktemp("jupyter-root")


@pytest.fixture(scope="session")
def jupyter_lab(jupyter_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL (``http://127.0.0.1:<port>``) of JupyterLab started from this venv: no token,
    ``root_dir`` = :func:`jupyter_root`, the app exposed as ``window.jupyterapp``, isolated
    config/runtime/settings folders, ``MLMANAGE_WORKSPACE`` = ``<root>/.mlmanage``. Its log is
    ``artifacts/jupyterlab.log``. Stopped at the end of the session."""
    require("browser")
    home = tmp_path_factory.mktemp("jupyter-home")
    settings = home / "app-settings"
    settings.mkdir()
    (settings / "overrides.json").write_text(json.dumps(LAB_OVERRIDES))
    env = dict(os.environ)
    env.update(
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTER_PLATFORM_DIRS="1",
        MLMANAGE_WORKSPACE=str(jupyter_root / ".mlmanage"),
        PYTHONUNBUFFERED="1",
    )
    port = free_port()
    cmd = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
        "--ServerApp.port_retries=0", "--IdentityProvider.token=", "--ServerApp.password=",
        f"--ServerApp.root_dir={jupyter_root}", f"--LabApp.app_settings_dir={settings}",
        f"--LabApp.user_settings_dir={home / 'user-settings'}",
        f"--LabApp.workspaces_dir={home / 'lab-workspaces'}", "--LabApp.expose_app_in_browser=True",
    ]  # fmt: skip
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    ARTIFACTS.mkdir(exist_ok=True)
    log = ARTIFACTS / "jupyterlab.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            cwd=jupyter_root, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        if not wait_http(url + "/api/status", 120, proc):
            pytest.fail(f"JupyterLab did not start at {url}; log tail:\n{log.read_text()[-3000:]}", pytrace=False)
        yield url
    finally:
        stop_process_group(proc, timeout_s=20)


# ---------------------------------------------------------------------------- browser
@pytest.fixture(scope="session")
def _chromium() -> Iterator[Any]:
    require("browser")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def _test_file_name(node_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", node_id.split("::", 1)[-1])[:120]


@pytest.fixture
def browser_page(_chromium: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A Playwright (sync API) page, 1280x800, in its own browser context of Debian's
    Chromium (headless). When the test fails, the page is saved to
    ``artifacts/screenshots/<test>-failure.png``."""
    context = _chromium.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(60_000)
    page = context.new_page()
    try:
        yield page
    finally:
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            try:
                page.screenshot(path=str(SCREENSHOTS / f"{_test_file_name(request.node.nodeid)}-failure.png"))
            except Exception:
                pass
        context.close()


@pytest.fixture
def screenshot(browser_page: Any) -> Callable[..., Path]:
    """``screenshot(name, full_page=False)`` saves the page to ``artifacts/screenshots/<name>.png``
    and returns the path."""

    def take(name: str, full_page: bool = False) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{re.sub(r'[^A-Za-z0-9._-]+', '_', name)}.png"
        browser_page.screenshot(path=str(path), full_page=full_page)
        return path

    return take


@dataclass
class NotebookRun:
    """What running a notebook in JupyterLab gave: ``ok`` (no cell raised), ``errors`` (one
    ``"ename: evalue"`` per failing cell), ``outputs`` (per cell, nbformat output dicts)."""

    path: str
    ok: bool
    errors: list[str] = field(default_factory=list)
    outputs: list[list[dict[str, Any]]] = field(default_factory=list)


_JS_NOTEBOOK_READY = """(path) => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  if (!w || !w.context || w.context.path !== path || !w.content || !w.content.widgets) return false;
  const k = w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return !!k && k.connectionStatus === 'connected' && k.status === 'idle' && w.content.widgets.length > 0;
}"""
_JS_RUN_ALL = """async () => {
  const app = window.jupyterapp;
  window.__mlmRun = {done: false, ok: null, error: null};
  await app.commands.execute('notebook:clear-all-cell-outputs');
  app.commands.execute('notebook:run-all-cells').then(
    ok => { window.__mlmRun = {done: true, ok: ok !== false, error: null}; },
    e => { window.__mlmRun = {done: true, ok: false, error: String(e)}; });
}"""
_JS_KERNEL_IDLE = """() => {
  const w = window.jupyterapp.shell.currentWidget;
  const k = w.sessionContext.session && w.sessionContext.session.kernel;
  return !!k && k.status === 'idle';
}"""
_JS_CELLS = """() => window.jupyterapp.shell.currentWidget.content.widgets.map(c => ({
  type: c.model.type,
  source: c.model.sharedModel.getSource(),
  count: c.model.type === 'code' ? c.model.executionCount : null,
  outputs: c.model.type === 'code' ? c.model.outputs.toJSON() : [],
}))"""


@pytest.fixture
def run_notebook(jupyter_lab: str, jupyter_root: Path, browser_page: Any) -> Callable[..., NotebookRun]:
    """``run_notebook(path, timeout_s=300, check=True) -> NotebookRun``: open the notebook in
    JupyterLab (``path`` relative to :func:`jupyter_root`, or a file elsewhere, copied into
    it), wait for its kernel, clear outputs, run all cells (stopping at the first error, as
    JupyterLab does), wait for the kernel to be idle, and return what the cells produced.
    With ``check``, a cell error or a cell left unexecuted fails the test. The page stays
    open on the notebook for screenshots and clicks."""
    page = browser_page

    def run(path: str | os.PathLike[str], timeout_s: float = 300, check: bool = True) -> NotebookRun:
        p = Path(path)
        if p.is_absolute():
            try:
                rel = p.resolve().relative_to(jupyter_root.resolve()).as_posix()
            except ValueError:
                dest = jupyter_root / uuid.uuid4().hex[:8] / p.name
                dest.parent.mkdir(parents=True)
                shutil.copy2(p, dest)
                rel = dest.relative_to(jupyter_root).as_posix()
        else:
            rel = p.as_posix()
        if not (jupyter_root / rel).is_file():
            raise FileNotFoundError(f"no notebook {rel} under {jupyter_root}")
        ms = int(timeout_s * 1000)
        page.goto(f"{jupyter_lab}/lab/tree/{rel}", wait_until="domcontentloaded")
        page.wait_for_function(_JS_NOTEBOOK_READY, arg=rel, timeout=min(ms, 120_000))
        cells: list[dict[str, Any]] = []
        for _attempt in range(2):  # a run issued while the kernel settles can be dropped: retry once
            page.evaluate(_JS_RUN_ALL)
            page.wait_for_function("() => window.__mlmRun && window.__mlmRun.done", timeout=ms)
            page.wait_for_function(_JS_KERNEL_IDLE, timeout=ms)
            cells = page.evaluate(_JS_CELLS)
            ran = [c for c in cells if c["type"] == "code" and c["source"].strip()]
            if any(c["count"] is not None for c in ran) or not ran:
                break
        errors = [
            f"cell {i}: {o.get('ename')}: {o.get('evalue')}"
            for i, c in enumerate(cells)
            for o in c["outputs"]
            if o.get("output_type") == "error"
        ]
        unexecuted = [i for i, c in enumerate(cells) if c["type"] == "code" and c["source"].strip() and c["count"] is None]
        result = NotebookRun(rel, ok=not errors and not unexecuted, errors=errors, outputs=[c["outputs"] for c in cells])
        if check and not result.ok:
            pytest.fail(f"notebook {rel}: {'; '.join(errors) or f'cells {unexecuted} did not run'}", pytrace=False)
        return result

    return run
