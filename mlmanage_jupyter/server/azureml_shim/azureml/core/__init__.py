"""``azureml.core`` inside an mlmanage-jupyter service (see ``mlmanage_jupyter.server.azure_runtime``)."""

from mlmanage_jupyter.server.azure_runtime import (
    VERSION,
    Dataset,
    Datastore,
    Environment,
    Experiment,
    Model,
    Run,
    Workspace,
)

__all__ = ["VERSION", "Datastore", "Dataset", "Environment", "Experiment", "Model", "Run", "Workspace"]
