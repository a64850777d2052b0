"""Wheels for an image, downloaded on the host: the base image's Python (probed once per
image id), the engine wheel built from this package, and a wheelhouse per requirement set.

Caches (under the cache folder): ``wheelhouse/<key>/`` keyed by the sha256 of the
requirements + Python version + platform tags; ``engine/<version>-<hash>/`` keyed by the
engine version + sha256 of its source files; ``base-images/<image id>.json`` (the Python
version and libc a base image has).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlmanage_jupyter import __version__
from mlmanage_jupyter.core.errors import WebserviceException
from mlmanage_jupyter.core.fsutil import atomic_dir

if TYPE_CHECKING:
    import docker

ProgressFn = Callable[[str], None]


def _no_progress(_msg: str) -> None:
    pass


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


