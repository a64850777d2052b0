"""``azureml.contrib.services.aml_request``: ``AMLRequest`` (a Werkzeug request) and ``@rawhttp``."""

from mlmanage_jupyter.server.azure_runtime import AMLRequest, rawhttp

__all__ = ["AMLRequest", "rawhttp"]
