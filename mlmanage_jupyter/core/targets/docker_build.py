"""Docker images from image build contexts: Dockerfile, wheelhouse, engine wheel, build, export.

An :class:`~mlmanage_jupyter.core.images.Image` build context (CONTRIBUTING.md) becomes a
Docker build context with these additions (written by :func:`write_docker_files`)::

    Dockerfile          generated (see :func:`render_dockerfile`)
    .dockerignore       image.json and requirements.txt stay out of the daemon's context
    wheels/             requirements.txt (what the image installs) + every wheel it needs,
                        downloaded on the host with ``pip download --only-binary=:all:`` for
                        the base image's Python version and platform (so the build itself
                        needs no index); only requirements.txt with ``pip_index=True``
    engine/             the wheel of the running mlmanage-jupyter (the scoring engine),
                        built from its source tree with ``pip wheel --no-deps`` (hatchling)

Layer order (so a new model version or an entry-script edit rebuilds in seconds)::

    base image -> non-root user (uid 10001) -> extra_docker_file_steps
      -> dependencies (venv /opt/mlmanage/venv, built in a separate stage from wheels/)
      -> engine wheel -> azureml-models/ -> app/

In the image: ``/var/azureml-app/app`` (``MLMANAGE_APP_ROOT``),
``/var/azureml-app/azureml-models/<name>/<version>/...`` (``AZUREML_MODEL_DIR`` as in Azure),
the engine listening on ``0.0.0.0:5001``, ``MLMANAGE_RUN_DIR=/var/lib/mlmanage/run``, a
``HEALTHCHECK`` on ``GET /`` (done with python, no curl). No key is baked in: the docker
target copies ``/var/lib/mlmanage/keys/keys.json`` into the container at run time.

Base image: ``env.docker.base_image`` (as in Azure), else ``$MLMANAGE_BASE_IMAGE``, else
``python:<major>.<minor>-slim`` of the running interpreter.

Caches (``$MLMANAGE_CACHE_DIR``, default ``<workspace>/cache``): ``wheelhouse/<key>/``
keyed by the sha256 of the requirements + Python version + platform tags; ``engine/<version>-<hash>/``
keyed by the engine version + sha256 of its source files; ``base-images/<image id>.json``
(the Python version and libc a base image has).

Build with the Docker Engine's classic builder through the docker SDK's low-level
``APIClient.build(decode=True)`` (no BuildKit/buildx needed); each output line goes to
``progress`` as it comes, and a failed step raises :class:`ImageBuildError` with that step's log.
"""

from __future__ import annotations

import email.parser
import hashlib
import io
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlmanage_jupyter import __version__
from mlmanage_jupyter.core.errors import MlManageError, ValidationError, WebserviceException
from mlmanage_jupyter.core.fsutil import atomic_dir

if TYPE_CHECKING:
    import docker

    from mlmanage_jupyter.core.images import Image

ProgressFn = Callable[[str], None]

#: uid/gid the scoring engine runs as in every image (the same in every version, so containers
#: of two versions can share one SO_REUSEPORT listening port during an update)
CONTAINER_UID = 10001
APP_ROOT = "/var/azureml-app"
VENV = "/opt/mlmanage/venv"
ENGINE_PORT = 5001
RUN_DIR = "/var/lib/mlmanage/run"
KEYS_DIR = "/var/lib/mlmanage/keys"
KEYS_FILE = f"{KEYS_DIR}/keys.json"
#: the HEALTHCHECK command (exec form): GET / on the engine's port, with python
HEALTHCHECK_CMD = [
    "python",
    "-c",
    "import os,urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/' % os.environ.get('MLMANAGE_PORT', '5001'), timeout=3)",
]
LABEL_PREFIX = "org.mlmanage"

# Azure's framework names -> the distribution that unpickles such a model
_FRAMEWORK_DISTS = {"ScikitLearn": "scikit-learn", "PyTorch": "torch", "TensorFlow": "tensorflow", "Onnx": "onnxruntime"}


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


def cache_dir(image: Image) -> Path:
    """``$MLMANAGE_CACHE_DIR`` or ``<workspace>/cache`` (created)."""
    d = Path(os.environ.get("MLMANAGE_CACHE_DIR") or image.workspace.path / "cache")
    d.mkdir(parents=True, exist_ok=True)
    return d


