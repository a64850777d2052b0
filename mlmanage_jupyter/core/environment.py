"""Environment and InferenceConfig, with Azure ML v1's names and file formats.

``Environment`` holds the Python dependencies of an entry script: pip requirements
and/or a conda specification, and Docker settings (``env.docker.base_image``,
``env.docker.base_dockerfile``), Azure's ``env.python.conda_dependencies``
(:class:`~mlmanage_jupyter.core.conda_dependencies.CondaDependencies`) and
``Environment.register/get/list`` (JSON files under ``<workspace>/environments/``). ``InferenceConfig`` names the entry
script (``init()`` / ``run(data)``), its source directory and its environment, and can be
read from Azure's ``inferenceconfig.json``.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlmanage_jupyter.core.conda_dependencies import CondaDependencies
from mlmanage_jupyter.core.errors import NotFoundError, ValidationError
from mlmanage_jupyter.core.fsutil import (
    claim_json_version,
    load_yaml_file,
    load_yaml_text,
    read_json_object,
)

_ENV_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")


@dataclass
class DockerSection:
    """Azure's ``env.docker``: ``base_image`` (None = ``MLMANAGE_BASE_IMAGE`` or a slim
    Python image of the running version) and ``extra_docker_file_steps`` (Dockerfile lines
    added before the model and code layers)."""

    base_image: str | None = None
    extra_docker_file_steps: str | None = None
    enabled: bool = False  # Azure v1 field; ignored (targets decide)
    #: Azure's ``env.docker.base_dockerfile``: Dockerfile text, or the path of a Dockerfile
    #: (read when the image is made). The docker/kubernetes targets build it (no build
    #: context: ``COPY`` can't be used, as in Azure) and put the image's layers on top; it
    #: must give ``python3`` with ``venv``. Set ``base_image`` to None with it.
    base_dockerfile: str | None = None

    def dockerfile_text(self) -> str | None:
        """``base_dockerfile`` as Dockerfile text (a path is read). Raises ValidationError when
        it is neither an existing file nor Dockerfile text, or ``base_image`` is also set."""
        v = self.base_dockerfile
        if v is None:
            return None
        if not isinstance(v, str) or not v.strip():
            raise ValidationError(f"env.docker.base_dockerfile must be Dockerfile text or a path, got {v!r}")
        if self.base_image:
            raise ValidationError(
                f"env.docker.base_image ({self.base_image}) and base_dockerfile are both set: set "
                "env.docker.base_image = None to build from the Dockerfile"
            )
        if "\n" not in v.strip():
            p = Path(v).expanduser()
            if p.is_file():
                return p.read_text()
            if not re.match(r"^\s*(FROM|ARG)\s", v, re.IGNORECASE):
                raise ValidationError(f"env.docker.base_dockerfile: {v!r} is no file and not Dockerfile text (FROM ...)")
        if not re.search(r"^\s*FROM\s", v, re.IGNORECASE | re.MULTILINE):
            raise ValidationError("env.docker.base_dockerfile has no FROM line: give the whole Dockerfile")
        return v


@dataclass
class PythonSection:
    """Azure's ``env.python``: ``user_managed_dependencies`` (True: install nothing) and
    ``conda_dependencies``, a :class:`CondaDependencies` bound to the environment: editing it
    (``env.python.conda_dependencies.add_pip_package("x")``) or assigning one changes the
    environment's ``conda_dependencies``, ``pip_requirements`` and ``python_version``."""

    user_managed_dependencies: bool = False
    interpreter_path: str = "python"
    _owner: Environment | None = field(default=None, repr=False, compare=False)

    @property
    def conda_dependencies(self) -> CondaDependencies:
        if self._owner is None:
            raise ValidationError("this PythonSection belongs to no Environment: use env.python.conda_dependencies")
        return self._owner._bound_conda_dependencies()

    @conda_dependencies.setter
    def conda_dependencies(self, value: CondaDependencies | None) -> None:
        if self._owner is None:
            raise ValidationError("this PythonSection belongs to no Environment: use env.python.conda_dependencies")
        self._owner._set_conda_dependencies(value)


