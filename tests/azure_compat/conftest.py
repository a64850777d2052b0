"""Fixtures of the Azure ML v1 compatibility tests: entry scripts written as Azure's v1 docs write
them, deployed through the public API (``Model.register``, ``InferenceConfig``, ``Model.deploy``,
``LocalWebservice``/``DockerWebservice.deploy_configuration``); every service started is deleted
at teardown."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest


def _deployments(workspace: Any, target: str) -> Iterator[Callable[..., Any]]:
    """``deploy(name, models, source_dir, entry_script="score.py", **config)`` -> a Healthy
    ``Webservice`` deployed with ``Model.deploy`` on ``target`` ("local" | "docker"); every
    service it started is deleted when the generator ends."""
    from mlmanage_jupyter import DockerWebservice, InferenceConfig, LocalWebservice, Model, Webservice

    cls = DockerWebservice if target == "docker" else LocalWebservice
    names: list[str] = []

    def _deploy(name: str, models: list[Any], source_dir: Path, entry_script: str = "score.py", **cfg: Any) -> Any:
        ic = InferenceConfig(entry_script=entry_script, source_directory=str(source_dir))
        svc = Model.deploy(workspace, name, models, ic, cls.deploy_configuration(**cfg))
        names.append(name)
        svc.wait_for_deployment(show_output=False, timeout_sec=900)
        assert svc.state == "Healthy", svc.get_logs()
        assert svc.compute_type.lower() == target, svc.compute_type
        return svc

    yield _deploy
    for n in names:
        try:
            Webservice(workspace, n).delete()
        except Exception:  # noqa: BLE001 - best effort cleanup
            pass


@pytest.fixture
def docker_env(docker_client: Any, base_image: str, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The docker client, with MLMANAGE_BASE_IMAGE and a build cache shared by this session's
    azure_compat docker tests (the engine wheel and the wheels are built once)."""
    monkeypatch.setenv("MLMANAGE_BASE_IMAGE", base_image)
    monkeypatch.setenv("MLMANAGE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "azure-compat-docker-cache"))
    return docker_client


@pytest.fixture(params=["local", pytest.param("docker", marks=[pytest.mark.docker])])
def deploy_azure(request: pytest.FixtureRequest, workspace: Any) -> Iterator[Callable[..., Any]]:
    """``deploy_azure(name, models, source_dir, entry_script="score.py", **config)`` -> a Healthy
    ``Webservice`` deployed with ``Model.deploy`` on the local target, then (second parameter) on
    the docker target (a real image build and container): the same test runs on both.
    ``config`` takes the parameters both ``deploy_configuration`` methods have."""
    if request.param == "docker":
        request.getfixturevalue("docker_env")  # skips (or fails under MLMANAGE_REQUIRE_COMPONENTS) without an Engine
    yield from _deployments(workspace, request.param)