def base_image_for(image: Image) -> str:
    """``env.docker.base_image``, else ``$MLMANAGE_BASE_IMAGE``, else ``python:X.Y-slim``
    (X.Y: the environment's python_version, else the running interpreter's)."""
    env = image.environment
    if env.docker.base_image:
        return env.docker.base_image
    if os.environ.get("MLMANAGE_BASE_IMAGE"):
        return os.environ["MLMANAGE_BASE_IMAGE"]
    pyv = env.python_version or f"{sys.version_info.major}.{sys.version_info.minor}"
    return f"python:{pyv}-slim"


def image_tag(image: Image, files: DockerFiles | None = None) -> str:
    """The local tag of an image: ``mlmanage/<name>:<version>-<12 hex>``, the hex a sha256 of
    the content hash and, when given, the Docker inputs (Dockerfile, requirements, engine
    wheel), so a new engine or base image gives a new tag."""
    h = hashlib.sha256(image.content_hash.encode())
    if files is not None:
        h.update(files.dockerfile.encode())
        h.update("\n".join(files.requirements).encode())
        h.update(files.engine.name.encode() + files.engine.parent.name.encode())
    return f"mlmanage/{image.name}:{image.version}-{h.hexdigest()[:12]}"


# ------------------------------------------------------------------------------------ python target
@dataclass(frozen=True)
class PythonTarget:
    """The interpreter wheels are downloaded for: ``version`` ("3.11"), ``machine`` ("x86_64"),
    ``libc`` ("glibc" or "musl" or ""), ``libc_version`` ("2.36")."""

    version: str
    machine: str
    libc: str
    libc_version: str

    @property
    def abi(self) -> str:
        return "cp" + self.version.replace(".", "")

    def platforms(self) -> list[str]:
        """pip ``--platform`` tags this interpreter accepts (manylinux / musllinux)."""
        arch = self.machine
        if self.libc == "musl":
            minor = int(self.libc_version.split(".")[1]) if self.libc_version.count(".") else 2
            return [f"musllinux_1_{m}_{arch}" for m in range(minor, 0, -1)]
        try:
            minor = int(self.libc_version.split(".")[1])
        except (IndexError, ValueError):
            minor = 17
        tags = [f"manylinux_2_{m}_{arch}" for m in range(minor, 4, -1)]
        legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
        tags += [f"{name}_{arch}" for m, name in legacy.items() if m <= minor]
        return tags

    def to_dict(self) -> dict[str, str]:
        return {"version": self.version, "machine": self.machine, "libc": self.libc, "libc_version": self.libc_version}


_PROBE = (
    "import json, platform, sys; lib = platform.libc_ver(); "
    "print(json.dumps({'version': '%d.%d' % sys.version_info[:2], 'machine': platform.machine(), "
    "'libc': lib[0], 'libc_version': lib[1]}))"
)


def host_python_target(version: str | None = None) -> PythonTarget:
    """The running interpreter's target (used when no engine is reachable to probe the base image)."""
    lib, ver = platform.libc_ver()
    return PythonTarget(version or f"{sys.version_info.major}.{sys.version_info.minor}", platform.machine(), lib, ver)


def ensure_base_image(client: docker.DockerClient, base: str, progress: ProgressFn = _no_progress) -> Any:
    """The base image (``docker.models.images.Image``), pulled when it is not present.

    Raises WebserviceException naming the image and how to fix it when it can't be pulled.
    """
    import docker

    try:
        return client.images.get(base)
    except docker.errors.ImageNotFound:
        pass
    progress(f"pulling base image {base}")
    try:
        return client.images.pull(base)
    except docker.errors.APIError as e:
        raise WebserviceException(
            f"base image {base} is not on the Docker Engine and can't be pulled ({e.explanation or e}). "
            "Pull or build it, or choose another one with env.docker.base_image or MLMANAGE_BASE_IMAGE"
        )


def probe_python(client: docker.DockerClient, base: str, cache: Path, progress: ProgressFn = _no_progress) -> PythonTarget:
    """Run the base image once to read its Python version, machine and libc (cached by image id)."""
    img = ensure_base_image(client, base, progress)
    f = cache / "base-images" / f"{img.id.replace(':', '-')}.json"
    if f.is_file():
        return PythonTarget(**json.loads(f.read_text()))
    try:
        out = client.containers.run(base, entrypoint=["python3", "-c", _PROBE], command=[], remove=True, user="0")
    except Exception as e:  # noqa: BLE001 - ContainerError, APIError
        raise WebserviceException(f"base image {base} has no working python3 (needed to run the scoring engine): {e}")
    d = json.loads(out.decode().strip().splitlines()[-1])
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(json.dumps(d))
    return PythonTarget(**d)


