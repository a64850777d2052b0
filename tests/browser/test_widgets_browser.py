"""The widget panels in JupyterLab in headless Chromium, against a real local service: the
test clicks Deploy in the DeploymentForm, sees the service become Healthy, sends a request
from the EndpointConsole and reads the prediction on the page. Screenshots go to
``artifacts/screenshots/widgets-*.png``."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SERVICE = "diab-browser"
MAGIC_SERVICE = "diab-browser-magic"
SAMPLE = [[0.03, 0.05, 0.06, 0.02, -0.04, -0.03, -0.04, -0.002, 0.02, -0.02]]

SETUP = '''
import os, joblib
from pathlib import Path
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression
from mlmanage_jupyter.core.workspace import Workspace
from mlmanage_jupyter.core.model import Model
from mlmanage_jupyter.core.webservice import Webservice
from mlmanage_jupyter.widgets import DeploymentForm, EndpointConsole, LiveLogs, MonitorPanel, ProfileChart, RegistryBrowser

ws = Workspace()  # MLMANAGE_WORKSPACE, set by the test's JupyterLab
X, y = load_diabetes(return_X_y=True)
joblib.dump(LinearRegression().fit(X, y), "sklearn_regression_model.pkl")
model = Model.register(ws, "sklearn_regression_model.pkl", "diabetes", tags={"area": "health"}, model_framework="ScikitLearn")
(ws.subdir("scripts") / "diabetes.py").write_text(SCORE)
print("registered", model.id)
'''
SCORE = '''
import os, joblib
import numpy as np
from inference_schema.schema_decorators import input_schema, output_schema
from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType
from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType

def init():
    global model
    model = joblib.load(os.path.join(os.environ["AZUREML_MODEL_DIR"], "sklearn_regression_model.pkl"))

@input_schema("data", NumpyParameterType(np.array([[0.03, 0.05, 0.06, 0.02, -0.04, -0.03, -0.04, -0.002, 0.02, -0.02]])))
@output_schema(StandardPythonParameterType([152.1]))
def run(data):
    print(f"scored {len(data)} rows", flush=True)
    return model.predict(data).tolist()
'''

CELLS = [
    f"SCORE = {SCORE!r}\n" + SETUP,
    f'form = DeploymentForm(ws, model=model, entry_script="diabetes", service_name="{SERVICE}", targets=["local"])\n'
    "form.auth_enabled.value = True\nform",
    f'svc = Webservice(ws, "{SERVICE}")\nconsole = EndpointConsole(svc)\nconsole',
    f"for i in range(80):\n    svc.run({{'data': {SAMPLE!r}}})\nLiveLogs(svc)",
    "ProfileChart(svc, concurrency=(1, 2), duration_s=1.0)",
    "browser = RegistryBrowser(ws)\nbrowser.models.value = model.id\nbrowser",
    "MonitorPanel(svc, refresh_s=1.0)",
    'DeploymentForm(ws, targets=["local"])  # untouched',
    f"%load_ext mlmanage_jupyter\n%deploy {MAGIC_SERVICE} --model diabetes:1 --script diabetes",
    f"%test_endpoint {MAGIC_SERVICE} '{json.dumps({'data': SAMPLE})}'",
    f"rows = [{{'data': {SAMPLE!r}}}]\n%profile {MAGIC_SERVICE} --samples rows --concurrency 1,2 --duration 0.5",
]
LOGS, MONITOR, UNTOUCHED, MAGIC_DEPLOY, MAGIC_TEST, MAGIC_PROFILE = 3, 6, 7, 8, 9, 10

_JS_READY = """(path) => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  if (!w || !w.context || w.context.path !== path || !w.content || !w.content.widgets) return false;
  const k = w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return !!k && k.connectionStatus === 'connected' && k.status === 'idle' && w.content.widgets.length > 0;
}"""
_JS_RUN_CELL = """async (i) => {
  const app = window.jupyterapp;
  const nb = app.shell.currentWidget;
  nb.content.activeCellIndex = i;
  await app.commands.execute('notebook:run-cell');
}"""
_JS_CELL_DONE = """(i) => {
  const w = window.jupyterapp.shell.currentWidget;
  const k = w.sessionContext.session && w.sessionContext.session.kernel;
  const c = w.content.widgets[i];
  return !!k && k.status === 'idle' && c.model.executionCount !== null;
}"""
_JS_CELL_ERRORS = """(i) => window.jupyterapp.shell.currentWidget.content.widgets[i].model.outputs.toJSON()
  .filter(o => o.output_type === 'error').map(o => o.ename + ': ' + o.evalue)"""


@pytest.fixture
def widget_notebook(jupyter_root: Path) -> Iterator[str]:
    """The notebook (relative path) in JupyterLab's root; the service is deleted afterwards."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = jupyter_root / "widgets_browser.ipynb"
    nbformat.write(nb, path)
    yield path.name
    from mlmanage_jupyter.core.webservice import ServiceNotFoundError, Webservice
    from mlmanage_jupyter.core.workspace import Workspace

    ws = Workspace(jupyter_root / ".mlmanage")
    for name in (SERVICE, MAGIC_SERVICE):
        try:
            Webservice(ws, name).delete()
        except ServiceNotFoundError:
            pass
    ws.engine.dispose()


