"""Core engine: pure Python, no Jupyter imports (tests/core/test_layering.py proves it).

The package mirrors ``azureml.core``: its modules carry Azure ML v1's module names
(``core.webservice``, ``core.model``, ``core.environment``, ``core.conda_dependencies``,
``core.compute``, ``core.image``, ``core.resource_configuration``, ``core.workspace``,
``core.dataset``, ``core.datastore``) and
the package itself gives ``azureml.core``'s top-level names (``from
mlmanage_jupyter.core import Workspace, Model, Environment, ComputeTarget, VERSION``),
imported on first access so that importing one submodule stays cheap.
``mlmanage_jupyter.azureml_alias`` maps ``azureml.core.*`` onto these modules.
"""

from __future__ import annotations

import importlib
from typing import Any

from mlmanage_jupyter import __version__ as VERSION  # Azure's azureml.core.VERSION is the SDK's version

# azureml.core's top-level names -> our module defining each (imported on first access)
_LAZY = {
    "Workspace": "workspace",
    "Model": "model",
    "Environment": "environment",
    "InferenceConfig": "environment",
    "Image": "image",
    "Webservice": "webservice",
    "ComputeTarget": "compute",
    "ResourceConfiguration": "resource_configuration",
    "CondaDependencies": "conda_dependencies",
    "Dataset": "dataset",
    "Datastore": "datastore",
}

__all__ = sorted(_LAZY) + ["VERSION"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mlmanage_jupyter.core' has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
