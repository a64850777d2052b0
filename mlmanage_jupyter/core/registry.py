"""The model registry's jobs: register, list, get, download, materialize, garbage-collect.

A registered model is a name plus an auto-incremented version (1, 2, ... per name), with
tags, write-once properties, a description, a framework, and its files (one file or a
folder, relative layout kept) stored by sha256 in the workspace's artifact store.

Registration is crash-safe: files are streamed into the content-addressed store first
(complete objects only, atomically renamed), then one database transaction allocates the
version and writes the model and file rows. A process killed at any point leaves either a
whole version or none (at worst an unreferenced object, which ``collect_garbage`` removes).

Functions here take a :class:`~mlmanage_jupyter.core.workspace.Workspace` and return
:class:`~mlmanage_jupyter.core.entities.records.ModelRecord` objects; ``core/model.py``
wraps them in Azure's ``Model`` class.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mlmanage_jupyter.core.entities.names import (
    check_str_dict,
    match_filter,
    parse_filter,
    validate_model_name,
    validate_version,
)
from mlmanage_jupyter.core.entities.records import Framework, ModelFile, ModelRecord
from mlmanage_jupyter.core.errors import ArtifactCorruptError, ModelNotFoundError, ValidationError
from mlmanage_jupyter.core.fsutil import (
    TEMP_MAX_AGE_S,
    atomic_dir,
    check_regular_file,
    check_relative_path,
    collect_temp,
    crashpoint,
    join_inside,
    walk_files,
)
from mlmanage_jupyter.core.store import models as model_store
from mlmanage_jupyter.core.workspace import Workspace, resolve_workspace
from mlmanage_jupyter.server.model_path import ModelPathError, model_path_in_deployment

MODEL_DIR_VARS = ("MLMANAGE_MODEL_DIR", "AZUREML_MODEL_DIR")

#: columns of ``ModelList.to_dataframe()``
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


def _walk_files(root: Path) -> list[tuple[str, Path]]:
    """(posix relative path, path) of every file below ``root``, sorted; special files, broken
    links and link loops refused before anything is read (:data:`~mlmanage_jupyter.core.fsutil.SYMLINK_RULE`)."""
    return walk_files(root, "model folder")


def _manifest_hash(files: Sequence[tuple[str, str, int]]) -> str:
    """sha256 of a folder model: over the sorted (path, sha256, size) lines."""
    h = hashlib.sha256()
    for path, sha, size in sorted(files):
        h.update(f"{path}\0{sha}\0{size}\n".encode())
    return h.hexdigest()


def get(ws: Workspace, name: str, version: int | None = None) -> ModelRecord:
    """Version ``version`` of ``name`` (latest when None). Raises ValidationError for a bad
    name or version, ModelNotFoundError when there is none."""
    validate_model_name(name)
    return model_store.get(ws, name, validate_version(version))


def register(
    ws: Workspace,
    model_path: str | os.PathLike[str],
    model_name: str,
    tags: dict[str, str] | None = None,
    properties: dict[str, str] | None = None,
    description: str | None = None,
    model_framework: str | None = None,
    model_framework_version: str | None = None,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> ModelRecord:
    """Register a file or a folder as the next version of ``model_name``.

    Files are read by one rule (:data:`~mlmanage_jupyter.core.fsutil.SYMLINK_RULE`): symbolic
    links to regular files and folders are followed and kept under the link's name; FIFOs,
    sockets, devices, broken links and link loops are refused before anything is read.
    Temporary files of earlier registrations that were killed are removed first.

    Args:
        model_path: a file, or a folder (every file below it is kept, layout preserved).
        model_name: see :func:`~mlmanage_jupyter.core.entities.names.validate_model_name`.
        tags, properties: dict[str, str]; properties can't be changed later.
        progress: optional callable ``(bytes_done, bytes_total)`` called after each file.

    Returns the new record (version = previous max + 1, starting at 1; safe when several
    processes register the same name at once).

    Raises:
        ValidationError: bad name, missing path, empty folder, non-string tags, a special
            file / broken link / link loop (named in the message).
    """
    validate_model_name(model_name)
    tags = check_str_dict(tags, "tags")
    properties = check_str_dict(properties, "properties")
    for what, v in (("description", description), ("model_framework", model_framework),
                    ("model_framework_version", model_framework_version)):
        if v is not None and not isinstance(v, str):
            raise ValidationError(f"{what} must be a string, got {type(v).__name__}")
    src = Path(model_path).expanduser()
    if not src.exists() and not src.is_symlink():
        raise ValidationError(f"model_path does not exist: {src}")
    if src.is_dir():
        files = _walk_files(src)
        if not files:
            raise ValidationError(f"model folder {src} is empty: nothing to register")
    else:
        check_regular_file(src, "model_path")
        files = [(src.name, src)]
    total = sum(p.stat().st_size for _, p in files)
    collect_temp_files(ws, unmarked_max_age_s=TEMP_MAX_AGE_S)  # what killed registrations left

    stored: list[tuple[str, str, int]] = []
    done = 0
    for rel, p in files:
        sha, size = ws.artifacts.put_file(p)
        stored.append((rel, sha, size))
        done += size
        if progress is not None:
            progress(done, total)
    crashpoint("after_artifacts")
    return model_store.insert_version(
        ws,
        name=model_name,
        description=description,
        model_framework=model_framework,
        model_framework_version=model_framework_version,
        tags=tags,
        properties=properties,
        root_name=Path(os.path.abspath(src)).name,  # a link keeps its own name (SYMLINK_RULE)
        is_folder=src.is_dir(),
        sha256=stored[0][1] if not src.is_dir() else _manifest_hash(stored),
        files=stored,
        before_commit=lambda: crashpoint("before_commit"),
    )


def register_object(
    ws: Workspace,
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
) -> ModelRecord:
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

            model_framework, model_framework_version = Framework.SCIKITLEARN, sklearn.__version__
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
            raise ValidationError(f"could not serialize {type(obj).__name__} with {serializer}: {e}") from e
        return register(
            ws,
            path,
            model_name,
            tags=tags,
            properties=props,
            description=description,
            model_framework=model_framework,
            model_framework_version=model_framework_version,
        )


def list_models(
    ws: Workspace,
    name: str | None = None,
    tags: Sequence[Any] | None = None,
    properties: Sequence[Any] | None = None,
    latest: bool = False,
) -> list[ModelRecord]:
    """Models, by name then version descending, filtered with Azure's filter forms (see
    :func:`~mlmanage_jupyter.core.entities.names.parse_filter`); ``latest`` keeps only the
    highest version of each name (after filtering)."""
    tag_f = parse_filter(tags, "tags")
    prop_f = parse_filter(properties, "properties")
    filtered = bool(tag_f or prop_f)
    out = [
        r
        for r in model_store.list_records(ws, name, latest=latest and not filtered)
        if match_filter(r.tags, tag_f) and match_filter(r.properties, prop_f)
    ]
    if latest and filtered:
        seen: set[str] = set()
        out = [r for r in out if not (r.name in seen or seen.add(r.name))]  # type: ignore[func-returns-value]
    return out


def get_files(ws: Workspace, model: ModelRecord) -> list[ModelFile]:
    """The files of a version (path, sha256, size in bytes), by path."""
    return model_store.files(ws, model)


def _checked_files(ws: Workspace, model: ModelRecord) -> list[ModelFile]:
    """The file rows of a version after checking them against the metadata's own record: every
    path safe (relative, no '..'), and the rows hashing to the version's sha256 (the file's, or
    the folder manifest's). Raises ValidationError / ArtifactCorruptError naming the fault."""
    what = f"model {model.id}"
    if not model.root_name or "/" in model.root_name or model.root_name in (".", ".."):
        raise ValidationError(f"root name of {what} in the metadata is {model.root_name!r}, not a plain file or folder name; the metadata was altered")
    files = model_store.files(ws, model)
    for f in files:
        check_relative_path(f.path, f"file path of {what} in the metadata")
    if model.is_folder:
        recorded = _manifest_hash([(f.path, f.sha256, f.size) for f in files])
    else:
        recorded = files[0].sha256 if len(files) == 1 else "several files"
    if recorded != model.sha256:
        raise ArtifactCorruptError(
            f"the file list of {what} in the metadata no longer matches its sha256 {model.sha256[:12]}… "
            f"(paths or digests were altered); restore the metadata from a backup or register the model again"
        )
    return files


