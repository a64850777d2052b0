"""Notebook-side alias: ``from azureml.core.webservice import LocalWebservice`` imports ours.

Opt in with ``import mlmanage_jupyter.azureml_alias`` (or ``%load_ext mlmanage_jupyter``,
which installs it too); an Azure ML v1 notebook then runs with its imports unchanged::

    import mlmanage_jupyter.azureml_alias
    from azureml.core import Workspace, Model, Environment
    from azureml.core.webservice import LocalWebservice
    from azureml.core.conda_dependencies import CondaDependencies

A meta-path finder maps these modules onto the same module objects (no second copy of any
class: ``azureml.core.model.Model is mlmanage_jupyter.core.model.Model``):

====================================  ==========================================
``azureml.core``                      ``mlmanage_jupyter.core``
``azureml.core.<name>`` (see ALIASES) ``mlmanage_jupyter.core.<name>``
``azureml.core.compute_target``       ``mlmanage_jupyter.core.compute``
``azureml.exceptions``                ``mlmanage_jupyter.core.errors``
``azureml.data``                      ``mlmanage_jupyter.core.dataset``
====================================  ==========================================

Other ``azureml.core.*`` modules raise ModuleNotFoundError naming what is provided; other
``azureml.*`` packages (e.g. a real ``azureml-dataprep``) import normally.

The real SDK always wins: when an ``azureml`` package with a ``core`` subpackage is
importable (``azureml-core`` installed) or ``azureml`` is already imported, the finder
answers nothing. This is separate from the scoring engine's in-service ``azureml`` shim
(``server/``), which serves entry scripts inside the engine under the same rule.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import os
import sys
import types
from collections.abc import Sequence
from typing import Any

ALIASES: dict[str, str] = {
    "azureml.core": "mlmanage_jupyter.core",
    "azureml.core.workspace": "mlmanage_jupyter.core.workspace",
    "azureml.core.model": "mlmanage_jupyter.core.model",
    "azureml.core.environment": "mlmanage_jupyter.core.environment",
    "azureml.core.conda_dependencies": "mlmanage_jupyter.core.conda_dependencies",
    "azureml.core.webservice": "mlmanage_jupyter.core.webservice",
    "azureml.core.image": "mlmanage_jupyter.core.image",
    "azureml.core.compute": "mlmanage_jupyter.core.compute",
    "azureml.core.compute_target": "mlmanage_jupyter.core.compute",
    "azureml.core.resource_configuration": "mlmanage_jupyter.core.resource_configuration",
    "azureml.core.dataset": "mlmanage_jupyter.core.dataset",
    "azureml.core.datastore": "mlmanage_jupyter.core.datastore",
    # azureml.data's TabularDataset, FileDataset, DataType (its submodules are not provided)
    "azureml.data": "mlmanage_jupyter.core.dataset",
    "azureml.exceptions": "mlmanage_jupyter.core.errors",
}


def real_sdk_location() -> str | None:
    """The folder of a real ``azureml.core`` package on ``sys.path``, else None."""
    spec = importlib.machinery.PathFinder.find_spec("azureml")
    if spec is None:
        return None
    for folder in spec.submodule_search_locations or []:
        core = os.path.join(folder, "core")
        if os.path.isfile(os.path.join(core, "__init__.py")) or os.path.isdir(core):
            return core
    return None


class _AliasLoader(importlib.abc.Loader):
    """Gives the already-imported module of ours (one module object under two names)."""

    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return importlib.import_module(self.target)

    def exec_module(self, module: types.ModuleType) -> None:
        pass  # already executed under its own name


class _PackageLoader(importlib.abc.Loader):
    """The top ``azureml`` package: empty; its ``__path__`` keeps any real namespace portions
    (``azureml-dataprep`` and friends) importable."""

    def __init__(self, portions: Sequence[str]) -> None:
        self.portions = list(portions)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = types.ModuleType(spec.name, "azureml, aliased to mlmanage_jupyter.core by mlmanage_jupyter.azureml_alias")
        module.__path__ = list(self.portions)
        module.__mlmanage_alias__ = True  # type: ignore[attr-defined]
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        pass


class AzuremlAliasFinder(importlib.abc.MetaPathFinder):
    """Answers ``azureml``, ``azureml.core[.<name>]`` and ``azureml.exceptions`` while no real
    SDK is importable; see the module docstring."""

    def find_spec(self, fullname: str, path: Sequence[str] | None = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != "azureml" and not fullname.startswith("azureml."):
            return None
        if fullname == "azureml":
            if real_sdk_location() is not None:
                return None  # the real SDK wins
            real = importlib.machinery.PathFinder.find_spec("azureml")
            portions = list(real.submodule_search_locations or []) if real is not None else []
            return importlib.machinery.ModuleSpec("azureml", _PackageLoader(portions), is_package=True)
        top = sys.modules.get("azureml")
        if top is None or not getattr(top, "__mlmanage_alias__", False):
            return None  # a real azureml package is imported: leave it alone
        aliased = ALIASES.get(fullname)
        if aliased is not None:
            return importlib.machinery.ModuleSpec(fullname, _AliasLoader(aliased), is_package=fullname == "azureml.core")
        if fullname.startswith("azureml.core."):
            provided = ", ".join(sorted(ALIASES))
            raise ModuleNotFoundError(
                f"No module named {fullname!r}: mlmanage-jupyter provides {provided} "
                "(install the Azure ML SDK to use the rest of it)",
                name=fullname,
            )
        return None


_finder = AzuremlAliasFinder()


def install() -> bool:
    """Put the alias first on ``sys.meta_path`` (idempotent). Returns False, doing nothing,
    when the real Azure ML SDK is importable or ``azureml`` is already imported (not ours)."""
    top = sys.modules.get("azureml")
    if top is not None and not getattr(top, "__mlmanage_alias__", False):
        return False
    if real_sdk_location() is not None:
        return False
    if _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)
    return True


def uninstall() -> None:
    """Remove the finder and forget the ``azureml*`` modules it gave (ours stay imported)."""
    while _finder in sys.meta_path:
        sys.meta_path.remove(_finder)
    top = sys.modules.get("azureml")
    if top is not None and getattr(top, "__mlmanage_alias__", False):
        for name in [n for n in sys.modules if n == "azureml" or n.startswith("azureml.")]:
            del sys.modules[name]


def is_installed() -> bool:
    return _finder in sys.meta_path


install()
