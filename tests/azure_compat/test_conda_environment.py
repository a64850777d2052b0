"""CondaDependencies, env.python.conda_dependencies and registered environments, written from
Azure's v1 docs ("Create & use software environments", the ``CondaDependencies`` reference) and
the deploy-to-local notebook's environment cell."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from mlmanage_jupyter.core.conda_dependencies import CondaDependencies
from mlmanage_jupyter.core.environment import Environment, InferenceConfig
from mlmanage_jupyter.core.errors import NotFoundError, ValidationError
from mlmanage_jupyter.core.workspace import Workspace

RUNNING = f"{sys.version_info.major}.{sys.version_info.minor}"


def test_create_with_packages_and_python_version() -> None:
    cd = CondaDependencies.create(pip_packages=["azureml-defaults", "inference-schema[numpy-support]"],
                                  conda_packages=["scikit-learn==0.22.1", "numpy"], python_version="3.8")
    assert cd.get_python_version() == "3.8"
    assert cd.conda_packages == ["scikit-learn==0.22.1", "numpy"]
    assert cd.pip_packages == ["azureml-defaults", "inference-schema[numpy-support]"]
    spec = yaml.safe_load(cd.serialize_to_string())
    assert spec["name"] == "project_environment"
    assert "python=3.8" in spec["dependencies"] and {"pip": cd.pip_packages} in spec["dependencies"]
    assert CondaDependencies.create().get_python_version() == RUNNING


def test_add_replaces_same_name_and_remove_ignores_version() -> None:
    cd = CondaDependencies()
    cd.add_conda_package("scikit-learn")
    cd.add_conda_package("scikit-learn=1.5.0")
    cd.add_pip_package("joblib")
    cd.add_pip_package("Joblib==1.4.2")
    assert cd.conda_packages == ["scikit-learn=1.5.0"] and cd.pip_packages == ["Joblib==1.4.2"]
    cd.remove_pip_package("joblib>=1")
    cd.remove_conda_package("scikit_learn")
    assert cd.conda_packages == [] and cd.pip_packages == []


def test_save_and_read_back(tmp_path: Path) -> None:
    # the docs' cell: myenv = CondaDependencies(); add_conda_package; write serialize_to_string()
    myenv = CondaDependencies()
    myenv.add_conda_package("scikit-learn")
    env_file = tmp_path / "myenv.yml"
    env_file.write_text(myenv.serialize_to_string())
    assert CondaDependencies(str(env_file)) == myenv
    saved = myenv.save(tmp_path / "sub" / "env.yml")
    env = Environment.from_conda_specification("myenv", saved)
    assert env.pip_requirements == ["scikit-learn"]


@pytest.mark.parametrize("call, message", [
    (lambda cd: cd.add_pip_package(""), "pip_package must be a non-empty string"),
    (lambda cd: cd.add_pip_package(3), "pip_package must be a non-empty string"),
    (lambda cd: cd.add_pip_package("!!bad"), "is not a requirement"),
    (lambda cd: cd.add_conda_package("numpy = = 1"), "is not a conda spec"),
    (lambda cd: cd.set_python_version("three"), "must look like '3.11'"),
    (lambda cd: cd.set_pip_option("index-url x"), "must start with '-'"),
])
def test_bad_packages_are_one_precise_error(call, message: str) -> None:
    cd = CondaDependencies.create(pip_packages=["joblib"])
    before = cd.serialize_to_string()
    with pytest.raises(ValidationError, match=message):
        call(cd)
    assert cd.serialize_to_string() == before  # nothing changed


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="not found"):
        CondaDependencies(tmp_path / "missing.yml")
    (tmp_path / "bad.yml").write_text("dependencies: 3\n")
    with pytest.raises(ValidationError, match="'dependencies' must be a list"):
        CondaDependencies(tmp_path / "bad.yml")


def test_env_python_conda_dependencies_edits_the_environment() -> None:
    # deploy-to-local notebook: Environment("LocalDeploy") then add_pip_package on the property
    environment = Environment("LocalDeploy")
    assert environment.python.conda_dependencies.pip_packages == []
    assert environment.pip_requirements == []  # reading changes nothing
    environment.python.conda_dependencies.add_pip_package("inference-schema[numpy-support]")
    environment.python.conda_dependencies.add_pip_package("joblib")
    environment.python.conda_dependencies.add_pip_package("scikit-learn==1.5.0")
    assert environment.pip_requirements == ["inference-schema[numpy-support]", "joblib", "scikit-learn==1.5.0"]
    # the docs' other form: assign a CondaDependencies, then keep editing that object
    deps = CondaDependencies.create(conda_packages=["numpy"], pip_packages=["joblib"], python_version="3.11")
    environment.python.conda_dependencies = deps
    assert environment.pip_requirements == ["numpy", "joblib"] and environment.python_version == "3.11"
    deps.add_pip_package("pandas")
    assert environment.pip_requirements == ["numpy", "joblib", "pandas"]
    with pytest.raises(ValidationError, match="must be a CondaDependencies"):
        environment.python.conda_dependencies = {"dependencies": []}  # type: ignore[assignment]
    assert environment.pip_requirements == ["numpy", "joblib", "pandas"]


def test_pip_environment_shows_as_conda_dependencies(tmp_path: Path) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text("joblib\nscikit-learn==1.5.0\n")
    env = Environment.from_pip_requirements("pipenv", req)
    cd = env.python.conda_dependencies
    assert cd.pip_packages == ["joblib", "scikit-learn==1.5.0"]
    cd.add_pip_package("numpy")
    assert env.pip_requirements == ["joblib", "scikit-learn==1.5.0", "numpy"]


def test_register_get_list_versions(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    env = Environment("myenv")
    env.python.conda_dependencies = CondaDependencies.create(pip_packages=["joblib"])
    first = env.register(workspace=ws)
    assert first.version == "1" and env.version == "1"
    assert env.register(ws).version == "1"  # unchanged definition: no new version
    env.python.conda_dependencies.add_pip_package("numpy")
    assert env.register(ws).version == "2"
    assert Environment.get(ws, "myenv").pip_requirements == ["joblib", "numpy"]
    assert Environment.get(ws, "myenv", version="1").pip_requirements == ["joblib"]
    listed = Environment.list(workspace=ws)
    assert list(listed) == ["myenv"] and listed["myenv"].version == "2"
    # a registered environment deploys like any other
    assert InferenceConfig(entry_script="score.py", environment=Environment.get(ws, "myenv")).environment.name == "myenv"
    # environments live in the workspace folder: another instance on it sees them
    assert Environment.get(Workspace(tmp_path / "ws"), "myenv").version == "2"


def test_get_errors_name_what_exists(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    Environment("known").register(ws)
    with pytest.raises(NotFoundError, match=r"no environment named 'nope'.*\['known'\]"):
        Environment.get(ws, "nope")
    with pytest.raises(NotFoundError, match="curated environments are not available"):
        Environment.get(ws, "AzureML-Minimal")
    with pytest.raises(NotFoundError, match=r"no version 7; versions: \['1'\]"):
        Environment.get(ws, "known", version=7)
    with pytest.raises(ValidationError, match="workspace must be a Workspace"):
        Environment.list("not a workspace")
