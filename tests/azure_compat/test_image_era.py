"""Azure ML v1's image-era flow, with cells of Azure's published v1 notebooks (the
``register-model-create-image-deploy-service`` era of Azure/MachineLearningNotebooks and the
``azureml.core.image`` API reference) with only the import changed:
``ContainerImage.image_configuration`` -> ``ContainerImage.create`` -> ``wait_for_creation`` ->
``Webservice.deploy_from_image`` / ``deploy_from_model``, ``Model.package(...).pull()``,
``LocalWebservice.deploy_to_cloud()``, ``env.docker.base_dockerfile`` and
``Environment.from_existing_conda_environment``. Local target here; the Docker ones are marked
``docker``."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# the notebooks' imports, with `azureml.core` changed to `mlmanage_jupyter.core`
from mlmanage_jupyter.core.conda_dependencies import CondaDependencies
from mlmanage_jupyter.core.environment import Environment
from mlmanage_jupyter.core.errors import NotFoundError, ValidationError, WebserviceException
from mlmanage_jupyter.core.image import ContainerImage, Image, ModelPackage
from mlmanage_jupyter.core.model import InferenceConfig, Model
from mlmanage_jupyter.core.webservice import DockerWebservice, LocalWebservice, Webservice

# score.py of the image-era notebook (the diabetes ridge model), with a helper module next to it
SCORE = """
import json
import numpy as np
import os
import joblib
from helpers import to_list

def init():
    global model
    model_path = os.path.join(os.getenv('AZUREML_MODEL_DIR'), 'sklearn_regression_model.pkl')
    model = joblib.load(model_path)

def run(raw_data):
    try:
        data = json.loads(raw_data)['data']
        data = np.array(data)
        result = model.predict(data)
        return to_list(result)
    except Exception as e:
        return str(e)
"""
HELPERS = "def to_list(a):\n    return a.tolist()\n"


@pytest.fixture
def notebook_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The notebook's folder (the working directory, as Azure's paths are relative to it) with
    score.py, helpers.py and myenv.yml written as the notebook's cells write them."""
    nb = tmp_path / "notebook"
    nb.mkdir()
    monkeypatch.chdir(nb)
    (nb / "score.py").write_text(textwrap.dedent(SCORE))
    (nb / "helpers.py").write_text(HELPERS)
    import joblib
    import numpy
    import sklearn

    # the notebook's cell: myenv = CondaDependencies.create(conda_packages=[...]); write myenv.yml
    myenv = CondaDependencies.create(conda_packages=[f"numpy={numpy.__version__}", f"scikit-learn={sklearn.__version__}",
                                                     f"joblib={joblib.__version__}"])
    with open("myenv.yml", "w") as f:
        f.write(myenv.serialize_to_string())
    return nb


@pytest.fixture
def services(workspace: Any) -> Iterator[list[str]]:
    """Names of services a test starts; deleted at teardown."""
    names: list[str] = []
    yield names
    for n in names:
        try:
            Webservice(workspace, n).delete()
        except Exception:  # noqa: BLE001 - best effort cleanup
            pass


