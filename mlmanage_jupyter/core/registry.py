"""The model registry: ``Model`` with Azure ML v1's API and semantics.

A registered model is a name plus an auto-incremented version (1, 2, ... per name), with
tags, write-once properties, a description, a framework, and its files (one file or a
folder, relative layout kept) stored by sha256 in the workspace's artifact store.

Registration is crash-safe: files are streamed into the content-addressed store first
(complete objects only, atomically renamed), then one database transaction allocates the
version and writes the model and file rows. A process killed at any point leaves either a
whole version or none (at worst an unreferenced object, which ``collect_garbage`` removes).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, and_, delete, func, insert, select, update

from mlmanage_jupyter.core.errors import (
    InUseError,
    ModelNotFoundError,
    ValidationError,
)
from mlmanage_jupyter.core.fsutil import atomic_dir
from mlmanage_jupyter.core.store import metadata as md
from mlmanage_jupyter.core.workspace import Workspace, resolve_workspace
from mlmanage_jupyter.server.model_path import ModelPathError, model_path_in_deployment

if TYPE_CHECKING:
    import pandas as pd

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")
MODEL_DIR_VARS = ("MLMANAGE_MODEL_DIR", "AZUREML_MODEL_DIR")

#: columns of :meth:`ModelList.to_dataframe`
LIST_COLUMNS = [
    "name",
    "version",
    "tags",
    "properties",
    "framework",
    "framework_version",
    "description",
    "files",
    "size_bytes",
    "sha256",
    "created_time",
]


def validate_model_name(name: Any) -> str:
    """Azure's rule: 1-255 characters, letters, digits, ``-``, ``_`` and ``.``, starting with
    a letter or digit. ``..``, ``/`` and control characters are refused (they would escape
    folders when the model is materialized or packed into an image)."""
    if not isinstance(name, str) or not name:
        raise ValidationError(f"model name must be a non-empty string, got {name!r}")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise ValidationError(f"model name {name!r} contains control characters")
    if "/" in name or "\\" in name or ".." in name or not _NAME_RE.match(name):
        raise ValidationError(
            f"invalid model name {name!r}: use 1-255 letters, digits, '-', '_' or '.', starting with a "
            f"letter or digit (no '/', '\\' or '..')"
        )
    return name


def split_id(kind: str, name: str | None, version: int | None, id: str | None) -> tuple[str, int | None]:
    """``(name, version)`` from ``name``/``version`` or an Azure-style ``id="name:version"``
    (version optional). Raises ValidationError naming ``kind`` ("Model", "Image") when
    neither is given or the version is not a positive integer."""
    if id is not None:
        name, sep, v = str(id).partition(":")
        if sep and (not v.isdigit() or int(v) < 1):
            raise ValidationError(f"{kind} {id!r}: the version after ':' must be a positive integer (name:version)")
        version = int(v) if sep else None
    if not name:
        raise ValidationError(f"{kind}(...) needs a name (or id='name:version')")
    return name, version


def _check_str_dict(d: Any, what: str) -> dict[str, str]:
    if d is None:
        return {}
    if not isinstance(d, dict):
        raise ValidationError(f"{what} must be a dict of strings, got {type(d).__name__}")
    for k, v in d.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise ValidationError(
                f"{what} must map strings to strings; {k!r}: {v!r} is {type(k).__name__} -> {type(v).__name__} "
                f"(convert the value with str())"
            )
        if not k or any(ord(c) < 32 for c in k):
            raise ValidationError(f"{what} key {k!r} must be non-empty with no control characters")
    return dict(d)


def _walk_files(root: Path) -> list[tuple[str, Path]]:
    """(posix relative path, absolute path) of every file below ``root``, sorted."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for fn in sorted(filenames):
            p = Path(dirpath) / fn
            if p.is_symlink() and not p.exists():
                raise ValidationError(f"broken symbolic link in model folder: {p}")
            out.append((p.relative_to(root).as_posix(), p))
    return out


def _manifest_hash(files: Sequence[tuple[str, str, int]]) -> str:
    """sha256 of a folder model: over the sorted (path, sha256, size) lines."""
    h = hashlib.sha256()
    for path, sha, size in sorted(files):
        h.update(f"{path}\0{sha}\0{size}\n".encode())
    return h.hexdigest()


def _crashpoint(name: str) -> None:
    """Test hook: ``MLMANAGE_TEST_CRASH_AT=<name>`` kills the process here (crash tests)."""
    if os.environ.get("MLMANAGE_TEST_CRASH_AT") == name:
        os._exit(137)


