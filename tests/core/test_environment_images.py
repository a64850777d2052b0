"""Environment, InferenceConfig (incl. Azure's JSON files) and Image build contexts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlmanage_jupyter.core.environment import Environment, InferenceConfig, check_entry_script
from mlmanage_jupyter.core.errors import ValidationError
from mlmanage_jupyter.core.image import Image
from mlmanage_jupyter.core.model import Model
from mlmanage_jupyter.core.targets.base import AciDeploymentConfig, LocalDeploymentConfig, config_from_json
from mlmanage_jupyter.core.workspace import Workspace

SCRIPT = "import json\n\ndef init():\n    pass\n\ndef run(data):\n    return json.loads(data)\n"


def test_environment_from_files(tmp_path: Path) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text("# deps\nscikit-learn==1.5.0\n\nnumpy>=1.24  # pinned\n")
    env = Environment.from_pip_requirements("e", req)
    assert env.pip_requirements == ["scikit-learn==1.5.0", "numpy>=1.24"]
    conda = tmp_path / "myenv.yml"
    conda.write_text(
        "name: project_environment\ndependencies:\n  - python=3.11.7\n  - pip\n  - scikit-learn=1.5.0\n"
        "  - pip:\n    - azureml-defaults\n    - inference-schema[numpy-support]\n"
    )
    env2 = Environment.from_conda_specification("c", conda)
    assert env2.python_version == "3.11"
    assert env2.pip_requirements == ["scikit-learn==1.5.0", "azureml-defaults", "inference-schema[numpy-support]"]
    env2.docker.base_image = "local/python:3.11-bookworm"
    assert Environment.from_dict(env2.to_dict()).docker.base_image == "local/python:3.11-bookworm"
    with pytest.raises(ValidationError, match="not found"):
        Environment.from_pip_requirements("e", tmp_path / "nope.txt")
    (tmp_path / "bad.yml").write_text("dependencies: [unclosed")
    with pytest.raises(ValidationError, match="not valid YAML"):
        Environment.from_conda_specification("c", tmp_path / "bad.yml")


def test_entry_script_checks(tmp_path: Path) -> None:
    good = tmp_path / "good.py"
    good.write_text(SCRIPT)
    check_entry_script(good)
    (tmp_path / "syntax.py").write_text("def init(:\n")
    with pytest.raises(ValidationError, match="syntax error at line 1"):
        check_entry_script(tmp_path / "syntax.py")
    (tmp_path / "norun.py").write_text("def init():\n    pass\n")
    with pytest.raises(ValidationError, match=r"must define run\(\)"):
        check_entry_script(tmp_path / "norun.py")


def test_inferenceconfig_json_as_azure_writes_it(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "score.py").write_text(SCRIPT)
    (tmp_path / "myenv.yml").write_text("dependencies:\n  - python=3.11\n  - pip:\n    - numpy\n")
    (tmp_path / "inferenceconfig.json").write_text(
        json.dumps({"entryScript": "score.py", "sourceDirectory": "src", "runtime": "python", "condaFile": "myenv.yml"})
    )
    ic = InferenceConfig.from_json(tmp_path / "inferenceconfig.json")
    assert ic.entry_script_path() == src / "score.py"
    assert ic.environment is not None and ic.environment.pip_requirements == ["numpy"]
    ic.validate()
    with pytest.raises(ValidationError, match="entryScript"):
        InferenceConfig.from_json({"runtime": "python"})
    with pytest.raises(ValidationError, match="not supported"):
        InferenceConfig(entry_script="score.py", runtime="spark-py")


def test_deploymentconfig_json(tmp_path: Path) -> None:
    cfg = config_from_json({"computeType": "local", "port": 6789, "authEnabled": True})
    assert isinstance(cfg, LocalDeploymentConfig) and cfg.port == 6789 and cfg.auth_enabled
    aci = config_from_json({"computeType": "ACI", "containerResourceRequirements": {"cpu": 0.5, "memoryInGB": 1.0}})
    assert isinstance(aci, AciDeploymentConfig) and (aci.cpu_cores, aci.memory_gb) == (0.5, 1.0)
    with pytest.raises(ValidationError, match="unknown computeType"):
        config_from_json({"computeType": "mainframe"})
    with pytest.raises(ValidationError, match="port must be"):
        config_from_json({"computeType": "local", "port": 70000})
    with pytest.raises(ValidationError, match="not found"):
        config_from_json(tmp_path / "nope.json")


def test_image_context_layout_and_content_hash(ws: Workspace, tmp_path: Path) -> None:
    f = tmp_path / "model.pkl"
    f.write_bytes(b"weights")
    m1 = Model.register(ws, f, "m")
    src = tmp_path / "src"
    (src / "pkg").mkdir(parents=True)
    (src / "score.py").write_text(SCRIPT)
    (src / "pkg" / "helper.py").write_text("X = 1\n")
    (src / "__pycache__").mkdir()
    (src / "__pycache__" / "junk.pyc").write_bytes(b"\0")
    ic = InferenceConfig(entry_script="score.py", source_directory=str(src))
    img = Image.create(ws, "svc", [m1], ic)
    ctx = img.context_path
    # Azure's layout: the source directory is app/<its name> (AZUREML_SOURCE_DIRECTORY)
    assert (ctx / "app" / "src" / "score.py").read_text() == SCRIPT
    assert (ctx / "app" / "src" / "pkg" / "helper.py").exists()
    assert not (ctx / "app" / "src" / "__pycache__").exists()
    assert (ctx / "azureml-models" / "m" / "1" / "model.pkl").read_bytes() == b"weights"
    assert img.model_dir_env() == "azureml-models/m/1"
    spec = json.loads((ctx / "image.json").read_text())
    assert (spec["entry_script"], spec["source_directory"]) == ("src/score.py", "src")
    # same inputs: same image; a changed script: a new version
    assert Image.create(ws, "svc", [m1], ic).id == "svc:1"
    (src / "score.py").write_text(SCRIPT + "\n# edit\n")
    img2 = Image.create(ws, "svc", [m1], ic)
    assert img2.version == 2 and img2.content_hash != img.content_hash
    m2 = Model.register(ws, f, "n")
    both = Image.create(ws, "both", [m1, m2], ic)
    assert both.model_dir_env() == "azureml-models"
    assert [i.id for i in Image.list(ws, name="svc")] == ["svc:2", "svc:1"]
    with pytest.raises(ValidationError, match="one version per model name"):
        Image.create(ws, "dup", [m1, Model(ws, "m", 1)], ic)
    with pytest.raises(ValidationError, match="invalid image name"):
        Image.create(ws, "../x", [m1], ic)
    out = Path(img.save(tmp_path / "export"))
    assert (out / "app" / "src" / "score.py").exists()
    with pytest.raises(ValidationError, match="already exists"):
        img.save(tmp_path / "export")
    # no service uses m1: deleting it deletes the images built from it (issue 12, Azure's cleanup)
    m1.delete()
    assert [i.id for i in Image.list(ws)] == []
    assert not ctx.exists()


def _script_and_model(ws: Workspace, tmp_path: Path) -> tuple[Model, InferenceConfig]:
    f = tmp_path / "model.pkl"
    f.write_bytes(b"weights")
    (tmp_path / "score.py").write_text(SCRIPT)
    return Model.register(ws, f, "m"), InferenceConfig(entry_script=str(tmp_path / "score.py"))


def test_model_package_with_generate_dockerfile_saves_a_build_context(ws: Workspace, tmp_path: Path) -> None:
    from mlmanage_jupyter.core.image import ModelPackage

    m, ic = _script_and_model(ws, tmp_path)
    first = Model.package(ws, [m], ic)  # Azure's Model.package always gives a ModelPackage
    assert isinstance(first, ModelPackage) and first.model_ids == ["m:1"] and not first.generate_dockerfile
    assert first.models == [m]  # Azure's Image.models: Model objects
    img = first.image
    pkg = Model.package(ws, [m], ic, generate_dockerfile=True)
    assert isinstance(pkg, ModelPackage) and pkg.image == img  # same inputs, same image
    pkg.wait_for_creation()
    assert pkg.get_container_registry().address is None
    out = Path(pkg.save(tmp_path / "imagefiles"))
    assert "FROM " in (out / "Dockerfile").read_text()
    assert (out / "app" / "score.py").read_text() == SCRIPT
    assert (out / "azureml-models" / "m" / "1" / "model.pkl").read_bytes() == b"weights"
    assert Image(ws, "m", 1).docker_image is None  # nothing was built
    with pytest.raises(ValidationError, match="at least one model"):
        Model.package(ws, [], ic)


def test_dry_run_validates_and_writes_nothing(ws: Workspace, tmp_path: Path) -> None:
    from mlmanage_jupyter.core.deployment import dry_run_text

    m, ic = _script_and_model(ws, tmp_path)
    out = json.loads(dry_run_text(ws, "svc-a", [m.record], ic, AciDeploymentConfig(cpu_cores=0.5)))
    assert out["computeType"] == "aci" and out["deploymentConfig"]["cpu_cores"] == 0.5
    assert out["image"]["models"] == ["m:1"] and out["image"]["version"] == 0  # 0: would be new
    assert Image.list(ws) == []
    assert not (ws.path / "images").exists() or not any((ws.path / "images").iterdir())
    with pytest.raises(ValidationError, match="invalid service name"):
        dry_run_text(ws, "Bad_Name", [m.record], ic, LocalDeploymentConfig())
    # an image with the same content already exists: the dry run names it
    img = Image.create(ws, "svc-a", [m], ic)
    again = json.loads(dry_run_text(ws, "svc-a", ["m:1"], ic, LocalDeploymentConfig()))
    assert again["image"]["id"] == img.id and again["image"]["contentHash"] == img.content_hash


def test_context_path_is_stored_relative_so_a_copied_workspace_finds_its_images(tmp_path: Path) -> None:
    import shutil

    from sqlalchemy import select

    from mlmanage_jupyter.core.store import images as image_store
    from mlmanage_jupyter.core.store import metadata as md

    ws = Workspace(tmp_path / "team" / "ws")
    f = tmp_path / "model.pkl"
    f.write_bytes(b"weights")
    (tmp_path / "score.py").write_text(SCRIPT)
    img = Image.create(ws, "svc", [Model.register(ws, f, "m")], InferenceConfig(entry_script=str(tmp_path / "score.py")))
    with ws.read() as conn:
        stored = conn.execute(select(md.images.c.context_path)).scalar_one()
    assert not Path(stored).is_absolute() and ws.path / stored == img.context_path
    ws.engine.dispose()

    shutil.copytree(ws.path, tmp_path / "copy")
    shutil.rmtree(tmp_path / "team")  # the original is gone: the copy must not point into it
    copy = Workspace(tmp_path / "copy")
    again = Image(copy, "svc", 1)
    assert again.context_path == copy.path / stored and (again.context_path / "image.json").is_file()
    assert (Path(again.save(tmp_path / "exported")) / "app" / "score.py").read_text() == SCRIPT

    # a row written before paths were stored relative (absolute) still reads as it is
    image_store.set_fields(copy, again.record, context_path=str(again.context_path))
    assert Image(copy, "svc", 1).context_path == again.context_path


def test_inference_config_to_dict_gives_azure_field_names(tmp_path: Path) -> None:
    """InferenceConfig.to_dict() (public, Azure's field names) works with and without an Environment."""
    from mlmanage_jupyter.core.environment import Environment, InferenceConfig

    (tmp_path / "score.py").write_text("def init():\n    pass\n\ndef run(x):\n    return x\n")
    ic = InferenceConfig(entry_script="score.py", source_directory=str(tmp_path))
    d = ic.to_dict()
    assert (d["entryScript"], d["sourceDirectory"], d["runtime"], d["environment"]) == ("score.py", str(tmp_path), "python", None)
    env = Environment("e")
    env.pip_requirements = ["numpy"]
    ic.environment = env
    assert ic.to_dict()["environment"]["name"] == "e"