def test_image_configuration_create_wait_list_and_deploy_from_image_local(
    workspace: Any, sklearn_model: Any, notebook_dir: Path, services: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    ws = workspace
    model = Model.register(model_path=str(sklearn_model.path), model_name="sklearn_regression_model.pkl",
                           tags={"area": "diabetes", "type": "regression"}, workspace=ws)
    # --- cells of the image-era notebook
    image_config = ContainerImage.image_configuration(execution_script="score.py",
                                                      runtime="python",
                                                      conda_file="myenv.yml",
                                                      dependencies=["helpers.py"],
                                                      description="Image with ridge regression model",
                                                      tags={"area": "diabetes", "type": "regression"},
                                                      properties={"origin": "notebook"})
    image = ContainerImage.create(name="myimage1",
                                  # this is the model object
                                  models=[model],
                                  image_config=image_config,
                                  workspace=ws)
    image.wait_for_creation(show_output=True)
    assert 'Image creation operation finished for image myimage1:1, operation "Succeeded"' in capsys.readouterr().out
    listed = [(i.name, i.version, i.creation_state, i.image_location, i.image_build_log_uri)
              for i in ContainerImage.list(workspace=ws)]
    assert listed == [("myimage1", 1, "Succeeded", str(image.context_path), None)]  # no Docker build yet
    assert image.tags == {"area": "diabetes", "type": "regression"}
    assert image.description == "Image with ridge regression model"
    assert image.properties == {"origin": "notebook"} and image.model_ids == ["sklearn_regression_model.pkl:1"]
    assert [i.id for i in Image.list(ws, model_name="sklearn_regression_model.pkl", properties=[["origin", "notebook"]])] == ["myimage1:1"]
    assert Image.list(ws, model_id="other:1") == [] and Image.list(ws, image_name="nope") == []
    assert Image(ws, id="myimage1:1") == image == Image(ws, name="myimage1")
    # the environment came from myenv.yml; the helper sits next to the script
    assert any(r.startswith("scikit-learn==") for r in image.environment.pip_requirements)
    assert (image.context_path / "app" / "notebook" / "helpers.py").read_text() == HELPERS
    # the same configuration again gives the same image (content-hashed)
    assert ContainerImage.create(ws, "myimage1", [model], image_config).id == "myimage1:1"

    local_config = LocalWebservice.deploy_configuration()
    service = Webservice.deploy_from_image(deployment_config=local_config,
                                           image=image,
                                           name="my-local-service",
                                           workspace=ws)
    services.append("my-local-service")
    service.wait_for_deployment(True)
    assert service.state == "Healthy"
    test_sample = json.dumps({"data": sklearn_model.X[:2].tolist()})
    prediction = service.run(input_data=test_sample)
    assert prediction == pytest.approx(sklearn_model.model.predict(sklearn_model.X[:2]).tolist())
    assert service.image == image  # the image itself runs: no second version
    assert [i.id for i in Image.list(ws)] == ["myimage1:1"]
    # cleanup cells: the service goes, the image it did not make stays until deleted
    service.delete()
    services.clear()
    assert [i.id for i in Image.list(ws)] == ["myimage1:1"]
    image.delete()
    model.delete()


def test_deploy_from_model_and_update_with_an_image(
    workspace: Any, sklearn_model: Any, notebook_dir: Path, services: list[str]
) -> None:
    ws = workspace
    model = Model.register(ws, str(sklearn_model.path), "sklearn_regression_model.pkl")
    image_config = ContainerImage.image_configuration(execution_script="score.py", runtime="python",
                                                      conda_file="myenv.yml", dependencies=["helpers.py"])
    service = Webservice.deploy_from_model(workspace=ws, name="from-model", models=[model],
                                           image_config=image_config,
                                           deployment_config=LocalWebservice.deploy_configuration())
    services.append("from-model")
    service.wait_for_deployment()
    sample = json.dumps({"data": sklearn_model.X[:1].tolist()})
    first = service.run(sample)
    assert service.image is not None and service.image.id == "from-model:1"
    # Azure's image-era update: a new image, then service.update(image=new_image)
    (notebook_dir / "helpers.py").write_text("def to_list(a):\n    return {'v2': a.tolist()}\n")
    new_image = ContainerImage.create(ws, "v2-image", [model], image_config)
    service.update(image=new_image)
    assert service.run(sample) == {"v2": first}
    # deleting the service deletes the image made for it (named after it), keeps the other
    service.delete()
    services.clear()
    assert [i.id for i in Image.list(ws)] == ["v2-image:1"]


def test_image_constructor_takes_azures_positions_and_filters(
    workspace: Any, sklearn_model: Any, notebook_dir: Path
) -> None:
    """Azure's constructor ``Image(workspace, name=None, id=None, tags=None, properties=None,
    version=None)`` (azureml-core ``azureml.core.image.Image``): ``id`` "The specific ID of the
    Image to retrieve. (ID is "<name>:<version>")"; ``tags``/``properties`` "Will filter Image
    results based on the provided list, by either 'key' or '[key, value]'"; ``version`` "When
    version and name are both specified, will return the specific version of the Image". And
    ``Image.models``: the image's models as ``Model`` objects (Azure's ``_initialize``:
    ``self.models = [Model.deserialize(...) ...]``), ``model_ids`` their ids."""
    ws = workspace
    model = Model.register(ws, str(sklearn_model.path), "sklearn_regression_model.pkl")
    v1 = ContainerImage.create(ws, "myimage1", [model], ContainerImage.image_configuration(
        execution_script="score.py", dependencies=["helpers.py"], tags={"stage": "dev"}))
    v2 = ContainerImage.create(ws, "myimage1", [model], ContainerImage.image_configuration(
        execution_script="score.py", dependencies=["helpers.py"], conda_file="myenv.yml", tags={"stage": "prod"},
        properties={"origin": "notebook"}))  # fmt: skip
    assert (v1.version, v2.version) == (1, 2)
    assert Image(ws, "myimage1", "myimage1:1") == v1  # id in the third position, as in Azure
    assert Image(ws, "myimage1") == v2 and Image(ws, "myimage1", version=1) == v1
    assert Image(ws, name="myimage1", tags=[["stage", "dev"]]) == v1  # the latest version with the tag
    assert Image(ws, "myimage1", None, ["stage"]) == v2
    assert Image(ws, "myimage1", properties=["origin"]) == v2
    assert Image(ws, "myimage1", id="myimage1:2", tags=["stage"]) == v2
    with pytest.raises(NotFoundError, match=r"no image myimage1 has tags \[\['stage', 'qa'\]\] and properties \[\]"):
        Image(ws, "myimage1", tags=[["stage", "qa"]])
    with pytest.raises(NotFoundError, match=r"no image myimage1:1 has tags \[\] and properties \['origin'\]"):
        Image(ws, "myimage1", version=1, properties=["origin"])
    with pytest.raises(ValidationError, match=r"version after ':' must be a positive integer"):
        Image(ws, "myimage1", "myimage1:latest")
    with pytest.raises(ValidationError, match=r"tags filter"):
        Image(ws, "myimage1", tags=[["stage", 1]])
    # our 0.2 positional version still works, with a DeprecationWarning naming the fix
    with pytest.warns(DeprecationWarning, match=r"write Image\(ws, name, version=1\)"):
        assert Image(ws, "myimage1", 1) == v1
    # Image.models: Model objects that work as models do; model_ids their ids
    assert v2.models == [model] and isinstance(v2.models[0], Model)
    assert v2.model_ids == ["sklearn_regression_model.pkl:1"] and v2.models[0].tags == model.tags
    assert [m.id for m in Image.list(ws)[0].models] == ["sklearn_regression_model.pkl:1"]


def test_image_models_name_the_import_when_model_is_not_imported(tmp_path: Path) -> None:
    """``Image.models`` needs the ``Model`` class; a script that imported only the image module
    gets one error saying what to import, and ``model_ids`` works without it."""
    script = textwrap.dedent("""
        import sys
        from mlmanage_jupyter.core.image import Image
        from mlmanage_jupyter.core.errors import ValidationError
        assert "mlmanage_jupyter.core.model" not in sys.modules
        img = Image(sys.argv[1], "img")
        print(img.model_ids)
        try:
            img.models
        except ValidationError as e:
            print(e)
        from mlmanage_jupyter.core.model import Model
        print([m.id for m in img.models])
    """)
    ws = tmp_path / "ws"
    (tmp_path / "score.py").write_text("def init():\n    pass\n\ndef run(data):\n    return data\n")
    (tmp_path / "w.txt").write_text("w")
    from mlmanage_jupyter.core.workspace import Workspace

    w = Workspace.create(ws)
    Image.create(w, "img", [Model.register(w, str(tmp_path / "w.txt"), "w")], InferenceConfig(entry_script=str(tmp_path / "score.py")))
    out = subprocess.run([sys.executable, "-c", script, str(ws)], capture_output=True, text=True, timeout=120, check=True).stdout
    assert out.splitlines() == [
        "['w:1']",
        "the Model class is not imported yet: import it first (from mlmanage_jupyter.core.model import Model, "
        "or from azureml.core import Model with mlmanage_jupyter.azureml_alias)",
        "['w:1']",
    ]


def test_image_without_models_is_created_and_serves(
    workspace: Any, notebook_dir: Path, services: list[str]
) -> None:
    """``Image.create(workspace, name, models, image_config)``: models "A list of Model objects
    to package with this image. Can be an empty list." (azureml-core ``Image.create``). The
    image holds an empty ``azureml-models`` folder (``AZUREML_MODEL_DIR`` exists), deploys
    and answers; ``Model.deploy`` with no models goes the same way."""
    (notebook_dir / "echo.py").write_text(textwrap.dedent("""
        import json, os

        def init():
            global listed
            listed = sorted(os.listdir(os.environ["AZUREML_MODEL_DIR"]))

        def run(raw_data):
            return {"echo": json.loads(raw_data), "models": listed}
    """))
    image = Image.create(workspace, "no-models", [], ContainerImage.image_configuration(execution_script="echo.py"))
    image.wait_for_creation()
    assert image.models == [] and image.model_ids == [] and image.creation_state == "Succeeded"
    assert (image.context_path / "azureml-models").is_dir()
    assert Image.list(workspace, model_name="anything") == [] and Image.list(workspace)[0] == image
    service = Webservice.deploy_from_image(workspace, "no-models-svc", image, LocalWebservice.deploy_configuration())
    services.append("no-models-svc")
    service.wait_for_deployment()
    assert service.run(json.dumps({"x": 1})) == {"echo": {"x": 1}, "models": []}
    assert service.models == [] and service.image == image
    again = Model.deploy(workspace, "no-models-2", [], InferenceConfig(entry_script="echo.py"),
                         LocalWebservice.deploy_configuration())  # fmt: skip
    services.append("no-models-2")
    again.wait_for_deployment()
    assert again.run(json.dumps([1])) == {"echo": [1], "models": []}


def test_image_configuration_errors_name_what_to_fix(workspace: Any, sklearn_model: Any, notebook_dir: Path) -> None:
    with pytest.raises(ValidationError, match="execution_script must be provided"):
        ContainerImage.image_configuration(runtime="python")
    with pytest.raises(ValidationError, match=r"provided execution_script path doesn't exist: .*nope\.py"):
        ContainerImage.image_configuration(execution_script="nope.py", runtime="python")
    (notebook_dir / "no_run.py").write_text("def init():\n    pass\n")
    with pytest.raises(ValidationError, match=r"entry script no_run.py must define run\(\)"):
        ContainerImage.image_configuration(execution_script="no_run.py", runtime="python")
    with pytest.raises(ValidationError, match=r"runtime 'spark-py' is not supported: use runtime='python'"):
        ContainerImage.image_configuration(execution_script="score.py", runtime="spark-py")
    with pytest.raises(ValidationError, match=r"provided conda_file path doesn't exist"):
        ContainerImage.image_configuration(execution_script="score.py", conda_file="missing.yml")
    with pytest.raises(ValidationError, match=r"dependencies must be a list"):
        ContainerImage.image_configuration(execution_script="score.py", dependencies="helpers.py")
    with pytest.raises(ValidationError, match=r"is an absolute path: give it relative to"):
        ContainerImage.image_configuration(execution_script="score.py", dependencies=[str(notebook_dir / "helpers.py")])
    with pytest.raises(ValidationError, match=r"tags must map strings to strings"):
        ContainerImage.image_configuration(execution_script="score.py", tags={"n": 1})
    model = Model.register(workspace, str(sklearn_model.path), "m")
    with pytest.raises(ValidationError, match=r"needs image_config=ContainerImage.image_configuration"):
        Image.create(workspace, "img", [model], {"execution_script": "score.py"})
    with pytest.raises(ValidationError, match=r"image must be an Image"):
        Webservice.deploy_from_image(workspace, "svc", "img:1", LocalWebservice.deploy_configuration())
    assert Image.list(workspace) == []


def test_unsupported_image_configuration_parameters_warn_once(notebook_dir: Path) -> None:
    with pytest.warns(UserWarning, match=r"image_configuration\(enable_gpu=...\) is not supported here and is ignored"):
        cfg = ContainerImage.image_configuration(execution_script="score.py", enable_gpu=True)
    assert cfg.execution_script == "score.py"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the second time is silent
        ContainerImage.image_configuration(execution_script="score.py", enable_gpu=True)


def test_docker_file_and_base_image_become_the_environment(workspace: Any, sklearn_model: Any, notebook_dir: Path) -> None:
    (notebook_dir / "extra.dockerfile").write_text("RUN echo extra-step\n")
    cfg = ContainerImage.image_configuration(execution_script="score.py", docker_file="extra.dockerfile",
                                             base_image="local/python:3.11-bookworm")
    model = Model.register(workspace, str(sklearn_model.path), "m")
    img = Image.create(workspace, "with-docker-steps", [model], cfg)
    assert img.environment.docker.extra_docker_file_steps == "RUN echo extra-step\n"
    assert img.environment.docker.base_image == "local/python:3.11-bookworm"


def test_model_package_pull_without_a_docker_engine_says_what_to_do(
    workspace: Any, sklearn_model: Any, notebook_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = Model.register(workspace, str(sklearn_model.path), "sklearn_regression_model.pkl")
    inference_config = InferenceConfig(entry_script="score.py", source_directory=".")
    package = Model.package(workspace, [model], inference_config)
    package.wait_for_creation(show_output=True)
    assert isinstance(package, ModelPackage) and package.location == str(package.image.context_path)
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:9")  # nothing listens there
    with pytest.raises(WebserviceException, match=r"ModelPackage.pull\(\) builds image .* Without Docker, run it on the "
                                                  r"local target: Webservice.deploy_from_image"):
        package.pull()
    assert package.image.docker_image is None and package.get_logs() == ""


def test_deploy_to_cloud_needs_a_cloud_config(workspace: Any, sklearn_model: Any, notebook_dir: Path, services: list[str]) -> None:
    from mlmanage_jupyter.core.compute import AksCompute, ComputeTarget

    model = Model.register(workspace, str(sklearn_model.path), "sklearn_regression_model.pkl")
    service = Model.deploy(workspace, "local-svc", [model], InferenceConfig(entry_script="score.py", source_directory="."),
                           LocalWebservice.deploy_configuration())
    services.append("local-svc")
    service.wait_for_deployment()
    kubeconfig = notebook_dir / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")
    attach = AksCompute.attach_configuration(cluster_name="c1", kubeconfig=str(kubeconfig))
    aks = ComputeTarget.attach(workspace, "myaks", attach)
    with pytest.raises(ValidationError, match=r"is a Kubernetes cluster: give deployment_config=AksWebservice"):
        service.deploy_to_cloud(deployment_config=DockerWebservice.deploy_configuration(), deployment_target=aks)
    assert sorted(s.name for s in Webservice.list(workspace)) == ["local-svc"]


# ------------------------------------------------------------------------------ environments
BASE_DOCKERFILE = "FROM {base}\nRUN echo from-base-dockerfile > /etc/mlmanage-base-marker\n"


def test_base_dockerfile_text_or_path_and_its_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    env = Environment("custom")
    env.docker.base_image = None
    env.docker.base_dockerfile = BASE_DOCKERFILE.format(base="local/python:3.11-bookworm")
    assert Environment.from_dict(env.to_dict()).docker.dockerfile_text() == env.docker.base_dockerfile
    Path("Dockerfile").write_text("FROM local/python:3.11-bookworm\n")
    env.docker.base_dockerfile = "./Dockerfile"  # Azure: "or load the string from a file"
    assert env.to_dict()["docker"]["base_dockerfile"] == "FROM local/python:3.11-bookworm\n"
    assert "base_dockerfile" not in Environment("plain").to_dict()["docker"]  # unchanged hashes without one
    env.docker.base_dockerfile = "./Missing.dockerfile"
    with pytest.raises(ValidationError, match=r"is no file and not Dockerfile text"):
        env.to_dict()
    env.docker.base_dockerfile = "RUN echo hi\nRUN echo there\n"
    with pytest.raises(ValidationError, match=r"has no FROM line"):
        env.to_dict()
    env.docker.base_dockerfile = "./Dockerfile"
    env.docker.base_image = "python:3.11-slim"
    with pytest.raises(ValidationError, match=r"set env.docker.base_image = None"):
        env.to_dict()


def test_from_existing_conda_environment_without_conda(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CONDA_EXE", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no conda on PATH
    with pytest.raises(ValidationError, match=r"conda is not installed here .* use Environment.from_conda_specification"
                                              r"\('myenv', 'env.yml'\)"):
        Environment.from_existing_conda_environment("myenv", "mycondaenv")


# ------------------------------------------------------------------------------ docker
@pytest.fixture
def docker_env(docker_client: Any, base_image: str, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The docker client with MLMANAGE_BASE_IMAGE and the build cache test_docker_model_path uses."""
    monkeypatch.setenv("MLMANAGE_BASE_IMAGE", base_image)
    monkeypatch.setenv("MLMANAGE_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "azure-compat-docker-cache"))
    return docker_client


@pytest.mark.docker
@pytest.mark.slow
def test_image_era_on_docker_pull_deploy_from_image_and_deploy_to_cloud(
    workspace: Any, sklearn_model: Any, notebook_dir: Path, services: list[str], docker_env: Any
) -> None:
    ws = workspace
    model = Model.register(ws, str(sklearn_model.path), "sklearn_regression_model.pkl")
    inference_config = InferenceConfig(entry_script="score.py", source_directory=".",
                                       environment=Environment.from_conda_specification("myenv", "myenv.yml"))
    # Azure's "package and pull" cells
    package = Model.package(ws, [model], inference_config)
    package.wait_for_creation(show_output=True)
    lines: list[str] = []
    tag = package.pull(progress=lines.append)
    assert package.location == tag == Image(ws, package.name).docker_image
    docker_env.images.get(tag)  # in the local engine
    assert package.get_logs() and Path(package.image.image_build_log_uri.removeprefix("file://")).is_file()
    try:
        sample = json.dumps({"data": sklearn_model.X[:1].tolist()})
        expected = pytest.approx(sklearn_model.model.predict(sklearn_model.X[:1]).tolist())
        # the packaged image deployed on docker runs that very Docker image
        svc = Webservice.deploy_from_image(ws, "pkg-docker", package.image, DockerWebservice.deploy_configuration())
        services.append("pkg-docker")
        svc.wait_for_deployment()
        assert svc.run(sample) == expected and svc.image.docker_image == tag
        # a local service sent "to the cloud": the same content on docker
        local = Model.deploy(ws, "dev", [model], inference_config, LocalWebservice.deploy_configuration())
        services.append("dev")
        local.wait_for_deployment()
        cloud = local.deploy_to_cloud(deployment_config=DockerWebservice.deploy_configuration())
        services.append("dev-cloud")
        cloud.wait_for_deployment()
        assert cloud.name == "dev-cloud" and cloud.compute_type == "docker"
        assert cloud.run(sample) == local.run(sample) == expected
        assert cloud.image.content_hash == local.image.content_hash
    finally:
        for n in list(services):
            Webservice(ws, n).delete()
        services.clear()
        Image(ws, package.name).delete()
        try:
            docker_env.images.remove(tag)
        except Exception:  # noqa: BLE001 - already removed
            pass


@pytest.mark.docker
@pytest.mark.slow
def test_base_dockerfile_is_built_under_the_image_on_docker(
    workspace: Any, sklearn_model: Any, tmp_path: Path, services: list[str], docker_env: Any, base_image: str
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "score.py").write_text(
        "def init():\n    pass\n\ndef run(raw):\n    return open('/etc/mlmanage-base-marker').read().strip()\n"
    )
    env = Environment("custom-base")
    env.docker.base_image = None
    env.docker.base_dockerfile = BASE_DOCKERFILE.format(base=base_image)
    model = Model.register(workspace, str(sklearn_model.path), "m")
    ic = InferenceConfig(entry_script="score.py", source_directory=str(src), environment=env)
    from mlmanage_jupyter.core.targets.docker_build import base_dockerfile_tag

    base_tag = base_dockerfile_tag(env.docker.base_dockerfile)
    svc = Model.deploy(workspace, "custom-base", [model], ic, DockerWebservice.deploy_configuration())
    services.append("custom-base")
    try:
        svc.wait_for_deployment()
        assert svc.run("{}") == "from-base-dockerfile"
        docker_env.images.get(base_tag)
        out = Path(svc.image.save(tmp_path / "export"))
        assert (out / "base.Dockerfile").read_text() == env.docker.base_dockerfile
        assert f"FROM {base_tag} AS deps" in (out / "Dockerfile").read_text()
    finally:
        svc.delete()
        services.clear()
        try:
            docker_env.images.remove(base_tag)
        except Exception:  # noqa: BLE001 - still used or gone
            pass
