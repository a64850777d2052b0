"""LiveLogs against a real local service: streams while the service starts and runs, filter,
clear, follow off stops the reader thread, close() stops everything."""

from __future__ import annotations

import threading
from typing import Any

from widget_helpers import SAMPLE, shown, wait_until

from mlmanage_jupyter.core.environment import InferenceConfig
from mlmanage_jupyter.core.webservice import LocalWebservice, deploy
from mlmanage_jupyter.widgets import LiveLogs


def _threads() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name.startswith("LiveLogs-")}


def test_streams_a_starting_service_then_new_lines(env: Any, cleanup_services: Any) -> None:
    cleanup_services(env.workspace)
    svc = deploy(env.workspace, "diab-logs", [env.model], InferenceConfig(entry_script=str(env.script)),
                 LocalWebservice.deploy_configuration())  # fmt: skip
    logs = LiveLogs(svc, refresh_s=0.05)  # opened while the service is still starting
    try:
        assert logs.following
        wait_until(lambda: any("widget-test: model loaded" in ln for ln in logs.lines), timeout=120)
        svc.wait_for_deployment(timeout_sec=120)
        svc.run({"data": SAMPLE})
        wait_until(lambda: any("widget-test: scoring 1 rows" in ln for ln in logs.lines), timeout=30)
        wait_until(lambda: "widget-test: scoring 1 rows" in shown(logs.view), timeout=10)
        wait_until(lambda: "Healthy" in shown(logs.status), timeout=10)

        logs.filter.value = "SCORING"
        assert logs.shown_lines() and all("scoring" in ln for ln in logs.shown_lines())
        assert "model loaded" not in shown(logs.view)
        logs.filter.value = ""

        logs.clear_button.click()
        assert logs.lines == [] and shown(logs.view).strip() == ""
        svc.run({"data": SAMPLE + SAMPLE})
        wait_until(lambda: any("scoring 2 rows" in ln for ln in logs.lines), timeout=30)
        assert not any("model loaded" in ln for ln in logs.lines)  # cleared lines stay cleared

        logs.follow.value = False
        assert not logs.following and not _threads()
        n = len(logs.lines)
        svc.run({"data": SAMPLE * 3})
        threading.Event().wait(1.0)  # give a (wrongly) running reader the time to read it
        assert len(logs.lines) == n
        logs.follow.value = True  # following again re-reads the log from the start
        wait_until(lambda: any("scoring 3 rows" in ln for ln in logs.lines), timeout=30)
    finally:
        logs.close()
    assert not logs.following and not _threads()


def test_not_following_shows_a_snapshot(served: Any) -> None:
    _e, svc = served
    logs = LiveLogs(svc, follow=False)
    try:
        assert not logs.following and not _threads()
        assert any("init() completed" in ln for ln in logs.lines)
        assert "not following" in shown(logs.status)
    finally:
        logs.close()
