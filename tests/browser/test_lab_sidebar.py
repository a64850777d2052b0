"""The JupyterLab extension in headless Chromium against a real local service: the "Models &
endpoints" sidebar lists a registered model and the deployed service with its state; its
Logs panel shows a new request's line; its endpoint console gets a prediction; Delete (after
confirming) removes the service. Screenshots (light and dark theme) go to
``artifacts/screenshots/lab-sidebar-*.png``."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "serverext"))
from lab_env import LabEnv, deploy_local, make_lab_env  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SERVICE = "lab-sidebar-svc"
MODEL = "lab-diabetes"
SIDEBAR = "#mlmanage-sidebar"
ITEM = f'{SIDEBAR} .mlm-service[data-name="{SERVICE}"]'
_JS_THEME = "(t) => window.jupyterapp.commands.execute('apputils:change-theme', {theme: t})"


@pytest.fixture
def served(jupyter_lab: str, jupyter_root: Path, tmp_path: Path) -> Iterator[tuple[LabEnv, Any]]:
    """Model ``lab-diabetes`` v1/v2 and service ``lab-sidebar-svc`` (auth on) in JupyterLab's workspace."""
    from mlmanage_jupyter import Webservice, Workspace

    ws = Workspace(jupyter_root / ".mlmanage")
    env = make_lab_env(ws, tmp_path, MODEL)
    svc = deploy_local(env, SERVICE, auth=True)
    try:
        yield env, svc
    finally:
        if any(s.name == SERVICE for s in Webservice.list(ws, refresh=False)):
            Webservice(ws, SERVICE).delete()
        ws.close()


@pytest.fixture
def page(browser_page: Any, jupyter_lab: str) -> Iterator[Any]:
    """The browser page; afterwards JupyterLab is left as found for the session's other browser
    tests: kernels this test started shut down, the saved layout reset (``/lab?reset``)."""
    yield browser_page
    try:
        browser_page.evaluate("""async () => {
          const app = window.jupyterapp;
          if (!app) return;
          const mgr = app.serviceManager.sessions;
          await mgr.refreshRunning();
          for (const s of Array.from(mgr.running())) {
            if (s.path.startsWith('notebooks/01-quickstart')) await mgr.shutdown(s.id);
          }
        }""")
        browser_page.goto(f"{jupyter_lab}/lab?reset", wait_until="domcontentloaded")
        browser_page.wait_for_function("() => window.jupyterapp && !location.search.includes('reset')", timeout=60_000)
    except Exception as e:  # cleanup must not hide the test's own outcome
        print(f"cleanup after the sidebar test: {e}")


def _set_theme(page: Any, theme: str) -> None:
    page.evaluate(_JS_THEME, theme)
    light = "true" if theme == "JupyterLab Light" else "false"
    page.wait_for_function(f"() => document.body.dataset.jpThemeLight === '{light}'")
    page.wait_for_timeout(300)  # let the theme's CSS apply before a screenshot (not an assertion)


