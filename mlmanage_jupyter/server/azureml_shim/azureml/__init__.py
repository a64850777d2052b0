"""mlmanage-jupyter's stand-in for the parts of the Azure ML SDK that entry scripts use at run
time (see ``mlmanage_jupyter.server.azure_runtime``). Only importable when the real SDK is not."""

MLMANAGE_SHIM = True
