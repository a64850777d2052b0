"""``azureml.contrib.services.aml_response``: ``AMLResponse`` (a Werkzeug response)."""

from mlmanage_jupyter.server.azure_runtime import AMLResponse

__all__ = ["AMLResponse"]
