"""Azure ML v1's ``Image`` (``ContainerImage``) as users import it: a thin wrapper of an
:class:`~mlmanage_jupyter.core.entities.records.ImageRecord` over ``core/images.py``.

The image era of Azure's v1 SDK (``ContainerImage.image_configuration(...)``,
``Image.create(ws, name, models, image_config)``, ``wait_for_creation``, ``creation_state``,
``image_location``, ``Webservice.deploy_from_image``) maps onto the same images as
``Model.deploy``: a :class:`ContainerImageConfig` becomes an :class:`InferenceConfig`
(:meth:`ContainerImageConfig.inference_config`) and the rest is the one image/deployment path.
Source of the API: Azure ML v1 ``azureml.core.image`` (``Image``, ``ContainerImage``) and the
image-era notebooks of Azure/MachineLearningNotebooks.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any, ClassVar

from mlmanage_jupyter.core import images
from mlmanage_jupyter.core.entities.lists import ResourceList
from mlmanage_jupyter.core.entities.names import check_str_dict, match_filter, parse_filter, split_id
from mlmanage_jupyter.core.entities.records import ImageRecord, ModelRecord
from mlmanage_jupyter.core.environment import Environment, InferenceConfig, check_entry_script
from mlmanage_jupyter.core.errors import NotFoundError, ValidationError, WebserviceException
from mlmanage_jupyter.core.versioned import Versioned, WorkspaceLike
from mlmanage_jupyter.core.workspace import Workspace, resolve_workspace


def model_record_of(model: Any) -> ModelRecord:
    """The record of a ``Model`` (anything with a ``record`` ModelRecord) or a record."""
    rec = model if isinstance(model, ModelRecord) else getattr(model, "record", None)
    if not isinstance(rec, ModelRecord):
        raise ValidationError("models must be Model objects (use Model(ws, name, version))")
    return rec


def _find_filtered(
    ws: Workspace,
    name: str | None,
    id: str | None,
    tags: Sequence[Any] | None,
    properties: Sequence[Any] | None,
    version: int | None,
) -> ImageRecord:
    """The latest version of ``name`` (or the ``id`` version, or ``version``) that has the
    ``tags`` and ``properties`` filters (Azure's ``Image(ws, name, tags=..., properties=...)``).
    Raises NotFoundError naming the filters, ValidationError for a malformed id or filter."""
    name, version = split_id("Image", name, version, id)
    tag_f, prop_f = parse_filter(tags, "tags"), parse_filter(properties, "properties")
    for rec in images.list_images(ws, name):
        if (version is None or rec.version == version) and match_filter(rec.tags, tag_f) \
                and match_filter(dict(rec.spec.get("properties") or {}), prop_f):
            return rec
    raise NotFoundError(
        f"ImageNotFound: no image {name}{':' + str(version) if version else ''} has tags {tags or []!r} "
        f"and properties {properties or []!r} in workspace {ws.path}"
    )


class Image(Versioned[ImageRecord]):
    """A registered image (Azure ML v1's ``Image`` / ``ContainerImage``).

    ``Image(workspace, name=None, id=None, tags=None, properties=None, version=None)`` is
    Azure's constructor, positions included (azureml-core ``azureml.core.image.Image``): the
    latest version of ``name``, or ``version`` of it, or ``id="name:version"`` (``id`` wins
    over ``name``/``version``, as in Azure); ``tags``/``properties`` keep only versions that
    have them (``'key'`` or ``['key', 'value']`` items, as ``Image.list``), the latest of those
    is returned. An int in ``id``'s place is taken as the version (our 0.2 positional
    ``Image(ws, name, version)``) with a DeprecationWarning. Raises NotFoundError when no
    version matches, ValidationError for a malformed id or filter.

    Attributes:
        name, version (int), id (``"name:version"``), content_hash (sha256 hex), tags,
        description, created_time, context_path (Path of the build context), spec (the
        ``image.json`` dict), models (list of :class:`~mlmanage_jupyter.core.model.Model`,
        as Azure's), model_ids (list of ``"name:version"``), entry_script (relative to
        ``app/``), environment (:class:`Environment`), docker_image (tag once built, or None),
        record (the :class:`ImageRecord`).
    """

    _kind = "Image"
    _get = staticmethod(images.get)

    def __init__(
        self,
        workspace: WorkspaceLike,
        name: str | None = None,
        id: str | None = None,
        tags: Sequence[Any] | None = None,
        properties: Sequence[Any] | None = None,
        version: int | None = None,
        *,
        _record: ImageRecord | None = None,
    ) -> None:
        if isinstance(id, int) and not isinstance(id, bool):
            warnings.warn(
                f"Image(ws, name, {id}): the third argument is Azure's id ('name:version'); "
                f"write Image(ws, name, version={id})",
                DeprecationWarning,
                stacklevel=2,
            )
            id, version = None, id if version is None else version
        if _record is None and (tags or properties):
            _record = _find_filtered(resolve_workspace(workspace), name, id, tags, properties, version)
        super().__init__(workspace, name, version, id=id, _record=_record)

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
    def models(self) -> list[Any]:
        """The image's models as :class:`~mlmanage_jupyter.core.model.Model` objects, in image
        order (Azure's ``Image.models``); an empty list for an image made without models.
        Raises NotFoundError when one was deleted since (its files stay in the image)."""
        model_cls = Versioned.class_of("Model")
        return [model_cls(self.workspace, m["name"], version=int(m["version"])) for m in self.spec.get("models", [])]

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
        image_config: ContainerImageConfig | InferenceConfig | None = None,
        tags: dict[str, str] | None = None,
        description: str | None = None,
        *,
        inference_config: InferenceConfig | None = None,
    ) -> Image:
        """Build the context for ``models`` (``Model`` objects; an empty list is allowed, as in
        Azure's "Can be an empty list": the entry script then loads nothing from
        ``AZUREML_MODEL_DIR``, an empty folder) and register it as the next version of
        ``name`` — or return the existing version with the same content hash.

        ``image_config``: Azure's ``ContainerImage.image_configuration(...)`` (its ``tags``,
        ``properties`` and ``description`` go to the image) or an :class:`InferenceConfig`
        (also accepted as ``inference_config=``). The image is ready when this returns
        (``creation_state == "Succeeded"``); a Docker image is built from it when a target
        or :meth:`ModelPackage.pull` needs one. Raises ValidationError for a config of
        another type; see :func:`mlmanage_jupyter.core.images.create_image` for the others."""
        ws = resolve_workspace(workspace)
        recs = [model_record_of(m) for m in models]
        cfg = image_config if image_config is not None else inference_config
        if isinstance(cfg, ContainerImageConfig):
            tags = {**(cfg.tags or {}), **(tags or {})}
            with cfg.inference_config() as ic:
                rec = images.create_image(ws, name, recs, ic, tags, description or cfg.description)
            if cfg.properties:
                images.set_properties(ws, rec, {**rec.spec.get("properties", {}), **cfg.properties})
            return Image(ws, _record=rec)
        if not isinstance(cfg, InferenceConfig):
            raise ValidationError(
                "Image.create needs image_config=ContainerImage.image_configuration(execution_script=..., ...) "
                f"or an InferenceConfig, got {type(cfg).__name__}"
            )
        return Image(ws, _record=images.create_image(ws, name, recs, cfg, tags, description))

    @staticmethod
    def list(
        workspace: WorkspaceLike,
        image_name: str | None = None,
        model_name: str | None = None,
        model_id: str | None = None,
        tags: Sequence[Any] | None = None,
        properties: Sequence[Any] | None = None,
        *,
        name: str | None = None,
    ) -> ImageList:
        """Images, by name then version descending (Azure's ``Image.list`` filters:
        ``image_name`` (or ``name=``), ``model_name``, ``model_id`` (``"name:version"``),
        ``tags`` and ``properties`` as in ``Model.list``: keys or ``[key, value]`` pairs)."""
        ws = resolve_workspace(workspace)
        recs = images.list_images(ws, image_name or name, tags)
        if model_name is not None:
            recs = [r for r in recs if any(m.split(":")[0] == model_name for m in r.models)]
        if model_id is not None:
            recs = [r for r in recs if model_id in r.models]
        if properties:
            f = parse_filter(properties, "properties")
            recs = [r for r in recs if match_filter(dict(r.spec.get("properties") or {}), f)]
        return ImageList(Image(ws, _record=r) for r in recs)

    # ---------------------------------------------------------------- Azure's image-era members
    @property
    def creation_state(self) -> str:
        """``"Succeeded"`` (Azure's states): the build context exists, so the image can run
        on the local target and be built for Docker/Kubernetes; ``"Failed"`` when its build
        context folder has gone (deleted by hand)."""
        return "Succeeded" if (self.context_path / "image.json").is_file() else "Failed"

    @property
    def image_location(self) -> str:
        """Where the image is: its local Docker tag once built (``mlmanage/<name>:<version>-<hex>``,
        as Azure's is a registry address), else its build-context folder."""
        return self.docker_image or str(self.context_path)

    @property
    def image_build_log_uri(self) -> str | None:
        """A ``file://`` URI of the log of the last Docker build of this image (by
        :meth:`ModelPackage.pull`), None before one; read it with :meth:`get_build_log`."""
        log = images.build_log_path(self.record)
        return log.as_uri() if log.is_file() else None

    def get_build_log(self) -> str:
        """The text of the last Docker build log ("" before one)."""
        log = images.build_log_path(self.record)
        return log.read_text() if log.is_file() else ""

    @property
    def image_type(self) -> str:
        return "Docker"

    @property
    def model_ids(self) -> list[str]:
        """``"name:version"`` of each model (Azure's ``Image.model_ids``)."""
        return self.record.models

    @property
    def properties(self) -> dict[str, str]:
        return dict(self.spec.get("properties") or {})

    def add_properties(self, properties: dict[str, str]) -> None:
        """Add properties (dict[str, str]); an existing key is refused, as in Azure."""
        properties = check_str_dict(properties, "properties")
        taken = sorted(set(properties) & set(self.properties))
        if taken:
            raise ValidationError(f"image {self.id} already has properties {taken}; properties can't be changed")
        images.set_properties(self.workspace, self.record, {**self.properties, **properties})

    def update(self, tags: dict[str, str]) -> None:
        """Replace the tags (Azure's ``Image.update(tags)``)."""
        images.set_tags(self.workspace, self.record, tags)

    def wait_for_creation(self, show_output: bool = False) -> None:
        """Azure's ``wait_for_creation``: images are created synchronously here, so this
        returns at once, printing the final state as Azure does. Raises WebserviceException
        when the image is not ``Succeeded`` (its build context is gone)."""
        state = self.creation_state
        if show_output:
            print(state, flush=True)
        if state != "Succeeded":
            raise WebserviceException(
                f"Image creation polling reached non-successful terminal state, current state: {state}\n"
                f"the build context {self.context_path} is missing; create the image again"
            )
        print(f'Image creation operation finished for image {self.id}, operation "{state}"', flush=True)

    def update_creation_state(self) -> None:
        """Re-read the image's record (tags, Docker tag, properties)."""
        self.record = images.get(self.workspace, self.name, self.version)

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
        return f"Image(name={self.name!r}, version={self.version}, models={self.model_ids}, hash={self.content_hash[:12]})"

    def _repr_html_(self) -> str:
        return (
            f"<div><b>Image</b> <code>{escape(self.id)}</code> — models {escape(', '.join(self.model_ids) or 'none')}, "
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
            "models": ", ".join(i.model_ids),
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
    """Azure ML v1's ``ModelPackage`` from ``Model.package(...)``: an :class:`Image` (its
    attributes are readable here too) to build with Docker.

    ``pull()`` builds it into the local Docker Engine (Azure pulls it from the workspace's
    registry; here the image is built where it runs), after which ``location`` is its local
    Docker tag for ``docker run -p 6789:5001 <location>``; before that ``location`` is the
    build-context folder. ``save(path)`` writes the context with its ``Dockerfile``;
    ``get_container_registry()`` gives an empty :class:`ContainerRegistry` (no registry is
    involved); ``wait_for_creation()`` returns at once (the context exists when this object
    does). Source: Azure ML v1's "Package models" (``how-to-deploy-package-models.md``).
    """

    def __init__(self, image: Image, generate_dockerfile: bool = True) -> None:
        self.image = image
        self.generate_dockerfile = generate_dockerfile

    def __getattr__(self, name: str) -> Any:  # the image's attributes (name, version, models, ...)
        if name.startswith("_") or name == "image":
            raise AttributeError(name)
        return getattr(self.image, name)

    @property
    def location(self) -> str:
        """The local Docker tag once built (:meth:`pull`), else the build-context folder."""
        return self.image.image_location

    def wait_for_creation(self, show_output: bool = False) -> None:
        if show_output:
            print(f"package {self.image.id}: Succeeded", flush=True)

    def get_container_registry(self) -> ContainerRegistry:
        return ContainerRegistry()

    def get_logs(self) -> str:
        """The log of the last Docker build of this package ("" before :meth:`pull`)."""
        return self.image.get_build_log()

    def pull(self, show_output: bool = True, progress: Callable[[str], None] | None = None) -> str:
        """Build the package into the local Docker Engine (nothing is rebuilt when its tag
        exists) and return the tag, also in ``location``; the build log is kept
        (``get_logs()``). ``progress`` gets each build line (default: printed when
        ``show_output``). Raises WebserviceException when no Docker Engine answers (the
        message says how to run the package without Docker) and ImageBuildError (the failing
        step and its log) when the build fails."""
        out = progress or ((lambda line: print(line, flush=True)) if show_output else (lambda _line: None))
        ws = self.image.workspace
        try:
            tag = images.build_docker_image(ws, self.image.record, out)
        except WebserviceException as e:
            if "cannot reach the Docker Engine" not in str(e) and "needs the docker SDK" not in str(e):
                raise
            raise WebserviceException(
                f"ModelPackage.pull() builds image {self.image.id} into a local Docker Engine, and none is "
                f"available: {e}. Without Docker, run it on the local target: Webservice.deploy_from_image(ws, "
                f"'<name>', package.image, LocalWebservice.deploy_configuration()); its build context is "
                f"{self.image.context_path}"
            ) from None
        self.image.update_creation_state()
        out(f"Status: image {tag} is in the local Docker Engine")
        return tag

    def save(self, output_directory: str | os.PathLike[str]) -> str:
        """Write the build context with its Dockerfile into ``output_directory`` (must not
        exist); returns the path. Build it with ``docker build <path>``."""
        return self.image.save(output_directory)

    def serialize(self) -> dict[str, Any]:
        return {"image": self.image.serialize(), "generateDockerfile": self.generate_dockerfile, "location": self.location}

    def __repr__(self) -> str:
        return f"ModelPackage(image={self.image.id!r}, location={self.location!r})"


# ---------------------------------------------------------------- the image era: ContainerImage
_warned: set[str] = set()


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        warnings.warn(message, UserWarning, stacklevel=3)


@dataclass
class ContainerImageConfig:
    """Azure ML v1's ``ContainerImageConfig`` (from :meth:`ContainerImage.image_configuration`):
    what an image-era image holds besides its models. Paths are relative to ``base_dir``
    (the working directory when it was made), as Azure's are. Honoured: ``execution_script``,
    ``runtime`` (``"python"``), ``conda_file``, ``docker_file`` (its lines become
    ``extra_docker_file_steps``), ``dependencies`` (files/folders copied next to the script at
    the same relative paths), ``base_image``, ``tags``, ``properties``, ``description``.
    Accepted with one UserWarning and ignored: ``enable_gpu``, ``cuda_version``,
    ``schema_file``, ``base_image_registry``."""

    execution_script: str
    runtime: str = "python"
    conda_file: str | None = None
    docker_file: str | None = None
    dependencies: list[str] = field(default_factory=list)
    tags: dict[str, str] | None = None
    properties: dict[str, str] | None = None
    description: str | None = None
    base_image: str | None = None
    allow_absolute_path: bool = False
    base_dir: Path = field(default_factory=Path.cwd)

    def _path(self, p: str | os.PathLike[str], what: str) -> Path:
        path = Path(p).expanduser()
        if path.is_absolute() and not self.allow_absolute_path and what == "dependencies":
            raise ValidationError(
                f"dependencies entry {str(p)!r} is an absolute path: give it relative to {self.base_dir} "
                "(or allow_absolute_path=True)"
            )
        full = path if path.is_absolute() else self.base_dir / path
        if not full.exists():
            raise ValidationError(f"Error, provided {what} path doesn't exist: {full}")
        return full

    def validate(self) -> None:
        """Check every path exists and the script defines ``init()`` and ``run()``. Raises
        ValidationError naming the parameter to fix."""
        from_cwd = self._path(self.execution_script, "execution_script")
        if not from_cwd.is_file():
            raise ValidationError(f"execution_script must be a file, got the folder {from_cwd}")
        check_entry_script(from_cwd)
        if str(self.runtime).lower() != "python":
            raise ValidationError(f"runtime {self.runtime!r} is not supported: use runtime='python'")
        for f, what in ((self.conda_file, "conda_file"), (self.docker_file, "docker_file")):
            if f is not None and not self._path(f, what).is_file():
                raise ValidationError(f"{what} must be a file, got {f}")
        if isinstance(self.dependencies, (str, os.PathLike)):
            raise ValidationError("dependencies must be a list of paths, e.g. dependencies=['utils.py', 'data/']")
        for d in self.dependencies:
            self._path(d, "dependencies")

    def environment(self) -> Environment:
        """The :class:`Environment` this config describes (``conda_file``, ``docker_file``,
        ``base_image``)."""
        env = (Environment.from_conda_specification("conda-env", self._path(self.conda_file, "conda_file"))
               if self.conda_file else Environment("default"))
        if self.docker_file:
            env.docker.extra_docker_file_steps = self._path(self.docker_file, "docker_file").read_text()
        if self.base_image:
            env.docker.base_image = self.base_image
        return env

    @contextlib.contextmanager
    def inference_config(self) -> Iterator[InferenceConfig]:
        """The :class:`InferenceConfig` of this image configuration, valid inside the ``with``:
        the script alone, or (with ``dependencies``) a temporary source directory named after
        ``base_dir`` holding the script and dependencies at their relative paths."""
        self.validate()
        script = self._path(self.execution_script, "execution_script").resolve()
        env = self.environment()
        if not self.dependencies:
            yield InferenceConfig(entry_script=str(script), environment=env)
            return
        base = self.base_dir.resolve()
        with tempfile.TemporaryDirectory(prefix="mlm-image-config-") as tmp:
            stage = Path(tmp) / (base.name or "app")
            stage.mkdir()
            for src in [script, *(self._path(d, "dependencies").resolve() for d in self.dependencies)]:
                try:
                    rel = src.relative_to(base)
                except ValueError:  # an allowed absolute path outside base_dir: next to the script
                    rel = Path(src.name)
                dest = stage / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                if src.is_dir():
                    shutil.copytree(src, dest, dirs_exist_ok=True,
                                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints"))
                else:
                    shutil.copy2(src, dest)
            yield InferenceConfig(entry_script=script.relative_to(base).as_posix() if script.is_relative_to(base)
                                  else script.name, source_directory=str(stage), environment=env)


class ContainerImage(Image):
    """Azure ML v1's ``ContainerImage``: the same images as :class:`Image` (``ContainerImage(ws,
    name)``, ``ContainerImage.create(...)``, ``ContainerImage.list(ws)`` are Image's)."""

    @staticmethod
    def image_configuration(
        execution_script: str | None = None,
        runtime: str | None = None,
        conda_file: str | None = None,
        docker_file: str | None = None,
        schema_file: str | None = None,
        dependencies: Sequence[str] | None = None,
        enable_gpu: bool | None = None,
        tags: dict[str, str] | None = None,
        properties: dict[str, str] | None = None,
        description: str | None = None,
        base_image: str | None = None,
        base_image_registry: Any = None,
        allow_absolute_path: bool = False,
        cuda_version: str | None = None,
    ) -> ContainerImageConfig:
        """Azure's ``ContainerImage.image_configuration``; see :class:`ContainerImageConfig`
        for what is honoured. Paths are relative to the working directory. Raises
        ValidationError (missing ``execution_script`` or file, runtime other than python, tags
        or properties not ``dict[str, str]``)."""
        if not execution_script:
            raise ValidationError("Error, execution_script must be provided (the entry script with init() and run())")
        ignored = {"enable_gpu": enable_gpu, "cuda_version": cuda_version, "schema_file": schema_file,
                   "base_image_registry": getattr(base_image_registry, "address", base_image_registry)}
        for key, value in ignored.items():
            if value:
                _warn_once(key, f"ContainerImage.image_configuration({key}=...) is not supported here and is ignored"
                           + (" (images run on CPU)" if key in ("enable_gpu", "cuda_version") else ""))
        cfg = ContainerImageConfig(
            execution_script=execution_script,
            runtime=runtime or "python",
            conda_file=conda_file,
            docker_file=docker_file,
            dependencies=dependencies if isinstance(dependencies, (str, os.PathLike)) else list(dependencies or []),  # type: ignore[arg-type]
            tags=check_str_dict(tags, "tags") if tags is not None else None,
            properties=check_str_dict(properties, "properties") if properties is not None else None,
            description=description,
            base_image=base_image,
            allow_absolute_path=allow_absolute_path,
        )
        cfg.validate()
        return cfg


__all__ = ["ContainerImage", "ContainerImageConfig", "ContainerRegistry", "Image", "ImageList", "ModelPackage"]
