"""Fixtures of the docker target tests: the quickstart model registered, its entry script,
a shared build cache (wheelhouse, engine wheel) for the session, and service cleanup."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SCORE = '''
import json, os, joblib
VERSION = {version}
def init():
    global model
    model = joblib.load(os.path.join(os.environ["AZUREML_MODEL_DIR"], "sklearn_regression_model.pkl"))
def run(raw_data):
    data = json.loads(raw_data)
    out = model.predict(data["data"]).tolist()
    return {{"version": VERSION, "predictions": out}}
'''


@pytest.fixture(scope="session")
def _build_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("docker-build-cache")


@pytest.fixture
def docker_env(docker_client: Any, base_image: str, _build_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The docker client, with MLMANAGE_BASE_IMAGE and a session-wide MLMANAGE_CACHE_DIR set."""
    monkeypatch.setenv("MLMANAGE_BASE_IMAGE", base_image)
    monkeypatch.setenv("MLMANAGE_CACHE_DIR", str(_build_cache))
    return docker_client


def write_score(folder: Path, version: int = 1, body: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / "score.py"
    p.write_text(textwrap.dedent(body) if body is not None else SCORE.format(version=version))
    return p


@pytest.fixture
def quickstart(workspace: Any, sklearn_model: Any, tmp_path: Path) -> Any:
    """(model, inference_config factory) for the quickstart: the diabetes model registered and
    ``make_config(version)`` writing an entry script whose answers carry ``version``."""
    from mlmanage_jupyter.core.environment import InferenceConfig
    from mlmanage_jupyter.core.model import Model

    model = Model.register(workspace, sklearn_model.path, "diabetes")

    def make_config(version: int = 1, body: str | None = None) -> InferenceConfig:
        src = tmp_path / f"src-{version}-{abs(hash(body))}"
        write_score(src, version, body)
        return InferenceConfig(entry_script="score.py", source_directory=str(src))

    return model, make_config


@pytest.fixture
def services(workspace: Any, docker_env: Any) -> Iterator[list[Any]]:
    """A list tests append deployed Webservices to; each is deleted after the test."""
    deployed: list[Any] = []
    yield deployed
    for s in deployed:
        try:
            s.delete()
        except Exception:  # noqa: BLE001 - already deleted by the test
            pass


@pytest.fixture
def containers_of(docker_env: Any) -> Any:
    """``containers_of(service_name)``: every container (any state) labelled with that service."""

    def find(name: str) -> list[Any]:
        return docker_env.containers.list(all=True, filters={"label": f"org.mlmanage.service={name}"})

    return find