class Environment:
    """A named set of Python dependencies (Azure ML v1: ``azureml.core.Environment``).

    Attributes:
        name: environment name.
        pip_requirements: list of requirement lines (``["scikit-learn==1.5.0", ...]``).
        conda_dependencies: the parsed conda YAML (dict) when created from a conda file.
        docker: :class:`DockerSection`; python: :class:`PythonSection`.
        python_version: ``"3.11"`` style, from the conda file when it pins python.
        environment_variables: dict[str, str] set in the scoring process.
    """

    def __init__(self, name: str = "default") -> None:
        if not isinstance(name, str) or not _ENV_NAME_RE.match(name):
            raise ValidationError(f"invalid environment name {name!r}: letters, digits, '.', '_' and '-'")
        self.name = name
        self.version: str | None = None
        self.pip_requirements: list[str] = []
        self.conda_dependencies: dict[str, Any] | None = None
        self.docker = DockerSection()
        self.python = PythonSection(_owner=self)
        self.python_version: str | None = None
        self.environment_variables: dict[str, str] = {}
        self.inferencing_stack_version: str | None = None

    # ---------------------------------------------------------------- constructors
    @staticmethod
    def from_pip_requirements(name: str, file_path: str | os.PathLike[str]) -> Environment:
        """An environment from a ``requirements.txt`` (comments and blank lines dropped).

        Raises ValidationError when the file is missing or a line is an option pip can't use
        offline (``-e``/``--editable``).
        """
        p = Path(file_path)
        if not p.is_file():
            raise ValidationError(f"requirements file not found: {p}")
        env = Environment(name)
        env.pip_requirements = _parse_requirements(p.read_text(), str(p))
        return env

    @staticmethod
    def from_conda_specification(name: str, file_path: str | os.PathLike[str]) -> Environment:
        """An environment from a conda ``environment.yml``/``myenv.yml`` (Azure's format).

        The ``pip:`` sub-list becomes ``pip_requirements``; conda packages other than
        ``python`` and ``pip`` are also installed with pip under the same name and version
        (this engine installs with pip, not conda), and the ``python=3.x`` pin sets
        ``python_version``. Raises ValidationError for a missing file, invalid YAML, YAML
        anchors/aliases (refused: a few hundred bytes of aliases expand to gigabytes) or a file
        over 1 MiB (:func:`~mlmanage_jupyter.core.fsutil.load_yaml_file`).
        """
        p = Path(file_path)
        if not p.exists():
            raise ValidationError(f"conda specification file not found: {p}")
        return Environment._from_conda_spec(name, load_yaml_file(p, "conda specification"), str(p))

    @staticmethod
    def from_existing_conda_environment(name: str, conda_environment_name: str) -> Environment:
        """Azure's ``Environment.from_existing_conda_environment``: an environment from the
        packages of a local conda environment, read with ``conda env export -n
        <conda_environment_name> --no-builds`` (conda from ``$CONDA_EXE`` or ``PATH``), then as
        :meth:`from_conda_specification`. Raises ValidationError when conda is not installed
        (saying what to do instead) or the export fails (conda's message)."""
        conda = os.environ.get("CONDA_EXE") or shutil.which("conda")
        if not conda:
            raise ValidationError(
                f"Environment.from_existing_conda_environment reads `conda env export -n {conda_environment_name}`, "
                "but conda is not installed here (no $CONDA_EXE, no conda on PATH): run that command where the "
                "environment is, save it as env.yml and use Environment.from_conda_specification("
                f"{name!r}, 'env.yml')"
            )
        try:
            res = subprocess.run([conda, "env", "export", "-n", conda_environment_name, "--no-builds"],
                                 capture_output=True, text=True, timeout=300, check=False)
        except OSError as e:
            raise ValidationError(f"cannot run {conda}: {e}") from None
        if res.returncode != 0:
            raise ValidationError(
                f"`conda env export -n {conda_environment_name}` failed ({res.returncode}): "
                f"{(res.stderr or res.stdout).strip()[-2000:]}"
            )
        source = f"conda environment {conda_environment_name}"
        return Environment._from_conda_spec(name, load_yaml_text(res.stdout, source), source)

    @staticmethod
    def _from_conda_spec(name: str, spec: Any, source: str) -> Environment:
        spec = spec or {}
        if not isinstance(spec, dict):
            raise ValidationError(f"{source} must be a YAML mapping with a 'dependencies' list")
        spec.pop("prefix", None)  # the exporting machine's path
        env = Environment(name)
        env.conda_dependencies = spec
        env.pip_requirements, env.python_version = _conda_to_pip(spec, source)
        return env

    @staticmethod
    def from_dict(d: dict[str, Any]) -> Environment:
        """Inverse of :meth:`to_dict`; also accepts Azure's environment JSON
        (``{"name", "python": {"condaDependencies": {...}}, "docker": {"baseImage"}}``)."""
        env = Environment(d.get("name") or "default")
        env.version = d.get("version")
        env.pip_requirements = list(d.get("pip_requirements") or [])
        env.python_version = d.get("python_version")
        env.environment_variables = dict(d.get("environment_variables") or d.get("environmentVariables") or {})
        docker = d.get("docker") or {}
        env.docker.base_image = docker.get("base_image") or docker.get("baseImage")
        env.docker.extra_docker_file_steps = docker.get("extra_docker_file_steps")
        env.docker.base_dockerfile = docker.get("base_dockerfile") or docker.get("baseDockerfile")
        py = d.get("python") or {}
        env.python.user_managed_dependencies = bool(
            py.get("user_managed_dependencies", py.get("userManagedDependencies", False))
        )
        conda = d.get("conda_dependencies") or py.get("condaDependencies")
        if conda:
            env.conda_dependencies = conda
            pip, pyv = _conda_to_pip(conda, "environment")
            if not env.pip_requirements:
                env.pip_requirements = pip
            env.python_version = env.python_version or pyv
        return env

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``from_dict`` reads it back); ``docker.base_dockerfile`` holds the
        Dockerfile text (a path is read), and only when set. Raises ValidationError for a bad
        ``base_dockerfile`` (see :meth:`DockerSection.dockerfile_text`)."""
        d = self._to_dict()
        text = self.docker.dockerfile_text()
        if text is not None:
            d["docker"]["base_dockerfile"] = text
        return d

    def _to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "pip_requirements": list(self.pip_requirements),
            "conda_dependencies": self.conda_dependencies,
            "python_version": self.python_version,
            "environment_variables": dict(self.environment_variables),
            "docker": {
                "base_image": self.docker.base_image,
                "extra_docker_file_steps": self.docker.extra_docker_file_steps,
            },
            "python": {"user_managed_dependencies": self.python.user_managed_dependencies},
        }

    def requirements_text(self) -> str:
        return "".join(line + "\n" for line in self.pip_requirements)

    # ---------------------------------------------------------------- Azure's conda_dependencies
    def _bound_conda_dependencies(self) -> CondaDependencies:
        if self.conda_dependencies:
            spec: dict[str, Any] = self.conda_dependencies
        else:  # an environment from pip requirements: the same packages as a conda spec
            deps: list[Any] = [f"python={self.python_version}"] if self.python_version else []
            if self.pip_requirements:
                deps += ["pip", {"pip": list(self.pip_requirements)}]
            spec = {"name": "project_environment", "dependencies": deps, "channels": ["conda-forge"]}
        cd = CondaDependencies.from_dict(spec)
        cd._on_change = self._apply_conda_dependencies
        return cd

    def _apply_conda_dependencies(self, cd: CondaDependencies) -> None:
        spec = cd.as_dict()
        self.conda_dependencies = spec
        self.pip_requirements, self.python_version = _conda_to_pip(spec, f"environment {self.name}")

    def _set_conda_dependencies(self, cd: CondaDependencies | None) -> None:
        if cd is None:
            self.conda_dependencies, self.pip_requirements, self.python_version = None, [], None
            return
        if not isinstance(cd, CondaDependencies):
            raise ValidationError(
                f"env.python.conda_dependencies must be a CondaDependencies, got {type(cd).__name__}: "
                "use CondaDependencies.create(pip_packages=[...])"
            )
        self._apply_conda_dependencies(cd)
        cd._on_change = self._apply_conda_dependencies  # later edits of cd change this environment

    # ---------------------------------------------------------------- registered environments
    # Stored as JSON files <workspace>/environments/<name>/<version>.json (to_dict() form):
    # no metadata table, so no schema migration; versions are "1", "2", ... as in Azure.
    @staticmethod
    def _folder(workspace: Any, name: str | None = None) -> Path:
        root = getattr(workspace, "path", None)
        if not isinstance(root, Path):
            raise ValidationError(f"workspace must be a Workspace (Workspace.from_config() or Workspace(path)), got {workspace!r}")
        return root / "environments" / name if name else root / "environments"

    @staticmethod
    def _versions(folder: Path) -> list[int]:
        if not folder.is_dir():
            return []
        return sorted(int(p.stem) for p in folder.glob("*.json") if p.stem.isdigit())

    def register(self, workspace: Any) -> Environment:
        """Store this environment in ``workspace`` as the next version of ``self.name``
        (Azure's ``Environment.register``) and return the registered copy (``version`` set).
        An unchanged definition returns the latest version instead of adding one."""
        folder = self._folder(workspace, self.name)
        folder.mkdir(parents=True, exist_ok=True)
        mine = {**self.to_dict(), "version": None}
        while True:
            versions = self._versions(folder)
            if versions:
                latest = Environment._read(folder / f"{versions[-1]}.json")
                if {**latest.to_dict(), "version": None} == mine:
                    return latest
            nxt = (versions[-1] if versions else 0) + 1
            if not claim_json_version(folder, nxt, {**mine, "version": str(nxt)}):
                continue
            self.version = str(nxt)
            return Environment._read(folder / f"{nxt}.json")

    @staticmethod
    def _read(path: Path) -> Environment:
        d, _ = read_json_object(path, "registered environment")
        return Environment.from_dict(d)

    @staticmethod
    def get(workspace: Any, name: str, version: str | int | None = None, label: str | None = None) -> Environment:
        """A registered environment (the latest version unless ``version``). Raises
        NotFoundError naming the registered names/versions; Azure's curated environments
        (``AzureML-*``) are not available here."""
        folder = Environment._folder(workspace, name)
        versions = Environment._versions(folder)
        if not versions:
            known = sorted(Environment.list(workspace))
            hint = " (Azure's curated environments are not available: build one with Environment(...))" \
                if name.lower().startswith("azureml-") else ""
            raise NotFoundError(f"no environment named {name!r} is registered; registered: {known or 'none'}{hint}")
        if version is None:
            return Environment._read(folder / f"{versions[-1]}.json")
        if not str(version).isdigit() or int(version) not in versions:
            raise NotFoundError(f"environment {name!r} has no version {version!r}; versions: {[str(v) for v in versions]}")
        return Environment._read(folder / f"{int(version)}.json")

    @staticmethod
    def list(workspace: Any) -> dict[str, Environment]:
        """The latest version of every registered environment, by name (Azure's shape)."""
        root = Environment._folder(workspace)
        out: dict[str, Environment] = {}
        if root.is_dir():
            for folder in sorted(p for p in root.iterdir() if p.is_dir()):
                versions = Environment._versions(folder)
                if versions:
                    out[folder.name] = Environment._read(folder / f"{versions[-1]}.json")
        return out

    def __repr__(self) -> str:
        return f"Environment(name={self.name!r}, pip_requirements={self.pip_requirements!r})"


def _parse_requirements(text: str, source: str) -> list[str]:
    out = []
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("-e", "--editable")):
            raise ValidationError(f"{source}: editable requirement {line!r} can't be packed into an image")
        out.append(line)
    return out


def _conda_to_pip(spec: dict[str, Any], source: str) -> tuple[list[str], str | None]:
    deps = spec.get("dependencies") or []
    if not isinstance(deps, list):
        raise ValidationError(f"{source}: 'dependencies' must be a list")
    pip: list[str] = []
    pyv = None
    for d in deps:
        if isinstance(d, dict) and "pip" in d:
            pip.extend(str(x) for x in d["pip"] or [])
        elif isinstance(d, str):
            pkg = d.split("::")[-1].strip()
            m = re.match(r"^([A-Za-z0-9_.-]+)\s*(?:=+|>=|<=|>|<)?\s*([^=\s]*)", pkg)
            if not m:
                continue
            nm, ver = m.group(1), m.group(2)
            if nm == "python":
                pyv = ".".join(ver.split(".")[:2]) if ver else None
            elif nm != "pip":
                pip.append(f"{nm}=={ver}" if ver and "*" not in ver else nm)
    return pip, pyv


def warn_python_mismatch(env: Environment | None, running: str, where: str, stacklevel: int = 3) -> None:
    """One UserWarning when ``env.python_version`` (a conda spec's ``python=X.Y`` pin) is not
    the ``running`` Python (``"X.Y"``) of the target (the local interpreter, or the docker/
    kubernetes base image's python3): the service runs ``running`` instead (issue 11: no silent
    drops)."""
    pinned = env.python_version if env is not None else None
    if pinned and ".".join(str(pinned).split(".")[:2]) != running:
        warnings.warn(
            f"environment {env.name!r} pins python={pinned}, but the {where} runs Python {running}: "
            f"the service runs on Python {running}",
            UserWarning,
            stacklevel=stacklevel,
        )



@dataclass
class InferenceConfig:
    """How to run a model (Azure ML v1: ``azureml.core.model.InferenceConfig``).

    Args:
        entry_script: the script with ``init()`` and ``run(data)``; relative to
            ``source_directory`` when one is given.
        source_directory: a folder copied with the script (helpers, config files).
        environment: an :class:`Environment`; default: the running interpreter's packages.
        runtime: ``"python"`` (the only runtime, as in Azure v1's last releases).
        conda_file: a conda YAML (Azure's older parameter); becomes the environment.

    Raises ValidationError when the script or folder is missing, the runtime is unknown,
    or the script does not parse / lacks ``init`` or ``run`` (see :meth:`validate`).
    """

    entry_script: str
    source_directory: str | None = None
    environment: Environment | None = None
    runtime: str = "python"
    conda_file: str | None = None
    extra_docker_file_steps: str | None = None
    description: str | None = None
    _base: Path = field(default_factory=Path.cwd, repr=False)

    def __post_init__(self) -> None:
        if self.runtime.lower() != "python":
            raise ValidationError(f"runtime {self.runtime!r} is not supported: use 'python'")
        if self.environment is None and self.conda_file:
            self.environment = Environment.from_conda_specification("conda-env", self._resolve(self.conda_file))

    def _resolve(self, p: str) -> Path:
        path = Path(p).expanduser()
        if not path.is_absolute() and self.source_directory:
            cand = self.source_dir_path() / path
            if cand.exists():
                return cand
        return path if path.is_absolute() else (self._base / path)

    def source_dir_path(self) -> Path:
        if not self.source_directory:
            return self.entry_script_path().parent
        p = Path(self.source_directory).expanduser()
        return p if p.is_absolute() else self._base / p

    def entry_script_path(self) -> Path:
        p = Path(self.entry_script).expanduser()
        if p.is_absolute():
            return p
        if self.source_directory:
            sd = Path(self.source_directory).expanduser()
            return (sd if sd.is_absolute() else self._base / sd) / p
        return self._base / p

    def entry_script_relpath(self) -> str:
        """The entry script's path relative to the source directory (posix)."""
        try:
            return self.entry_script_path().resolve().relative_to(self.source_dir_path().resolve()).as_posix()
        except ValueError:
            raise ValidationError(
                f"entry script {self.entry_script_path()} is not inside source_directory {self.source_dir_path()}"
            ) from None

    def validate(self) -> None:
        """Check the script exists, parses, and defines ``init`` and ``run`` (without running it)."""
        if self.source_directory and not self.source_dir_path().is_dir():
            raise ValidationError(f"source_directory not found: {self.source_dir_path()}")
        check_entry_script(self.entry_script_path())
        self.entry_script_relpath()

    # Azure's inferenceconfig.json: entryScript, sourceDirectory, runtime, condaFile,
    # environment (an Azure environment JSON), extraDockerfileSteps, description.
    @staticmethod
    def from_json(source: str | os.PathLike[str] | dict[str, Any], base_dir: str | os.PathLike[str] | None = None) -> InferenceConfig:
        """Read Azure ML's ``inferenceconfig.json`` (a path or a dict), paths relative to
        the file's folder (or ``base_dir``). Raises ValidationError for a missing file,
        bad JSON or a missing ``entryScript``."""
        d, p = read_json_object(source, "inference config")
        base = Path(base_dir) if base_dir else (p.resolve().parent if p else Path.cwd())
        if not d.get("entryScript"):
            raise ValidationError("inference config needs an 'entryScript'")
        env = None
        if isinstance(d.get("environment"), dict):
            env = Environment.from_dict(d["environment"])
        cfg = InferenceConfig(
            entry_script=d["entryScript"],
            source_directory=d.get("sourceDirectory"),
            environment=env,
            runtime=d.get("runtime", "python"),
            conda_file=None,
            extra_docker_file_steps=d.get("extraDockerfileSteps"),
            description=d.get("description"),
            _base=base,
        )
        if d.get("condaFile") and env is None:
            cfg.environment = Environment.from_conda_specification("conda-env", cfg._resolve(d["condaFile"]))
        return cfg

    def to_dict(self) -> dict[str, Any]:
        """Azure's inferenceconfig.json field names (``entryScript``, ``sourceDirectory``,
        ``runtime``, ...), the environment in :meth:`Environment.to_dict`'s form."""
        return {
            "entryScript": self.entry_script,
            "sourceDirectory": self.source_directory,
            "runtime": self.runtime,
            "environment": self.environment.to_dict() if self.environment else None,
            "extraDockerfileSteps": self.extra_docker_file_steps,
            "description": self.description,
        }


def check_entry_script(path: str | os.PathLike[str]) -> None:
    """Parse an entry script and check it defines ``init`` and ``run`` at module level.

    Raises ValidationError naming the file and line of a syntax error, or what is missing.
    """
    p = Path(path)
    if not p.is_file():
        raise ValidationError(f"entry script not found: {p}")
    try:
        tree = ast.parse(p.read_text(), filename=str(p))
    except SyntaxError as e:
        raise ValidationError(f"entry script {p.name} has a syntax error at line {e.lineno}: {e.msg}") from e
    defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    defined |= {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
    missing = [f for f in ("init", "run") if f not in defined]
    if missing:
        raise ValidationError(f"entry script {p.name} must define {' and '.join(f'{m}()' for m in missing)}")