# ------------------------------------------------------------------------------------ engine wheel
def _package_root() -> Path:
    import mlmanage_jupyter

    return Path(mlmanage_jupyter.__file__).resolve().parent


def _source_hash(pkg: Path, extra: Iterable[Path] = ()) -> str:
    h = hashlib.sha256()
    files = sorted(p for p in pkg.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo"))
    for p in [*files, *extra]:
        h.update(f"{p.relative_to(pkg.parent).as_posix()}\n".encode())
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def engine_wheel(cache: Path, progress: ProgressFn = _no_progress) -> Path:
    """The wheel of the running mlmanage-jupyter, built once per version + source hash.

    From the source tree (``pip wheel --no-deps``, hatchling) when the package runs from one
    (editable install); otherwise from a copy of the installed package with its installed
    metadata. Raises WebserviceException with pip's output when the build fails.
    """
    pkg = _package_root()
    root = pkg.parent
    pyproject = root / "pyproject.toml"
    in_tree = pyproject.is_file() and 'name = "mlmanage-jupyter"' in pyproject.read_text()
    digest = _source_hash(pkg, [pyproject] if in_tree else [])
    out = cache / "engine" / f"{__version__}-{digest[:16]}"
    wheels = sorted(out.glob("mlmanage_jupyter-*.whl")) if out.is_dir() else []
    if wheels:
        return wheels[0]
    progress(f"building the scoring engine wheel (mlmanage-jupyter {__version__})")
    with tempfile.TemporaryDirectory(prefix="mlm-engine-") as tmp:
        src = root
        if not in_tree:
            src = Path(tmp) / "src"
            shutil.copytree(pkg, src / pkg.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            (src / "pyproject.toml").write_text(_fallback_pyproject())
        cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", "-w", str(Path(tmp) / "w"), str(src)]
        try:
            import hatchling  # noqa: F401

            cmd.insert(5, "--no-build-isolation")
        except ImportError:
            pass
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        built = sorted((Path(tmp) / "w").glob("mlmanage_jupyter-*.whl"))
        if r.returncode != 0 or not built:
            raise WebserviceException(f"building the scoring engine wheel failed:\n{r.stdout[-3000:]}{r.stderr[-3000:]}")
        out.mkdir(parents=True, exist_ok=True)
        dest = out / built[0].name
        shutil.copy2(built[0], dest)
    return dest


def _fallback_pyproject() -> str:
    from importlib import metadata

    reqs = metadata.requires("mlmanage-jupyter") or []
    base = [r for r in reqs if "extra ==" not in r]
    serve = [r.split(";")[0].strip() for r in reqs if re.search(r"extra\s*==\s*['\"]serve['\"]", r)]
    return (
        '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'
        f'[project]\nname = "mlmanage-jupyter"\nversion = "{__version__}"\n'
        f"dependencies = {json.dumps(base)}\n[project.optional-dependencies]\nserve = {json.dumps(serve)}\n"
        '[tool.hatch.build.targets.wheel]\npackages = ["mlmanage_jupyter"]\n'
    )


def engine_requirements(wheel: Path) -> list[str]:
    """The ``serve`` extra's requirements, read from the wheel's METADATA (``Requires-Dist ...;
    extra == "serve"``), pinned to the versions installed here when they are installed (so the
    image runs what was tested)."""
    with zipfile.ZipFile(wheel) as z:
        meta_name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        meta = email.parser.Parser().parsestr(z.read(meta_name).decode())
    out = []
    for r in meta.get_all("Requires-Dist") or []:
        req, _, marker = r.partition(";")
        if not re.search(r"extra\s*==\s*['\"]serve['\"]", marker):
            continue
        name = re.split(r"[\s<>=!~\[(]", req.strip(), maxsplit=1)[0]
        out.append(_pin(name) or req.strip())
    return out


def _pin(dist: str) -> str | None:
    from importlib import metadata

    try:
        return f"{dist}=={metadata.version(dist)}"
    except metadata.PackageNotFoundError:
        return None


# ------------------------------------------------------------------------------------ requirements
def _imports_of(app_dir: Path) -> set[str]:
    import ast

    mods: set[str] = set()
    local = {p.stem for p in app_dir.rglob("*.py")} | {p.name for p in app_dir.iterdir() if p.is_dir()}
    for p in app_dir.rglob("*.py"):
        try:
            tree = ast.parse(p.read_text(encoding="utf-8", errors="replace"))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                mods.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                mods.add(node.module.split(".")[0])
    return {m for m in mods if m not in local and m not in sys.stdlib_module_names}


_PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".sav", ".pt", ".pth")


def _pickle_modules(path: Path, limit_ops: int = 200_000) -> set[str]:
    """Top-level modules a pickle (or joblib) file imports when loaded (its GLOBAL opcodes),
    read without unpickling anything; stops at the first byte that is not pickle code."""
    import pickletools

    mods: set[str] = set()
    strings: list[str] = []
    try:
        with open(path, "rb") as f:
            for n, (op, arg, _pos) in enumerate(pickletools.genops(f)):
                if n > limit_ops:
                    break
                if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8"):
                    strings.append(str(arg))
                elif op.name == "GLOBAL" and arg:
                    mods.add(str(arg).split(" ")[0].split(".")[0])
                elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                    mods.add(strings[-2].split(".")[0])
                elif op.name == "STOP":
                    break
    except Exception:  # noqa: BLE001 - not (only) a pickle: keep what was read
        pass
    return {m for m in mods if m and m not in sys.stdlib_module_names}


def user_requirements(image: Image) -> list[str]:
    """What the image installs for the entry script: the Environment's pip requirements; when
    it has none (the default environment, which on the local target means "the running
    interpreter's packages"), the installed distributions the app's files import, the modules
    the models' pickle/joblib files import (read from their GLOBAL opcodes, nothing is
    unpickled) and the models' frameworks (ScikitLearn -> scikit-learn), pinned to the versions
    installed here.
    ``user_managed_dependencies=True`` installs nothing."""
    env = image.environment
    if env.python.user_managed_dependencies:
        return []
    if env.pip_requirements:
        return list(env.pip_requirements)
    from importlib import metadata

    by_module = metadata.packages_distributions()
    dists: set[str] = set()
    modules = _imports_of(image.context_path / "app")
    models_dir = image.context_path / "azureml-models"
    for p in models_dir.rglob("*") if models_dir.is_dir() else []:
        if p.suffix.lower() in _PICKLE_SUFFIXES and p.is_file():
            modules |= _pickle_modules(p)
    for mod in modules:
        for d in by_module.get(mod, []):
            if d.lower().replace("_", "-") != "mlmanage-jupyter":
                dists.add(d)
    from mlmanage_jupyter.core.registry import Model

    for m in image.spec.get("models", []):
        try:
            fw = Model(image.workspace, m["name"], int(m["version"])).model_framework
        except MlManageError:
            continue
        if fw in _FRAMEWORK_DISTS:
            dists.add(_FRAMEWORK_DISTS[fw])
    return sorted(p for p in (_pin(d) for d in dists) if p)


# ------------------------------------------------------------------------------------ wheelhouse
def pip_index_enabled(pip_index: bool | None = None) -> bool:
    """``pip_index`` if given, else ``$MLMANAGE_DOCKER_PIP_INDEX == "1"``: install from an index
    during the build instead of from a host-side wheelhouse."""
    if pip_index is not None:
        return pip_index
    return os.environ.get("MLMANAGE_DOCKER_PIP_INDEX") == "1"


def wheelhouse(requirements: list[str], target: PythonTarget, cache: Path, progress: ProgressFn = _no_progress) -> Path:
    """A folder with every wheel ``requirements`` need on ``target`` (``pip download
    --only-binary=:all:``), cached by the sha256 of the requirements and the target.

    Raises WebserviceException with pip's output when a requirement has no binary wheel for
    the target or can't be found.
    """
    key = hashlib.sha256(json.dumps([sorted(requirements), target.to_dict(), target.platforms()]).encode()).hexdigest()[:24]
    dest = cache / "wheelhouse" / key
    if (dest / ".complete").is_file():
        progress(f"dependencies: cached wheelhouse {dest}")
        return dest
    with atomic_dir(dest, prefix=f".{key}-") as tmp:
        (tmp / "requirements.txt").write_text("".join(r + "\n" for r in requirements))
        if requirements:
            progress(f"dependencies: downloading wheels for Python {target.version} ({target.machine}): {', '.join(requirements)}")
            cmd = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--progress-bar", "off",
                   "--only-binary=:all:", "--python-version", target.version, "--implementation", "cp",
                   "--abi", target.abi, "--abi", "abi3", "--abi", "none"]  # fmt: skip
            for p in target.platforms():
                cmd += ["--platform", p]
            cmd += ["-d", str(tmp), "-r", str(tmp / "requirements.txt")]
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            lines: list[str] = []
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(line.rstrip())
                if line.startswith(("Collecting", "Saved", "ERROR")):
                    progress("  " + line.rstrip())
            if proc.wait(timeout=1800) != 0:
                raise WebserviceException(
                    f"could not download wheels for Python {target.version} on {target.machine} "
                    f"(pip download --only-binary=:all:): fix the requirement, or set MLMANAGE_DOCKER_PIP_INDEX=1 "
                    "to let the build install from an index:\n" + "\n".join(lines[-30:])
                )
        (tmp / ".complete").write_text("")
    return dest


