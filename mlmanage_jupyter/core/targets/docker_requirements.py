"""What an image installs: the entry script's requirements and the engine's own.

:func:`user_requirements` infers them when the Environment lists none (imports of the app's
files, modules named by the models' pickles, the models' frameworks); :func:`engine_requirements`
reads the engine wheel's ``serve`` extra (the engine wheel itself installs ``--no-deps``: an
image gets no pandas, matplotlib, IPython, ipywidgets or SQLAlchemy).
"""

from __future__ import annotations

import email.parser
import re
import sys
import warnings
import zipfile
from pathlib import Path

from mlmanage_jupyter.core.targets.base import ImageSpec

# Azure ML SDK distributions (``azureml-defaults``, ``azureml-core``, ``azureml-monitoring``,
# ``azureml-contrib-services``, ...): the scoring engine provides the ``azureml.*`` names entry
# scripts use, and the real SDK would shadow that runtime (and needs the cloud), so images skip them.
_AZURE_SDK_RE = re.compile(r"^azureml([-_.].*)?$", re.IGNORECASE)


def _dist_name(req: str) -> str:
    return re.split(r"[\s<>=!~\[;(@]", req.strip(), maxsplit=1)[0]


def drop_azure_sdk(requirements: list[str]) -> list[str]:
    """``requirements`` without Azure ML SDK distributions (``azureml-*``), warning once
    (UserWarning) naming what was left out: inside a service the engine provides
    ``azureml.core.model.Model``, ``azureml.contrib.services`` and ``azureml.monitoring``
    (``server/azureml_shim``). Environments written for Azure list ``azureml-defaults``
    (Azure's v1 docs require it there); here it is neither needed nor installable offline."""
    kept = [r for r in requirements if not _AZURE_SDK_RE.match(_dist_name(r))]
    dropped = [_dist_name(r) for r in requirements if _AZURE_SDK_RE.match(_dist_name(r))]
    if dropped:
        warnings.warn(
            f"not installing {', '.join(dropped)} in the image: the scoring engine provides the azureml.* "
            "names entry scripts use (Model.get_model_path, rawhttp/AMLRequest/AMLResponse, ModelDataCollector)",
            UserWarning,
            stacklevel=2,
        )
    return kept


# Azure's framework names -> the distribution that unpickles such a model
_FRAMEWORK_DISTS = {"ScikitLearn": "scikit-learn", "PyTorch": "torch", "TensorFlow": "tensorflow", "Onnx": "onnxruntime"}

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


def user_requirements(image: ImageSpec) -> list[str]:
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
        return drop_azure_sdk(list(env.pip_requirements))
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
    for m in image.models:
        if m.framework in _FRAMEWORK_DISTS:
            dists.add(_FRAMEWORK_DISTS[m.framework])
    return drop_azure_sdk(sorted(p for p in (_pin(d) for d in dists) if p))


