"""Fixtures of the monitoring tests: the quickstart model (LinearRegression on scikit-learn's
diabetes data) registered in a tmp workspace, and a deploy helper that deletes every service
it started when the test ends."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from monitoring_scripts import SCORE_PY


@pytest.fixture
def quickstart(workspace: Any, sklearn_model: Any, tmp_path: Path) -> tuple[Any, Any]:
    """``(model, inference_config)`` of the quickstart: the diabetes LinearRegression."""
    from mlmanage_jupyter.core.environment import InferenceConfig
    from mlmanage_jupyter.core.model import Model

    model = Model.register(workspace, sklearn_model.path, "diabetes")
    src = tmp_path / "src"
    src.mkdir()
    (src / "score.py").write_text(SCORE_PY)
    return model, InferenceConfig(entry_script="score.py", source_directory=str(src))


@pytest.fixture
def deploy_service(workspace: Any, quickstart: tuple[Any, Any]) -> Iterator[Callable[..., Any]]:
    """``deploy_service(name, **local_config) -> Webservice`` (Healthy); deleted at teardown."""
    from mlmanage_jupyter.core.errors import NotFoundError
    from mlmanage_jupyter.core.webservice import LocalWebservice, Webservice, deploy

    names: list[str] = []

    def _deploy(name: str, **cfg: Any) -> Any:
        model, ic = quickstart
        svc = deploy(workspace, name, [model], ic, LocalWebservice.deploy_configuration(**cfg))
        names.append(name)
        svc.wait_for_deployment(timeout_sec=120)
        return svc

    yield _deploy
    for n in names:
        try:
            Webservice(workspace, n).delete()
        except NotFoundError:
            pass
