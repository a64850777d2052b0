"""The cleanup cells of Azure's deployment notebooks (``service.delete()`` then
``model.delete()``) after a deploy, a ``Model.profile`` and a dry run: they work, and leave no
image behind (no image version, no build context, no Docker image)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from mlmanage_jupyter.core import deployment
from mlmanage_jupyter.core.cleanup import collect_garbage
from mlmanage_jupyter.core.environment import InferenceConfig
from mlmanage_jupyter.core.errors import InUseError, ModelNotFoundError
from mlmanage_jupyter.core.image import Image
from mlmanage_jupyter.core.model import Model
from mlmanage_jupyter.core.webservice import DockerWebservice, LocalWebservice

SCORE = """
import json, os, joblib
def init():
    global model
    model = joblib.load(os.path.join(os.environ["AZUREML_MODEL_DIR"], "sklearn_regression_model.pkl"))
def run(raw_data):
    return model.predict(json.loads(raw_data)["data"]).tolist()
"""


def inference_config(tmp_path: Path) -> InferenceConfig:
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / "score.py").write_text(textwrap.dedent(SCORE))
    return InferenceConfig(entry_script="score.py", source_directory=str(src))


def assert_no_images(ws: Any) -> None:
    assert [i.id for i in Image.list(ws)] == []
    images_dir = ws.path / "images"
    assert not images_dir.exists() or [p.name for p in images_dir.iterdir()] == []


@pytest.mark.slow
def test_local_deploy_profile_dry_run_then_cleanup(workspace: Any, sklearn_model: Any, tmp_path: Path) -> None:
    model = Model.register(workspace, sklearn_model.path, "sklearn_regression_model.pkl")
    ic = inference_config(tmp_path)
    # a dry run writes nothing
    deployment.dry_run_text(workspace, "dry", [model.record], ic, LocalWebservice.deploy_configuration())
    assert_no_images(workspace)
    # profiling deploys a temporary service and deletes it, with its image
    profile = Model.profile(workspace, "prof", [model], ic, [{"data": sklearn_model.X[:1].tolist()}],
                            concurrency=(1,), duration_s=0.5)
    assert profile.name == "prof"
    assert_no_images(workspace)
    # deploy, then the notebook's cleanup cell
    service = Model.deploy(workspace, "svc", [model], ic, LocalWebservice.deploy_configuration())
    service.wait_for_deployment()
    with pytest.raises(InUseError, match=r"used by service svc; delete those services first"):
        model.delete()
    assert [i.id for i in Image.list(workspace)] == ["svc:1"]
    service.delete()
    model.delete()
    with pytest.raises(ModelNotFoundError):
        Model(workspace, "sklearn_regression_model.pkl")
    assert_no_images(workspace)
    assert collect_garbage(workspace)["objects_deleted"] == 1  # the model's bytes


def test_delete_keeps_images_another_service_or_the_user_owns(workspace: Any, sklearn_model: Any, tmp_path: Path) -> None:
    model = Model.register(workspace, sklearn_model.path, "m")
    ic = inference_config(tmp_path)
    mine = Image.create(workspace, "kept", [model], ic)  # explicitly created: not the service's
    a = Model.deploy(workspace, "svc-a", [model], ic, LocalWebservice.deploy_configuration())
    b = Model.deploy(workspace, "svc-b", [model], ic, LocalWebservice.deploy_configuration())
    try:
        a.wait_for_deployment()
        b.wait_for_deployment()
        a.delete()
        assert sorted(i.id for i in Image.list(workspace)) == ["kept:1", "svc-b:1"]
        assert mine.context_path.exists()  # same content as b's image: the shared folder stays
    finally:
        b.delete()
    assert [i.id for i in Image.list(workspace)] == ["kept:1"]


def test_garbage_collection_reclaims_orphan_contexts_and_temp_folders(workspace: Any) -> None:
    (workspace.path / "images" / "deadbeef" / "app").mkdir(parents=True)
    (workspace.path / "images" / ".tmp-crashed").mkdir()
    out = collect_garbage(workspace)
    assert (out["contexts_deleted"], out["temp_deleted"]) == (1, 1)
    assert list((workspace.path / "images").iterdir()) == []


@pytest.mark.docker
@pytest.mark.slow
def test_docker_deploy_then_cleanup_removes_the_docker_image(
    workspace: Any, sklearn_model: Any, tmp_path: Path, docker_client: Any, base_image: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLMANAGE_BASE_IMAGE", base_image)
    model = Model.register(workspace, sklearn_model.path, "sklearn_regression_model.pkl")
    ic = inference_config(tmp_path)
    service = Model.deploy(workspace, "dk-clean", [model], ic, DockerWebservice.deploy_configuration())
    try:
        service.wait_for_deployment(timeout_sec=600)
        assert service.run({"data": sklearn_model.X[:1].tolist()}) == pytest.approx(
            sklearn_model.model.predict(sklearn_model.X[:1]).tolist())
        tag = service.image.record.docker_image
        assert tag and docker_client.images.get(tag)
    except BaseException:
        service.delete()
        raise
    service.delete()
    model.delete()
    assert_no_images(workspace)
    import docker

    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get(tag)
