"""The notebook-side ``azureml`` alias: Azure ML v1 notebooks' import cells run unchanged.

Each case runs in a fresh interpreter (the alias changes ``sys.meta_path``/``sys.modules``).
The import lines are those of Azure's published v1 deployment notebooks
(Azure/MachineLearningNotebooks how-to-use-azureml/deployment/*: deploy-to-local,
deploy-to-cloud, production-deploy-to-aks, deploy-multi-model) and the v1 docs'
"Deploy machine learning models to Azure"."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

AZURE_IMPORT_CELLS = """
from azureml.core import Workspace
from azureml.core.model import Model, InferenceConfig
from azureml.core import Environment
from azureml.core.environment import Environment as Env2
from azureml.core.conda_dependencies import CondaDependencies
from azureml.core.webservice import LocalWebservice, Webservice, AciWebservice, AksWebservice
from azureml.core.image import Image
from azureml.core.compute import AksCompute, ComputeTarget, AmlCompute
from azureml.core.compute_target import ComputeTargetException
from azureml.core.resource_configuration import ResourceConfiguration
from azureml.exceptions import WebserviceException
import azureml.core
print("SDK version:", azureml.core.VERSION)
"""


def run_py(code: str, tmp_path: Path, extra_path: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if extra_path is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(extra_path), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)


def test_without_opt_in_azureml_is_not_importable(tmp_path: Path) -> None:
    r = run_py("import mlmanage_jupyter, mlmanage_jupyter.core.webservice\nimport azureml.core\n", tmp_path)
    assert r.returncode != 0 and "No module named 'azureml'" in r.stderr


def test_azure_import_cells_run_after_the_documented_import(tmp_path: Path) -> None:
    r = run_py("import mlmanage_jupyter.azureml_alias\n" + AZURE_IMPORT_CELLS + textwrap.dedent("""
        import mlmanage_jupyter.core.model as ours
        import mlmanage_jupyter.core.webservice as ours_ws
        assert Model is ours.Model and InferenceConfig is ours.InferenceConfig, "one class, two names"
        assert LocalWebservice is ours_ws.LocalWebservice
        assert Env2 is Environment
        import azureml.core.webservice as aliased
        assert aliased is ours_ws
        assert issubclass(ComputeTargetException, Exception)
        print("ok")
    """), tmp_path)
    assert r.returncode == 0, r.stderr
    assert "SDK version: 0.1.0" in r.stdout and "ok" in r.stdout


def test_load_ext_installs_the_alias(tmp_path: Path) -> None:
    r = run_py("""
        from IPython.core.interactiveshell import InteractiveShell
        ip = InteractiveShell.instance()
        ip.run_line_magic("load_ext", "mlmanage_jupyter")
        ip.run_cell("from azureml.core.webservice import LocalWebservice", store_history=False).raise_error()
        print(ip.user_ns["LocalWebservice"].__module__)
    """, tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().endswith("mlmanage_jupyter.core.webservice")


def test_an_azure_module_we_lack_names_what_is_provided(tmp_path: Path) -> None:
    r = run_py("import mlmanage_jupyter.azureml_alias\nfrom azureml.core.run import Run\n", tmp_path)
    assert r.returncode != 0
    assert "No module named 'azureml.core.run'" in r.stderr and "azureml.core.webservice" in r.stderr
    # none of our own internals is reachable under an Azure name (no second copy of a module)
    r = run_py("import mlmanage_jupyter.azureml_alias\nimport azureml.core.registry\n", tmp_path)
    assert r.returncode != 0 and "No module named 'azureml.core.registry'" in r.stderr


def test_a_real_sdk_wins(tmp_path: Path) -> None:
    real = tmp_path / "site"
    (real / "azureml" / "core").mkdir(parents=True)
    (real / "azureml" / "core" / "__init__.py").write_text("REAL = True\nVERSION = '1.57.0'\n")
    r = run_py("""
        import mlmanage_jupyter.azureml_alias as alias
        assert not alias.is_installed()
        assert alias.install() is False
        import azureml.core
        print(azureml.core.REAL, azureml.core.VERSION)
    """, tmp_path, extra_path=real)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["True", "1.57.0"]


def test_other_azureml_namespace_packages_still_import(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "azureml" / "dataprep").mkdir(parents=True)  # a namespace portion, as azureml-dataprep ships
    (site / "azureml" / "dataprep" / "__init__.py").write_text("DATAPREP = 'yes'\n")
    r = run_py("""
        import mlmanage_jupyter.azureml_alias as alias
        assert alias.is_installed()
        import azureml.dataprep
        from azureml.core import Model
        print(azureml.dataprep.DATAPREP, Model.__module__)
    """, tmp_path, extra_path=site)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["yes", "mlmanage_jupyter.core.model"]


def test_uninstall_forgets_the_alias(tmp_path: Path) -> None:
    r = run_py("""
        import mlmanage_jupyter.azureml_alias as alias
        import azureml.core.model
        alias.uninstall()
        import sys
        assert not any(n == "azureml" or n.startswith("azureml.") for n in sys.modules)
        try:
            import azureml.core
        except ModuleNotFoundError:
            print("gone")
        import mlmanage_jupyter.core.model  # ours are untouched
    """, tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "gone"


@pytest.mark.parametrize("name", ["Workspace", "Model", "Environment", "Webservice", "ComputeTarget", "Image"])
def test_core_package_gives_azure_top_level_names(name: str) -> None:
    import mlmanage_jupyter.core as core

    assert getattr(core, name).__name__ == name
    with pytest.raises(AttributeError):
        core.NoSuchThing  # noqa: B018
