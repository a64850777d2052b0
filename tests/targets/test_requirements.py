"""What an image installs for an Azure-style Environment (core/targets/docker_requirements.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlmanage_jupyter.core.environment import Environment
from mlmanage_jupyter.core.targets.base import ImageSpec
from mlmanage_jupyter.core.targets.docker_requirements import drop_azure_sdk, user_requirements


def _spec(tmp_path: Path, env: Environment) -> ImageSpec:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "score.py").write_text("def init():\n    pass\n\ndef run(data):\n    return data\n")
    return ImageSpec("svc", 1, "0" * 64, tmp_path, "score.py", env, ())


def test_azure_sdk_packages_are_left_out_with_one_warning(tmp_path: Path) -> None:
    # Azure's v1 docs: an inference Environment must list azureml-defaults (CondaDependencies
    # pip_packages=["azureml-defaults", ...]); inside our images the engine provides azureml.*
    env = Environment("azure-style")
    env.pip_requirements = ["azureml-defaults>=1.0.45", "scikit-learn==1.5.0", "azureml-monitoring", "azureml_core"]
    with pytest.warns(UserWarning, match=r"not installing azureml-defaults, azureml-monitoring, azureml_core"):
        reqs = user_requirements(_spec(tmp_path, env))
    assert reqs == ["scikit-learn==1.5.0"]


def test_other_packages_are_kept_without_warning(recwarn: pytest.WarningsRecorder) -> None:
    reqs = ["numpy>=1.24", "azure-storage-blob==12.19.0", "inference-schema[numpy-support]", "azuremlfoo"]
    assert drop_azure_sdk(reqs) == reqs
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]
