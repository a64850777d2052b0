"""No-code deployment (Azure ML v1's "Deploy no-code" for scikit-learn): ``Model.deploy(ws,
name, [model])`` with no inference config for a model registered with
``model_framework="ScikitLearn"``; ``{"data": [[...]]}`` in, the ``predict`` list out. Other
frameworks / several models: one ValidationError naming the InferenceConfig to add. And "no
silent drops": a conda spec pinning another Python than the one that will run warns once."""

from __future__ import annotations

import textwrap
import warnings
from pathlib import Path
from typing import Any

import pytest

from mlmanage_jupyter import InferenceConfig, LocalWebservice, Model, Webservice
from mlmanage_jupyter.core.environment import Environment
from mlmanage_jupyter.core.errors import ValidationError


@pytest.mark.slow
@pytest.mark.parametrize("target", ["local", pytest.param("docker", marks=pytest.mark.docker)])
def test_no_code_scikit_learn(workspace: Any, sklearn_model: Any, target: str, request: pytest.FixtureRequest) -> None:
    """Azure's no-code page for scikit-learn, on the local target and in a docker image."""
    from mlmanage_jupyter import DockerWebservice

    if target == "docker":
        request.getfixturevalue("docker_env")
    cls = DockerWebservice if target == "docker" else LocalWebservice
    model = Model.register(workspace, str(sklearn_model.path), "diabetes-sk", model_framework=Model.Framework.SCIKITLEARN)
    svc = Model.deploy(workspace, "nocode-sk", [model], deployment_config=cls.deploy_configuration())
    try:
        svc.wait_for_deployment(timeout_sec=900)
        assert svc.compute_type == target
        assert svc.state == "Healthy", svc.get_logs()
        rows = sklearn_model.X[:2].tolist()
        assert svc.run({"data": rows}) == pytest.approx(sklearn_model.model.predict(sklearn_model.X[:2]).tolist())
        # a body without "data" is the caller's error, not a crash of the service
        bad = svc.call({"rows": rows})
        assert bad.status_code == 400 and '{"data": [[...], ...]}' in bad.body["error"]["message"], bad.body
    finally:
        Webservice(workspace, "nocode-sk").delete()


def test_no_code_unsupported_framework_names_inference_config(workspace: Any, sklearn_model: Any) -> None:
    model = Model.register(workspace, str(sklearn_model.path), "torchish", model_framework=Model.Framework.PYTORCH)
    with pytest.raises(ValidationError, match=r"model_framework 'PyTorch'.*InferenceConfig"):
        Model.deploy(workspace, "nocode-bad", [model])
    plain = Model.register(workspace, str(sklearn_model.path), "noframework")
    with pytest.raises(ValidationError, match=r"model_framework None.*InferenceConfig"):
        Model.deploy(workspace, "nocode-none", [plain])
    with pytest.raises(ValidationError, match=r"exactly one model, got 2.*InferenceConfig"):
        Model.deploy(workspace, "nocode-two", [model, plain])
    assert len(Webservice.list(workspace)) == 0  # nothing recorded


@pytest.mark.slow
def test_conda_python_pin_differing_from_local_python_warns(workspace: Any, sklearn_model: Any, tmp_path: Path) -> None:
    (tmp_path / "score.py").write_text(textwrap.dedent("""
        def init():
            pass

        def run(raw_data):
            return "ok"
    """))
    (tmp_path / "env.yml").write_text("name: old\ndependencies:\n  - python=3.6.2\n  - pip\n")
    env = Environment.from_conda_specification("old", str(tmp_path / "env.yml"))
    ic = InferenceConfig(entry_script="score.py", source_directory=str(tmp_path), environment=env)
    model = Model.register(workspace, str(sklearn_model.path), "pinned")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        svc = Model.deploy(workspace, "nocode-py", [model], ic, LocalWebservice.deploy_configuration())
    try:
        import sys

        running = f"{sys.version_info.major}.{sys.version_info.minor}"
        msgs = [str(w.message) for w in caught if issubclass(w.category, UserWarning) and "pins python=3.6," in str(w.message)]
        assert len(msgs) == 1
        assert f"runs on Python {running}" in msgs[0]
    finally:
        svc.delete()


@pytest.mark.slow
@pytest.mark.docker
def test_conda_python_pin_differing_from_the_base_image_warns(workspace: Any, docker_env: Any, sklearn_model: Any, tmp_path: Path) -> None:
    """Same rule on the docker target: the base image's python3 runs, and the warning names it."""
    from mlmanage_jupyter import DockerWebservice

    (tmp_path / "score.py").write_text("def init():\n    pass\n\ndef run(raw_data):\n    return 'ok'\n")
    (tmp_path / "env.yml").write_text("name: old\ndependencies:\n  - python=3.6.2\n  - pip\n")
    env = Environment.from_conda_specification("old", str(tmp_path / "env.yml"))
    ic = InferenceConfig(entry_script="score.py", source_directory=str(tmp_path), environment=env)
    model = Model.register(workspace, str(sklearn_model.path), "pinned")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        svc = Model.deploy(workspace, "docker-py", [model], ic, DockerWebservice.deploy_configuration())
        try:
            svc.wait_for_deployment(timeout_sec=900)
            assert svc.run("{}") == "ok"
        finally:
            svc.delete()
    msgs = [str(w.message) for w in caught if issubclass(w.category, UserWarning) and "pins python=3.6," in str(w.message)]
    assert len(msgs) == 1, [str(w.message) for w in caught]
    assert "but the base image " in msgs[0] and "runs Python 3." in msgs[0]
