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
import stat
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

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
from mlmanage_jupyter.core.errors import ArtifactCorruptError, MlManageError, ValidationError
from mlmanage_jupyter.core.fsutil import (
    atomic_dir,
    check_regular_file,
    file_kind,
    walk_files,
    write_bytes_atomic,
)
from mlmanage_jupyter.core.store import images as image_store
from mlmanage_jupyter.core.store.artifacts import sha256_file
from mlmanage_jupyter.core.targets.base import ImageSpec, ModelRef
from mlmanage_jupyter.core.targets.docker_build import ImageBuildError, build_image, write_docker_files
from mlmanage_jupyter.core.workspace import Workspace

#: folders never copied from a source directory
EXCLUDED_DIRS = {".git", "__pycache__", ".ipynb_checkpoints", ".mlmanage", ".venv", "venv", "node_modules", ".azureml"}
APP_DIRNAME = "app"


def _source_files(inference_config: InferenceConfig, workspace: Workspace) -> list[tuple[str, Path]]:
    """(relative posix path, absolute path) of what goes into ``app/``: the whole source
    directory (minus EXCLUDED_DIRS, ``*.pyc``/``*.pyo`` and the workspace), or only the entry
    script. Files are walked by :data:`~mlmanage_jupyter.core.fsutil.SYMLINK_RULE`: links to
    files and folders are followed, special files, broken links and loops raise
    ValidationError naming the path before anything is read."""
    inference_config.validate()
    if not inference_config.source_directory:
        script = inference_config.entry_script_path()
        check_regular_file(script, "entry script")
        return [(script.name, script)]
    root = inference_config.source_dir_path().resolve()
    ws_path = workspace.path.resolve()
    return walk_files(
        root,
        "source directory",
        exclude_dirs=EXCLUDED_DIRS,
        skip_dir=lambda p: p.resolve() == ws_path,
        skip_file=lambda name: name.endswith((".pyc", ".pyo")),
    )


def source_directory_name(inference_config: InferenceConfig) -> str | None:
    """The source directory's folder name in the image (Azure's ``AZUREML_SOURCE_DIRECTORY``):
    its own name, or None without a source directory."""
    if not inference_config.source_directory:
        return None
    name = inference_config.source_dir_path().resolve().name
    return name if name not in ("", ".", "..") else "src"


def _content_hash(models: Sequence[ModelRecord], files: list[tuple[str, Path, str, int]], entry: str, env: dict[str, Any]) -> str:
    h = hashlib.sha256()
    h.update(f"engine {__version__}\nentry {entry}\n".encode())
    for m in sorted(models, key=lambda m: (m.name, m.version)):
        h.update(f"model {m.name}:{m.version} {m.sha256}\n".encode())
    for rel, _p, fh, _size in files:
        h.update(f"file {rel} {fh}\n".encode())
    h.update(json.dumps(env, sort_keys=True).encode())
    return h.hexdigest()


# ---------------------------------------------------------------- build-context digest
#: the context's own list of its files ``{relative path: [sha256, size]}``, not part of itself
MANIFEST_NAME = ".manifest.json"
#: per-context stat cache (owner-only, ``0600``) letting verification skip re-hashing files
#: whose stat did not change: ``{"format", "context_digest", "files": {path: [size, mtime_ns,
#: ctime_ns, inode, device, sha256]}}``; only a speed-up, the manifest digest stays the anchor
STAT_CACHE_NAME = ".statcache.json"
STAT_CACHE_FORMAT = 1
def _manifest_bytes(manifest: dict[str, list[Any]]) -> bytes:
    return json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()


def _generated_files(spec: dict[str, Any], env: Environment) -> dict[str, bytes]:
    """The files of a context made from the spec itself (not copied): requirements, conda
    file, image.json (the spec without its ``context_digest``)."""
    out = {"requirements.txt": env.requirements_text().encode()}
    if env.conda_dependencies:
        out["conda.yml"] = yaml.safe_dump(env.conda_dependencies, sort_keys=False).encode()
    out["image.json"] = json.dumps({k: v for k, v in spec.items() if k != "context_digest"}, indent=2).encode()
    return out