def download(ws: Workspace, model: ModelRecord, target_dir: str | os.PathLike[str] = ".", exist_ok: bool = False) -> str:
    """Copy the model's files to ``target_dir`` and return the path of the file or folder.

    The stored file list is checked first: every path must stay inside the destination (no
    absolute path, no ``..``, no symbolic link on the way leading out) and the list must hash
    to the version's sha256. Each file is checked against its sha256 while it is copied.
    ``exist_ok=False`` (Azure's default) refuses to overwrite an existing file.

    Raises:
        ValidationError: the destination exists and ``exist_ok`` is False; a stored path is
            unsafe (the metadata was altered; nothing is written).
        ArtifactCorruptError: stored bytes no longer match their sha256 (nothing is left
            at the destination for that file), or the file list no longer matches the
            version's sha256 (nothing is written).
    """
    target = Path(target_dir).expanduser()
    files = _checked_files(ws, model)
    dest_root = join_inside(target, model.root_name, f"root name of model {model.id}")
    base = dest_root if model.is_folder else target
    dests = [join_inside(base, f.path, f"file path of model {model.id} in the metadata") for f in files]
    if not exist_ok:
        existing = [str(c) for c in dests if c.exists()]
        if existing or (model.is_folder and dest_root.exists() and not dest_root.is_dir()):
            raise ValidationError(f"{existing[0] if existing else dest_root} already exists; pass exist_ok=True to overwrite")
    for f, dest in zip(files, dests, strict=True):
        ws.artifacts.get_file(f.sha256, dest, verify=True)
    return str(dest_root)