# ------------------------------------------------------------------------------------ Dockerfile
def _env_line(values: dict[str, str]) -> str:
    return "ENV " + " \\\n    ".join(f"{k}={json.dumps(str(v))}" for k, v in values.items())


def render_dockerfile(image: Image, base: str, pip_index: bool = False) -> str:
    """The Dockerfile of an image (layer order and paths in the module docstring)."""
    env = image.environment
    extra = (env.docker.extra_docker_file_steps or "").strip()
    models = ",".join(f"{m['name']}:{m['version']}" for m in image.spec.get("models", []))
    model_dir = f"{APP_ROOT}/{image.model_dir_env()}"
    install = (
        f"{VENV}/bin/python -m pip install --no-cache-dir --disable-pip-version-check "
        + ("" if pip_index else "--no-index --find-links /tmp/wheels ")
        + "-r /tmp/wheels/requirements.txt"
    )
    uid = CONTAINER_UID
    hc = json.dumps(HEALTHCHECK_CMD)
    return f"""# Generated by mlmanage-jupyter {__version__} for image {image.id} ({image.content_hash[:12]}).
# Build: DOCKER_BUILDKIT=0 docker build -t mlmanage/{image.name}:{image.version} .
# Run:   docker run -p 5001:5001 mlmanage/{image.name}:{image.version}    (then POST http://127.0.0.1:5001/score)

# ---- dependencies, installed in their own stage from wheels/ (downloaded on the host)
FROM {base} AS deps
USER root
RUN python3 -m venv {VENV}
COPY wheels/ /tmp/wheels/
RUN {install}

# ---- the image
FROM {base}
USER root
RUN (getent passwd {uid} >/dev/null || useradd --uid {uid} --user-group --create-home --home-dir /home/mlmanage \\
        --shell /usr/sbin/nologin mlmanage 2>/dev/null \\
     || (echo "mlmanage:x:{uid}:{uid}::/home/mlmanage:/usr/sbin/nologin" >> /etc/passwd \\
         && echo "mlmanage:x:{uid}:" >> /etc/group && mkdir -p /home/mlmanage)) \\
 && mkdir -p {APP_ROOT} {RUN_DIR} {KEYS_DIR} \\
 && chown -R {uid}:{uid} /var/lib/mlmanage /home/mlmanage && chmod 0700 {KEYS_DIR}
{("# extra_docker_file_steps" + chr(10) + extra + chr(10) + "USER root" + chr(10)) if extra else ""}COPY --from=deps {VENV} {VENV}
ENV PATH="{VENV}/bin:$PATH" \\
    PYTHONUNBUFFERED=1 \\
    MLMANAGE_HOST=0.0.0.0 \\
    MLMANAGE_PORT={ENGINE_PORT} \\
    MLMANAGE_RUN_DIR={RUN_DIR} \\
    MLMANAGE_APP_ROOT={APP_ROOT}/app \\
    AML_APP_ROOT={APP_ROOT}/app
COPY engine/ /tmp/engine/
RUN python -m pip install --no-cache-dir --disable-pip-version-check --no-deps --no-index /tmp/engine/*.whl \\
 && rm -rf /tmp/engine
COPY azureml-models/ {APP_ROOT}/azureml-models/
{_env_line({"AZUREML_MODEL_DIR": model_dir, "MLMANAGE_MODEL_DIR": model_dir, "MLMANAGE_MODELS": models})}
COPY app/ {APP_ROOT}/app/
{_env_line({"MLMANAGE_ENTRY_SCRIPT": image.entry_script, "AZUREML_ENTRY_SCRIPT": image.entry_script,
            "AZUREML_SOURCE_DIRECTORY": image.spec.get("source_directory") or ""})}
WORKDIR {APP_ROOT}/app
USER {uid}:{uid}
EXPOSE {ENGINE_PORT}
HEALTHCHECK --interval=10s --timeout=5s --start-period=300s --retries=3 CMD {hc}
CMD ["python", "-m", "mlmanage_jupyter.server"]
"""


