"""DeploymentForm: validation before the button enables, a real local deployment from a
click, the resulting service shown with its URIs and keys, and a failing one shown as such."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from widget_helpers import INIT_RAISES, SAMPLE, shown

from mlmanage_jupyter.core.webservice import Webservice
from mlmanage_jupyter.widgets import DeploymentForm
from mlmanage_jupyter.widgets._common import target_usable


def _color(widget: Any) -> str:
    import re

    m = re.search(r"color:(#[0-9a-f]{6})", widget.value)
    return m.group(1) if m else ""


RED, GREEN, BLUE = "#cf222e", "#1a7f37", "#0969da"


def test_validation_enables_the_button_only_when_everything_fits(env: Any, tmp_path: Path) -> None:
    (env.workspace.path / "scripts" / "other.py").write_text("def init(): pass\ndef run(d): return d\n")
    f = DeploymentForm(env.workspace)
    # untouched: a grey hint, no red
    assert f.deploy_button.disabled and "invalid service name ''" in shown(f.message)
    assert _color(f.message) != RED
    f.service_name.value = "Bad_Name"
    assert _color(f.message) == RED
    assert f.deploy_button.disabled and "invalid service name 'Bad_Name'" in shown(f.message)
    f.service_name.value = "diab-form"
    assert f.deploy_button.disabled and "choose an entry script" in shown(f.message)  # two scripts: none prefilled
    f.entry_script.value = "no-such-script"
    assert f.deploy_button.disabled and "entry script not found" in shown(f.message)
    assert "diabetes" in f.entry_script.options  # saved by %%score_script
    f.entry_script.value = "diabetes"
    assert f.validate() is None and not f.deploy_button.disabled
    assert str(env.script) in shown(f.entry_hint)
    bad = tmp_path / "bad.py"
    bad.write_text("def init(:\n")
    f.entry_script.value = str(bad)
    assert f.deploy_button.disabled and "bad.py" in shown(f.message)
    f.entry_script.value = str(env.script)  # a path works too
    assert not f.deploy_button.disabled
    assert f.model_name.value == "diabetes" and f.model_version.options == (1,)


def test_the_only_saved_script_is_prefilled_and_labels_are_whole(env: Any) -> None:
    f = DeploymentForm(env.workspace, service_name="diab-one")
    assert f.entry_script.value == "diabetes"
    assert f.validate() is None and _color(f.message) == GREEN
    for box in (f.overwrite, f.auth_enabled):  # the label is the description, not cut at 120px
        assert box.indent is False and box.layout.width == "auto"
    assert "Replace an existing service of that name" == f.overwrite.description


def test_no_models_says_what_to_do(workspace: Any) -> None:
    f = DeploymentForm(workspace)
    f.service_name.value = "abc"
    assert "choose a model" in shown(f.message) and f.deploy_button.disabled


def test_targets_offered_and_their_fields(env: Any) -> None:
    f = DeploymentForm(env.workspace)
    expected = ["local"] + [t for t in ("docker", "kubernetes") if target_usable(t)[0]]
    assert list(f.target.options) == expected
    assert f.fields.children == (f.port, f.workers, f.auth_enabled)
    g = DeploymentForm(env.workspace, targets=["local", "docker", "kubernetes"])
    g.target.value = "docker"
    assert g.fields.children == (g.port, g.workers, g.cpu_cores, g.memory_gb, g.auth_enabled)
    g.target.value = "kubernetes"
    assert g.replicas in g.fields.children and g.port not in g.fields.children
    assert g.auth_enabled.value is True  # AKS's default


def test_field_values_become_the_deploy_configuration(env: Any) -> None:
    f = DeploymentForm(env.workspace, targets=["local", "docker"])
    f.port.value, f.workers.value, f.auth_enabled.value = 0, 3, True
    cfg = f.deployment_config()
    assert (cfg.compute_type, cfg.port, cfg.workers, cfg.auth_enabled) == ("local", None, 3, True)
    f.target.value = "docker"
    f.cpu_cores.value, f.memory_gb.value, f.port.value = 1.5, 2.0, 8123
    cfg = f.deployment_config()
    assert (cfg.compute_type, cfg.cpu_cores, cfg.memory_gb, cfg.port) == ("docker", 1.5, 2.0, 8123)


def test_click_deploys_a_healthy_service_and_shows_uris_and_keys(env: Any, cleanup_services: Any) -> None:
    cleanup_services(env.workspace)
    f = DeploymentForm(env.workspace, model=env.model, entry_script="diabetes", service_name="diab-form")
    f.auth_enabled.value = True
    seen: list[Any] = []
    f.on_deployed(seen.append)
    assert not f.deploy_button.disabled, f.message.value
    f.deploy_button.click()
    assert f.deploy_button.disabled  # no double deploy while it runs
    assert "ready" not in shown(f.message) and _color(f.message) == BLUE  # "deploying…", never green
    f.workers.value = 2  # a field changed while it deploys: still not "ready"
    assert "ready" not in shown(f.message) and f.deploy_button.disabled
    assert f.wait(180), "deployment did not finish"
    assert f.error is None, f.result.value
    svc = Webservice(env.workspace, "diab-form")
    assert svc.state == "Healthy" and seen and seen[0].name == "diab-form"
    primary, secondary = svc.get_keys()
    for text in ("Healthy", svc.scoring_uri, svc.swagger_uri, primary, secondary, "diabetes:1"):
        assert text in shown(f.result)
    assert f"href='{svc.scoring_uri}'" in f.result.value  # URIs are links
    assert shown(f.result).count(primary) == 1 and "mlmanage-key" in f.result.value  # masked until shown
    assert "done: diab-form is Healthy" in shown(f.progress)
    assert "waiting for the service to become Healthy" in shown(f.progress)
    assert svc.run({"data": SAMPLE}) == pytest.approx(env.sklearn.predict(SAMPLE).tolist())
    # its own service: "deployed", not a red "already exists"
    assert f.deploy_button.disabled and "diab-form is deployed" in shown(f.message)
    assert "already exists" not in shown(f.message) and _color(f.message) != RED
    other = DeploymentForm(env.workspace, model=env.model, entry_script="diabetes", service_name="diab-form")
    other.service_name.value = "diab-form "
    assert "already exists" in shown(other.message) and _color(other.message) == RED
    f.overwrite.value = True
    assert not f.deploy_button.disabled


def test_a_failing_service_is_shown_with_its_logs(env: Any, cleanup_services: Any) -> None:
    cleanup_services(env.workspace)
    (env.workspace.path / "scripts" / "broken.py").write_text(INIT_RAISES)
    f = DeploymentForm(env.workspace, entry_script="broken", service_name="diab-broken")
    f.deploy_button.click()
    assert f.wait(180)
    assert f.error is not None and "Failed" in f.error
    assert "Deployment failed" in shown(f.result) and "cannot load the model: boom" in shown(f.result)
    # the traceback once, in a collapsible block; the headline names the exception
    assert shown(f.result).count("Traceback (most recent call last)") == 1
    assert "<details class='mlmanage-traceback'>" in f.result.value
    assert "ValueError: cannot load the model: boom" in shown(f.result).splitlines()[0]
    assert "fix the cause" in shown(f.message)
    assert Webservice(env.workspace, "diab-broken").state == "Failed"