def materialize(ws: Workspace, model: ModelRecord) -> Path:
    """The model's files in the workspace cache ``models/<name>/<version>/<root>``
    (verified when made, see :func:`download`); returns the path of the file or folder.

    A cached copy is reused when its ``.complete`` marker holds the version's sha256 and every
    file is there with its registered size (a cheap check: a stat per file); otherwise it is
    made again. Raises as :func:`download`."""
    base = ws.path / "models" / model.name / str(model.version)
    if not _cache_intact(ws, model, base):
        if base.exists():
            shutil.rmtree(base, ignore_errors=True)
        with atomic_dir(base) as tmp:
            download(ws, model, tmp, exist_ok=True)
            (tmp / ".complete").write_text(model.sha256)
    return base / model.root_name


def _cache_intact(ws: Workspace, model: ModelRecord, base: Path) -> bool:
    try:
        if (base / ".complete").read_text() != model.sha256:
            return False
    except OSError:
        return False
    files = _checked_files(ws, model)
    root = base / model.root_name if model.is_folder else base
    for f in files:
        p = root / f.path
        if p.is_symlink() or not p.is_file() or p.stat().st_size != f.size:
            return False
    return True


def get_model_path(model_name: str, version: int | None = None, workspace: Workspace | str | os.PathLike[str] | None = None) -> str:
    """Path of a registered model's file or folder (Azure's ``Model.get_model_path``).

    Inside a deployment (``MLMANAGE_MODEL_DIR`` or ``AZUREML_MODEL_DIR`` set, no
    ``workspace``), resolved as Azure does: with one model the variable is the folder
    holding its files under their registered names; with several it is the root with
    ``<name>/<version>/`` below it (``version=None``: the highest present). Elsewhere, the
    model is materialized from the workspace (or the default one) and cached.

    Raises ModelNotFoundError naming the models that are available.
    """
    validate_model_name(model_name)
    model_dir = next((os.environ[v] for v in MODEL_DIR_VARS if os.environ.get(v)), None)
    if model_dir and workspace is None:
        return _path_in_model_dir(Path(model_dir), model_name, version)
    ws = resolve_workspace(workspace)
    return str(materialize(ws, get(ws, model_name, version)))


