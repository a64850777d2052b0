"""``azureml.core.run`` inside an mlmanage-jupyter service: ``Run.get_context()`` (offline run)."""

from mlmanage_jupyter.server.azure_runtime import OfflineRun, Run

__all__ = ["OfflineRun", "Run"]