_DOCKERIGNORE = "image.json\nrequirements.txt\nconda.yml\n"


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
    image: Image,
    client: docker.DockerClient | None = None,
    progress: ProgressFn = _no_progress,
    pip_index: bool | None = None,
) -> DockerFiles:
    """Resolve base image, engine wheel, requirements and wheelhouse for ``image``. With a
    ``client`` the base image is probed for its Python; without one the environment's
    ``python_version`` (or the running interpreter's) and this machine's platform are used."""
    cache = cache_dir(image)
    base = base_image_for(image)
    use_index = pip_index_enabled(pip_index)
    engine = engine_wheel(cache, progress)
    reqs = user_requirements(image)
    # the engine's own dependencies, unless the user pinned the same distribution
    names = {re.split(r"[\s<>=!~\[;(]", r, maxsplit=1)[0].lower().replace("_", "-") for r in reqs}
    reqs += [r for r in engine_requirements(engine) if re.split(r"[\s<>=!~\[;(]", r, maxsplit=1)[0].lower() not in names]
    wheels = None
    if not use_index:
        target = probe_python(client, base, cache, progress) if client is not None else host_python_target(image.environment.python_version)
        wheels = wheelhouse(reqs, target, cache, progress)
    return DockerFiles(render_dockerfile(image, base, use_index), wheels, reqs, engine, base)


