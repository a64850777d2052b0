"""``azureml.core.model`` inside an mlmanage-jupyter service: ``Model.get_model_path``."""

from mlmanage_jupyter.server.azure_runtime import Model

__all__ = ["Model"]
