"""Docker images from image build contexts: prepare the Docker inputs, build, export.

An image build context (an :class:`~mlmanage_jupyter.core.targets.base.ImageSpec`, CONTRIBUTING.md) becomes a
Docker build context with these additions (written by :func:`write_docker_files`)::

    Dockerfile          generated (see :func:`render_dockerfile`)
    .dockerignore       image.json and requirements.txt stay out of the daemon's context
    wheels/             requirements.txt (what the image installs) + every wheel it needs,
                        downloaded on the host with ``pip download --only-binary=:all:`` for
                        the base image's Python version and platform (so the build itself
                        needs no index); only requirements.txt with ``pip_index=True``
    engine/             the wheel of the running mlmanage-jupyter (the scoring engine),
                        built from its source tree with ``pip wheel --no-deps`` (hatchling)

The jobs live in their own modules: :mod:`.dockerfile` (the Dockerfile, layer order, the
paths every image shares, the engine ``ENV`` rendered from ``Settings``),
:mod:`.docker_requirements` (what the image installs), :mod:`.docker_wheelhouse` (the base
image's Python, the engine wheel, the wheelhouse); this module prepares those inputs, builds
and exports.

Base image: ``env.docker.base_image`` (as in Azure), else ``$MLMANAGE_BASE_IMAGE``, else
``python:<major>.<minor>-slim`` of the running interpreter.

Caches: ``$MLMANAGE_CACHE_DIR``, else the ``cache_dir`` the caller gives (``<workspace>/cache``);
see :mod:`.docker_wheelhouse`. Functions here take an ``ImageSpec`` and write nothing to
the workspace: :func:`build_image` returns the tag and the caller records it.

Build with the Docker Engine's classic builder through the docker SDK's low-level
``APIClient.build(decode=True)`` (no BuildKit/buildx needed); each output line goes to
``progress`` as it comes, and a failed step raises :class:`ImageBuildError` with that step's log.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlmanage_jupyter import __version__
from mlmanage_jupyter.core.environment import warn_python_mismatch
from mlmanage_jupyter.core.errors import ValidationError, WebserviceException
from mlmanage_jupyter.core.targets.base import ImageSpec
from mlmanage_jupyter.core.targets.docker_requirements import engine_requirements, user_requirements
from mlmanage_jupyter.core.targets.docker_wheelhouse import (
    PythonTarget,
    engine_wheel,
    host_python_target,
    pip_index_enabled,
    probe_python,
    wheelhouse,
)
from mlmanage_jupyter.core.targets.dockerfile import (
    APP_ROOT,
    CONTAINER_UID,
    DOCKERIGNORE,
    ENGINE_PORT,
    HEALTHCHECK_CMD,
    KEYS_DIR,
    KEYS_FILE,
    LABEL_PREFIX,
    RUN_DIR,
    VENV,
    image_settings,
    render_dockerfile,
)

if TYPE_CHECKING:
    import docker

__all__ = [
    "APP_ROOT",
    "CONTAINER_UID",
    "ENGINE_PORT",
    "HEALTHCHECK_CMD",
    "KEYS_DIR",
    "KEYS_FILE",
    "LABEL_PREFIX",
    "RUN_DIR",
    "VENV",
    "DockerFiles",
    "ImageBuildError",
    "PythonTarget",
    "base_dockerfile_tag",
    "base_image_for",
    "build_image",
    "docker_client",
    "ensure_base_dockerfile",
    "export_tarball",
    "image_settings",
    "image_tag",
    "prepare",
    "render_dockerfile",
    "resolve_cache_dir",
    "write_docker_files",
]

ProgressFn = Callable[[str], None]

class ImageBuildError(WebserviceException):
    """``docker build`` failed; the message holds the failing step and its log, ``logs`` the whole build log."""

    def __init__(self, message: str, logs: str = "") -> None:
        super().__init__(message)
        self.logs = logs


def _no_progress(_msg: str) -> None:
    pass


# ------------------------------------------------------------------------------------ engine
def docker_client() -> docker.DockerClient:
    """``docker.from_env()`` (honours ``DOCKER_HOST``), checked with a ping.

    Raises WebserviceException when the docker SDK is missing or the engine can't be reached.
    """
    try:
        import docker
    except ImportError:
        raise WebserviceException("the docker target needs the docker SDK: pip install 'mlmanage-jupyter[docker]'")
    try:
        client = docker.from_env(timeout=300)
        client.ping()
    except Exception as e:  # noqa: BLE001 - DockerException, requests errors, ...
        where = os.environ.get("DOCKER_HOST") or "the local socket"
        raise WebserviceException(
            f"cannot reach the Docker Engine at {where}: {e}. Start it (dockerd / Docker Desktop) or set DOCKER_HOST"
        )
    return client


def resolve_cache_dir(default: str | os.PathLike[str]) -> Path:
    """``$MLMANAGE_CACHE_DIR`` (a cache shared by workspaces, e.g. in CI) or ``default``
    (callers pass ``<workspace>/cache``); created."""
    d = Path(os.environ.get("MLMANAGE_CACHE_DIR") or default)
    d.mkdir(parents=True, exist_ok=True)
    return d


def base_dockerfile_tag(text: str) -> str:
    """The local tag of the image built from an ``env.docker.base_dockerfile`` text:
    ``mlmanage/base:<12 hex of its sha256>`` (same text, same tag: built once)."""
    return f"mlmanage/base:{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def ensure_base_dockerfile(image: ImageSpec, client: docker.DockerClient, progress: ProgressFn = _no_progress) -> str | None:
    """Build the image's ``env.docker.base_dockerfile`` (Dockerfile text, no build context,
    as Azure's) into :func:`base_dockerfile_tag` unless that tag exists; return the tag, or
    None when the environment has no base Dockerfile. Raises ImageBuildError (failing step +
    log) when it fails to build, ValidationError for a bad ``base_dockerfile``."""
    text = image.environment.docker.dockerfile_text()
    if text is None:
        return None
    import docker

    tag = base_dockerfile_tag(text)
    try:
        client.images.get(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    progress(f"building the base image {tag} from env.docker.base_dockerfile")
    stream = client.api.build(fileobj=io.BytesIO(text.encode()), tag=tag, rm=True, forcerm=True, decode=True, pull=False,
                              labels={f"{LABEL_PREFIX}.base-dockerfile": "1"})
    _follow_build(stream, progress, tag)
    return tag


def base_image_for(image: ImageSpec) -> str:
    """``env.docker.base_dockerfile`` built (:func:`base_dockerfile_tag`), else
    ``env.docker.base_image``, else ``$MLMANAGE_BASE_IMAGE``, else ``python:X.Y-slim``
    (X.Y: the environment's python_version, else the running interpreter's)."""
    env = image.environment
    text = env.docker.dockerfile_text()
    if text is not None:
        return base_dockerfile_tag(text)
    if env.docker.base_image:
        return env.docker.base_image
    if os.environ.get("MLMANAGE_BASE_IMAGE"):
        return os.environ["MLMANAGE_BASE_IMAGE"]
    pyv = env.python_version or f"{sys.version_info.major}.{sys.version_info.minor}"
    return f"python:{pyv}-slim"


def image_tag(image: ImageSpec, files: DockerFiles | None = None) -> str:
    """The local tag of an image: ``mlmanage/<name>:<version>-<12 hex>``, the hex a sha256 of
    the content hash and, when given, the Docker inputs (Dockerfile, requirements, engine
    wheel), so a new engine or base image gives a new tag."""
    h = hashlib.sha256(image.content_hash.encode())
    if files is not None:
        h.update(files.dockerfile.encode())
        h.update("\n".join(files.requirements).encode())
        h.update(files.engine.name.encode() + files.engine.parent.name.encode())
    return f"mlmanage/{image.name}:{image.version}-{h.hexdigest()[:12]}"


@dataclass
class DockerFiles:
    """What an image's Docker build needs besides its build context: ``dockerfile`` (text),
    ``wheels`` (folder of wheels, or None with pip_index), ``requirements`` (installed list),
    ``engine`` (the engine wheel), ``base`` (base image)."""

    dockerfile: str
    wheels: Path | None
    requirements: list[str]
    engine: Path
    base: str


def prepare(
    image: ImageSpec,
    client: docker.DockerClient | None = None,
    progress: ProgressFn = _no_progress,
    pip_index: bool | None = None,
    *,
    cache_dir: str | os.PathLike[str],
) -> DockerFiles:
    """Resolve base image, engine wheel, requirements and wheelhouse for ``image``. With a
    ``client`` the base image is probed for its Python; without one the environment's
    ``python_version`` (or the running interpreter's) and this machine's platform are used."""
    cache = resolve_cache_dir(cache_dir)
    base = base_image_for(image)
    use_index = pip_index_enabled(pip_index)
    engine = engine_wheel(cache, progress)
    reqs = user_requirements(image)
    # the engine's own dependencies, unless the user pinned the same distribution
    names = {re.split(r"[\s<>=!~\[;(]", r, maxsplit=1)[0].lower().replace("_", "-") for r in reqs}
    reqs += [r for r in engine_requirements(engine) if re.split(r"[\s<>=!~\[;(]", r, maxsplit=1)[0].lower() not in names]
    wheels = None
    probed = probe_python(client, base, cache, progress) if client is not None else None  # cached per base image id
    if probed is not None:  # a conda spec pinning another Python than the image has: say which one runs
        warn_python_mismatch(image.environment, probed.version, f"base image {base}", stacklevel=2)
    if not use_index:
        target = probed or host_python_target(image.environment.python_version)
        wheels = wheelhouse(reqs, target, cache, progress)
    return DockerFiles(render_dockerfile(image, base, use_index), wheels, reqs, engine, base)


def write_docker_files(
    image: ImageSpec,
    dest: str | os.PathLike[str],
    pip_index: bool | None = None,
    progress: ProgressFn = _no_progress,
    *,
    cache_dir: str | os.PathLike[str],
) -> None:
    """Add ``Dockerfile``, ``.dockerignore``, ``wheels/`` and ``engine/`` to an exported build
    context ``dest`` (``Image.save(path)`` calls this) so ``docker build`` works anywhere,
    also without an index. Uses the Docker Engine to probe the base image when one answers."""
    dest = Path(dest)
    client = None
    try:
        client = docker_client()
    except WebserviceException:
        pass
    try:
        try:
            files = prepare(image, client, progress, pip_index, cache_dir=cache_dir)
        except WebserviceException as e:
            if client is None:
                raise
            # the engine answers but can't give the base image (not pulled, offline): an
            # export needs no engine, so target this interpreter's Python as when none answers
            progress(f"cannot probe the base image on the Docker Engine ({e}); targeting this machine's Python")
            files = prepare(image, None, progress, pip_index, cache_dir=cache_dir)
    finally:
        if client is not None:
            client.close()
    (dest / "Dockerfile").write_text(files.dockerfile)
    base_text = image.environment.docker.dockerfile_text()
    if base_text is not None:  # env.docker.base_dockerfile: built first, as the base
        (dest / "base.Dockerfile").write_text(base_text)
    (dest / ".dockerignore").write_text(DOCKERIGNORE)
    wdir = dest / "wheels"
    wdir.mkdir(exist_ok=True)
    if files.wheels is not None:
        for p in files.wheels.iterdir():
            if p.name != ".complete":
                shutil.copy2(p, wdir / p.name)
    (wdir / "requirements.txt").write_text("".join(r + "\n" for r in files.requirements))
    (dest / "engine").mkdir(exist_ok=True)
    shutil.copy2(files.engine, dest / "engine" / files.engine.name)


# ------------------------------------------------------------------------------------ build
def _add_tree(tar: tarfile.TarFile, src: Path, arcname: str) -> None:
    """Add files with fixed mtime/owner and world-readable modes, so identical content gives
    identical layers (and cache hits) and the non-root user can read them."""
    paths = [src] if src.is_file() else [src, *sorted(src.rglob("*"))]
    for p in paths:
        rel = arcname if p == src else f"{arcname}/{p.relative_to(src).as_posix()}"
        info = tar.gettarinfo(str(p), arcname=rel)
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        info.mtime = 0
        if info.isdir():
            info.mode = 0o755
            tar.addfile(info)
        elif info.isfile():
            info.mode = 0o755 if info.mode & 0o111 else 0o644
            with open(p, "rb") as f:
                tar.addfile(info, f)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def _context_tar(image: ImageSpec, files: DockerFiles, out: Any) -> None:
    ctx = Path(image.context_path)
    with tarfile.open(fileobj=out, mode="w") as tar:
        _add_bytes(tar, "Dockerfile", files.dockerfile.encode())
        _add_tree(tar, ctx / "app", "app")
        _add_tree(tar, ctx / "azureml-models", "azureml-models")
        info = tarfile.TarInfo("wheels")
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(info)
        _add_bytes(tar, "wheels/requirements.txt", "".join(r + "\n" for r in files.requirements).encode())
        if files.wheels is not None:
            for p in sorted(files.wheels.glob("*.whl")) + sorted(files.wheels.glob("*.tar.gz")):
                _add_tree(tar, p, f"wheels/{p.name}")
        _add_tree(tar, files.engine, f"engine/{files.engine.name}")
    out.seek(0)


def build_image(
    image: ImageSpec,
    progress: ProgressFn = _no_progress,
    *,
    cache_dir: str | os.PathLike[str],
    client: docker.DockerClient | None = None,
    pip_index: bool | None = None,
    force: bool = False,
    nocache: bool = False,
) -> str:
    """Build ``image`` into a Docker image on the engine; return its local tag
    (:func:`image_tag`); the caller records it (targets return it in ``DeployResult.docker_image``).

    Nothing is built when that tag already exists (unless ``force``); ``nocache`` also
    ignores the engine's layer cache (a cold build). ``progress`` gets each
    line of the build output as it is printed. Raises ImageBuildError (failing step + its
    log) when the build fails, WebserviceException when the engine can't be reached.
    """
    own = client is None
    client = client or docker_client()
    try:
        ensure_base_dockerfile(image, client, progress)
        files = prepare(image, client, progress, pip_index, cache_dir=cache_dir)
        tag = image_tag(image, files)
        if not (force or nocache):
            import docker

            try:
                client.images.get(tag)
                progress(f"image {tag} is already built")
                return tag
            except docker.errors.ImageNotFound:
                pass
        progress(f"building {tag} from {files.base}")
        with tempfile.TemporaryFile(prefix="mlm-context-") as ctx:
            _context_tar(image, files, ctx)
            labels = {
                f"{LABEL_PREFIX}.image": image.id,
                f"{LABEL_PREFIX}.content-hash": image.content_hash,
                f"{LABEL_PREFIX}.engine-version": __version__,
            }
            stream = client.api.build(
                fileobj=ctx, custom_context=True, tag=tag, rm=True, forcerm=True, decode=True, labels=labels, pull=False,
                nocache=nocache,
            )
            _follow_build(stream, progress, tag)
        return tag
    finally:
        if own:
            client.close()


_STEP_RE = re.compile(r"^Step \d+/\d+ : ")


def _follow_build(stream: Iterable[dict[str, Any]], progress: ProgressFn, tag: str) -> None:
    all_lines: list[str] = []
    step_lines: list[str] = []
    pending = ""
    for chunk in stream:
        if "stream" in chunk:
            pending += chunk["stream"]
            *lines, pending = pending.split("\n")
            for line in lines:
                line = line.rstrip("\r")
                if _STEP_RE.match(line):
                    step_lines = []
                step_lines.append(line)
                all_lines.append(line)
                if line.strip():
                    progress(line)
        elif "error" in chunk or "errorDetail" in chunk:
            if pending:
                step_lines.append(pending)
                all_lines.append(pending)
            msg = (chunk.get("errorDetail") or {}).get("message") or chunk.get("error") or "unknown error"
            step_log = "\n".join(step_lines[-80:])
            raise ImageBuildError(f"docker build of {tag} failed: {msg}\n--- failing step ---\n{step_log}", "\n".join(all_lines))
        elif chunk.get("status"):  # pulling the base image
            progress(str(chunk["status"]) + (f" {chunk['progress']}" if chunk.get("progress") else ""))


def export_tarball(
    image: ImageSpec, path: str | os.PathLike[str], progress: ProgressFn = _no_progress, *, cache_dir: str | os.PathLike[str]
) -> str:
    """``docker save`` the image (built first when needed) to ``path`` (a .tar to ``docker
    load`` on another machine, e.g. an edge device). Returns the path. Raises ValidationError
    when ``path`` exists."""
    dest = Path(path)
    if dest.exists():
        raise ValidationError(f"{dest} already exists; give a new file name")
    client = docker_client()
    try:
        tag = build_image(image, progress, client=client, cache_dir=cache_dir)
        progress(f"saving {tag} to {dest}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.part")
        with open(tmp, "wb") as f:
            for chunk in client.images.get(tag).save(named=True):
                f.write(chunk)
        os.replace(tmp, dest)
        return str(dest)
    finally:
        client.close()