def write_docker_files(image: Image, dest: str | os.PathLike[str], pip_index: bool | None = None, progress: ProgressFn = _no_progress) -> None:
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
            files = prepare(image, client, progress, pip_index)
        except WebserviceException as e:
            if client is None:
                raise
            # the engine answers but can't give the base image (not pulled, offline): an
            # export needs no engine, so target this interpreter's Python as when none answers
            progress(f"cannot probe the base image on the Docker Engine ({e}); targeting this machine's Python")
            files = prepare(image, None, progress, pip_index)
    finally:
        if client is not None:
            client.close()
    (dest / "Dockerfile").write_text(files.dockerfile)
    (dest / ".dockerignore").write_text(_DOCKERIGNORE)
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


def _context_tar(image: Image, files: DockerFiles, out: Any) -> None:
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
    image: Image,
    progress: ProgressFn = _no_progress,
    *,
    client: docker.DockerClient | None = None,
    pip_index: bool | None = None,
    force: bool = False,
    nocache: bool = False,
) -> str:
    """Build ``image`` into a Docker image on the engine; return its local tag
    (:func:`image_tag`), also recorded with ``image.set_docker_image(tag)``.

    Nothing is built when that tag already exists (unless ``force``); ``nocache`` also
    ignores the engine's layer cache (a cold build). ``progress`` gets each
    line of the build output as it is printed. Raises ImageBuildError (failing step + its
    log) when the build fails, WebserviceException when the engine can't be reached.
    """
    own = client is None
    client = client or docker_client()
    try:
        files = prepare(image, client, progress, pip_index)
        tag = image_tag(image, files)
        if not (force or nocache):
            import docker

            try:
                client.images.get(tag)
                if image.docker_image != tag:
                    image.set_docker_image(tag)
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
        image.set_docker_image(tag)
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


def export_tarball(image: Image, path: str | os.PathLike[str], progress: ProgressFn = _no_progress) -> str:
    """``docker save`` the image (built first when needed) to ``path`` (a .tar to ``docker
    load`` on another machine, e.g. an edge device). Returns the path. Raises ValidationError
    when ``path`` exists."""
    dest = Path(path)
    if dest.exists():
        raise ValidationError(f"{dest} already exists; give a new file name")
    client = docker_client()
    try:
        tag = build_image(image, progress, client=client)
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
