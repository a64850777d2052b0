"""Azure ML v1's ``Model`` as users import it: a thin wrapper of a
:class:`~mlmanage_jupyter.core.entities.records.ModelRecord` over ``core/registry.py``
(files and versions), ``core/deployment.py`` (``deploy``), ``core/images.py``
(``package``) and ``core/profiling.py`` (``profile``)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from html import escape
from typing import TYPE_CHECKING, Any, ClassVar

from mlmanage_jupyter.core import cleanup, profiling, registry
from mlmanage_jupyter.core import dataset as datasets_
from mlmanage_jupyter.core import resource_configuration as resource_configuration_
from mlmanage_jupyter.core.compute import apply_deployment_target
from mlmanage_jupyter.core.entities.lists import ResourceList, format_bytes
from mlmanage_jupyter.core.entities.names import check_str_dict
from mlmanage_jupyter.core.entities.records import Framework, ModelRecord
from mlmanage_jupyter.core.environment import InferenceConfig
from mlmanage_jupyter.core.errors import ValidationError
from mlmanage_jupyter.core.image import Image, ModelPackage, model_record_of
from mlmanage_jupyter.core.profiling import ModelProfile
from mlmanage_jupyter.core.registry import LIST_COLUMNS
from mlmanage_jupyter.core.resource_configuration import ResourceConfiguration
from mlmanage_jupyter.core.targets.base import DeploymentConfig
from mlmanage_jupyter.core.versioned import Versioned, WorkspaceLike
from mlmanage_jupyter.core.webservice import Webservice
from mlmanage_jupyter.core.workspace import resolve_workspace

if TYPE_CHECKING:
    import pandas as pd


#: model properties that hold register()'s datasets and resource configuration (hidden from ``properties``)
_INTERNAL_PREFIX = "mlmanage."


class Model(Versioned[ModelRecord]):
    """A registered model version (Azure ML v1: ``azureml.core.Model``).

    ``Model(workspace, name, version=None)`` gets a version (the latest when omitted), or
    ``Model(workspace, id="name:version")``.

    Attributes:
        name, version (int), id (``"name:version"``), tags (dict[str, str]), properties
        (dict[str, str]), description, model_framework, model_framework_version,
        created_time (UTC ISO-8601), sha256, size (bytes), file_count, root_name, is_folder,
        workspace, record (the :class:`ModelRecord`), sample_input_dataset /
        sample_output_dataset (TabularDataset or None), datasets (``{scenario: [Dataset]}``),
        resource_configuration (ResourceConfiguration or None).

    Raises:
        ModelNotFoundError: no such name or version.
    """

    Framework = Framework

    _kind = "Model"
    _get = staticmethod(registry.get)

    # the record's fields, read-only (changed through add_tags/update/...; name, version,
    # description, tags, created_time, id: Versioned)
    @property
    def model_framework(self) -> str | None:
        return self.record.model_framework

    @property
    def model_framework_version(self) -> str | None:
        return self.record.model_framework_version

    @property
    def properties(self) -> dict[str, str]:
        return {k: v for k, v in self.record.properties.items() if not k.startswith(_INTERNAL_PREFIX)}

    @property
    def sample_input_dataset(self) -> datasets_.TabularDataset | None:
        """The ``sample_input_dataset`` given to ``Model.register`` (None when not given)."""
        return datasets_.model_sample_dataset(self.workspace, self.record.properties, "input")

    @property
    def sample_output_dataset(self) -> datasets_.TabularDataset | None:
        """The ``sample_output_dataset`` given to ``Model.register`` (None when not given)."""
        return datasets_.model_sample_dataset(self.workspace, self.record.properties, "output")

    @property
    def datasets(self) -> dict[str, list[datasets_.AbstractDataset]]:
        """``{scenario: [dataset, ...]}`` from ``Model.register(datasets=[(scenario, ds)])``."""
        return datasets_.model_datasets(self.workspace, self.record.properties)

    @property
    def resource_configuration(self) -> ResourceConfiguration | None:
        """The ``resource_configuration`` given to ``Model.register`` (None when not given)."""
        return resource_configuration_.from_properties(self.record.properties)

    @property
    def root_name(self) -> str:
        return self.record.root_name

    @property
    def is_folder(self) -> bool:
        return self.record.is_folder

    @property
    def sha256(self) -> str:
        return self.record.sha256

    @property
    def size(self) -> int:
        return self.record.size

    @property
    def file_count(self) -> int:
        return self.record.file_count

    # ------------------------------------------------------------------ register / list
    @staticmethod
    def register(
        workspace: WorkspaceLike,
        model_path: str | os.PathLike[str],
        model_name: str,
        tags: dict[str, str] | None = None,
        properties: dict[str, str] | None = None,
        description: str | None = None,
        model_framework: str | None = None,
        model_framework_version: str | None = None,
        child_paths: Any = None,
        sample_input_dataset: datasets_.TabularDataset | None = None,
        sample_output_dataset: datasets_.TabularDataset | None = None,
        resource_configuration: ResourceConfiguration | None = None,
        datasets: list[tuple[str, datasets_.AbstractDataset]] | None = None,
        *,
        progress: Any = None,
    ) -> Model:
        """Register a file or a folder as the next version of ``model_name``; see
        :func:`mlmanage_jupyter.core.registry.register` (arguments, errors).

        Azure's ``sample_input_dataset`` / ``sample_output_dataset`` (TabularDataset: the
        no-code deployment's swagger and request parsing come from them),
        ``resource_configuration`` (the no-code deployment's default size) and ``datasets``
        (``[(scenario, Dataset)]``) are kept with the version (datasets are saved in the
        workspace first) and read back as attributes of the same names. ``child_paths`` is
        not supported (ValidationError: register the folder). Raises ValidationError naming
        an argument of the wrong type; nothing is registered then."""
        if child_paths is not None:
            raise ValidationError("child_paths is not supported: register the folder, or a folder holding only those files")
        ws = resolve_workspace(workspace)
        extra = resource_configuration_.to_properties(resource_configuration)
        if any(x is not None for x in (sample_input_dataset, sample_output_dataset, datasets)):
            extra.update(datasets_.model_dataset_properties(ws, sample_input_dataset, sample_output_dataset, datasets))
        if extra:
            clash = sorted(k for k in (properties or {}) if k.startswith(_INTERNAL_PREFIX))
            if clash:
                raise ValidationError(f"property names starting with {_INTERNAL_PREFIX!r} are reserved: rename {clash}")
            properties = {**(properties or {}), **extra}
        rec = registry.register(ws, model_path, model_name, tags, properties, description, model_framework,
                                model_framework_version, progress=progress)
        return Model(ws, _record=rec)

    @staticmethod
    def register_object(
        workspace: WorkspaceLike,
        obj: Any,
        model_name: str,
        *,
        file_name: str | None = None,
        serializer: str = "joblib",
        tags: dict[str, str] | None = None,
        properties: dict[str, str] | None = None,
        description: str | None = None,
        model_framework: str | None = None,
        model_framework_version: str | None = None,
    ) -> Model:
        """Serialize a live Python object (a fitted estimator, a pipeline, ...) and register it;
        ``serializer`` is ``"joblib"`` (default), ``"skops"`` or ``"pickle"``. See
        :func:`mlmanage_jupyter.core.registry.register_object` (file names, framework detection,
        errors)."""
        ws = resolve_workspace(workspace)
        rec = registry.register_object(
            ws, obj, model_name, file_name=file_name, serializer=serializer, tags=tags, properties=properties,
            description=description, model_framework=model_framework, model_framework_version=model_framework_version,
        )  # fmt: skip
        return Model(ws, _record=rec)

    @staticmethod
    def list(
        workspace: WorkspaceLike,
        name: str | None = None,
        tags: Sequence[Any] | None = None,
        properties: Sequence[Any] | None = None,
        latest: bool = False,
    ) -> ModelList:
        """Models in the workspace, newest first (by name, then version descending).

        ``tags``/``properties`` use Azure's filter forms: ``["key"]`` (has the key) or
        ``[["key", "value"]]`` (has it with that value); all filters must match.
        ``latest=True`` keeps only the highest version of each name (after filtering).
        Returns a :class:`ModelList` (a list of Model with ``to_dataframe()``).
        """
        ws = resolve_workspace(workspace)
        return ModelList(Model(ws, _record=r) for r in registry.list_models(ws, name, tags, properties, latest))

    # ------------------------------------------------------------------ files
    def get_files(self) -> list[dict[str, Any]]:
        """The files of this version: ``[{"path", "sha256", "size"}]`` (size in bytes)."""
        return [{"path": f.path, "sha256": f.sha256, "size": f.size} for f in registry.get_files(self.workspace, self.record)]

    def download(self, target_dir: str | os.PathLike[str] = ".", exist_ok: bool = False, exists_ok: bool | None = None) -> str:
        """Copy the model's files to ``target_dir`` and return the path of the file or folder;
        see :func:`mlmanage_jupyter.core.registry.download`. ``exists_ok`` is Azure's older
        spelling of ``exist_ok``."""
        if exists_ok is not None:
            exist_ok = exists_ok
        return registry.download(self.workspace, self.record, target_dir, exist_ok)

    @staticmethod
    def get_model_path(model_name: str, version: int | None = None, _workspace: WorkspaceLike = None) -> str:
        """Path of a registered model's file or folder, inside a deployment or from the
        workspace; see :func:`mlmanage_jupyter.core.registry.get_model_path`."""
        return registry.get_model_path(model_name, version, _workspace)

    # ------------------------------------------------------------------ deploy / package / profile
    @staticmethod
    def deploy(
        workspace: WorkspaceLike,
        name: str,
        models: Sequence[Model | str],
        inference_config: InferenceConfig | None = None,
        deployment_config: DeploymentConfig | None = None,
        deployment_target: Any = None,
        overwrite: bool = False,
        show_output: bool = False,
    ) -> Webservice:
        """Deploy ``models`` as web service ``name`` (Azure ML v1's ``Model.deploy``).

        Returns a :class:`Webservice` that is Transitioning — call
        ``wait_for_deployment(show_output=True)``. ``deployment_config`` picks the target;
        ``deployment_target`` (an attached ``ComputeTarget``, see ``core/compute.py``) gives
        a Kubernetes configuration its kubeconfig, context and namespace. See
        :func:`mlmanage_jupyter.core.deployment.deploy` for errors.
        """
        deployment_config = apply_deployment_target(deployment_config, deployment_target)
        return Webservice.deploy_from_models(workspace, name, models, inference_config, deployment_config, overwrite,
                                             show_output=show_output)

    @staticmethod
    def package(
        workspace: WorkspaceLike,
        models: Sequence[Model],
        inference_config: InferenceConfig,
        generate_dockerfile: bool = False,
        image_name: str | None = None,
        image_label: str | None = None,
    ) -> ModelPackage:
        """Azure's ``Model.package``: a :class:`ModelPackage` of an :class:`Image` of ``models`` +
        ``inference_config``, without deploying it (``package.image``; the image's attributes
        are readable on the package too). ``package.pull()`` builds it into the local Docker
        Engine; ``package.save(path)`` writes the Dockerfile and build context (with
        ``generate_dockerfile=True``, as Azure's). ``image_name`` defaults to the first model's
        name, lowercased."""
        if not models:
            raise ValidationError("Model.package needs at least one model")
        name = image_name or re.sub(r"[^a-z0-9._-]", "-", model_record_of(models[0]).name.lower())
        img = Image.create(workspace, name, models, inference_config, tags={"label": image_label} if image_label else None)
        return ModelPackage(img, generate_dockerfile)

    @staticmethod
    def profile(
        workspace: WorkspaceLike,
        profile_name: str,
        models: Sequence[Model | str],
        inference_config: InferenceConfig,
        input_dataset: Any,
        cpu: float | None = None,
        memory_in_gb: float | None = None,
        description: str | None = None,
        **kwargs: Any,
    ) -> ModelProfile:
        """Azure ML v1's ``Model.profile``: deploy a temporary local service, load-test it with
        ``input_dataset`` and delete it; see :func:`mlmanage_jupyter.core.profiling.profile_models`
        (``concurrency``, ``duration_s``, ``show_output``)."""
        ws = resolve_workspace(workspace)
        recs = [m if isinstance(m, str) else model_record_of(m) for m in models]
        return profiling.profile_models(ws, profile_name, recs, inference_config, input_dataset, cpu, memory_in_gb,
                                        description, **kwargs)

    # ------------------------------------------------------------------ tags
    def add_tags(self, tags: dict[str, str]) -> None:
        """Add or overwrite tags (dict[str, str])."""
        registry.set_tags(self.workspace, self.record, {**self.tags, **check_str_dict(tags, "tags")})

    def remove_tags(self, tags: Iterable[str] | str) -> None:
        """Remove tags by key; missing keys are ignored (as in Azure)."""
        keys = [tags] if isinstance(tags, str) else list(tags)
        registry.set_tags(self.workspace, self.record, {k: v for k, v in self.tags.items() if k not in keys})

    def add_properties(self, properties: dict[str, str]) -> None:
        """Add properties; write-once, as in Azure (see :func:`registry.add_properties`)."""
        registry.add_properties(self.workspace, self.record, properties)

    def update(self, description: str | None = None, tags: dict[str, str] | None = None) -> None:
        """Azure's ``Model.update``: replace the description and/or the tags."""
        if tags is not None:
            registry.set_tags(self.workspace, self.record, tags)
        if description is not None:
            registry.set_description(self.workspace, self.record, description)

    # ------------------------------------------------------------------ delete
    def users(self) -> dict[str, list[str]]:
        """What uses this version: ``{"images": ["name:version"], "services": ["name"]}``."""
        return registry.users(self.workspace, self.record)

    def delete(self) -> None:
        """Delete this version and the images built from it (their build contexts and Docker
        images too); its artifacts go on the next garbage collection.

        Raises InUseError naming the services that use it (Azure refuses while a deployment
        uses the model); nothing is deleted then."""
        cleanup.delete_model(self.workspace, self.record)

    # ------------------------------------------------------------------ display
    def serialize(self) -> dict[str, Any]:
        """A JSON-ready dict (Azure's ``Model.serialize``)."""
        return {
            "id": self.id,
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "tags": self.tags,
            "properties": self.properties,
            "modelFramework": self.model_framework,
            "modelFrameworkVersion": self.model_framework_version,
            "createdTime": self.created_time,
            "sha256": self.sha256,
            "size": self.size,
            "fileCount": self.file_count,
            "rootName": self.root_name,
            "isFolder": self.is_folder,
            # Azure's keys for what Model.register(sample_*_dataset=, resource_configuration=, datasets=) kept
            "sampleInputDatasetId": self.record.properties.get(datasets_.PROP_SAMPLE_INPUT),
            "sampleOutputDatasetId": self.record.properties.get(datasets_.PROP_SAMPLE_OUTPUT),
            "resourceConfiguration": rc.serialize() if (rc := self.resource_configuration) is not None else None,
            "datasets": [{"name": scenario, "ids": [d.id for d in ds]} for scenario, ds in self.datasets.items()],
        }

    def __repr__(self) -> str:
        return f"Model(workspace={self.workspace.name!r}, name={self.name!r}, id={self.id!r}, version={self.version}, tags={self.tags})"

    def _repr_html_(self) -> str:
        rows = [
            ("version", self.version),
            ("framework", " ".join(x for x in (self.model_framework, self.model_framework_version) if x) or "—"),
            ("description", self.description or "—"),
            ("tags", ", ".join(f"{k}={v}" for k, v in self.tags.items()) or "—"),
            ("properties", ", ".join(f"{k}={v}" for k, v in self.properties.items()) or "—"),
            ("files", f"{self.file_count} ({format_bytes(self.size)})" + (" folder" if self.is_folder else "")),
            ("sha256", f"<code>{self.sha256[:16]}…</code>"),
            ("created", self.created_time),
        ]
        body = "".join(
            f"<tr><th style='text-align:left;padding-right:1em'>{escape(k)}</th><td style='text-align:left'>"
            f"{v if k == 'sha256' else escape(str(v))}</td></tr>"
            for k, v in rows
        )
        return f"<div><b>Model</b> <code>{escape(self.id)}</code><table>{body}</table></div>"


class ModelList(ResourceList[Model]):
    """A list of :class:`Model` that renders as a table in notebooks.

    ``to_dataframe()`` columns: name, version, tags, properties, framework,
    framework_version, description, files, size_bytes, sha256, created_time.
    """

    columns: ClassVar[list[str]] = LIST_COLUMNS
    empty_text: ClassVar[str] = "no models"

    def row(self, m: Model) -> dict[str, Any]:
        return {
            "name": m.name,
            "version": m.version,
            "tags": m.tags,
            "properties": m.properties,
            "framework": m.model_framework,
            "framework_version": m.model_framework_version,
            "description": m.description,
            "files": m.file_count,
            "size_bytes": m.size,
            "sha256": m.sha256,
            "created_time": m.created_time,
        }

    def html_frame(self, df: pd.DataFrame) -> str:
        df["tags"] = df["tags"].map(lambda t: ", ".join(f"{k}={v}" for k, v in t.items()))
        df["size"] = df["size_bytes"].map(format_bytes)
        df["sha256"] = df["sha256"].str[:12]
        cols = ["name", "version", "tags", "framework", "files", "size", "sha256", "created_time"]
        return df[cols].to_html(index=False, escape=True)


def models_table(workspace: WorkspaceLike = None, name: str | None = None, latest: bool = False) -> pd.DataFrame:
    """Shortcut: ``Model.list(...).to_dataframe()``."""
    return Model.list(workspace, name=name, latest=latest).to_dataframe()


def collect_garbage(workspace: WorkspaceLike = None) -> dict[str, int]:
    """Unreferenced artifact objects, image build contexts and temporary folders; see
    :func:`mlmanage_jupyter.core.cleanup.collect_garbage`."""
    return cleanup.collect_garbage(resolve_workspace(workspace))


__all__ = ["Model", "ModelList", "ModelPackage", "collect_garbage", "models_table"]
