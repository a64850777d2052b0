"""Image: models + entry script + environment + scoring engine, content-hashed.

An image is first a *build context* on disk (``<workspace>/images/<content_hash>/``, layout
in CONTRIBUTING.md); the local target runs it as it is, the docker target builds it into a
Docker image (``docker_image`` holds the tag), the kubernetes target pushes that image.

The content hash covers the models' sha256s, every file of the source directory, the
environment and the engine version, so the same inputs give the same image (no rebuild)
and any change gives a new version.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, insert, select, update

from mlmanage_jupyter import __version__
from mlmanage_jupyter.core.environment import Environment, InferenceConfig
from mlmanage_jupyter.core.errors import InUseError, MlManageError, NotFoundError, ValidationError
from mlmanage_jupyter.core.fsutil import atomic_dir
from mlmanage_jupyter.core.registry import Model, split_id
from mlmanage_jupyter.core.store import metadata as md
from mlmanage_jupyter.core.targets.base import ImageSpec, ModelRef
from mlmanage_jupyter.core.targets.docker_build import write_docker_files
from mlmanage_jupyter.core.workspace import Workspace, resolve_workspace

if TYPE_CHECKING:
    import pandas as pd

_IMAGE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
#: folders never copied from a source directory
EXCLUDED_DIRS = {".git", "__pycache__", ".ipynb_checkpoints", ".mlmanage", ".venv", "venv", "node_modules", ".azureml"}
MODELS_DIRNAME = "azureml-models"
APP_DIRNAME = "app"


def validate_image_name(name: Any) -> str:
    if not isinstance(name, str) or not _IMAGE_NAME_RE.match(name) or ".." in name:
        raise ValidationError(
            f"invalid image name {name!r}: 1-63 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name


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
        dirnames[:] = sorted(
            d for d in dirnames if d not in EXCLUDED_DIRS and (Path(dirpath) / d).resolve() != ws_path
        )
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


def _content_hash(models: Sequence[Model], files: list[tuple[str, Path]], entry: str, env: dict[str, Any]) -> str:
    h = hashlib.sha256()
    h.update(f"engine {__version__}\nentry {entry}\n".encode())
    for m in sorted(models, key=lambda m: (m.name, m.version)):
        h.update(f"model {m.name}:{m.version} {m.sha256}\n".encode())
    for rel, p in files:
        fh = hashlib.sha256(p.read_bytes()).hexdigest()
        h.update(f"file {rel} {fh}\n".encode())
    h.update(json.dumps(env, sort_keys=True).encode())
    return h.hexdigest()


class Image:
    """A registered image (Azure ML v1's ``Image`` / ``ContainerImage``).

    ``Image(workspace, name, version=None)`` gets a version (latest when omitted), or
    ``Image(workspace, id="name:version")``.

    Attributes:
        name, version (int), id (``"name:version"``), content_hash (sha256 hex), tags,
        description, created_time, context_path (Path of the build context), spec (the
        ``image.json`` dict), models (list of ``"name:version"``), entry_script (relative to
        ``app/``), environment (:class:`Environment`), docker_image (tag once built, or None).
    """

    def __init__(
        self,
        workspace: Workspace | str | os.PathLike[str] | None,
        name: str | None = None,
        version: int | None = None,
        *,
        id: str | None = None,
        _row: Any = None,
    ) -> None:
        self.workspace = resolve_workspace(workspace)
        if _row is None:
            name, version = split_id("Image", name, version, id)
            q = select(md.images).where(md.images.c.name == name)
            q = q.where(md.images.c.version == version) if version is not None else q.order_by(md.images.c.version.desc()).limit(1)
            with self.workspace.read() as conn:
                _row = conn.execute(q).first()
            if _row is None:
                raise NotFoundError(f"no image {name}{':' + str(version) if version else ''} in workspace {self.workspace.path}")
        self._load(_row)

    def _load(self, row: Any) -> None:
        self._id: int = row.id
        self.name: str = row.name
        self.version: int = row.version
        self.content_hash: str = row.content_hash
        self.description: str | None = row.description
        self.tags: dict[str, str] = dict(row.tags or {})
        self.spec: dict[str, Any] = dict(row.spec or {})
        self.context_path = Path(row.context_path)
        self.docker_image: str | None = row.docker_image
        self.created_time: str = row.created_time

    @property
    def id(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def models(self) -> list[str]:
        return [f"{m['name']}:{m['version']}" for m in self.spec.get("models", [])]

    @property
    def entry_script(self) -> str:
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

    # ---------------------------------------------------------------- create
    @staticmethod
    def create(
        workspace: Workspace | str | os.PathLike[str] | None,
        name: str,
        models: Sequence[Model],
        inference_config: InferenceConfig,
        tags: dict[str, str] | None = None,
        description: str | None = None,
    ) -> Image:
        """Build the context for ``models`` + ``inference_config`` and register it as the next
        version of ``name`` — or return the existing version with the same content hash.

        Raises ValidationError (bad name, no models, duplicate model names, broken entry
        script) and ArtifactCorruptError (a model file no longer matches its sha256).
        """
        ws = resolve_workspace(workspace)
        validate_image_name(name)
        models = list(models)
        if not models:
            raise ValidationError("an image needs at least one model")
        if not all(isinstance(m, Model) for m in models):
            raise ValidationError("models must be Model objects (use Model(ws, name, version))")
        names = [m.name for m in models]
        if len(set(names)) != len(names):
            raise ValidationError(f"an image can hold one version per model name, got {', '.join(m.id for m in models)}")
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

        with ws.read() as conn:
            existing = conn.execute(
                select(md.images).where(md.images.c.name == name, md.images.c.content_hash == chash).order_by(md.images.c.version.desc())
            ).first()
        if existing is not None and Path(existing.context_path, "image.json").is_file():
            return Image(ws, _row=existing)

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
        ctx = _build_context(ws, chash, models, files, spec, env)
        with ws.write() as conn:
            version = (conn.execute(select(func.max(md.images.c.version)).where(md.images.c.name == name)).scalar() or 0) + 1
            spec["version"] = version
            image_id = conn.execute(
                insert(md.images).values(
                    name=name,
                    version=version,
                    content_hash=chash,
                    description=description,
                    tags=dict(tags or {}),
                    spec=spec,
                    context_path=str(ctx),
                    created_time=md.utcnow(),
                )
            ).inserted_primary_key[0]
            conn.execute(insert(md.image_models), [{"image_id": image_id, "model_id": m._id} for m in models])
            ws.log_event(conn, "image.create", f"{name}:{version}", content_hash=chash, models=[m.id for m in models])
            row = conn.execute(select(md.images).where(md.images.c.id == image_id)).one()
        return Image(ws, _row=row)

    # ---------------------------------------------------------------- listing
    @staticmethod
    def list(workspace: Workspace | str | os.PathLike[str] | None, name: str | None = None, tags: Sequence[Any] | None = None) -> ImageList:
        """Images, by name then version descending. ``tags`` as in ``Model.list``."""
        from mlmanage_jupyter.core.registry import _match, _parse_filter

        ws = resolve_workspace(workspace)
        q = select(md.images)
        if name:
            q = q.where(md.images.c.name == name)
        with ws.read() as conn:
            rows = conn.execute(q.order_by(md.images.c.name, md.images.c.version.desc())).all()
        f = _parse_filter(tags, "tags")
        return ImageList(Image(ws, _row=r) for r in rows if _match(r.tags or {}, f))

    def services(self) -> list[str]:
        """Names of the services running this image."""
        with self.workspace.read() as conn:
            return [n for (n,) in conn.execute(select(md.services.c.name).where(md.services.c.image_id == self._id))]

    def add_tags(self, tags: dict[str, str]) -> None:
        from mlmanage_jupyter.core.registry import _check_str_dict

        new = {**self.tags, **_check_str_dict(tags, "tags")}
        with self.workspace.write() as conn:
            conn.execute(update(md.images).where(md.images.c.id == self._id).values(tags=new))
        self.tags = new

    def remove_tags(self, keys: Sequence[str] | str) -> None:
        keys = [keys] if isinstance(keys, str) else list(keys)
        new = {k: v for k, v in self.tags.items() if k not in keys}
        with self.workspace.write() as conn:
            conn.execute(update(md.images).where(md.images.c.id == self._id).values(tags=new))
        self.tags = new

    def set_docker_image(self, tag: str | None) -> None:
        """Record the Docker image tag built from this context (used by the docker target)."""
        with self.workspace.write() as conn:
            conn.execute(update(md.images).where(md.images.c.id == self._id).values(docker_image=tag))
        self.docker_image = tag

    def delete(self) -> None:
        """Delete this image version. Raises InUseError while a service runs it."""
        with self.workspace.write() as conn:
            users = [n for (n,) in conn.execute(select(md.services.c.name).where(md.services.c.image_id == self._id))]
            if users:
                raise InUseError(f"image {self.id} is used by service {', '.join(users)}; delete or update it first")
            conn.execute(delete(md.image_models).where(md.image_models.c.image_id == self._id))
            conn.execute(delete(md.images).where(md.images.c.id == self._id))
            others = conn.execute(select(func.count()).where(md.images.c.content_hash == self.content_hash)).scalar()
            self.workspace.log_event(conn, "image.delete", self.id)
        if not others:
            shutil.rmtree(self.context_path, ignore_errors=True)

    def save(self, path: str | os.PathLike[str]) -> str:
        """Export the build context to ``path`` (must not exist), with a Dockerfile when the
        docker support is installed, so it can be built by any CI. Returns the path."""
        dest = Path(path)
        if dest.exists():
            raise ValidationError(f"{dest} already exists; give a new folder")
        shutil.copytree(self.context_path, dest)
        write_docker_files(image_spec(self), dest, cache_dir=build_cache_dir(self.workspace))
        return str(dest)

    def serialize(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "version": self.version,
            "contentHash": self.content_hash,
            "tags": self.tags,
            "description": self.description,
            "createdTime": self.created_time,
            "models": self.models,
            "entryScript": self.entry_script,
            "dockerImage": self.docker_image,
            "contextPath": str(self.context_path),
        }

    def __repr__(self) -> str:
        return f"Image(name={self.name!r}, version={self.version}, models={self.models}, hash={self.content_hash[:12]})"

    def _repr_html_(self) -> str:
        return (
            f"<div><b>Image</b> <code>{escape(self.id)}</code> — models {escape(', '.join(self.models))}, "
            f"entry <code>{escape(self.entry_script)}</code>, hash <code>{self.content_hash[:12]}</code>"
            f"{', docker <code>' + escape(self.docker_image) + '</code>' if self.docker_image else ''}</div>"
        )


class ImageList(list):  # type: ignore[type-arg]
    """A list of :class:`Image`; ``to_dataframe()`` columns: name, version, models, entry_script,
    content_hash, docker_image, tags, created_time."""

    def to_dataframe(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "name": i.name,
                    "version": i.version,
                    "models": ", ".join(i.models),
                    "entry_script": i.entry_script,
                    "content_hash": i.content_hash[:12],
                    "docker_image": i.docker_image,
                    "tags": i.tags,
                    "created_time": i.created_time,
                }
                for i in self
            ],
            columns=["name", "version", "models", "entry_script", "content_hash", "docker_image", "tags", "created_time"],
        )

    def _repr_html_(self) -> str:
        return self.to_dataframe().to_html(index=False) if self else "<i>no images</i>"


def _build_context(
    ws: Workspace, chash: str, models: Sequence[Model], files: list[tuple[str, Path]], spec: dict[str, Any], env: Environment
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
            m.download(tmp / MODELS_DIRNAME / m.name / str(m.version), exist_ok=True)
        (tmp / "requirements.txt").write_text(env.requirements_text())
        if env.conda_dependencies:
            import yaml

            (tmp / "conda.yml").write_text(yaml.safe_dump(env.conda_dependencies, sort_keys=False))
        (tmp / "image.json").write_text(json.dumps(spec, indent=2))
    return final


# ---------------------------------------------------------------- what targets take
def image_spec(image: Image) -> ImageSpec:
    """``image`` as the plain data a target takes (:class:`ImageSpec`), with each model's
    framework read from the registry (None when the model is gone)."""
    refs = []
    for m in image.spec.get("models", []):
        try:
            framework = Model(image.workspace, m["name"], int(m["version"])).model_framework
        except MlManageError:
            framework = None
        refs.append(ModelRef(m["name"], m["version"], framework))
    return ImageSpec(
        name=image.name,
        version=image.version,
        content_hash=image.content_hash,
        context_path=image.context_path,
        entry_script=image.entry_script,
        environment=image.environment,
        models=tuple(refs),
        model_dir_env=image.model_dir_env(),
        docker_image=image.docker_image,
        source_directory=image.spec.get("source_directory") or None,
    )


def build_cache_dir(workspace: Workspace) -> Path:
    """Where a workspace's Docker build caches live (``$MLMANAGE_CACHE_DIR`` overrides it)."""
    return workspace.path / "cache"
