"""``azureml.contrib`` inside an mlmanage-jupyter service."""
