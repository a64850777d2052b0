"""``azureml.monitoring.modeldatacollector`` (the module Azure's reference documents the class in)."""

from mlmanage_jupyter.server.collector import ScriptDataCollector as ModelDataCollector

__all__ = ["ModelDataCollector"]
