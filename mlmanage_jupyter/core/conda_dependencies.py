"""Azure ML v1's ``CondaDependencies`` (``azureml.core.conda_dependencies``): a conda
environment specification (``environment.yml``) edited in code.

The specification is the conda YAML mapping Azure writes::

    name: project_environment
    dependencies:
    - python=3.11
    - pip
    - scikit-learn=1.5.0          # conda packages
    - pip:
      - inference-schema          # pip packages
    channels:
    - conda-forge

How it differs from Azure's (source: Azure's reference for ``CondaDependencies`` and the v1
docs "Create & use software environments"): ``create()`` does not add ``azureml-defaults``
(the scoring engine provides what it provided) and its default ``python_version`` is the
running interpreter's ``major.minor`` instead of Azure's 3.8; this engine installs conda
packages with pip under the same name and version (``core/environment.py``).
"""

from __future__ import annotations

import copy
import os
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml

from mlmanage_jupyter.core.errors import ValidationError
from mlmanage_jupyter.core.fsutil import load_yaml_file

DEFAULT_ENV_NAME = "project_environment"
DEFAULT_CHANNELS = ["conda-forge"]

# conda MatchSpec names we accept: name, optional channel:: prefix, optional version/build
_CONDA_SPEC_RE = re.compile(
    r"^(?:[A-Za-z0-9_.-]+::)?([A-Za-z0-9_.-]+)"
    r"(?:\s*(?:==|=|>=|<=|>|<|!=|~=)\s*[0-9*][^\s=]*(?:=[^\s=]+)?|\s+[0-9*][^\s]*(?:\s+[^\s]+)?)?$"
)
# pip requirement names (PEP 508 name, optional [extras]), followed by anything pip understands
_PIP_NAME_RE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?")
_PY_VERSION_RE = re.compile(r"^\d+(\.\d+){0,2}$")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _conda_name(spec: str) -> str:
    m = _CONDA_SPEC_RE.match(spec.strip())
    if not m:
        raise ValidationError(
            f"conda package {spec!r} is not a conda spec: use 'name', 'name=1.2' or 'name>=1.2'"
        )
    return _norm(m.group(1))


def _loose_name(spec: str) -> str:
    """The package name of a spec already in a file (never raises: files may hold any spec)."""
    try:
        return _conda_name(spec)
    except ValidationError:
        return _norm(re.split(r"[=<>!~\s]", spec.split("::")[-1].strip(), maxsplit=1)[0])


def _pip_name(spec: str) -> str:
    s = spec.strip()
    if s.startswith(("-", "git+", "http://", "https://", "file:")):
        return s  # an option or URL: its own identity
    m = _PIP_NAME_RE.match(s)
    if not m:
        raise ValidationError(f"pip package {spec!r} is not a requirement: use 'name', 'name==1.2' or 'name[extra]>=1.2'")
    return _norm(m.group(1))


def _loose_pip(spec: str) -> str:
    try:
        return _pip_name(spec)
    except ValidationError:
        return spec.strip()


