"""Azure ML v1's ``Image`` (``ContainerImage``) as users import it: a thin wrapper of an
:class:`~mlmanage_jupyter.core.entities.records.ImageRecord` over ``core/images.py``."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any, ClassVar

from mlmanage_jupyter.core import images
from mlmanage_jupyter.core.entities.lists import ResourceList
from mlmanage_jupyter.core.entities.records import ImageRecord, ModelRecord
from mlmanage_jupyter.core.environment import Environment, InferenceConfig
from mlmanage_jupyter.core.errors import ValidationError
from mlmanage_jupyter.core.versioned import Versioned, WorkspaceLike
from mlmanage_jupyter.core.workspace import resolve_workspace


def model_record_of(model: Any) -> ModelRecord:
    """The record of a ``Model`` (anything with a ``record`` ModelRecord) or a record."""
    rec = model if isinstance(model, ModelRecord) else getattr(model, "record", None)
    if not isinstance(rec, ModelRecord):
        raise ValidationError("models must be Model objects (use Model(ws, name, version))")
    return rec


class Image(Versioned[ImageRecord]):
    """A registered image (Azure ML v1's ``Image`` / ``ContainerImage``).

    ``Image(workspace, name, version=None)`` gets a version (latest when omitted), or
    ``Image(workspace, id="name:version")``. Raises NotFoundError when there is none.

    Attributes:
        name, version (int), id (``"name:version"``), content_hash (sha256 hex), tags,
        description, created_time, context_path (Path of the build context), spec (the
        ``image.json`` dict), models (list of ``"name:version"``), entry_script (relative to
        ``app/``), environment (:class:`Environment`), docker_image (tag once built, or None),
        record (the :class:`ImageRecord`).
    """

    _kind = "Image"
    _get = staticmethod(images.get)

    # the record's fields, read-only (name, version, description, tags, created_time, id: Versioned)
    @property
    def content_hash(self) -> str:
        return self.record.content_hash

    @property
    def spec(self) -> dict[str, Any]:
        return self.record.spec

    @property
    def context_path(self) -> Path:
        return self.record.context_path

    @property
    def docker_image(self) -> str | None:
        return self.record.docker_image

    @property
    def models(self) -> list[str]:
        return self.record.models

    @property
    def entry_script(self) -> str:
        return self.record.entry_script

    @property
    def environment(self) -> Environment:
        return self.record.environment

    def model_dir_env(self) -> str:
        """``AZUREML_MODEL_DIR`` relative to the context (see ImageRecord.model_dir_env)."""
        return self.record.model_dir_env()

    @staticmethod
    def create(
        workspace: WorkspaceLike,
        name: str,
        models: Sequence[Any],
        inference_config: InferenceConfig,
        tags: dict[str, str] | None = None,
        description: str | None = None,
    ) -> Image:
        """Build the context for ``models`` (``Model`` objects) + ``inference_config`` and
        register it as the next version of ``name`` — or return the existing version with the
        same content hash. See :func:`mlmanage_jupyter.core.images.create_image` for errors."""
        ws = resolve_workspace(workspace)
        recs = [model_record_of(m) for m in models]
        return Image(ws, _record=images.create_image(ws, name, recs, inference_config, tags, description))

    @staticmethod
    def list(workspace: WorkspaceLike, name: str | None = None, tags: Sequence[Any] | None = None) -> ImageList:
        """Images, by name then version descending. ``tags`` as in ``Model.list``."""
        ws = resolve_workspace(workspace)
        return ImageList(Image(ws, _record=r) for r in images.list_images(ws, name, tags))

    def services(self) -> list[str]:
        """Names of the services running this image."""
        return images.services_of(self.workspace, self.record)

    def add_tags(self, tags: dict[str, str]) -> None:
        """Add or overwrite tags (dict[str, str])."""
        images.set_tags(self.workspace, self.record, {**self.tags, **tags} if isinstance(tags, dict) else tags)

    def remove_tags(self, keys: Sequence[str] | str) -> None:
        """Remove tags by key; missing keys are ignored."""
        keys = [keys] if isinstance(keys, str) else list(keys)
        images.set_tags(self.workspace, self.record, {k: v for k, v in self.tags.items() if k not in keys})

    def set_docker_image(self, tag: str | None) -> None:
        """Record the Docker image tag built from this context (used by the docker target)."""
        images.set_docker_image(self.workspace, self.record, tag)

    def delete(self) -> None:
        """Delete this image version. Raises InUseError while a service runs it."""
        images.delete_image(self.workspace, self.record)

    def save(self, path: str | os.PathLike[str]) -> str:
        """Export the build context to ``path`` (must not exist), with a Dockerfile when the
        docker support is installed, so it can be built by any CI. Returns the path."""
        return images.export_context(self.workspace, self.record, path)

    def serialize(self) -> dict[str, Any]:
        return images.to_dict(self.record)

    def __repr__(self) -> str:
        return f"Image(name={self.name!r}, version={self.version}, models={self.models}, hash={self.content_hash[:12]})"

    def _repr_html_(self) -> str:
        return (
            f"<div><b>Image</b> <code>{escape(self.id)}</code> — models {escape(', '.join(self.models))}, "
            f"entry <code>{escape(self.entry_script)}</code>, hash <code>{self.content_hash[:12]}</code>"
            f"{', docker <code>' + escape(self.docker_image) + '</code>' if self.docker_image else ''}</div>"
        )


class ImageList(ResourceList[Image]):
    """A list of :class:`Image`; ``to_dataframe()`` columns: name, version, models, entry_script,
    content_hash, docker_image, tags, created_time."""

    columns: ClassVar[list[str]] = ["name", "version", "models", "entry_script", "content_hash", "docker_image", "tags", "created_time"]
    empty_text: ClassVar[str] = "no images"

    def row(self, i: Image) -> dict[str, Any]:
        return {
            "name": i.name,
            "version": i.version,
            "models": ", ".join(i.models),
            "entry_script": i.entry_script,
            "content_hash": i.content_hash[:12],
            "docker_image": i.docker_image,
            "tags": i.tags,
            "created_time": i.created_time,
        }


@dataclass(frozen=True)
class ContainerRegistry:
    """Azure's ``ContainerRegistry`` (address, username, password). Here packages need no
    registry (the Dockerfile's base image is a local one), so every field is None."""

    address: str | None = None
    username: str | None = None
    password: str | None = None


class ModelPackage:
    """Azure ML v1's ``ModelPackage`` from ``Model.package(..., generate_dockerfile=True)``:
    a Dockerfile and build context to build elsewhere (nothing is built here).

    ``save(path)`` writes the context with its ``Dockerfile`` to ``path``;
    ``get_container_registry()`` gives an empty :class:`ContainerRegistry` (no registry is
    involved); ``wait_for_creation()`` returns at once (the context exists when this object
    does). Source: Azure ML v1's "Package models" (``how-to-deploy-package-models.md``).
    """

    def __init__(self, image: Image) -> None:
        self.image = image
        self.generate_dockerfile = True

    @property
    def location(self) -> str:
        """Where the build context is (a folder, not a registry address)."""
        return str(self.image.context_path)

    def wait_for_creation(self, show_output: bool = False) -> None:
        if show_output:
            print(f"package {self.image.id}: Succeeded", flush=True)

    def get_container_registry(self) -> ContainerRegistry:
        return ContainerRegistry()

    def save(self, output_directory: str | os.PathLike[str]) -> str:
        """Write the build context with its Dockerfile into ``output_directory`` (must not
        exist); returns the path. Build it with ``docker build <path>``."""
        return self.image.save(output_directory)

    def serialize(self) -> dict[str, Any]:
        return {"image": self.image.serialize(), "generateDockerfile": True, "location": self.location}

    def __repr__(self) -> str:
        return f"ModelPackage(image={self.image.id!r}, location={self.location!r})"