def test_sidebar_lists_logs_scores_and_deletes(
    served: tuple[LabEnv, Any], jupyter_lab: str, page: Any, screenshot: Callable[..., Path]
) -> None:
    env, svc = served
    page.goto(f"{jupyter_lab}/lab", wait_until="domcontentloaded")
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.commands.hasCommand('mlmanage:open-registry')")
    # commands in the palette and a Launcher card
    for cmd in ("mlmanage:open-registry", "mlmanage:open-console", "mlmanage:open-quickstart", "mlmanage:open-readme"):
        assert page.evaluate("(c) => window.jupyterapp.commands.hasCommand(c)", cmd), cmd
    page.locator(".jp-LauncherCard", has_text="Open model registry").first.wait_for()

    # the sidebar, opened from its tab in the left bar (a click, as a user would)
    page.evaluate("() => window.jupyterapp.restored")
    if not page.locator(SIDEBAR).is_visible():
        page.locator('.jp-SideBar.jp-mod-left li[data-id="mlmanage-sidebar"]').click()
    item = page.locator(ITEM)
    item.wait_for()
    page.locator(f'{ITEM}[data-state="Healthy"]').wait_for()
    assert "local" in item.locator(".mlm-meta").inner_text() and f"{MODEL}:1" in item.inner_text()
    assert item.locator(".mlm-uri code").inner_text() == svc.scoring_uri
    group = page.locator(f'{SIDEBAR} .mlm-model-group[data-name="{MODEL}"]')
    assert group.locator(".mlm-model-version").count() == 2
    v1 = group.locator(f'.mlm-model-version[data-id="{MODEL}:1"]')
    assert "ScikitLearn" in v1.inner_text() and f"used by service {SERVICE}" in v1.inner_text()
    assert "area=health" in v1.inner_text()
    assert group.locator(f'.mlm-model-version[data-id="{MODEL}:2"] .mlm-used').inner_text() == "not used"

    # the filter
    search = page.locator(f"{SIDEBAR} .mlm-search")
    search.fill("no-such-thing")
    page.locator(f"{SIDEBAR} .mlm-empty", has_text="No endpoint matches.").wait_for()
    search.fill(MODEL)
    item.wait_for()
    screenshot("lab-sidebar-light")

    # logs: a main-area panel following the service's output
    item.locator('button[data-action="logs"]').click()
    logs = page.locator(".mlm-logs")
    logs.locator(".mlm-log-line", has_text="lab-test: model loaded").first.wait_for()

    # the endpoint console: prefilled from the swagger example, answered with a prediction
    item.locator('button[data-action="test"]').click()
    console = page.locator(".mlm-console")
    editor = console.locator("textarea.mlm-editor")
    page.wait_for_function("() => (document.querySelector('.mlm-console textarea') || {}).value?.includes('data')")
    assert '"data"' in editor.input_value()
    console.locator("button.mlm-send").click()
    status = console.locator(".mlm-result-status.mlm-ok")
    status.wait_for()
    assert re.match(r"HTTP 200 · \d+\.\d ms", status.inner_text()), status.inner_text()
    prediction = float(re.findall(r"-?\d+\.\d+", console.locator(".mlm-result-body").inner_text())[0])
    assert prediction == pytest.approx(env.expected, rel=1e-6)
    screenshot("lab-console-light")

    # that request's line arrives in the (still open) logs panel
    page.locator(".lm-TabBar-tab", has_text=f"Logs: {SERVICE}").click()
    logs.locator(".mlm-log-line", has_text="lab-test: scoring 1 rows").first.wait_for()
    screenshot("lab-logs-light")

    # dark theme: same panels, JupyterLab's dark variables
    try:
        _set_theme(page, "JupyterLab Dark")
        screenshot("lab-logs-dark")
        page.locator(".lm-TabBar-tab", has_text=f"Test: {SERVICE}").click()
        screenshot("lab-console-dark")
    finally:
        _set_theme(page, "JupyterLab Light")  # the settings outlive this test: restore them

    # delete, after confirming in the dialog
    item.locator('button[data-action="delete"]').click()
    dialog = page.locator(".jp-Dialog")
    assert SERVICE in dialog.inner_text()
    dialog.locator("button.jp-mod-warn").click()
    item.wait_for(state="detached")
    from mlmanage_jupyter import Webservice

    assert SERVICE not in [s.name for s in Webservice.list(env.workspace, refresh=False)]
    used = page.locator(f'{SIDEBAR} .mlm-model-version[data-id="{MODEL}:1"] .mlm-used')
    page.wait_for_function(f"() => !document.querySelector('{SIDEBAR} .mlm-model-version[data-id=\"{MODEL}:1\"] .mlm-used').textContent.includes('service')")
    # the service's image went with it (only it used the image: Azure's cleanup), so v1 is free
    assert used.inner_text() == "not used"


