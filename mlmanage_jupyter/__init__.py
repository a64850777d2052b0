"""mlmanage-jupyter: Azure ML v1's model-management loop from a notebook.

The public Python API uses Azure ML v1's names so that existing notebooks work with an
import change::

    from mlmanage_jupyter import Workspace, Model, Environment, InferenceConfig
    from mlmanage_jupyter import LocalWebservice, Webservice

``%load_ext mlmanage_jupyter`` loads the IPython magics. Heavy modules are imported
lazily so that ``import mlmanage_jupyter`` stays cheap inside scoring containers.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it (imported on first access)
_LAZY = {
    "Workspace": "mlmanage_jupyter.core.workspace",
    "Model": "mlmanage_jupyter.core.model",
    "ModelList": "mlmanage_jupyter.core.model",
    "ModelPackage": "mlmanage_jupyter.core.image",
    "Environment": "mlmanage_jupyter.core.environment",
    "InferenceConfig": "mlmanage_jupyter.core.environment",
    "Image": "mlmanage_jupyter.core.image",
    "ContainerImage": "mlmanage_jupyter.core.image",
    "Webservice": "mlmanage_jupyter.core.webservice",
    "LocalWebservice": "mlmanage_jupyter.core.webservice",
    "DockerWebservice": "mlmanage_jupyter.core.webservice",
    "AciWebservice": "mlmanage_jupyter.core.webservice",
    "AksWebservice": "mlmanage_jupyter.core.webservice",
    "MlManageError": "mlmanage_jupyter.core.errors",
    "WebserviceException": "mlmanage_jupyter.core.errors",
    "Dataset": "mlmanage_jupyter.core.dataset",
    "Datastore": "mlmanage_jupyter.core.datastore",
    "ResourceConfiguration": "mlmanage_jupyter.core.resource_configuration",
}

__all__ = sorted(_LAZY) + ["__version__", "load_ipython_extension", "unload_ipython_extension"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mlmanage_jupyter' has no attribute {name!r}")
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError:
        # Inside a scoring image only the engine's dependencies are installed (no SQLAlchemy,
        # pandas): ``Model`` then is the engine's in-deployment Model, whose get_model_path
        # resolves AZUREML_MODEL_DIR as Azure's does (the core's does the same inside a service).
        if name == "Model":
            from mlmanage_jupyter.server.azure_runtime import Model

            return Model
        raise


def load_ipython_extension(ipython: Any) -> None:
    """Entry point of ``%load_ext mlmanage_jupyter``: registers the magics and installs the
    ``azureml.core`` alias (``mlmanage_jupyter.azureml_alias``; not when the real SDK is
    importable)."""
    # imported here, not at the top: importing the package must not install the alias (opt-in)
    from mlmanage_jupyter import azureml_alias
    from mlmanage_jupyter.magics import load_ipython_extension as _load

    _load(ipython)
    azureml_alias.install()


def unload_ipython_extension(ipython: Any) -> None:
    from mlmanage_jupyter.magics import unload_ipython_extension as _unload

    _unload(ipython)


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Where the prebuilt JupyterLab extension is (``jupyter labextension develop`` reads it)."""
    return [{"src": "labextension", "dest": "mlmanage-jupyter"}]


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    """The Jupyter Server extension lives in :mod:`mlmanage_jupyter.serverext`."""
    return [{"module": "mlmanage_jupyter.serverext"}]
