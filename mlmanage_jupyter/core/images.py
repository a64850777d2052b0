"""Image build contexts: models + entry script + environment + scoring engine, content-hashed.

An image is first a *build context* on disk (``<workspace>/images/<content_hash>/``, layout
in CONTRIBUTING.md); the local target runs it as it is, the docker target builds it into a
Docker image (``docker_image`` holds the tag), the kubernetes target pushes that image.

The content hash covers the models' sha256s, every file of the source directory, the
environment and the engine version, so the same inputs give the same image (no rebuild)
and any change gives a new version.

Functions here take a Workspace and records and return
:class:`~mlmanage_jupyter.core.entities.records.ImageRecord` objects; ``core/image.py``
wraps them in Azure's ``Image`` class.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlmanage_jupyter import __version__
from mlmanage_jupyter.core import registry
from mlmanage_jupyter.core.entities.names import (
    check_str_dict,
    match_filter,
    parse_filter,
    validate_image_name,
)
from mlmanage_jupyter.core.entities.records import MODELS_DIRNAME, ImageRecord, ModelRecord
from mlmanage_jupyter.core.environment import Environment, InferenceConfig
from mlmanage_jupyter.core.errors import MlManageError, ValidationError
from mlmanage_jupyter.core.fsutil import atomic_dir
from mlmanage_jupyter.core.store import images as image_store
from mlmanage_jupyter.core.targets.base import ImageSpec, ModelRef
from mlmanage_jupyter.core.targets.docker_build import ImageBuildError, build_image, write_docker_files
from mlmanage_jupyter.core.workspace import Workspace

#: folders never copied from a source directory
EXCLUDED_DIRS = {".git", "__pycache__", ".ipynb_checkpoints", ".mlmanage", ".venv", "venv", "node_modules", ".azureml"}
APP_DIRNAME = "app"


def _source_files(inference_config: InferenceConfig, workspace: Workspace) -> list[tuple[str, Path]]:
    """(relative posix path, absolute path) of what goes into ``app/``: the whole source
    directory (minus EXCLUDED_DIRS and the workspace), or only the entry script."""
    inference_config.validate()
    if not inference_config.source_directory:
        script = inference_config.entry_script_path()
        return [(script.name, script)]
    root = inference_config.source_dir_path().resolve()
    ws_path = workspace.path.resolve()
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in EXCLUDED_DIRS and (Path(dirpath) / d).resolve() != ws_path)
        for fn in sorted(filenames):
            if fn.endswith((".pyc", ".pyo")):
                continue
            p = Path(dirpath) / fn
            out.append((p.relative_to(root).as_posix(), p))
    return out


def source_directory_name(inference_config: InferenceConfig) -> str | None:
    """The source directory's folder name in the image (Azure's ``AZUREML_SOURCE_DIRECTORY``):
    its own name, or None without a source directory."""
    if not inference_config.source_directory:
        return None
    name = inference_config.source_dir_path().resolve().name
    return name if name not in ("", ".", "..") else "src"


def _content_hash(models: Sequence[ModelRecord], files: list[tuple[str, Path]], entry: str, env: dict[str, Any]) -> str:
    h = hashlib.sha256()
    h.update(f"engine {__version__}\nentry {entry}\n".encode())
    for m in sorted(models, key=lambda m: (m.name, m.version)):
        h.update(f"model {m.name}:{m.version} {m.sha256}\n".encode())
    for rel, p in files:
        fh = hashlib.sha256(p.read_bytes()).hexdigest()
        h.update(f"file {rel} {fh}\n".encode())
    h.update(json.dumps(env, sort_keys=True).encode())
    return h.hexdigest()


def get(ws: Workspace, name: str, version: int | None = None) -> ImageRecord:
    """Version ``version`` of image ``name`` (latest when None); raises NotFoundError."""
    return image_store.get(ws, name, version)


def get_by_pk(ws: Workspace, pk: int | None) -> ImageRecord | None:
    return image_store.get_by_pk(ws, pk) if pk is not None else None


@dataclass
class ImagePlan:
    """What an image of ``models`` + an inference config would be, computed without writing
    anything: its ``spec`` (the ``image.json`` dict, no version yet), ``content_hash`` and the
    ``(relative path, source path)`` files of ``app/``. ``existing`` is the recorded version
    with the same content, if any."""

    name: str
    models: list[ModelRecord]
    files: list[tuple[str, Path]]
    environment: Environment
    spec: dict[str, Any]
    content_hash: str
    existing: ImageRecord | None

    def preview(self) -> ImageRecord:
        """The record this plan would give (version 0 and no context folder when new)."""
        if self.existing is not None:
            return self.existing
        return ImageRecord(
            pk=0, name=self.name, version=0, content_hash=self.content_hash, description=None, tags={},
            spec={**self.spec, "version": 0}, context_path=Path(), docker_image=None, created_time="",
        )  # fmt: skip


def plan_image(ws: Workspace, name: str, models: Sequence[ModelRecord], inference_config: InferenceConfig) -> ImagePlan:
    """Validate the inputs and compute the image's spec and content hash; writes nothing.

    Raises ValidationError (bad name, no models, duplicate model names, broken entry script).
    """
    validate_image_name(name)
    models = list(models)
    if not models:
        raise ValidationError("an image needs at least one model")
    if not all(isinstance(m, ModelRecord) for m in models):
        raise ValidationError("models must be Model objects (use Model(ws, name, version))")
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise ValidationError(f"an image can hold one version per model name, got {', '.join(m.id for m in models)}")
    if not isinstance(inference_config, InferenceConfig):
        raise ValidationError(f"inference_config must be an InferenceConfig, got {type(inference_config).__name__}")
    files = _source_files(inference_config, ws)
    # Azure's layout: the source directory is the folder <its name> under the app root
    # (AZUREML_SOURCE_DIRECTORY), so "./<name>/file" opens from the app root (the cwd)
    source_dir_name = source_directory_name(inference_config)
    if source_dir_name:
        files = [(f"{source_dir_name}/{rel}", p) for rel, p in files]
        entry = f"{source_dir_name}/{inference_config.entry_script_relpath()}"
    else:
        entry = files[0][0]
    env = inference_config.environment or Environment("default")
    env_d = env.to_dict()
    if inference_config.extra_docker_file_steps and not env_d["docker"]["extra_docker_file_steps"]:
        env_d["docker"]["extra_docker_file_steps"] = inference_config.extra_docker_file_steps
    chash = _content_hash(models, files, entry, env_d)
    spec = {
        "name": name,
        "content_hash": chash,
        "entry_script": entry,
        "source_directory": source_dir_name,
        "models": [
            {"name": m.name, "version": m.version, "root_name": m.root_name, "is_folder": m.is_folder, "sha256": m.sha256}
            for m in models
        ],
        "environment": env_d,
        "engine_version": __version__,
    }
    existing = image_store.find_by_hash(ws, name, chash)
    if existing is not None and not (existing.context_path / "image.json").is_file():
        existing = None
    return ImagePlan(name, models, files, env, spec, chash, existing)


def create_image(
    ws: Workspace,
    name: str,
    models: Sequence[ModelRecord],
    inference_config: InferenceConfig,
    tags: dict[str, str] | None = None,
    description: str | None = None,
) -> ImageRecord:
    """Build the context for ``models`` + ``inference_config`` and register it as the next
    version of ``name`` — or return the existing version with the same content hash.

    Raises ValidationError (see :func:`plan_image`) and ArtifactCorruptError (a model file
    no longer matches its sha256).
    """
    plan = plan_image(ws, name, models, inference_config)
    if plan.existing is not None:
        return plan.existing
    ctx = _build_context(ws, plan.content_hash, plan.models, plan.files, plan.spec, plan.environment)
    return image_store.insert_version(
        ws,
        name=name,
        content_hash=plan.content_hash,
        description=description,
        tags=dict(tags or {}),
        spec=plan.spec,
        context_path=ctx,
        models=plan.models,
    )


def _build_context(
    ws: Workspace, chash: str, models: Sequence[ModelRecord], files: list[tuple[str, Path]], spec: dict[str, Any], env: Environment
) -> Path:
    """Write the context to ``images/<chash>`` atomically (temp folder, then rename)."""
    final = ws.subdir("images") / chash
    if (final / "image.json").is_file():
        return final
    with atomic_dir(final) as tmp:
        app = tmp / APP_DIRNAME
        app.mkdir()
        for rel, p in files:
            (app / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(p, app / rel)
        for m in models:
            registry.download(ws, m, tmp / MODELS_DIRNAME / m.name / str(m.version), exist_ok=True)
        (tmp / "requirements.txt").write_text(env.requirements_text())
        if env.conda_dependencies:
            import yaml

            (tmp / "conda.yml").write_text(yaml.safe_dump(env.conda_dependencies, sort_keys=False))
        (tmp / "image.json").write_text(json.dumps(spec, indent=2))
    return final


def list_images(ws: Workspace, name: str | None = None, tags: Sequence[Any] | None = None) -> list[ImageRecord]:
    """Images, by name then version descending; ``tags`` as in ``Model.list``."""
    f = parse_filter(tags, "tags")
    return [r for r in image_store.list_records(ws, name) if match_filter(r.tags, f)]


def services_of(ws: Workspace, image: ImageRecord) -> list[str]:
    """Names of the services running this image."""
    return image_store.service_names(ws, image)


def set_tags(ws: Workspace, image: ImageRecord, tags: dict[str, str]) -> None:
    """Replace the tags of an image version (checked dict[str, str])."""
    tags = check_str_dict(tags, "tags")
    image_store.set_fields(ws, image, tags=tags)
    image.tags = tags


def set_properties(ws: Workspace, image: ImageRecord, properties: dict[str, str]) -> None:
    """Replace the properties of an image version (checked dict[str, str], kept in its ``spec``)."""
    properties = check_str_dict(properties, "properties")
    spec = {**image.spec, "properties": properties}
    image_store.set_fields(ws, image, spec=spec)
    image.spec = spec


#: the log of an image's last Docker build, in its build context (not part of the Docker context)
BUILD_LOG = "build.log"


def build_log_path(image: ImageRecord) -> Path:
    return image.context_path / BUILD_LOG


def build_docker_image(ws: Workspace, image: ImageRecord, progress: Callable[[str], None] = lambda _m: None) -> str:
    """Build ``image`` into the local Docker Engine (nothing is rebuilt when its tag exists),
    record the tag (``docker_image``) and keep the build's output in ``<context>/build.log``;
    return the tag. ``progress`` gets each output line. Raises WebserviceException when no
    engine answers and ImageBuildError (failing step + log) when the build fails."""
    lines: list[str] = []

    def both(line: str) -> None:
        lines.append(line)
        progress(line)

    log = build_log_path(image)
    try:
        tag = build_image(image_spec(image, ws), both, cache_dir=build_cache_dir(ws))
    except ImageBuildError as e:
        log.write_text(e.logs or "\n".join(lines))
        raise
    if len(lines) > 1 or not log.is_file():  # keep the real log when the tag was already built
        log.write_text("\n".join(lines) + "\n")
    set_docker_image(ws, image, tag)
    return tag


def set_docker_image(ws: Workspace, image: ImageRecord, tag: str | None) -> None:
    """Record the Docker image tag built from this context (after a docker build)."""
    image_store.set_fields(ws, image, docker_image=tag)
    image.docker_image = tag


def delete_image(ws: Workspace, image: ImageRecord) -> None:
    """Delete an image version (and its context folder when no other version shares it).
    Raises InUseError while a service runs it."""
    if image_store.delete_version(ws, image):
        shutil.rmtree(image.context_path, ignore_errors=True)


def export_context(ws: Workspace, image: ImageRecord, path: str | os.PathLike[str]) -> str:
    """Copy the build context to ``path`` (must not exist) and add a Dockerfile,
    ``.dockerignore``, ``wheels/`` and ``engine/`` when the docker support is installed, so
    any CI can ``docker build`` it; nothing is built. Returns the path."""
    dest = Path(path)
    if dest.exists():
        raise ValidationError(f"{dest} already exists; give a new folder")
    shutil.copytree(image.context_path, dest)
    write_docker_files(image_spec(image, ws), dest, cache_dir=build_cache_dir(ws))
    return str(dest)


def inference_config_of(image: ImageRecord) -> InferenceConfig:
    """The inference config an image was built from (its ``app/<source directory>`` folder
    as source)."""
    app = image.context_path / APP_DIRNAME
    env = image.environment
    src = image.spec.get("source_directory")
    if src and image.entry_script.startswith(f"{src}/"):
        return InferenceConfig(entry_script=image.entry_script[len(src) + 1 :], source_directory=str(app / src), environment=env)
    if "source_directory" in image.spec:  # built from an entry script alone
        return InferenceConfig(entry_script=str(app / image.entry_script), environment=env)
    # an image made before Azure's layout: app/ was the source directory
    return InferenceConfig(entry_script=image.entry_script, source_directory=str(app), environment=env)

def to_dict(img: ImageRecord) -> dict[str, Any]:
    """Azure-style JSON of an image (``Image.serialize()``)."""
    return {
        "id": img.id,
        "name": img.name,
        "version": img.version,
        "contentHash": img.content_hash,
        "tags": img.tags,
        "description": img.description,
        "createdTime": img.created_time,
        "models": img.models,
        "entryScript": img.entry_script,
        "dockerImage": img.docker_image,
        "contextPath": str(img.context_path) if img.pk else None,
    }


# ---------------------------------------------------------------- what targets take
def image_spec(image: ImageRecord | Any, workspace: Workspace | None = None) -> ImageSpec:
    """An image as the plain data a target takes (:class:`ImageSpec`), with each model's
    framework read from the registry (None when the model is gone).

    ``image``: an :class:`ImageRecord` (then give ``workspace``), or Azure's ``Image``
    (its ``record`` and ``workspace`` are used)."""
    record: ImageRecord = getattr(image, "record", image)
    ws = workspace if workspace is not None else image.workspace
    refs = []
    for m in record.spec.get("models", []):
        try:
            framework = registry.get(ws, m["name"], int(m["version"])).model_framework
        except MlManageError:
            framework = None
        refs.append(ModelRef(m["name"], m["version"], framework))
    return ImageSpec(
        name=record.name,
        version=record.version,
        content_hash=record.content_hash,
        context_path=record.context_path,
        entry_script=record.entry_script,
        environment=record.environment,
        models=tuple(refs),
        model_dir_env=record.model_dir_env(),
        docker_image=record.docker_image,
        source_directory=record.spec.get("source_directory") or None,
    )


def build_cache_dir(workspace: Workspace) -> Path:
    """Where a workspace's Docker build caches live (``$MLMANAGE_CACHE_DIR`` overrides it)."""
    return workspace.path / "cache"
