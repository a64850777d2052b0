"""``azureml.monitoring`` inside an mlmanage-jupyter service: ``ModelDataCollector`` writes to the
service's data-collection store (read with ``Webservice.get_collected_data()``)."""

from mlmanage_jupyter.server.collector import ScriptDataCollector as ModelDataCollector

__all__ = ["ModelDataCollector"]