def _check_str(kind: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{kind} must be a non-empty string, got {value!r}")
    return value.strip()


class CondaDependencies:
    """A conda specification (Azure ML v1: ``azureml.core.conda_dependencies.CondaDependencies``).

    Args:
        conda_dependencies_file_path: a conda YAML file to start from (Azure's parameter);
            ``None`` starts from an empty specification (no python pin, no packages).

    Packages are strings: conda specs (``"numpy=1.26"``) and pip requirements
    (``"scikit-learn==1.5.0"``). Adding a package whose name is already present replaces it
    (Azure's behaviour). Raises ValidationError for a missing or malformed file, or a
    package string that is not a spec; YAML anchors and aliases are refused (an alias bomb of a
    few hundred bytes expands to gigabytes; see :func:`~mlmanage_jupyter.core.fsutil.load_yaml_file`).
    """

    def __init__(self, conda_dependencies_file_path: str | os.PathLike[str] | None = None,
                 _underlying_structure: dict[str, Any] | None = None) -> None:
        self._on_change: Callable[[CondaDependencies], None] | None = None
        where = "conda dependencies"
        if _underlying_structure is not None:
            spec = copy.deepcopy(_underlying_structure)
        elif conda_dependencies_file_path is not None:
            p = Path(conda_dependencies_file_path).expanduser()
            if not p.exists():
                raise ValidationError(f"conda dependencies file not found: {p}")
            spec = load_yaml_file(p, "conda dependencies file") or {}
            where = str(p)
        else:
            spec = {"name": DEFAULT_ENV_NAME, "dependencies": [], "channels": list(DEFAULT_CHANNELS)}
        if not isinstance(spec, dict):
            raise ValidationError(f"{where} must be a YAML mapping with a 'dependencies' list")
        deps = spec.setdefault("dependencies", [])
        if not isinstance(deps, list):
            raise ValidationError(f"{where}: 'dependencies' must be a list")
        for d in deps:
            if isinstance(d, dict) and not isinstance(d.get("pip", []), list):
                raise ValidationError(f"{where}: the 'pip' entry must be a list of requirements")
        self._spec: dict[str, Any] = spec

    # ------------------------------------------------------------------ constructors
    @staticmethod
    def create(
        pip_indexurl: str | None = None,
        pip_packages: Iterable[str] | None = None,
        conda_packages: Iterable[str] | None = None,
        python_version: str | None = None,
        pin_sdk_version: bool = True,
    ) -> CondaDependencies:
        """A specification with these packages (Azure's ``CondaDependencies.create``).

        ``python_version`` (``"3.11"``; default the running interpreter's) is pinned as the
        conda package ``python=<version>``; ``pip_indexurl`` becomes a ``--index-url`` pip
        option; ``pin_sdk_version`` is accepted and ignored (no Azure SDK is added)."""
        cd = CondaDependencies()
        cd.set_python_version(python_version or f"{sys.version_info.major}.{sys.version_info.minor}")
        for c in conda_packages or []:
            cd.add_conda_package(c)
        if pip_indexurl:
            cd.set_pip_option(f"--index-url {_check_str('pip_indexurl', pip_indexurl)}")
        for p in pip_packages or []:
            cd.add_pip_package(p)
        return cd

    @staticmethod
    def from_dict(spec: dict[str, Any]) -> CondaDependencies:
        """A copy of a parsed conda YAML mapping."""
        return CondaDependencies(_underlying_structure=spec)

    def as_dict(self) -> dict[str, Any]:
        """A deep copy of the conda YAML mapping."""
        return copy.deepcopy(self._spec)

    # ------------------------------------------------------------------ internals
    def _deps(self) -> list[Any]:
        return self._spec["dependencies"]

    def _pip_list(self, create: bool) -> list[str] | None:
        for d in self._deps():
            if isinstance(d, dict) and "pip" in d:
                if d["pip"] is None:
                    d["pip"] = []
                return d["pip"]
        if not create:
            return None
        if not any(isinstance(d, str) and _loose_name(d) == "pip" for d in self._deps()):
            self._deps().append("pip")
        entry: dict[str, list[str]] = {"pip": []}
        self._deps().append(entry)
        return entry["pip"]

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(self)

    # ------------------------------------------------------------------ packages
    @property
    def conda_packages(self) -> list[str]:
        """The conda package specs, without ``python`` and ``pip`` (Azure: an iterator)."""
        return [d for d in self._deps() if isinstance(d, str) and _loose_name(d) not in ("python", "pip")]

    @property
    def pip_packages(self) -> list[str]:
        """The pip requirements, without pip options (``--index-url ...``)."""
        return [p for p in (self._pip_list(False) or []) if not str(p).startswith("-")]

    @property
    def pip_options(self) -> list[str]:
        return [p for p in (self._pip_list(False) or []) if str(p).startswith("-")]

    @property
    def conda_channels(self) -> list[str]:
        return list(self._spec.get("channels") or [])

    def add_conda_package(self, conda_package: str) -> None:
        """Add ``conda_package`` (``"numpy"``, ``"numpy=1.26"``), replacing one of the same name."""
        spec = _check_str("conda_package", conda_package)
        name = _conda_name(spec)
        deps = self._deps()
        for i, d in enumerate(deps):
            if isinstance(d, str) and _loose_name(d) == name:
                deps[i] = spec
                break
        else:
            pip_at = next((i for i, d in enumerate(deps) if isinstance(d, dict)), len(deps))
            deps.insert(pip_at, spec)
        self._changed()

    def remove_conda_package(self, conda_package: str) -> None:
        """Remove the conda package of that name (a version in the argument is ignored)."""
        name = _conda_name(_check_str("conda_package", conda_package))
        self._spec["dependencies"] = [d for d in self._deps() if not (isinstance(d, str) and _loose_name(d) == name)]
        self._changed()

    def add_pip_package(self, pip_package: str) -> None:
        """Add a pip requirement (``"scikit-learn==1.5.0"``), replacing one of the same name."""
        spec = _check_str("pip_package", pip_package)
        name = _pip_name(spec)
        pips = self._pip_list(True)
        assert pips is not None
        for i, p in enumerate(pips):
            if not str(p).startswith("-") and _loose_pip(str(p)) == name:
                pips[i] = spec
                break
        else:
            pips.append(spec)
        self._changed()

    def remove_pip_package(self, pip_package: str) -> None:
        """Remove the pip requirement of that name (a version in the argument is ignored)."""
        name = _pip_name(_check_str("pip_package", pip_package))
        pips = self._pip_list(False)
        if pips is not None:
            pips[:] = [p for p in pips if str(p).startswith("-") or _loose_pip(str(p)) != name]
        self._changed()

    def set_pip_option(self, pip_option: str) -> None:
        """Add a pip option line (``"--extra-index-url https://..."``), replacing the same option."""
        opt = _check_str("pip_option", pip_option)
        if not opt.startswith("-"):
            raise ValidationError(f"pip option {pip_option!r} must start with '-' (e.g. '--index-url URL')")
        pips = self._pip_list(True)
        assert pips is not None
        key = opt.split()[0]
        pips[:] = [p for p in pips if not (str(p).startswith("-") and str(p).split()[0] == key)]
        pips.insert(0, opt)
        self._changed()

    def add_channel(self, channel: str) -> None:
        ch = _check_str("channel", channel)
        channels = self._spec.setdefault("channels", [])
        if ch not in channels:
            channels.append(ch)
        self._changed()

    def remove_channel(self, channel: str) -> None:
        self._spec["channels"] = [c for c in self.conda_channels if c != channel]
        self._changed()

    # ------------------------------------------------------------------ python
    def get_python_version(self) -> str | None:
        """The pinned python version (``"3.11"``, ``"3.8.13"``), None when not pinned."""
        for d in self._deps():
            if isinstance(d, str) and _loose_name(d) == "python":
                m = re.search(r"[=<>~!]+\s*([0-9][0-9.]*)", d)
                return m.group(1) if m else None
        return None

    def set_python_version(self, version: str) -> None:
        """Pin ``python=<version>`` (``"3.11"``); raises ValidationError for another shape."""
        v = _check_str("python_version", version)
        if not _PY_VERSION_RE.match(v):
            raise ValidationError(f"python_version {version!r} must look like '3.11' or '3.11.4'")
        deps = self._deps()
        deps[:] = [d for d in deps if not (isinstance(d, str) and _loose_name(d) == "python")]
        deps.insert(0, f"python={v}")
        self._changed()

    # ------------------------------------------------------------------ files
    def serialize_to_string(self) -> str:
        """The specification as conda YAML text."""
        return yaml.safe_dump(self._spec, sort_keys=False, default_flow_style=False)

    def save(self, path: str | os.PathLike[str] | None = None) -> str:
        """Write the YAML to ``path`` (default ``./conda_dependencies.yml``); returns the path.
        Parent folders are created."""
        p = Path(path or "conda_dependencies.yml").expanduser()
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(self.serialize_to_string())
        return str(p)

    def save_to_file(self, base_directory: str | os.PathLike[str], conda_file_path: str | None = None) -> str:
        """Azure's older form of :meth:`save`: ``base_directory/conda_file_path``."""
        return self.save(Path(base_directory) / (conda_file_path or "conda_dependencies.yml"))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CondaDependencies) and self._spec == other._spec

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"CondaDependencies(conda_packages={self.conda_packages!r}, pip_packages={self.pip_packages!r})"
