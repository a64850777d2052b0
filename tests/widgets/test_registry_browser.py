"""RegistryBrowser driven like the frontend: set values, click buttons, read what it shows."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

from widget_helpers import shown, wait_until

from mlmanage_jupyter.core.model import Model
from mlmanage_jupyter.widgets import DeploymentForm, RegistryBrowser
from mlmanage_jupyter.widgets.registry_browser import compare_rows


def test_lists_versions_tags_framework_and_searches(env: Any, tmp_path: Path) -> None:
    ws = env.workspace
    Model.register(ws, env.script, "diabetes", tags={"stage": "prod"})
    other = tmp_path / "iris.txt"
    other.write_text("iris")
    Model.register(ws, other, "iris-clf", tags={"area": "botany"})
    rb = RegistryBrowser(ws, poll_interval_s=None)
    try:
        ids = [v for _, v in rb.models.options]
        assert ids == ["diabetes:2", "diabetes:1", "iris-clf:1"]
        labels = dict((v, k) for k, v in rb.models.options)
        assert "[ScikitLearn]" in labels["diabetes:1"] and "area=health" in labels["diabetes:1"]
        rb.search.value = "IRIS"
        assert [v for _, v in rb.models.options] == ["iris-clf:1"]
        rb.search.value = ""
        rb.tag_filter.value = "area=health"
        assert [v for _, v in rb.models.options] == ["diabetes:1"]
        rb.tag_filter.value = "stage"
        assert [v for _, v in rb.models.options] == ["diabetes:2"]
        rb.tag_filter.value = ""
        rb.latest_only.value = True
        assert [v for _, v in rb.models.options] == ["diabetes:2", "iris-clf:1"]
        assert "3 model versions" not in shown(rb.status) and "2 model versions" in shown(rb.status)
    finally:
        rb.close()


def test_detail_pane_download_and_add_tag(env: Any, tmp_path: Path) -> None:
    rb = RegistryBrowser(env.workspace, poll_interval_s=None)
    try:
        assert rb.deploy_button.disabled and rb.download_button.disabled
        rb.models.value = "diabetes:1"
        m = env.model
        d = rb.detail.value
        for text in ("sklearn_regression_model.pkl", m.sha256, str(m.size), "diabetes regression", "ScikitLearn", "none"):
            assert text in d
        assert not rb.download_button.disabled

        rb.download_dir.value = str(tmp_path / "dl")
        rb.download_button.click()
        out = tmp_path / "dl" / "sklearn_regression_model.pkl"
        assert rb.last_download == str(out)
        assert hashlib.sha256(out.read_bytes()).hexdigest() == m.sha256
        assert "downloaded diabetes:1" in shown(rb.status)
        rb.download_button.click()  # second time: refuses to overwrite, says why
        assert "already exists" in shown(rb.status)

        rb.tag_key.value, rb.tag_value.value = "owner", "ana"
        rb.add_tag_button.click()
        assert Model(env.workspace, "diabetes", 1).tags == {"area": "health", "owner": "ana"}
        assert "owner=ana" in shown(rb.detail) and rb.models.value == "diabetes:1"
        rb.tag_key.value = ""
        rb.add_tag_button.click()
        assert "type a tag key" in shown(rb.status)
    finally:
        rb.close()


def test_detail_shows_services_using_the_model(served: Any) -> None:
    e, svc = served
    rb = RegistryBrowser(e.workspace, poll_interval_s=None)
    try:
        rb.models.value = e.model.id
        assert svc.name in shown(rb.detail)
    finally:
        rb.close()


def test_deploy_opens_prefilled_form(env: Any) -> None:
    rb = RegistryBrowser(env.workspace, poll_interval_s=None)
    try:
        rb.models.value = "diabetes:1"
        rb.deploy_button.click()
        form = rb.form
        assert isinstance(form, DeploymentForm) and rb.deploy_area.children == (form,)
        assert form.model_name.value == "diabetes" and form.model_version.value == 1
    finally:
        rb.close()


def test_refreshes_when_a_model_is_registered_elsewhere_and_stops_on_close(env: Any, tmp_path: Path) -> None:
    rb = RegistryBrowser(env.workspace, poll_interval_s=0.1)
    assert rb._poller is not None and rb._poller.is_alive()
    f = tmp_path / "new.bin"
    f.write_bytes(b"\0" * 10)
    t = threading.Thread(target=Model.register, args=(str(env.workspace.path), f, "fresh-model"))
    t.start()
    t.join(30)
    wait_until(lambda: "fresh-model:1" in [v for _, v in rb.models.options], timeout=30)
    env.model.add_tags({"seen": "yes"})  # a tag change from another cell is an event too
    wait_until(lambda: any("seen=yes" in k for k, _ in rb.models.options), timeout=30)
    rb.close()
    rb._poller.join(5)
    assert not rb._poller.is_alive()


def test_bad_tag_filter_is_reported(env: Any) -> None:
    rb = RegistryBrowser(env.workspace, poll_interval_s=None)
    try:
        rb.tag_filter.value = "area=health"
        assert [v for _, v in rb.models.options] == ["diabetes:1"]
        rb.tag_filter.value = "=x"
        assert "tag filter '=x'" in shown(rb.status)
        assert [v for _, v in rb.models.options] == ["diabetes:1"]  # the list is kept, nothing lost
    finally:
        rb.close()


def test_sortable_table_with_file_names_and_users(served: Any, tmp_path: Path) -> None:
    e, svc = served
    f = tmp_path / "zeta.bin"
    f.write_bytes(b"z")
    Model.register(e.workspace, f, "aaa-first", model_framework="Onnx")
    rb = RegistryBrowser(e.workspace, poll_interval_s=None)
    try:
        by_id = {r["id"]: r for r in rb.rows}
        assert by_id["diabetes:1"]["files"] == "sklearn_regression_model.pkl"
        assert by_id["diabetes:1"]["used_by"] == f"service {svc.name}"
        assert by_id["aaa-first:1"]["files"] == "zeta.bin"
        headers = [b.description for b in rb.header_buttons.values()]
        assert headers == ["name", "version", "framework", "tags", "files", "created", "used by"]
        rb.header_buttons["name"].click()
        assert [r["name"] for r in rb.rows][0] == "aaa-first" and rb.header_buttons["name"].description == "name ▲"
        rb.header_buttons["name"].click()
        assert [r["name"] for r in rb.rows][-1] == "aaa-first" and rb.header_buttons["name"].description == "name ▼"
        rb.sort_by("framework")
        assert [r["framework"] for r in rb.rows][0].startswith("Onnx")
        # a row's button selects the model
        row_buttons = [c for c in rb.table.children if "mlmanage-row" in c._dom_classes]
        next(b for b in row_buttons if b.description == "aaa-first").click()
        assert rb.models.value == "aaa-first:1" and "zeta.bin" in shown(rb.detail)
    finally:
        rb.close()


def test_version_comparison_side_by_side(env: Any, tmp_path: Path) -> None:
    f = tmp_path / "v2.bin"
    f.write_bytes(b"v2")
    Model.register(env.workspace, f, "diabetes", tags={"area": "health", "stage": "prod"}, properties={"auc": "0.9"})
    rb = RegistryBrowser(env.workspace, poll_interval_s=None)
    try:
        rb.models.value = "diabetes:2"
        assert rb.compare_a.value == "diabetes:2" and rb.compare_b.value == "diabetes:1"
        text = shown(rb.comparison)
        for needle in ("tag stage", "prod", "property auc", "file v2.bin", "file sklearn_regression_model.pkl"):
            assert needle in text, needle
        assert "mlmanage-diff" in rb.comparison.value
        rows = compare_rows(Model(env.workspace, "diabetes", 2), Model(env.workspace, "diabetes", 1))
        same = [r for r in rows if r[0] == "tag area"]
        assert same == [("tag area", "health", "health")]
    finally:
        rb.close()