def test_sidebar_in_dark_theme(served: tuple[LabEnv, Any], jupyter_lab: str, page: Any,
                               screenshot: Callable[..., Path]) -> None:  # fmt: skip
    page.goto(f"{jupyter_lab}/lab", wait_until="domcontentloaded")
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.commands.hasCommand('mlmanage:open-registry')")
    page.evaluate("async () => { await window.jupyterapp.restored; await window.jupyterapp.commands.execute('mlmanage:open-registry'); }")
    page.locator(f'{ITEM}[data-state="Healthy"]').wait_for()
    try:
        _set_theme(page, "JupyterLab Dark")
        page.locator(f"{ITEM} .mlm-badge").wait_for()
        # the badge's colour comes from the theme's variables, not a fixed colour
        bg = page.evaluate(f"() => getComputedStyle(document.querySelector('{ITEM} .mlm-badge')).backgroundColor")
        success = page.evaluate(
            "() => { const d = document.createElement('div'); d.style.background = 'var(--jp-success-color1)';"
            " document.body.append(d); const c = getComputedStyle(d).backgroundColor; d.remove(); return c; }"
        )
        assert bg == success
        # keyboard: Tab from the filter reaches the service's buttons
        page.locator(f"{SIDEBAR} .mlm-search").focus()
        names = []
        for _ in range(3):
            page.keyboard.press("Tab")
            names.append(page.evaluate("() => document.activeElement && document.activeElement.textContent"))
        assert "Copy" in names or "Logs" in names, names
        screenshot("lab-sidebar-dark")
    finally:
        _set_theme(page, "JupyterLab Light")

    # update to v2 through the dialog (a rolling update); the sidebar shows the new model
    env, _svc = served
    v2 = env.models[1].id
    page.locator(f'{ITEM} button[data-action="update"]').click()
    dialog = page.locator(".jp-Dialog")
    dialog.locator("select").select_option(v2)
    dialog.locator("button.jp-mod-accept").click()
    page.locator(f"{ITEM} .mlm-meta", has_text=v2).wait_for(timeout=180_000)
    page.locator(f'{ITEM}[data-state="Healthy"]').wait_for()
    from mlmanage_jupyter import Webservice

    assert Webservice(env.workspace, SERVICE).models == [v2]


def test_help_readme_and_quickstart_commands(jupyter_lab: str, jupyter_root: Path, page: Any) -> None:
    page.goto(f"{jupyter_lab}/lab", wait_until="domcontentloaded")
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.commands.hasCommand('mlmanage:open-readme')")
    # Help menu -> README, rendered as markdown in the main area
    page.locator(".lm-MenuBar-itemLabel", has_text="Help").click()
    page.locator(".lm-Menu-itemLabel", has_text="mlmanage-jupyter README").click()
    page.locator(".mlm-readme h1", has_text="mlmanage-jupyter").wait_for()
    assert page.locator(".mlm-readme h2", has_text="In the notebook").count() == 1  # the whole README, rendered
    # no tutorial under the served folder: a clear message, no broken tab
    page.evaluate("() => { window.jupyterapp.commands.execute('mlmanage:open-quickstart'); }")
    dialog = page.locator(".jp-Dialog")
    assert "notebooks/01-quickstart.ipynb" in dialog.inner_text()
    dialog.locator("button.jp-mod-accept, button.jp-mod-reject").first.click()
    # with the tutorial there, the command opens it
    dest = jupyter_root / "notebooks" / "01-quickstart.ipynb"
    dest.parent.mkdir(exist_ok=True)
    dest.write_bytes((Path(__file__).resolve().parents[2] / "notebooks" / "01-quickstart.ipynb").read_bytes())
    page.evaluate("() => window.jupyterapp.commands.execute('mlmanage:open-quickstart')")
    try:
        page.wait_for_function(
            "() => { const w = window.jupyterapp.shell.currentWidget; return !!w && !!w.context && w.context.path === 'notebooks/01-quickstart.ipynb'; }"
        )
    finally:
        dest.unlink()