def _path_in_model_dir(model_dir: Path, name: str, version: int | None) -> str:
    """Azure's layout inside a deployment (see get_model_path): the scoring engine's resolution."""
    try:
        return model_path_in_deployment(name, version, model_dir)
    except ModelPathError as e:
        raise ModelNotFoundError(str(e)) from e


def set_tags(ws: Workspace, model: ModelRecord, tags: dict[str, str]) -> None:
    """Replace the tags (checked dict[str, str]); logs ``model.tags``."""
    tags = check_str_dict(tags, "tags")
    model_store.set_fields(ws, model, "model.tags", tags=tags)
    model.tags = dict(tags)


def add_properties(ws: Workspace, model: ModelRecord, properties: dict[str, str]) -> None:
    """Add properties. Properties are write-once, as in Azure: changing an existing key's
    value raises ValidationError (re-adding the same value is allowed)."""
    properties = check_str_dict(properties, "properties")
    for k, v in properties.items():
        if k in model.properties and model.properties[k] != v:
            raise ValidationError(
                f"property {k!r} of {model.id} is already {model.properties[k]!r}; properties can't be changed (use tags)"
            )
    new = {**model.properties, **properties}
    model_store.set_fields(ws, model, "model.properties", properties=new)
    model.properties = new


def set_description(ws: Workspace, model: ModelRecord, description: str) -> None:
    model_store.set_fields(ws, model, description=description)
    model.description = description


def users(ws: Workspace, model: ModelRecord) -> dict[str, list[str]]:
    """What uses this version: ``{"images": ["name:version"], "services": ["name"]}``."""
    return model_store.users(ws, model)


def delete(ws: Workspace, model: ModelRecord) -> None:
    """Delete a version's record and its cache folder (its artifacts go on the next garbage
    collection). Raises InUseError naming the images and services that use it."""
    model_store.delete_version(ws, model)
    shutil.rmtree(ws.path / "models" / model.name / str(model.version), ignore_errors=True)


def collect_temp_files(ws: Workspace, *, unmarked_max_age_s: float | None = None) -> tuple[int, int]:
    """Remove temporary files and folders of registrations and cache fills whose process is
    gone (``artifacts/tmp/put-*``, ``models/<name>/.tmp-*``): those carrying an owner marker
    whose process no longer runs, and unmarked ones older than ``unmarked_max_age_s`` seconds
    (None: all unmarked ones). Those of live processes are kept. Returns ``(entries, bytes)``."""
    n = freed = 0
    if hasattr(ws.artifacts, "collect_temp"):
        n, freed = ws.artifacts.collect_temp(unmarked_max_age_s=unmarked_max_age_s)
    models_dir = ws.path / "models"
    if models_dir.is_dir():
        for d in models_dir.iterdir():
            if d.is_dir() and not d.is_symlink():
                k, b = collect_temp(d, (".tmp-",), unmarked_max_age_s=unmarked_max_age_s)
                n, freed = n + k, freed + b
    return n, freed


def collect_garbage(workspace: Workspace | str | os.PathLike[str] | None = None) -> dict[str, int]:
    """Delete artifact objects no model version references (left by crashes or deletes), and
    temporary files of killed registrations (:func:`collect_temp_files`).

    Returns ``{"objects_deleted": n, "bytes_freed": b, "temp_deleted": t}`` (``b`` counts
    both). Only run it while nothing is registering (a registration in flight has objects not
    referenced yet; its temporary files are kept).
    """
    ws = resolve_workspace(workspace)
    live = model_store.referenced_objects(ws)
    n = freed = 0
    for sha in list(ws.artifacts.iter_objects()):
        if sha not in live:
            if hasattr(ws.artifacts, "object_path"):
                freed += ws.artifacts.object_path(sha).stat().st_size
            ws.artifacts.delete(sha)
            n += 1
    temp, temp_bytes = collect_temp_files(ws)
    return {"objects_deleted": n, "bytes_freed": freed + temp_bytes, "temp_deleted": temp}
