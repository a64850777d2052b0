"""``azureml.core.workspace`` inside an mlmanage-jupyter service (cloud use raises)."""

from mlmanage_jupyter.server.azure_runtime import Workspace

__all__ = ["Workspace"]
