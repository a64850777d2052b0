"""The scoring engine: runs an Azure ML v1 entry script (``init()`` / ``run(data)``) as a web service.

It runs inside every deployment (a local process, a container, a pod) and imports nothing
from ``mlmanage_jupyter.core``; its dependencies are the ``serve`` extra (starlette, uvicorn,
prometheus-client, inference-schema, orjson, werkzeug). The ``azureml`` names entry scripts import
(``Model.get_model_path``, ``rawhttp``/``AMLRequest``/``AMLResponse``, ``ModelDataCollector``,
``Run.get_context``) come from :mod:`.azure_runtime` when the Azure SDK is not installed.

``python -m mlmanage_jupyter.server`` starts the supervisor (:mod:`.supervisor`), which opens
ONE listening socket and runs ``MLMANAGE_WORKERS`` (default: the usable cores) worker processes (:mod:`.worker`) that
accept on it. Routes (compatible with ``azureml-inference-server-http``):

* ``GET /``: liveness, ``Healthy``;
* ``POST /score``: calls ``run()`` (raw JSON string when undecorated; keyword arguments
  converted by the ``inference_schema`` decorators when decorated, as Azure does); GET and
  OPTIONS too for ``@rawhttp`` scripts, which get the whole request;
* ``GET /swagger.json``: OpenAPI 3 from the decorators' samples (no auth);
* ``GET /health/ready``: 200 once ``init()`` succeeded;
* ``GET /metrics``: Prometheus text format.

Every error answers ``{"error": {"code": str, "message": str}}``.

Configuration: environment variables only (see CONTRIBUTING.md and :mod:`.config`).
"""