def _run_cell(page: Any, i: int, timeout_ms: int = 180_000) -> None:
    for _attempt in range(3):  # a run issued while the kernel settles can be dropped: retry
        page.evaluate(_JS_RUN_CELL, i)
        try:
            page.wait_for_function(_JS_CELL_DONE, arg=i, timeout=min(timeout_ms, 60_000))
            break
        except Exception:  # noqa: BLE001 - playwright TimeoutError: try again
            continue
    page.wait_for_function(_JS_CELL_DONE, arg=i, timeout=timeout_ms)
    errors = page.evaluate(_JS_CELL_ERRORS, i)
    assert not errors, f"cell {i} raised: {errors}"


_JS_SCROLL = """(box) => {
  const pre = box.querySelector('pre');
  const b = box.getBoundingClientRect(), p = pre.getBoundingClientRect();
  return {overflowing: box.scrollHeight > box.clientHeight + 2,
          preScrolls: pre.scrollHeight > pre.clientHeight + 2,
          gap: b.bottom - p.bottom, topHidden: p.top < b.top};
}"""
_JS_OVERFLOW = """(el) => el.scrollWidth - el.clientWidth"""
_JS_COLOR = """(el) => getComputedStyle(el).color"""
RED = "rgb(207, 34, 46)"


def _follows_newest(locator: Any) -> None:
    """The scroll box shows its newest line: the inner pre does not scroll itself and its
    bottom edge is at the box's bottom (within the box's padding)."""
    st = locator.evaluate(_JS_SCROLL)
    assert not st["preScrolls"], st
    assert 0 <= st["gap"] <= 8, st