class Model:
    """A registered model version (Azure ML v1: ``azureml.core.Model``).

    ``Model(workspace, name, version=None)`` gets a version (the latest when omitted).

    Attributes:
        name, version (int), id (``"name:version"``), tags (dict[str, str]), properties
        (dict[str, str]), description, model_framework, model_framework_version,
        created_time (UTC ISO-8601), sha256, size (bytes), file_count, workspace.

    Raises:
        ModelNotFoundError: no such name or version.
    """

    class Framework:
        """Azure ML's framework names."""

        SCIKITLEARN = "ScikitLearn"
        ONNX = "Onnx"
        TENSORFLOW = "TensorFlow"
        PYTORCH = "PyTorch"
        CUSTOM = "Custom"

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
            name, version = split_id("Model", name, version, id)
            _row = _get_row(self.workspace, name, version)
        self._load(_row)

    def _load(self, row: Any) -> None:
        self._id = row.id
        self.name: str = row.name
        self.version: int = row.version
        self.description: str | None = row.description
        self.model_framework: str | None = row.model_framework
        self.model_framework_version: str | None = row.model_framework_version
        self.tags: dict[str, str] = dict(row.tags or {})
        self.properties: dict[str, str] = dict(row.properties or {})
        self.root_name: str = row.root_name
        self.is_folder: bool = bool(row.is_folder)
        self.sha256: str = row.sha256
        self.size: int = row.size
        self.file_count: int = row.file_count
        self.created_time: str = row.created_time

    @property
    def id(self) -> str:
        return f"{self.name}:{self.version}"

    # ------------------------------------------------------------------ register
    @staticmethod
    def register(
        workspace: Workspace | str | os.PathLike[str] | None,
        model_path: str | os.PathLike[str],
        model_name: str,
        tags: dict[str, str] | None = None,
        properties: dict[str, str] | None = None,
        description: str | None = None,
        model_framework: str | None = None,
        model_framework_version: str | None = None,
        *,
        progress: Any = None,
    ) -> Model:
        """Register a file or a folder as the next version of ``model_name``.

        Args:
            model_path: a file, or a folder (every file below it is kept, layout preserved).
            model_name: see :func:`validate_model_name`.
            tags, properties: dict[str, str]; properties can't be changed later.
            progress: optional callable ``(bytes_done, bytes_total)`` called after each file.

        Returns the new :class:`Model` (version = previous max + 1, starting at 1; safe when
        several processes register the same name at once).

        Raises:
            ValidationError: bad name, missing path, empty folder, non-string tags.
        """
        ws = resolve_workspace(workspace)
        validate_model_name(model_name)
        tags = _check_str_dict(tags, "tags")
        properties = _check_str_dict(properties, "properties")
        for what, v in (("description", description), ("model_framework", model_framework),
                        ("model_framework_version", model_framework_version)):
            if v is not None and not isinstance(v, str):
                raise ValidationError(f"{what} must be a string, got {type(v).__name__}")
        src = Path(model_path).expanduser()
        if not src.exists():
            raise ValidationError(f"model_path does not exist: {src}")
        if src.is_dir():
            files = _walk_files(src)
            if not files:
                raise ValidationError(f"model folder {src} is empty: nothing to register")
        elif src.is_file():
            files = [(src.name, src)]
        else:
            raise ValidationError(f"model_path is neither a file nor a folder: {src}")
        root_name = src.resolve().name
        total = sum(p.stat().st_size for _, p in files)

        stored: list[tuple[str, str, int]] = []
        done = 0
        for rel, p in files:
            sha, size = ws.artifacts.put_file(p)
            stored.append((rel, sha, size))
            done += size
            if progress is not None:
                progress(done, total)
        _crashpoint("after_artifacts")
        digest = stored[0][1] if not src.is_dir() else _manifest_hash(stored)

        with ws.write() as conn:
            version = (conn.execute(select(func.max(md.models.c.version)).where(md.models.c.name == model_name)).scalar() or 0) + 1
            model_id = conn.execute(
                insert(md.models).values(
                    name=model_name,
                    version=version,
                    description=description,
                    model_framework=model_framework,
                    model_framework_version=model_framework_version,
                    tags=tags,
                    properties=properties,
                    root_name=root_name,
                    is_folder=src.is_dir(),
                    sha256=digest,
                    size=sum(s for _, _, s in stored),
                    file_count=len(stored),
                    created_time=md.utcnow(),
                )
            ).inserted_primary_key[0]
            conn.execute(
                insert(md.model_files),
                [{"model_id": model_id, "path": rel, "sha256": sha, "size": size} for rel, sha, size in stored],
            )
            _crashpoint("before_commit")
            ws.log_event(conn, "model.register", f"{model_name}:{version}", files=len(stored), size=total)
            row = conn.execute(select(md.models).where(md.models.c.id == model_id)).one()
        return Model(ws, _row=row)

    @staticmethod
    def register_object(
        workspace: Workspace | str | os.PathLike[str] | None,
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
        """Serialize a live Python object (a fitted estimator, a pipeline, ...) and register it.

        ``serializer``: ``"joblib"`` (default, file ``model.joblib``), ``"skops"`` (safe to
        load from untrusted sources; file ``model.skops``) or ``"pickle"`` (``model.pkl``).
        The framework is detected for scikit-learn objects (``ScikitLearn`` + its version)
        when not given; the serializer is recorded in the ``serializer`` property.

        Raises ValidationError for an unknown serializer or an object it can't serialize.
        """
        ext = {"joblib": "joblib", "skops": "skops", "pickle": "pkl"}
        if serializer not in ext:
            raise ValidationError(f"unknown serializer {serializer!r}: use joblib, skops or pickle")
        validate_model_name(model_name)
        fname = file_name or f"model.{ext[serializer]}"
        if "/" in fname or fname in ("", ".", ".."):
            raise ValidationError(f"file_name must be a plain file name, got {fname!r}")
        if model_framework is None:
            mod = type(obj).__module__.split(".")[0]
            if mod == "sklearn":
                import sklearn

                model_framework, model_framework_version = Model.Framework.SCIKITLEARN, sklearn.__version__
        props = dict(properties or {})
        props.setdefault("serializer", serializer)
        props.setdefault("python_class", f"{type(obj).__module__}.{type(obj).__qualname__}")
        with tempfile.TemporaryDirectory(prefix="mlmanage-obj-") as tmp:
            path = Path(tmp) / fname
            try:
                if serializer == "joblib":
                    import joblib

                    joblib.dump(obj, path)
                elif serializer == "skops":
                    import skops.io as sio

                    sio.dump(obj, path)
                else:
                    import pickle

                    with open(path, "wb") as f:
                        pickle.dump(obj, f)
            except Exception as e:  # the user's object could not be serialized
                raise ValidationError(f"could not serialize {type(obj).__name__} with {serializer}: {e}")
            return Model.register(
                workspace,
                path,
                model_name,
                tags=tags,
                properties=props,
                description=description,
                model_framework=model_framework,
                model_framework_version=model_framework_version,
            )

    # ------------------------------------------------------------------ listing
    @staticmethod
    def list(
        workspace: Workspace | str | os.PathLike[str] | None,
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
        tag_f = _parse_filter(tags, "tags")
        prop_f = _parse_filter(properties, "properties")
        q = select(md.models)
        if name is not None:
            q = q.where(md.models.c.name == name)
        if latest and not tag_f and not prop_f:
            latest_v = (
                select(md.models.c.name, func.max(md.models.c.version).label("v"))
                .group_by(md.models.c.name)
                .subquery()
            )
            q = q.join(latest_v, and_(md.models.c.name == latest_v.c.name, md.models.c.version == latest_v.c.v))
        q = q.order_by(md.models.c.name, md.models.c.version.desc())
        with ws.read() as conn:
            rows = conn.execute(q).all()
        out = [r for r in rows if _match(r.tags or {}, tag_f) and _match(r.properties or {}, prop_f)]
        if latest and (tag_f or prop_f):
            seen: set[str] = set()
            out = [r for r in out if not (r.name in seen or seen.add(r.name))]
        return ModelList(Model(ws, _row=r) for r in out)

    # ------------------------------------------------------------------ files
    def _files(self, conn: Connection | None = None) -> list[Any]:
        q = select(md.model_files).where(md.model_files.c.model_id == self._id).order_by(md.model_files.c.path)
        if conn is not None:
            return list(conn.execute(q).all())
        with self.workspace.read() as c:
            return list(c.execute(q).all())

    def get_files(self) -> list[dict[str, Any]]:
        """The files of this version: ``[{"path", "sha256", "size"}]`` (size in bytes)."""
        return [{"path": f.path, "sha256": f.sha256, "size": f.size} for f in self._files()]

    def download(self, target_dir: str | os.PathLike[str] = ".", exist_ok: bool = False, exists_ok: bool | None = None) -> str:
        """Copy the model's files to ``target_dir`` and return the path of the file or folder.

        Each file is checked against its sha256 while it is copied. ``exist_ok=False``
        (Azure's default) refuses to overwrite an existing file.

        Raises:
            ValidationError: the destination exists and ``exist_ok`` is False.
            ArtifactCorruptError: stored bytes no longer match their sha256 (nothing is left
                at the destination for that file).
        """
        if exists_ok is not None:  # Azure's older spelling
            exist_ok = exists_ok
        target = Path(target_dir).expanduser()
        dest_root = target / self.root_name
        files = self._files()
        if not exist_ok:
            clash = [target / f.path if not self.is_folder else dest_root / f.path for f in files]
            existing = [str(c) for c in clash if c.exists()]
            if existing or (self.is_folder and dest_root.exists() and not dest_root.is_dir()):
                raise ValidationError(
                    f"{existing[0] if existing else dest_root} already exists; pass exist_ok=True to overwrite"
                )
        for f in files:
            dest = dest_root / f.path if self.is_folder else target / f.path
            self.workspace.artifacts.get_file(f.sha256, dest, verify=True)
        return str(dest_root)

    def _materialize(self) -> Path:
        """The model's files in the workspace cache ``models/<name>/<version>/<root>``
        (verified once, then reused); returns the path of the file or folder."""
        base = self.workspace.path / "models" / self.name / str(self.version)
        done = base / ".complete"
        if not done.exists():
            with atomic_dir(base) as tmp:
                self.download(tmp, exist_ok=True)
                (tmp / ".complete").write_text(self.sha256)
        return base / self.root_name

    @staticmethod
    def get_model_path(
        model_name: str, version: int | None = None, _workspace: Workspace | str | os.PathLike[str] | None = None
    ) -> str:
        """Path of a registered model's file or folder.

        Inside a deployment (``MLMANAGE_MODEL_DIR`` or ``AZUREML_MODEL_DIR`` set), resolved
        as Azure does: with one model the variable is the folder holding its files under
        their registered names; with several it is the root with ``<name>/<version>/``
        below it (``version=None``: the highest present). Elsewhere, the model is
        materialized from the workspace (``_workspace`` or the default) and cached.

        Raises ModelNotFoundError naming the models that are available.
        """
        validate_model_name(model_name)
        model_dir = next((os.environ[v] for v in MODEL_DIR_VARS if os.environ.get(v)), None)
        if model_dir and _workspace is None:
            return _path_in_model_dir(Path(model_dir), model_name, version)
        return str(Model(_workspace, model_name, version)._materialize())

    # ------------------------------------------------------------------ deploy
    @staticmethod
    def deploy(
        workspace: Workspace | str | os.PathLike[str] | None,
        name: str,
        models: Sequence[Model],
        inference_config: Any = None,
        deployment_config: Any = None,
        deployment_target: Any = None,
        overwrite: bool = False,
        show_output: bool = False,
    ) -> Any:
        """Deploy ``models`` as web service ``name`` (Azure ML v1's ``Model.deploy``).

        See :func:`mlmanage_jupyter.core.services.deploy`; returns a ``Webservice`` that is
        Transitioning — call ``wait_for_deployment(show_output=True)``.
        """
        from mlmanage_jupyter.core.services import deploy

        return deploy(workspace, name, models, inference_config, deployment_config, deployment_target, overwrite,
                      show_output=show_output)

    @staticmethod
    def package(
        workspace: Workspace | str | os.PathLike[str] | None,
        models: Sequence[Model],
        inference_config: Any,
        generate_dockerfile: bool = False,
        image_name: str | None = None,
    ) -> Any:
        """Build an :class:`~mlmanage_jupyter.core.images.Image` without deploying it (Azure's
        ``Model.package``); ``image_name`` defaults to the first model's name, lowercased."""
        from mlmanage_jupyter.core.images import Image

        name = image_name or re.sub(r"[^a-z0-9._-]", "-", models[0].name.lower())
        return Image.create(workspace, name, models, inference_config)

    @staticmethod
    def profile(
        workspace: Workspace | str | os.PathLike[str] | None,
        profile_name: str,
        models: Sequence[Model],
        inference_config: Any,
        input_dataset: Any,
        cpu: float | None = None,
        memory_in_gb: float | None = None,
        description: str | None = None,
        **kwargs: Any,
    ) -> Any:
        """Azure ML v1's ``Model.profile``: deploy a temporary local service, load-test it with
        ``input_dataset`` and delete it; returns a ``ModelProfile``. See
        :func:`mlmanage_jupyter.core.profiling.profile_models` (``concurrency``, ``duration_s``)."""
        from mlmanage_jupyter.core.profiling import profile_models

        return profile_models(workspace, profile_name, models, inference_config, input_dataset, cpu, memory_in_gb,
                              description, **kwargs)

    # ------------------------------------------------------------------ tags
    def add_tags(self, tags: dict[str, str]) -> None:
        """Add or overwrite tags (dict[str, str])."""
        tags = _check_str_dict(tags, "tags")
        self._update_json("tags", {**self.tags, **tags})

    def remove_tags(self, tags: Iterable[str] | str) -> None:
        """Remove tags by key; missing keys are ignored (as in Azure)."""
        keys = [tags] if isinstance(tags, str) else list(tags)
        self._update_json("tags", {k: v for k, v in self.tags.items() if k not in keys})

    def add_properties(self, properties: dict[str, str]) -> None:
        """Add properties. Properties are write-once, as in Azure: changing an existing
        key's value raises ValidationError (re-adding the same value is allowed)."""
        properties = _check_str_dict(properties, "properties")
        for k, v in properties.items():
            if k in self.properties and self.properties[k] != v:
                raise ValidationError(
                    f"property {k!r} of {self.id} is already {self.properties[k]!r}; properties can't be changed (use tags)"
                )
        self._update_json("properties", {**self.properties, **properties})

    def update(self, description: str | None = None, tags: dict[str, str] | None = None) -> None:
        """Azure's ``Model.update``: replace the description and/or the tags."""
        if tags is not None:
            self._update_json("tags", _check_str_dict(tags, "tags"))
        if description is not None:
            with self.workspace.write() as conn:
                conn.execute(update(md.models).where(md.models.c.id == self._id).values(description=description))
            self.description = description

    def _update_json(self, column: str, value: dict[str, str]) -> None:
        with self.workspace.write() as conn:
            conn.execute(update(md.models).where(md.models.c.id == self._id).values(**{column: value}))
            self.workspace.log_event(conn, f"model.{column}", self.id, **{column: value})
        setattr(self, column, dict(value))

    # ------------------------------------------------------------------ delete
    def users(self) -> dict[str, list[str]]:
        """What uses this version: ``{"images": ["name:version"], "services": ["name"]}``."""
        with self.workspace.read() as conn:
            imgs = conn.execute(
                select(md.images.c.name, md.images.c.version)
                .join(md.image_models, md.image_models.c.image_id == md.images.c.id)
                .where(md.image_models.c.model_id == self._id)
            ).all()
            svcs = conn.execute(
                select(md.service_models.c.service_name).where(md.service_models.c.model_id == self._id)
            ).all()
        return {"images": [f"{n}:{v}" for n, v in imgs], "services": [s for (s,) in svcs]}

    def delete(self) -> None:
        """Delete this version's record (its artifacts go on the next garbage collection).

        Raises InUseError naming the images and services that use it.
        """
        with self.workspace.write() as conn:
            imgs = conn.execute(
                select(md.images.c.name, md.images.c.version)
                .join(md.image_models, md.image_models.c.image_id == md.images.c.id)
                .where(md.image_models.c.model_id == self._id)
            ).all()
            svcs = conn.execute(select(md.service_models.c.service_name).where(md.service_models.c.model_id == self._id)).all()
            if imgs or svcs:
                users = [f"image {n}:{v}" for n, v in imgs] + [f"service {s}" for (s,) in svcs]
                raise InUseError(f"model {self.id} is used by {', '.join(users)}; delete those first")
            conn.execute(delete(md.model_files).where(md.model_files.c.model_id == self._id))
            conn.execute(delete(md.models).where(md.models.c.id == self._id))
            self.workspace.log_event(conn, "model.delete", self.id)
        shutil.rmtree(self.workspace.path / "models" / self.name / str(self.version), ignore_errors=True)

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
        }

    def __repr__(self) -> str:
        return f"Model(workspace={self.workspace.name!r}, name={self.name!r}, id={self.id!r}, version={self.version}, tags={self.tags})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Model) and other.workspace.path == self.workspace.path and other._id == self._id

    def __hash__(self) -> int:
        return hash((str(self.workspace.path), self._id))

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


class ModelList(list):  # type: ignore[type-arg]
    """A list of :class:`Model` that renders as a table in notebooks.

    ``to_dataframe()`` columns: name, version, tags, properties, framework,
    framework_version, description, files, size_bytes, sha256, created_time.
    """

    def to_dataframe(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(
            [
                {
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
                for m in self
            ],
            columns=LIST_COLUMNS,
        )

    def _repr_html_(self) -> str:
        if not self:
            return "<i>no models</i>"
        df = self.to_dataframe()
        df["tags"] = df["tags"].map(lambda t: ", ".join(f"{k}={v}" for k, v in t.items()))
        df["size"] = df["size_bytes"].map(format_bytes)
        df["sha256"] = df["sha256"].str[:12]
        cols = ["name", "version", "tags", "framework", "files", "size", "sha256", "created_time"]
        return df[cols].to_html(index=False, escape=True)


def format_bytes(n: int) -> str:
    """Human-readable size in binary units (B, KiB, MiB, GiB)."""
    f = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if f < 1024 or unit == "TiB":
            return f"{f:.0f} {unit}" if unit == "B" else f"{f:.1f} {unit}"
        f /= 1024
    return f"{n} B"


def _get_row(ws: Workspace, name: str, version: int | None) -> Any:
    validate_model_name(name)
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        try:
            version = int(version)
        except (TypeError, ValueError):
            raise ValidationError(f"version must be an integer, got {version!r}")
    q = select(md.models).where(md.models.c.name == name)
    q = q.where(md.models.c.version == version) if version is not None else q.order_by(md.models.c.version.desc()).limit(1)
    with ws.read() as conn:
        row = conn.execute(q).first()
        if row is None:
            versions = [v for (v,) in conn.execute(select(md.models.c.version).where(md.models.c.name == name).order_by(md.models.c.version))]
    if row is None:
        if versions:
            raise ModelNotFoundError(f"model {name!r} has no version {version}; versions: {', '.join(map(str, versions))}")
        raise ModelNotFoundError(f"no model named {name!r} in workspace {ws.path}; register it with Model.register(...)")
    return row


def _parse_filter(f: Sequence[Any] | None, what: str) -> list[tuple[str, str | None]]:
    if f is None:
        return []
    if isinstance(f, (str, dict)):
        # be forgiving: "key" -> ["key"], {"k": "v"} -> [["k", "v"]]
        f = [f] if isinstance(f, str) else [[k, v] for k, v in f.items()]
    out: list[tuple[str, str | None]] = []
    for item in f:
        if isinstance(item, str):
            out.append((item, None))
        elif isinstance(item, (list, tuple)) and len(item) == 2 and all(isinstance(x, str) for x in item):
            out.append((item[0], item[1]))
        else:
            raise ValidationError(f"{what} filter items must be 'key' or ['key', 'value'], got {item!r}")
    return out


def _match(d: dict[str, str], filters: list[tuple[str, str | None]]) -> bool:
    return all(k in d and (v is None or d[k] == v) for k, v in filters)


def _path_in_model_dir(model_dir: Path, name: str, version: int | None) -> str:
    """Azure's layout inside a deployment (see get_model_path): the scoring engine's resolution."""
    try:
        return model_path_in_deployment(name, version, model_dir)
    except ModelPathError as e:
        raise ModelNotFoundError(str(e))


def collect_garbage(workspace: Workspace | None = None) -> dict[str, int]:
    """Delete artifact objects no model version references (left by crashes or deletes).

    Returns ``{"objects_deleted": n, "bytes_freed": b}``. Only run it while nothing is
    registering (a registration in flight has objects not referenced yet).
    """
    ws = resolve_workspace(workspace)
    with ws.read() as conn:
        live = {s for (s,) in conn.execute(select(md.model_files.c.sha256).distinct())}
    n = freed = 0
    for sha in list(ws.artifacts.iter_objects()):
        if sha not in live:
            if hasattr(ws.artifacts, "object_path"):
                freed += ws.artifacts.object_path(sha).stat().st_size  # type: ignore[attr-defined]
            ws.artifacts.delete(sha)
            n += 1
    return {"objects_deleted": n, "bytes_freed": freed}


def models_table(workspace: Workspace | None = None, name: str | None = None, latest: bool = False) -> pd.DataFrame:
    """Shortcut: ``Model.list(...).to_dataframe()``."""
    return Model.list(workspace, name=name, latest=latest).to_dataframe()

