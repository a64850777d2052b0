"""Records: what the stores return and the layers above pass around (plain data, no I/O).

A record is one row of the metadata store as a dataclass (``pk`` is the database key,
``id`` Azure's ``"name:version"``). The facade classes (``Model``, ``Image``,
``Webservice``) wrap one record each; orchestration functions take and return records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlmanage_jupyter.core.environment import Environment

#: the folder of an image context holding the models (Azure's name for it)
MODELS_DIRNAME = "azureml-models"


class Framework:
    """Azure ML's model framework names (``Model.Framework``)."""

    SCIKITLEARN = "ScikitLearn"
    ONNX = "Onnx"
    TENSORFLOW = "TensorFlow"
    PYTORCH = "PyTorch"
    CUSTOM = "Custom"


@dataclass(frozen=True)
class ModelFile:
    """One file of a registered model: posix ``path`` below the model root, ``sha256``, ``size`` (bytes)."""

    path: str
    sha256: str
    size: int


@dataclass
class ModelRecord:
    """A registered model version. ``sha256`` is the file's, or the folder manifest's
    (sha256 over sorted ``path\\0sha256\\0size`` lines); ``size`` in bytes, all files;
    ``created_time`` UTC ISO-8601."""

    pk: int
    name: str
    version: int
    description: str | None
    model_framework: str | None
    model_framework_version: str | None
    tags: dict[str, str]
    properties: dict[str, str]
    root_name: str
    is_folder: bool
    sha256: str
    size: int
    file_count: int
    created_time: str

    @property
    def id(self) -> str:
        return f"{self.name}:{self.version}"


@dataclass
class ImageRecord:
    """A registered image version: a build context folder (``context_path``, layout in
    CONTRIBUTING.md) described by ``spec`` (the ``image.json`` dict); ``docker_image`` is the
    Docker tag once a target built it."""

    pk: int
    name: str
    version: int
    content_hash: str
    description: str | None
    tags: dict[str, str]
    spec: dict[str, Any]
    context_path: Path
    docker_image: str | None
    created_time: str

    @property
    def id(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def models(self) -> list[str]:
        """``"name:version"`` of each model in the image."""
        return [f"{m['name']}:{m['version']}" for m in self.spec.get("models", [])]

    @property
    def entry_script(self) -> str:
        """The entry script, relative to the context's ``app/`` folder."""
        return str(self.spec["entry_script"])

    @property
    def environment(self) -> Environment:
        return Environment.from_dict(self.spec.get("environment") or {})

    def model_dir_env(self) -> str:
        """``AZUREML_MODEL_DIR`` relative to the context: ``azureml-models/<name>/<version>``
        with one model, ``azureml-models`` with several (Azure's layout)."""
        ms = self.spec.get("models", [])
        if len(ms) == 1:
            return f"{MODELS_DIRNAME}/{ms[0]['name']}/{ms[0]['version']}"
        return MODELS_DIRNAME


@dataclass
class ServiceRecord:
    """A deployed service as recorded: ``config`` is the deployment configuration as a dict
    (``DeploymentConfig.to_dict()``), ``runtime`` what the target needs to find it again
    (pid and port, container id, namespace), ``keys`` ``{"primaryKey", "secondaryKey"}``
    (empty when auth is off), ``models`` ``"name:version"`` sorted by name, ``state`` the
    last known of Azure's four states."""

    name: str
    compute_type: str
    state: str
    error: str | None
    image_pk: int | None
    config: dict[str, Any]
    runtime: dict[str, Any]
    keys: dict[str, str]
    scoring_uri: str | None
    swagger_uri: str | None
    created_time: str
    updated_time: str
    models: list[str] = field(default_factory=list)

    @property
    def auth_enabled(self) -> bool:
        return bool(self.config.get("auth_enabled"))

    @property
    def scoring_timeout_ms(self) -> int:
        return int(self.config.get("scoring_timeout_ms") or 60_000)


@dataclass
class ScoringResponse:
    """One call to a scoring endpoint: ``status_code`` (HTTP; 0 = unreachable),
    ``latency_ms`` (client-side round trip), ``body`` (decoded JSON or text), ``request_id``."""

    status_code: int
    latency_ms: float
    body: Any
    request_id: str | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300