def test_deploy_then_call_from_the_panels(
    jupyter_lab: str, jupyter_root: Path, widget_notebook: str, browser_page: Any, screenshot: Callable[..., Path]
) -> None:
    from playwright.sync_api import expect

    page = browser_page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=jupyter_lab)
    page.goto(f"{jupyter_lab}/lab/tree/{widget_notebook}", wait_until="domcontentloaded")
    page.wait_for_function(_JS_READY, arg=widget_notebook, timeout=120_000)
    cells = page.locator(".jp-Notebook .jp-Cell")

    _run_cell(page, 0)
    _run_cell(page, 1)
    form = cells.nth(1).locator(".jp-OutputArea-output")
    deploy = form.locator(".widget-button", has_text=re.compile(r"^\s*Deploy\s*$"))
    expect(deploy).to_be_enabled(timeout=60_000)
    expect(form.get_by_text("ready to deploy")).to_be_visible()
    expect(form.get_by_text("Replace an existing service of that name")).to_be_visible()  # whole label
    deploy.click()  # the real click: the kernel deploys in a thread
    cells.nth(1).scroll_into_view_if_needed()
    screenshot("widgets-deployment-form-deploying")
    expect(form.get_by_text("ready to deploy")).to_have_count(0)
    service_table = form.locator(".mlmanage-service")
    expect(service_table.get_by_text("Healthy")).to_be_visible(timeout=180_000)
    uri = service_table.locator("a", has_text=re.compile(r"http://127\.0\.0\.1:\d+/score"))
    expect(uri).to_be_visible()  # a link
    expect(form.get_by_text(f"{SERVICE} is deployed")).to_be_visible()
    expect(form.get_by_text("already exists")).to_have_count(0)
    _follows_newest(form.locator(".mlmanage-scroll").first)  # the build output shows its newest line
    # keys: dots until revealed; the copy button puts the key on the clipboard
    from mlmanage_jupyter.core.webservice import Webservice
    from mlmanage_jupyter.core.workspace import Workspace

    primary = Webservice(Workspace(jupyter_root / ".mlmanage"), SERVICE).get_keys()[0]
    key = service_table.locator(".mlmanage-key").first
    expect(key.get_by_text(primary)).not_to_be_visible()
    expect(key.get_by_text("•" * 12)).to_be_visible()
    key.locator("summary").click()
    expect(key.get_by_text(primary)).to_be_visible()
    key.locator(".mlmanage-copy").click()
    expect(key.locator(".mlmanage-copy")).to_have_text("copied")
    assert page.evaluate("navigator.clipboard.readText()") == primary
    cells.nth(1).scroll_into_view_if_needed()
    screenshot("widgets-deployment-form")

    for i in range(2, len(CELLS)):
        _run_cell(page, i)
    console = cells.nth(2).locator(".jp-OutputArea-output")
    editor = console.locator("textarea")
    expect(editor).to_have_value(re.compile(r'"data"'))
    assert json.loads(editor.input_value()) == {"data": SAMPLE}
    console.locator(".widget-button", has_text="Send").click()
    expect(console.locator(".mlmanage-status")).to_have_text("200", timeout=60_000)
    expect(console.locator(".mlmanage-latency")).to_have_text(re.compile(r"^\d+\.\d ms$"))
    json_view = console.locator(".jp-RenderedJSON")  # JupyterLab's collapsible JSON view
    expect(json_view).to_contain_text(re.compile(r"\d+\.\d+"))
    import joblib  # the prediction on the page is the model's

    est = joblib.load(jupyter_root / "sklearn_regression_model.pkl")
    shown_value = float(re.search(r"\d+\.\d+", json_view.inner_text()).group(0))
    assert shown_value == pytest.approx(est.predict(SAMPLE)[0], rel=1e-3)
    cells.nth(2).scroll_into_view_if_needed()
    screenshot("widgets-endpoint-console")
    console.locator(".lm-TabBar-tab", has_text="curl").click()
    expect(console.locator(".mlmanage-consume pre").filter(has_text="curl -sS")).to_be_visible()
    console.locator(".mlmanage-consume").filter(has_text="curl -sS").scroll_into_view_if_needed()
    screenshot("widgets-consume")

    logs = cells.nth(LOGS).locator(".jp-OutputArea-output")
    expect(logs.get_by_text(re.compile("init\\(\\) completed"))).to_have_count(1, timeout=30_000)
    box = logs.locator(".mlmanage-scroll")
    expect(box).to_contain_text("scored 1 rows", timeout=30_000)
    page.wait_for_timeout(1000)  # the panel repaints every 0.3 s
    st = box.evaluate(_JS_SCROLL)
    assert st["overflowing"] and st["topHidden"], st  # more lines than fit: the oldest are out of sight
    _follows_newest(box)
    cells.nth(LOGS).scroll_into_view_if_needed()
    screenshot("widgets-live-logs")

    profile = cells.nth(4).locator(".jp-OutputArea-output")
    profile.locator(".widget-button", has_text="Run profile").click()
    expect(profile.get_by_text(re.compile(r"done: \d+ requests, 0 errors"))).to_be_visible(timeout=120_000)
    expect(profile.locator("img")).to_be_visible()
    expect(profile.locator("table.mlmanage-profile")).to_have_count(1)
    cells.nth(4).scroll_into_view_if_needed()
    screenshot("widgets-profile-chart")

    registry = cells.nth(5).locator(".jp-OutputArea-output")
    expect(registry.get_by_text(SERVICE).first).to_be_visible(timeout=30_000)  # "used by" and the detail
    expect(registry.get_by_text("sklearn_regression_model.pkl").first).to_be_visible()
    registry.locator(".widget-button", has_text=re.compile(r"^\s*version\s*$")).click()
    expect(registry.locator(".widget-button", has_text="version ▼")).to_be_visible()
    cells.nth(5).scroll_into_view_if_needed()
    screenshot("widgets-registry-browser")

    monitor = cells.nth(MONITOR).locator(".jp-OutputArea-output")
    expect(monitor.locator(".mlmanage-monitor-summary")).to_contain_text(re.compile(r"\d+ requests"), timeout=30_000)
    expect(monitor.locator("img")).to_be_visible()
    cells.nth(MONITOR).scroll_into_view_if_needed()
    screenshot("widgets-monitor")

    untouched = cells.nth(UNTOUCHED).locator(".jp-OutputArea-output")
    hint = untouched.get_by_text("invalid service name")
    expect(hint).to_be_visible()
    assert hint.evaluate(_JS_COLOR) != RED  # no red on a form nobody touched

    magic = cells.nth(MAGIC_DEPLOY)
    expect(magic.locator(".mlmanage-progress")).to_contain_text("is Healthy")
    expect(magic.locator('[data-mime-type="application/vnd.jupyter.stderr"]')).to_have_count(0)  # no red background
    answer = cells.nth(MAGIC_TEST)
    expect(answer.get_by_text("status 200")).to_be_visible()
    expect(answer.locator(".jp-RenderedJSON")).to_be_visible()
    magic.scroll_into_view_if_needed()
    screenshot("widgets-magics")
    prof = cells.nth(MAGIC_PROFILE)
    expect(prof.locator(".mlmanage-progress")).to_contain_text("requests at concurrency 1, 2")
    expect(prof.locator("table.mlmanage-profile")).to_have_count(1)  # the chart's table, not a second one
    expect(prof.locator('[data-mime-type="application/vnd.jupyter.stderr"]')).to_have_count(0)

    for i in range(1, len(CELLS)):  # no panel is wider than its cell
        out = cells.nth(i).locator(".jp-OutputArea-output").first
        assert out.evaluate(_JS_OVERFLOW) <= 1, f"cell {i} overflows horizontally"
