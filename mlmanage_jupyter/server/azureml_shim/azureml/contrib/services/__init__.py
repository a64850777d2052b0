"""``azureml.contrib.services`` inside an mlmanage-jupyter service: ``aml_request``, ``aml_response``."""
