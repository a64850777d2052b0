"""Fixtures of the Azure ML v1 compatibility tests: entry scripts written as Azure's v1 docs write
them, deployed through the public API (``Model.register``, ``InferenceConfig``, ``Model.deploy``,
``LocalWebservice.deploy_configuration``); every service started is deleted at teardown."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def deploy_local(workspace: Any) -> Iterator[Callable[..., Any]]:
    """``deploy_local(name, models, source_dir, entry_script="score.py", **local_config)`` ->
    a Healthy ``Webservice`` deployed with ``Model.deploy`` on the local target."""
    from mlmanage_jupyter import InferenceConfig, LocalWebservice, Model, Webservice

    names: list[str] = []

    def _deploy(name: str, models: list[Any], source_dir: Path, entry_script: str = "score.py", **cfg: Any) -> Any:
        ic = InferenceConfig(entry_script=entry_script, source_directory=str(source_dir))
        svc = Model.deploy(workspace, name, models, ic, LocalWebservice.deploy_configuration(**cfg))
        names.append(name)
        svc.wait_for_deployment(show_output=False)
        assert svc.state == "Healthy", svc.get_logs()
        return svc

    yield _deploy
    for n in names:
        try:
            Webservice(workspace, n).delete()
        except Exception:  # noqa: BLE001 - best effort cleanup
            pass