def _expected_manifest(
    ws: Workspace, models: Sequence[ModelRecord], files: list[tuple[str, Path, str, int]], generated: dict[str, bytes]
) -> dict[str, list[Any]]:
    """What the context must hold, from the inputs alone (no context read): ``app/`` files by
    the digests taken when planning, model files by the registry's digests, generated files."""
    man: dict[str, list[Any]] = {f"{APP_DIRNAME}/{rel}": [sha, size] for rel, _p, sha, size in files}
    for m in models:
        base = f"{MODELS_DIRNAME}/{m.name}/{m.version}" + (f"/{m.root_name}" if m.is_folder else "")
        for f in registry.get_files(ws, m):
            man[f"{base}/{f.path}"] = [f.sha256, f.size]
    for name, data in generated.items():
        man[name] = [hashlib.sha256(data).hexdigest(), len(data)]
    return man


#: a file's stat is trusted (its digest taken from the stat cache) only when the file was last
#: written at least this long before it was hashed: a write in the same timestamp tick as the
#: hash would leave an identical stat (git's "racily clean" problem). Filesystem timestamps
#: come from a coarse clock (a few ms; 1-2 s on some filesystems), hence seconds.
RACY_WINDOW_NS = 2_000_000_000


def _stat_key(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]


def _load_stat_cache(ctx: Path, digest: str) -> dict[str, list[Any]]:
    """The stat cache of ``ctx`` made for the manifest ``digest``, or ``{}`` (then every file
    is hashed) unless it is ours: a regular file (not a link) owned by this user, readable and
    writable by no one else, well formed, made for this very manifest."""
    try:
        fd = os.open(ctx / STAT_CACHE_NAME, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return {}
    try:
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
                return {}
            data = json.loads(f.read(64 << 20))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("format") != STAT_CACHE_FORMAT or data.get("context_digest") != digest:
        return {}
    files = data.get("files")
    if not isinstance(files, dict):
        return {}
    return {
        rel: e
        for rel, e in files.items()
        if isinstance(e, list) and len(e) == 6 and all(type(x) is int for x in e[:5]) and isinstance(e[5], str)
    }


def _save_stat_cache(ctx: Path, digest: str, files: dict[str, list[Any]]) -> None:
    """Write the stat cache (owner-only ``0600``, temp file + rename); a context that can't
    be written (read-only) just stays without one."""
    data = json.dumps({"format": STAT_CACHE_FORMAT, "context_digest": digest, "files": files}, separators=(",", ":"))
    tmp = ctx / f".{STAT_CACHE_NAME}.{uuid.uuid4().hex}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode())
        os.replace(tmp, ctx / STAT_CACHE_NAME)
    except OSError:
        tmp.unlink(missing_ok=True)


def _is_engine_file(rel: str) -> bool:
    """The context root's files the engine writes besides the manifest's (not additions), and
    their temporary files of an atomic write in progress."""
    if rel in (MANIFEST_NAME, STAT_CACHE_NAME, BUILD_LOG):
        return True
    return rel.endswith(".tmp") and rel.startswith((f".{MANIFEST_NAME}.", f".{STAT_CACHE_NAME}."))


def _context_entries(ctx: Path) -> dict[str, os.stat_result]:
    """``lstat`` of everything below ``ctx`` that is not a folder (links not followed: a link
    is an entry of its own), by posix path relative to ``ctx``; folders that can't be listed
    are entries too (then reported as not files)."""
    found: dict[str, os.stat_result] = {}

    def visit(folder: str, rel: str) -> None:
        with os.scandir(folder) as it:
            for e in it:
                r = f"{rel}{e.name}"
                st = e.stat(follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    try:
                        visit(e.path, r + "/")
                    except OSError:
                        found[r] = st
                else:
                    found[r] = st

    try:
        visit(str(ctx), "")
    except OSError:  # no context folder: every file is missing
        pass
    return found


def _context_problems(ctx: Path, manifest: dict[str, list[Any]], digest: str | None = None) -> list[str]:
    """What differs between the files of ``ctx`` and ``manifest`` ("<path>: <what>"): files
    added (any file the manifest doesn't list, but the engine's own files at the root and
    Python's ``__pycache__`` folders), missing, replaced by a link or special file, resized or
    with other content; empty when the context is intact.

    A file's content is re-hashed unless the stat cache (``digest``: the manifest's sha256, to
    use and refresh the cache; None: hash everything) holds it with the same size, mtime,
    ctime, inode and device and the manifest's sha256; so an unchanged context costs one
    ``lstat`` per file. Caching needs no trust in the cache for a *changed* file: any write
    changes its ctime (which no user can set)."""
    entries = _context_entries(ctx)
    problems = []
    for rel in sorted(entries.keys() - manifest.keys()):
        if _is_engine_file(rel) or "__pycache__" in rel.split("/")[:-1]:
            continue
        mode = entries[rel].st_mode
        kind = "" if stat.S_ISREG(mode) else f" ({'symbolic link' if stat.S_ISLNK(mode) else file_kind(mode)})"
        problems.append(f"{ctx / rel}: added since the build{kind}")
    cache = _load_stat_cache(ctx, digest) if digest else {}
    fresh: dict[str, list[Any]] = {}
    for rel, (sha, size) in sorted(manifest.items()):
        p = ctx / rel
        st = entries.get(rel)
        if st is None:
            problems.append(f"{p}: missing")
            continue
        if not stat.S_ISREG(st.st_mode):
            problems.append(f"{p}: now a {'symbolic link' if stat.S_ISLNK(st.st_mode) else file_kind(st.st_mode)}")
            continue
        if st.st_size != size:
            problems.append(f"{p}: size {st.st_size} bytes, built with {size}")
            continue
        key = _stat_key(st)
        if cache.get(rel) == [*key, sha]:
            fresh[rel] = cache[rel]
            continue
        started = time.time_ns()
        if sha256_file(p)[0] != sha:
            problems.append(f"{p}: content changed (sha256 differs)")
        elif max(st.st_mtime_ns, st.st_ctime_ns) < started - RACY_WINDOW_NS:
            fresh[rel] = [*key, sha]
    if digest and fresh != cache:
        _save_stat_cache(ctx, digest, fresh)
    return problems


def _raise_context_problems(what: str, problems: list[str]) -> None:
    shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
    raise ArtifactCorruptError(
        f"the build context of {what} was changed after it was built: {shown}. Rebuild the image "
        f"(delete it, then create it again from its model(s) and inference config), or restore the "
        f"context: put back the changed or missing file(s) and remove the added one(s)"
    )


def verify_context(image: ImageRecord) -> None:
    """Check an image's build context against the digest recorded when it was built
    (``spec["context_digest"]``: sha256 of its manifest ``.manifest.json``, which lists every
    file's sha256 and size): every file must be there, unchanged, and no other file may have
    been added (but Python's ``__pycache__`` folders and the engine's own root files). Files
    are re-hashed (about 1 s per GB) only when their stat differs from the owner-only stat
    cache ``.statcache.json`` (see :func:`_context_problems`); otherwise one ``lstat`` each.

    Images built before digests were recorded (no ``context_digest``) are not checked.
    Raises ArtifactCorruptError naming the added, changed, missing or replaced files (or the
    manifest) and saying to rebuild the image."""
    digest = image.spec.get("context_digest")
    if not digest or not image.pk:  # a plan's preview has no context yet
        return
    mpath = image.context_path / MANIFEST_NAME
    try:
        data = mpath.read_bytes()
    except OSError:
        _raise_context_problems(f"image {image.id}", [f"{mpath}: missing"])
    if hashlib.sha256(data).hexdigest() != digest:
        _raise_context_problems(f"image {image.id}", [f"{mpath}: content changed (sha256 differs)"])
    problems = _context_problems(image.context_path, json.loads(data), digest)
    if problems:
        _raise_context_problems(f"image {image.id}", problems)


def get(ws: Workspace, name: str, version: int | None = None) -> ImageRecord:
    """Version ``version`` of image ``name`` (latest when None); raises NotFoundError."""
    return image_store.get(ws, name, version)


def get_by_pk(ws: Workspace, pk: int | None) -> ImageRecord | None:
    return image_store.get_by_pk(ws, pk) if pk is not None else None


@dataclass
class ImagePlan:
    """What an image of ``models`` + an inference config would be, computed without writing
    anything: its ``spec`` (the ``image.json`` dict, no version yet, with the ``context_digest``
    the built context will have), ``content_hash``, the ``(relative path, source path, sha256,
    size)`` files of ``app/`` and the context's ``manifest``. ``existing`` is the recorded
    version with the same content, if any."""

    name: str
    models: list[ModelRecord]
    files: list[tuple[str, Path, str, int]]
    environment: Environment
    spec: dict[str, Any]
    content_hash: str
    existing: ImageRecord | None
    manifest: dict[str, list[Any]]

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

    ``models`` may be empty (Azure's ``Image.create``: "Can be an empty list"): the image then
    serves an entry script that needs no model, with an empty ``azureml-models`` folder.
    Raises ValidationError (bad name, duplicate model names, broken entry script).
    """
    validate_image_name(name)
    models = list(models)
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
    hashed = [(rel, p, *sha256_file(p)) for rel, p in files]
    chash = _content_hash(models, hashed, entry, env_d)
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
    manifest = _expected_manifest(ws, models, hashed, _generated_files(spec, env))
    spec["context_digest"] = hashlib.sha256(_manifest_bytes(manifest)).hexdigest()
    existing = image_store.find_by_hash(ws, name, chash)
    if existing is not None and not (existing.context_path / "image.json").is_file():
        existing = None
    return ImagePlan(name, models, hashed, env, spec, chash, existing, manifest)


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
    ctx, manifest = _build_context(ws, plan)
    return image_store.insert_version(
        ws,
        name=name,
        content_hash=plan.content_hash,
        description=description,
        tags=dict(tags or {}),
        spec={**plan.spec, "context_digest": hashlib.sha256(_manifest_bytes(manifest)).hexdigest()},
        context_path=ctx,
        models=plan.models,
    )


def _build_context(ws: Workspace, plan: ImagePlan) -> tuple[Path, dict[str, list[Any]]]:
    """Write the context to ``images/<content hash>`` atomically (temp folder, then rename),
    check every written file against the plan's manifest (a source file edited while it was
    copied is caught) and write the manifest. An existing context of the same content (made
    for another image name: its ``image.json`` differs by the name alone) is reused after the
    same check. Returns the folder and its manifest. Raises ArtifactCorruptError naming the
    files that differ."""
    final = ws.subdir("images") / plan.content_hash
    generated = _generated_files(plan.spec, plan.environment)
    if (final / "image.json").is_file():
        manifest = dict(plan.manifest)
        theirs = _same_but_name(final / "image.json", generated["image.json"])
        if theirs is not None:
            manifest["image.json"] = [hashlib.sha256(theirs).hexdigest(), len(theirs)]
        problems = _context_problems(final, manifest, hashlib.sha256(_manifest_bytes(manifest)).hexdigest())
        if problems:
            _raise_context_problems(f"the images of content {plan.content_hash[:12]}…", problems)
        if not (final / MANIFEST_NAME).is_file():  # made before digests were recorded
            write_bytes_atomic(final / MANIFEST_NAME, _manifest_bytes(manifest))
        return final, manifest
    with atomic_dir(final) as tmp:
        app = tmp / APP_DIRNAME
        app.mkdir()
        for rel, p, _sha, _size in plan.files:
            (app / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(p, app / rel)
        (tmp / MODELS_DIRNAME).mkdir()  # AZUREML_MODEL_DIR exists even for an image without models
        for m in plan.models:
            registry.download(ws, m, tmp / MODELS_DIRNAME / m.name / str(m.version), exist_ok=True)
        for fname, data in generated.items():
            (tmp / fname).write_bytes(data)
        problems = _context_problems(tmp, plan.manifest)
        if problems:
            raise ValidationError(
                "a file changed while the image was built: "
                + "; ".join(x.replace(str(tmp), "<context>") for x in problems[:5])
                + ". Build again once the files stop changing"
            )
        (tmp / MANIFEST_NAME).write_bytes(_manifest_bytes(plan.manifest))
    return final, plan.manifest


def _same_but_name(path: Path, ours: bytes) -> bytes | None:
    """The bytes of an existing ``image.json`` when it is ours but for the image name (the
    context is shared by names), else None (then the manifest check names it)."""
    try:
        data = path.read_bytes()
        theirs, mine = json.loads(data), json.loads(ours)
    except (OSError, ValueError):
        return None
    if not isinstance(theirs, dict) or not isinstance(theirs.get("name"), str):
        return None
    return data if {**theirs, "name": mine["name"]} == mine else None


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
    any CI can ``docker build`` it; nothing is built. Returns the path. Raises
    ArtifactCorruptError (nothing copied) when the context was edited since it was built."""
    dest = Path(path)
    if dest.exists():
        raise ValidationError(f"{dest} already exists; give a new folder")
    spec = image_spec(image, ws)  # verifies the context first: nothing is copied from an edited one
    shutil.copytree(image.context_path, dest, ignore=shutil.ignore_patterns(MANIFEST_NAME, STAT_CACHE_NAME))
    write_docker_files(spec, dest, cache_dir=build_cache_dir(ws))
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
    (its ``record`` and ``workspace`` are used). This is what deploy, update, package, save and
    export take, so the build context is verified here (:func:`verify_context`); raises
    ArtifactCorruptError naming the files changed since the build."""
    record: ImageRecord = getattr(image, "record", image)
    ws = workspace if workspace is not None else image.workspace
    verify_context(record)
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
