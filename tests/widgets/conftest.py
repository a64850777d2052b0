"""Fixtures for the widget tests: a workspace with a registered model and a saved entry
script, and a real local service (module-scoped)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from widget_helpers import Env, make_env


@pytest.fixture
def env(workspace: Any, tmp_path: Path) -> Env:
    """A function-scoped workspace with model ``diabetes:1`` and saved script ``diabetes``."""
    return make_env(workspace, tmp_path)


@pytest.fixture
def cleanup_services() -> Iterator[Callable[[Any], None]]:
    """``cleanup_services(ws)``: every service of that workspace is deleted after the test."""
    spaces: list[Any] = []
    yield spaces.append
    from mlmanage_jupyter.core.webservice import Webservice

    for ws in spaces:
        for s in Webservice.list(ws, refresh=False):
            s.delete()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Env, Any]]:
    """A module-scoped workspace and a Healthy local service ``diab-widgets`` (auth on)."""
    from mlmanage_jupyter.core.environment import InferenceConfig
    from mlmanage_jupyter.core.webservice import LocalWebservice, deploy
    from mlmanage_jupyter.core.workspace import Workspace

    tmp = tmp_path_factory.mktemp("served")
    ws = Workspace(tmp / "workspace")
    e = make_env(ws, tmp)
    svc = deploy(ws, "diab-widgets", [e.model], InferenceConfig(entry_script=str(e.script)),
                 LocalWebservice.deploy_configuration(auth_enabled=True))  # fmt: skip
    try:
        svc.wait_for_deployment(timeout_sec=120)
        yield e, svc
    finally:
        svc.delete()
        ws.engine.dispose()


