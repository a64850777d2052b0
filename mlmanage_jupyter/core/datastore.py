"""Azure ML v1's ``Datastore`` and ``DataPath`` (``azureml.core.datastore``,
``azureml.data.datapath``), local-capable: a datastore is a folder of the workspace,
``<workspace>/datastores/<name>/``. The default one is named ``workspaceblobstore`` as in
Azure (``ws.get_default_datastore()``, ``Datastore.get_default(ws)``). ``upload`` /
``upload_files`` copy local files into it; ``Dataset`` factories read ``(datastore, path)``
and ``DataPath`` from it (source: Azure's references of ``Datastore``,
``AzureBlobDatastore.upload`` and ``DataPath``).

Registering cloud datastores (``Datastore.register_azure_blob_container`` and friends) is not
available: one ValidationError says to upload the files into a local datastore instead.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any

from mlmanage_jupyter.core.errors import NotFoundError, ValidationError

DEFAULT_DATASTORE = "workspaceblobstore"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_]{0,254}$")


def _workspace_root(workspace: Any) -> Path:
    root = getattr(workspace, "path", None)
    if not isinstance(root, Path):
        raise ValidationError(f"workspace must be a Workspace (Workspace.from_config() or Workspace(path)), got {workspace!r}")
    return root


def check_relative(path: str, what: str = "path on the datastore") -> str:
    """A normalized relative POSIX path (``""`` for the root). Raises ValidationError for an
    absolute path or one that leaves the datastore (``..``)."""
    if not isinstance(path, str):
        raise ValidationError(f"{what} must be a string, got {type(path).__name__}")
    p = PurePosixPath(path.replace("\\", "/"))
    if p.is_absolute() and str(p) != "/":
        p = PurePosixPath(*p.parts[1:])  # Azure writes "/folder/file.csv" for the datastore's root
    parts = [x for x in p.parts if x not in ("/", ".")]
    if ".." in parts:
        raise ValidationError(f"{what} {path!r} leaves the datastore ('..'): give a path below its root")
    return "/".join(parts)


class Datastore:
    """A workspace datastore (Azure: ``Datastore(workspace, name=None)`` gets one by name,
    the default when ``name`` is None).

    Attributes: ``name``, ``datastore_type`` (``"LocalFolder"``), ``path`` (the folder,
    a :class:`~pathlib.Path`), ``workspace``.

    Raises NotFoundError for a name that is neither the default nor a folder under
    ``<workspace>/datastores/``.
    """

    datastore_type = "LocalFolder"

    def __init__(self, workspace: Any, name: str | None = None) -> None:
        root = _workspace_root(workspace)
        name = DEFAULT_DATASTORE if name is None else name
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValidationError(f"datastore name must be letters, digits and '_' (up to 255), got {name!r}")
        folder = root / "datastores" / name
        if name != DEFAULT_DATASTORE and not folder.is_dir():
            known = sorted(Datastore.list_names(workspace))
            raise NotFoundError(f"no datastore named {name!r} in this workspace; datastores: {known}")
        folder.mkdir(parents=True, exist_ok=True)
        self.workspace = workspace
        self.name = name
        self.path = folder

    # ------------------------------------------------------------------ Azure's getters
    @staticmethod
    def get(workspace: Any, datastore_name: str) -> Datastore:
        """The datastore ``datastore_name`` (Azure's ``Datastore.get``)."""
        return Datastore(workspace, datastore_name)

    @staticmethod
    def get_default(workspace: Any) -> Datastore:
        """The workspace's default datastore, ``workspaceblobstore``."""
        return Datastore(workspace)

    @staticmethod
    def list_names(workspace: Any) -> list[str]:
        folder = _workspace_root(workspace) / "datastores"
        names = {p.name for p in folder.iterdir() if p.is_dir()} if folder.is_dir() else set()
        return sorted(names | {DEFAULT_DATASTORE})

    @staticmethod
    def register_local_folder(workspace: Any, datastore_name: str) -> Datastore:
        """Create (or get) a further local datastore ``datastore_name`` (our addition: Azure's
        ``register_azure_*`` verbs need the cloud)."""
        if not isinstance(datastore_name, str) or not _NAME.match(datastore_name):
            raise ValidationError(f"datastore name must be letters, digits and '_' (up to 255), got {datastore_name!r}")
        (_workspace_root(workspace) / "datastores" / datastore_name).mkdir(parents=True, exist_ok=True)
        return Datastore(workspace, datastore_name)

    @staticmethod
    def register_azure_blob_container(*args: Any, **kwargs: Any) -> Datastore:
        raise ValidationError(
            "cloud datastores can't be registered here: use ws.get_default_datastore() (a folder of the workspace) "
            "and .upload(src_dir=...) the files into it"
        )

    register_azure_file_share = register_azure_blob_container
    register_azure_data_lake_gen2 = register_azure_blob_container

    # ------------------------------------------------------------------ files
    def resolve(self, path_on_datastore: str) -> Path:
        """The local path of ``path_on_datastore`` (may not exist)."""
        rel = check_relative(path_on_datastore)
        return self.path / rel if rel else self.path

    def path_of(self, path_on_datastore: str) -> DataPath:
        return DataPath(self, path_on_datastore)

    def upload(
        self,
        src_dir: str | os.PathLike[str],
        target_path: str | None = None,
        overwrite: bool = False,
        show_progress: bool = True,
    ) -> DataPath:
        """Copy every file below ``src_dir`` to ``target_path`` on the datastore (layout kept)
        and return its :class:`DataPath`. ``overwrite=False`` (Azure's default) keeps files
        that already exist there. Raises ValidationError when ``src_dir`` is not a folder."""
        src = Path(src_dir).expanduser()
        if not src.is_dir():
            raise ValidationError(f"src_dir is not a folder: {src} (use upload_files for single files)")
        dest = self.resolve(target_path or "")
        n = 0
        for p in sorted(src.rglob("*")):
            if p.is_file():
                n += self._copy(p, dest / p.relative_to(src), overwrite)
        if show_progress:
            print(f"Uploaded {n} files to datastore {self.name}/{check_relative(target_path or '')}")
        return DataPath(self, target_path or "")

    def upload_files(
        self,
        files: Iterable[str | os.PathLike[str]],
        relative_root: str | os.PathLike[str] | None = None,
        target_path: str | None = None,
        overwrite: bool = False,
        show_progress: bool = True,
    ) -> DataPath:
        """Copy ``files`` to ``target_path`` on the datastore; with ``relative_root`` their
        path below it is kept, else only the file name (Azure's rule). Raises
        ValidationError for a missing file or one outside ``relative_root``."""
        dest = self.resolve(target_path or "")
        root = Path(relative_root).expanduser().resolve() if relative_root is not None else None
        n = 0
        for f in files:
            p = Path(f).expanduser()
            if not p.is_file():
                raise ValidationError(f"file to upload not found: {p}")
            if root is not None:
                try:
                    rel = p.resolve().relative_to(root)
                except ValueError:
                    raise ValidationError(f"{p} is not below relative_root {root}") from None
            else:
                rel = Path(p.name)
            n += self._copy(p, dest / rel, overwrite)
        if show_progress:
            print(f"Uploaded {n} files to datastore {self.name}/{check_relative(target_path or '')}")
        return DataPath(self, target_path or "")

    @staticmethod
    def _copy(src: Path, dest: Path, overwrite: bool) -> int:
        if dest.exists() and not overwrite:
            return 0
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.tmp")
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
        return 1

    def download(self, target_path: str | os.PathLike[str], prefix: str | None = None, overwrite: bool = False,
                 show_progress: bool = True) -> int:
        """Copy the files below ``prefix`` (all when None) to ``target_path``; returns how many
        were copied (existing files are kept unless ``overwrite``)."""
        base = self.resolve(prefix or "")
        out = Path(target_path).expanduser()
        files = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file())
        n = sum(self._copy(p, out / p.relative_to(self.path), overwrite) for p in files)
        if show_progress:
            print(f"Downloaded {n} files from datastore {self.name}")
        return n

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Datastore) and other.path == self.path

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Datastore(name={self.name!r}, datastore_type={self.datastore_type!r}, path={str(self.path)!r})"


class DataPath:
    """A path on a datastore (Azure's ``azureml.data.datapath.DataPath(datastore,
    path_on_datastore)``): what ``Dataset`` factories and ``register_pandas_dataframe`` take."""

    def __init__(self, datastore: Datastore, path_on_datastore: str = "", name: str | None = None) -> None:
        if not isinstance(datastore, Datastore):
            raise ValidationError(f"DataPath needs a Datastore (ws.get_default_datastore()), got {type(datastore).__name__}")
        self.datastore = datastore
        self.path_on_datastore = check_relative(path_on_datastore)
        self.name = name

    @property
    def local_path(self) -> Path:
        return self.datastore.resolve(self.path_on_datastore)

    def __repr__(self) -> str:
        return f"DataPath(datastore={self.datastore.name!r}, path_on_datastore={self.path_on_datastore!r})"


__all__ = ["DEFAULT_DATASTORE", "DataPath", "Datastore"]
