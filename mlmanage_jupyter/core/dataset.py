"""Azure ML v1's ``Dataset`` (``azureml.core.Dataset``, ``azureml.data.TabularDataset`` /
``FileDataset``), the local-capable subset: datasets over local files or files on a workspace
datastore (:mod:`~mlmanage_jupyter.core.datastore`), registered by name and version in the
workspace (source: Azure's references of ``TabularDatasetFactory``, ``FileDatasetFactory``,
``TabularDataset``, ``FileDataset`` and ``AbstractDataset.register``).

Creating::

    Dataset.Tabular.from_delimited_files(path="data/*.csv")              # local path(s), globs, folders
    Dataset.Tabular.from_delimited_files(path=[(datastore, "weather/2018/*.csv")])
    Dataset.Tabular.register_pandas_dataframe(df, target=(datastore, "frames"), name="sample")
    Dataset.File.from_files(path="images/")

``path`` is one value or a list of: a local path (file, folder = every file below it, or a
glob; ``**`` recurses), a ``(Datastore, "path/on/datastore")`` tuple or a ``DataPath``.
Cloud URLs (``https://``, ``wasbs://``, ``abfss://``, ``azureml://``, ...) raise one
ValidationError saying to upload the files to the workspace datastore.

Storage: no database table (no schema migration). A saved dataset is a JSON file
``<workspace>/datasets/.ids/<id>.json``; a registered version also has
``<workspace>/datasets/<name>/<version>.json`` (versions 1, 2, ... as in Azure).
Registering (or saving, e.g. by ``Model.register(sample_input_dataset=)``) copies local
files that are outside the workspace into the default datastore under
``managed-dataset/<id>/`` so the registered version keeps working when the originals move;
datastore files are referenced, as in Azure (a changed file changes the data).
"""

from __future__ import annotations

import copy
import datetime as _dt
import glob
import os
import re
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlmanage_jupyter.core.datastore import DataPath, Datastore, check_relative
from mlmanage_jupyter.core.errors import NotFoundError, ValidationError
from mlmanage_jupyter.core.fsutil import claim_json_version, read_json_object, write_json_atomic
from mlmanage_jupyter.core.workspace import resolve_workspace

if TYPE_CHECKING:
    import pandas as pd

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,249}$")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
MANAGED_FOLDER = "managed-dataset"


# ---------------------------------------------------------------------------- column types
class DataType:
    """A column type for ``set_column_types`` (Azure's ``azureml.data.DataType``):
    ``to_string()``, ``to_long()``, ``to_float()``, ``to_bool()``, ``to_datetime(formats)``."""

    KINDS = ("string", "long", "float", "bool", "datetime")

    def __init__(self, kind: str, formats: Sequence[str] | None = None) -> None:
        if kind not in self.KINDS:
            raise ValidationError(f"unknown DataType {kind!r}: use one of {', '.join(self.KINDS)}")
        self.kind = kind
        self.formats = list(formats or [])

    @staticmethod
    def to_string() -> DataType:
        return DataType("string")

    @staticmethod
    def to_long() -> DataType:
        return DataType("long")

    @staticmethod
    def to_float(decimal_mark: str = ".") -> DataType:
        return DataType("float")

    @staticmethod
    def to_bool() -> DataType:
        return DataType("bool")

    @staticmethod
    def to_datetime(formats: str | Sequence[str] | None = None) -> DataType:
        return DataType("datetime", [formats] if isinstance(formats, str) else formats)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "formats": self.formats}

    @staticmethod
    def from_json(d: dict[str, Any]) -> DataType:
        return DataType(d["kind"], d.get("formats"))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DataType) and other.to_json() == self.to_json()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"DataType({self.kind!r})"


def _kind_of_dtype(dtype: Any) -> str:
    import pandas as pd

    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_integer_dtype(dtype):
        return "long"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    return "string"


def _convert(series: pd.Series, dt: DataType, column: str) -> pd.Series:
    import pandas as pd

    try:
        if dt.kind == "string":
            return series.astype(object).where(series.notna(), None).map(lambda v: v if v is None else str(v))
        if dt.kind == "float":
            return pd.to_numeric(series).astype("float64")
        if dt.kind == "long":
            num = pd.to_numeric(series)
            return num.astype("int64") if not num.isna().any() else num.astype("Int64")
        if dt.kind == "bool":
            if pd.api.types.is_bool_dtype(series):
                return series
            table = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}
            mapped = series.map(lambda v: None if pd.isna(v) else table.get(str(v).strip().lower(), "?"))
            if (mapped == "?").any():
                bad = series[mapped == "?"].iloc[0]
                raise ValueError(f"{bad!r} is not a boolean")
            return mapped.astype("boolean") if mapped.isna().any() else mapped.astype(bool)
        return pd.to_datetime(series, format=dt.formats[0] if dt.formats else None)
    except (ValueError, TypeError) as e:
        raise ValidationError(f"column {column!r} can't be converted to {dt.kind}: {e}") from e


# ---------------------------------------------------------------------------- sources
def _source_of(item: Any) -> tuple[dict[str, Any], Any]:
    """``({"local": abs path} | {"datastore": name, "path": rel}, workspace or None)``."""
    if isinstance(item, DataPath):
        return {"datastore": item.datastore.name, "path": item.path_on_datastore}, item.datastore.workspace
    if isinstance(item, tuple):
        if len(item) != 2 or not isinstance(item[0], Datastore):
            raise ValidationError(
                f"a path tuple must be (Datastore, 'path/on/datastore'), got {item!r}: use ws.get_default_datastore()"
            )
        return {"datastore": item[0].name, "path": check_relative(item[1])}, item[0].workspace
    if isinstance(item, Datastore):
        return {"datastore": item.name, "path": ""}, item.workspace
    if isinstance(item, (str, os.PathLike)):
        text = os.fspath(item)
        if _URL.match(text):
            raise ValidationError(
                f"{text!r} is a cloud URL and can't be read here: download the files, or upload them to the "
                "workspace datastore (ws.get_default_datastore().upload(src_dir=...)), and pass the local path "
                "or (datastore, 'path/on/datastore')"
            )
        return {"local": str(Path(text).expanduser().absolute())}, None
    raise ValidationError(
        f"path must be a local path, a (Datastore, 'path') tuple or a DataPath (or a list of them), got {type(item).__name__}"
    )


def _sources(path: Any) -> tuple[list[dict[str, Any]], Any]:
    items = list(path) if isinstance(path, list) else [path]
    if not items:
        raise ValidationError("path is an empty list: give at least one file, folder or glob")
    out, workspaces = [], []
    for it in items:
        src, ws = _source_of(it)
        out.append(src)
        if ws is not None and all(ws is not w for w in workspaces):
            workspaces.append(ws)
    if len(workspaces) > 1:
        raise ValidationError("path mixes datastores of different workspaces: use one workspace's datastores")
    return out, workspaces[0] if workspaces else None


def _has_glob(text: str) -> bool:
    return any(c in text for c in "*?[")


def _expand(local: str) -> list[tuple[Path, Path]]:
    """``[(file, base)]`` of one local path: a file, every file below a folder, or a glob's
    matches (``base``: the folder the relative layout starts from). Raises ValidationError
    when nothing matches."""
    p = Path(local)
    if _has_glob(local):
        parts = p.parts
        fixed = next(i for i, part in enumerate(parts) if _has_glob(part))
        base = Path(*parts[:fixed]) if fixed else Path(".")
        files = sorted(Path(m) for m in glob.glob(local, recursive=True) if Path(m).is_file())
        if not files:
            raise ValidationError(f"no file matches {local!r}")
        return [(f, base) for f in files]
    if p.is_file():
        return [(p, p.parent)]
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith("."))
        if not files:
            raise ValidationError(f"folder {p} holds no files")
        return [(f, p) for f in files]
    raise ValidationError(f"path not found: {p}")


# ---------------------------------------------------------------------------- datasets
class AbstractDataset:
    """Shared by :class:`TabularDataset` and :class:`FileDataset` (Azure's
    ``AbstractDataset``): ``name``, ``version`` (int, registered only), ``id`` (str, once
    saved), ``description``, ``tags`` (dict[str, str]), ``workspace`` (once saved)."""

    kind = ""

    def __init__(self, definition: dict[str, Any], workspace: Any = None, info: dict[str, Any] | None = None) -> None:
        self._definition = definition
        self._workspace = workspace
        info = info or {}
        self.id: str | None = info.get("id")
        self.name: str | None = info.get("name")
        self.version: int | None = info.get("version")
        self.description: str | None = info.get("description")
        self.tags: dict[str, str] = dict(info.get("tags") or {})
        self.created_time: str | None = info.get("created_time")

    @property
    def workspace(self) -> Any:
        return self._workspace

    def _derive(self, transform: list[Any]) -> AbstractDataset:
        d = copy.deepcopy(self._definition)
        d["transforms"] = [*d.get("transforms", []), transform]
        return type(self)(d, self._workspace)

    # ------------------------------------------------------------------ files
    def _datastore(self, name: str) -> Datastore:
        if self._workspace is None:
            raise ValidationError(f"this dataset reads datastore {name!r} but has no workspace")
        return Datastore(self._workspace, name)

    def _files(self) -> list[tuple[Path, Path]]:
        out: list[tuple[Path, Path]] = []
        for src in self._definition["sources"]:
            if "local" in src:
                out += _expand(src["local"])
            else:
                ds = self._datastore(src["datastore"])
                out += _expand(str(ds.resolve(src["path"])))
        return out

    # ------------------------------------------------------------------ save / register
    def _ensure_saved(self, workspace: Any) -> str:
        """Save this definition in ``workspace`` (once) and return its id; local files
        outside the workspace are copied to the default datastore first."""
        ws = resolve_workspace(workspace)
        if self.id is not None and self._workspace is not None and Path(self._workspace.path) == ws.path:
            return self.id
        if self._workspace is not None and Path(self._workspace.path) != ws.path and any(
            "datastore" in s for s in self._definition["sources"]
        ):
            raise ValidationError("this dataset reads a datastore of another workspace: create it from this workspace's datastore")
        new_id = str(uuid.uuid4())
        definition = copy.deepcopy(self._definition)
        definition["sources"] = [self._managed_copy(ws, new_id, i, s) for i, s in enumerate(definition["sources"])]
        self._definition = definition
        self._workspace = ws
        self.id = new_id
        self.created_time = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        ids = ws.path / "datasets" / ".ids"
        ids.mkdir(parents=True, exist_ok=True)
        write_json_atomic(ids / f"{new_id}.json", self._to_json())
        return new_id

    @staticmethod
    def _managed_copy(ws: Any, dataset_id: str, i: int, src: dict[str, Any]) -> dict[str, Any]:
        if "local" not in src:
            return src
        try:
            Path(src["local"]).resolve().relative_to(ws.path.resolve() / "datastores")
        except ValueError:
            pass
        else:  # already on a datastore of this workspace: reference it
            rel = Path(src["local"]).resolve().relative_to(ws.path.resolve() / "datastores")
            return {"datastore": rel.parts[0], "path": "/".join(rel.parts[1:])}
        store = Datastore.get_default(ws)
        dest_rel = f"{MANAGED_FOLDER}/{dataset_id}/{i}"
        files = _expand(src["local"])
        for f, base in files:
            Datastore._copy(f, store.resolve(dest_rel) / f.relative_to(base), overwrite=True)
        single = len(files) == 1 and not _has_glob(src["local"]) and Path(src["local"]).is_file()
        return {"datastore": store.name, "path": f"{dest_rel}/{files[0][0].name}" if single else dest_rel}

    def _to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "definition": self._definition,
            "id": self.id,
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "tags": self.tags,
            "created_time": self.created_time,
        }

    def register(
        self,
        workspace: Any,
        name: str,
        description: str | None = None,
        tags: dict[str, str] | None = None,
        create_new_version: bool = False,
    ) -> AbstractDataset:
        """Register this dataset as ``name`` (Azure's ``register``) and return the registered
        dataset (``version`` set). Azure's rule: when ``name`` exists, an unchanged definition
        returns the latest version; a different one needs ``create_new_version=True`` (else
        ValidationError). Raises ValidationError for a bad name or non-string tags."""
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValidationError(f"dataset name must start with a letter or digit and hold letters, digits, '_', '-', '.', got {name!r}")
        if tags is not None and not (isinstance(tags, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items())):
            raise ValidationError(f"tags must be a dict[str, str], got {tags!r}")
        ws = resolve_workspace(workspace)
        folder = ws.path / "datasets" / name
        folder.mkdir(parents=True, exist_ok=True)
        origin = copy.deepcopy(self._definition)
        while True:
            versions = _versions(folder)
            if versions:
                latest = _read(ws, folder / f"{versions[-1]}.json")
                if latest._origin == origin:
                    return latest
                if not create_new_version:
                    raise ValidationError(
                        f"There is already a dataset registered under name {name!r} (version {versions[-1]}) with another "
                        "definition: pass create_new_version=True to register it as a new version"
                    )
            saved = type(self)(copy.deepcopy(self._definition), self._workspace)
            saved._ensure_saved(ws)
            nxt = (versions[-1] if versions else 0) + 1
            saved.name, saved.version = name, nxt
            saved.description, saved.tags = description, dict(tags or {})
            record = {**saved._to_json(), "origin": origin}
            if not claim_json_version(folder, nxt, record):
                continue
            write_json_atomic(ws.path / "datasets" / ".ids" / f"{saved.id}.json", record)
            return _read(ws, folder / f"{nxt}.json")

    def __repr__(self) -> str:
        srcs = [s.get("local") or f"{s['datastore']}:{s['path']}" for s in self._definition["sources"]]
        who = f"name={self.name!r}, version={self.version}, " if self.name else ""
        return f"{type(self).__name__}({who}id={self.id!r}, sources={srcs!r})"


class TabularDataset(AbstractDataset):
    """Tabular data in delimited, JSON Lines or Parquet files (Azure's ``TabularDataset``)."""

    kind = "tabular"
    _origin: Any = None

    def _read_file(self, f: Path) -> pd.DataFrame:
        import pandas as pd

        o = self._definition["options"]
        fmt = self._definition["format"]
        try:
            if fmt == "delimited" and o["separator"] == "\n":
                # one value per line (Azure's profiling samples: a JSON request per line, unquoted)
                lines = [ln for ln in f.read_text(encoding=o["encoding"]).splitlines() if ln != ""]
                name, rows = (lines[0], lines[1:]) if o["header"] and lines else ("Column1", lines)
                df = pd.DataFrame({name: rows}, dtype=object)
            elif fmt == "delimited":
                dtype: Any = str
                if o["infer_column_types"]:  # text columns stay text ("007" is not 7)
                    text = [c for c, t in (o.get("set_column_types") or {}).items() if t["kind"] == "string"]
                    dtype = {c: str for c in text} if text and o["header"] else None
                df = pd.read_csv(
                    f, sep=o["separator"], header=0 if o["header"] else None, encoding=o["encoding"],
                    dtype=dtype, keep_default_na=not o["empty_as_string"],
                )  # fmt: skip
                if not o["header"]:
                    df.columns = [f"Column{i + 1}" for i in range(df.shape[1])]
            elif fmt == "json_lines":
                df = pd.read_json(f, lines=True, encoding=o["encoding"])
            else:
                df = pd.read_parquet(f)
        except ImportError as e:
            raise ValidationError(f"reading Parquet files needs pyarrow: pip install 'mlmanage-jupyter[parquet]' ({e})") from e
        except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as e:
            raise ValidationError(f"can't read {f} as {fmt} data: {e}") from e
        if o.get("include_path"):
            df.insert(0, "Path", str(f))
        return df

    def to_pandas_dataframe(self, on_error: str = "null", out_of_range_datetime: str = "null") -> pd.DataFrame:
        """The whole dataset as one DataFrame: files in order, rows in order, column types
        inferred (or strings with ``infer_column_types=False``), then ``set_column_types``,
        then ``take``/``skip``/``keep_columns``/``drop_columns`` in the order they were
        called. Raises ValidationError naming a missing file or an unreadable one."""
        import pandas as pd

        frames = [self._read_file(f) for f, _ in self._files()]
        df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        for col, dt in (self._definition["options"].get("set_column_types") or {}).items():
            if col not in df.columns:
                raise ValidationError(f"set_column_types names column {col!r}, which the data doesn't have; columns: {list(df.columns)}")
            df[col] = _convert(df[col], DataType.from_json(dt), col)
        for op, arg in self._definition.get("transforms", []):
            if op == "take":
                df = df.iloc[:arg]
            elif op == "skip":
                df = df.iloc[arg:]
            else:
                missing = [c for c in arg if c not in df.columns]
                if missing:
                    raise ValidationError(f"{op} names columns {missing} the data doesn't have; columns: {list(df.columns)}")
                df = df[arg] if op == "keep_columns" else df.drop(columns=arg)
        return df.reset_index(drop=True)

    def take(self, count: int) -> TabularDataset:
        """A new TabularDataset of the first ``count`` records."""
        return self._derive(["take", _count(count)])  # type: ignore[return-value]

    def skip(self, count: int) -> TabularDataset:
        """A new TabularDataset without the first ``count`` records."""
        return self._derive(["skip", _count(count)])  # type: ignore[return-value]

    def keep_columns(self, columns: str | Sequence[str], validate: bool = False) -> TabularDataset:
        return self._derive(["keep_columns", [columns] if isinstance(columns, str) else list(columns)])  # type: ignore[return-value]

    def drop_columns(self, columns: str | Sequence[str]) -> TabularDataset:
        return self._derive(["drop_columns", [columns] if isinstance(columns, str) else list(columns)])  # type: ignore[return-value]


class FileDataset(AbstractDataset):
    """Files (Azure's ``FileDataset``): ``to_path()``, ``download()``, ``take(n)``."""

    kind = "file"
    _origin: Any = None

    def _selected(self) -> list[tuple[Path, Path]]:
        files = self._files()
        for op, arg in self._definition.get("transforms", []):
            files = files[:arg] if op == "take" else files[arg:]
        return files

    def to_path(self) -> list[str]:
        """The files' paths as Azure gives them: ``/<path below the folder/glob root>``."""
        return ["/" + f.relative_to(base).as_posix() for f, base in self._selected()]

    def download(self, target_path: str | os.PathLike[str] | None = None, overwrite: bool = False) -> list[str]:
        """Copy the files to ``target_path`` (a new temporary folder when None), layout as
        :meth:`to_path`; returns their local paths. Raises ValidationError when a file exists
        there and ``overwrite`` is False (Azure's rule)."""
        import tempfile

        out = Path(target_path).expanduser() if target_path is not None else Path(tempfile.mkdtemp(prefix="dataset-"))
        pairs = [(f, out / f.relative_to(base)) for f, base in self._selected()]
        if not overwrite:
            clash = [str(d) for _, d in pairs if d.exists()]
            if clash:
                raise ValidationError(f"{clash[0]} already exists: pass overwrite=True")
        for f, d in pairs:
            d.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, d)
        return [str(d) for _, d in pairs]

    def mount(self, *args: Any, **kwargs: Any) -> Any:
        raise ValidationError("FileDataset.mount is not available here: use download(target_path=...) (the files are local)")

    def take(self, count: int) -> FileDataset:
        return self._derive(["take", _count(count)])  # type: ignore[return-value]

    def skip(self, count: int) -> FileDataset:
        return self._derive(["skip", _count(count)])  # type: ignore[return-value]


def _count(n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValidationError(f"count must be an integer >= 0, got {n!r}")
    return n


# ---------------------------------------------------------------------------- stored form
def _versions(folder: Path) -> list[int]:
    if not folder.is_dir():
        return []
    return sorted(int(p.stem) for p in folder.glob("*.json") if p.stem.isdigit())


def _read(ws: Any, path: Path) -> AbstractDataset:
    d, _ = read_json_object(path, "dataset")
    klass = TabularDataset if d.get("kind") == "tabular" else FileDataset
    ds = klass(d["definition"], ws, d)
    ds._origin = d.get("origin")
    return ds


# ---------------------------------------------------------------------------- factories
def _check_options(**opts: Any) -> None:
    for name in ("validate", "include_path", "infer_column_types", "header", "empty_as_string"):
        if name in opts and not isinstance(opts[name], bool):
            raise ValidationError(f"{name} must be True or False, got {opts[name]!r}")


class TabularDatasetFactory:
    """``Dataset.Tabular``: creates :class:`TabularDataset` objects (Azure's
    ``TabularDatasetFactory``)."""

    @staticmethod
    def _make(fmt: str, path: Any, validate: bool, options: dict[str, Any]) -> TabularDataset:
        sources, ws = _sources(path)
        ds = TabularDataset({"format": fmt, "sources": sources, "options": options, "transforms": []}, ws)
        if validate:
            ds.take(1).to_pandas_dataframe()  # raises ValidationError naming what can't be read
        return ds

    @staticmethod
    def from_delimited_files(
        path: Any,
        validate: bool = True,
        include_path: bool = False,
        infer_column_types: bool = True,
        set_column_types: dict[str, DataType] | None = None,
        separator: str = ",",
        header: bool = True,
        partition_format: str | None = None,
        support_multi_line: bool = False,
        empty_as_string: bool = False,
        encoding: str = "utf8",
    ) -> TabularDataset:
        """Tabular data in CSV/TSV files (pandas ``read_csv``; ``header=False`` names columns
        ``Column1``, ``Column2``, ... as Azure; ``separator="\\n"``: one column, each line a
        value as it is, as Azure's profiling samples use it). ``set_column_types``: ``{column: DataType}``.
        ``validate=True`` reads the first record now. Raises ValidationError for cloud URLs,
        missing files, unreadable data, or ``partition_format`` (not supported)."""
        _check_options(validate=validate, include_path=include_path, infer_column_types=infer_column_types,
                       header=header, empty_as_string=empty_as_string)
        if partition_format is not None:
            raise ValidationError("partition_format is not supported here: pass include_path=True to keep each record's file path")
        if not isinstance(separator, str) or not separator:
            raise ValidationError(f"separator must be a non-empty string, got {separator!r}")
        types = {}
        for col, dt in (set_column_types or {}).items():
            if not isinstance(dt, DataType):
                raise ValidationError(f"set_column_types[{col!r}] must be a DataType (DataType.to_float(), ...), got {dt!r}")
            types[col] = dt.to_json()
        options = {"separator": separator, "header": header, "encoding": encoding, "include_path": include_path,
                   "infer_column_types": infer_column_types, "empty_as_string": empty_as_string,
                   "set_column_types": types}  # fmt: skip
        return TabularDatasetFactory._make("delimited", path, validate, options)

    @staticmethod
    def from_json_lines_files(path: Any, validate: bool = True, include_path: bool = False,
                              set_column_types: dict[str, DataType] | None = None, encoding: str = "utf8") -> TabularDataset:
        """Tabular data in JSON Lines files (pandas ``read_json(lines=True)``)."""
        _check_options(validate=validate, include_path=include_path)
        types = {c: dt.to_json() for c, dt in (set_column_types or {}).items()}
        return TabularDatasetFactory._make("json_lines", path, validate,
                                           {"encoding": encoding, "include_path": include_path, "set_column_types": types})

    @staticmethod
    def from_parquet_files(path: Any, validate: bool = True, include_path: bool = False,
                           set_column_types: dict[str, DataType] | None = None) -> TabularDataset:
        """Tabular data in Parquet files (needs the ``parquet`` extra: pyarrow)."""
        _check_options(validate=validate, include_path=include_path)
        types = {c: dt.to_json() for c, dt in (set_column_types or {}).items()}
        return TabularDatasetFactory._make("parquet", path, validate, {"include_path": include_path, "set_column_types": types})

    @staticmethod
    def from_sql_query(*args: Any, **kwargs: Any) -> TabularDataset:
        raise ValidationError("from_sql_query needs an Azure SQL datastore: read the query with pandas and use register_pandas_dataframe")

    @staticmethod
    def register_pandas_dataframe(
        dataframe: pd.DataFrame,
        target: Any,
        name: str,
        description: str | None = None,
        tags: dict[str, str] | None = None,
        show_progress: bool = True,
    ) -> TabularDataset:
        """Write ``dataframe`` to ``target`` (a ``Datastore``, ``(datastore, "folder")`` or
        ``DataPath``; Azure's form) as ``<folder>/<uuid>/part-00000.csv`` with its column
        types recorded, and register it as the next version of ``name``. Reading it back gives
        the same columns, values and dtypes (int64, float64, bool, datetime64, strings).
        Raises ValidationError for a non-DataFrame, a non-datastore target, or a bad name."""
        import pandas as pd

        if not isinstance(dataframe, pd.DataFrame):
            raise ValidationError(f"dataframe must be a pandas DataFrame, got {type(dataframe).__name__}")
        if isinstance(target, Datastore):
            target = (target, "")
        src, ws = _source_of(target)
        if "datastore" not in src:
            raise ValidationError("target must be a Datastore, (datastore, 'folder') or DataPath: ws.get_default_datastore()")
        if not all(isinstance(c, str) for c in dataframe.columns):
            raise ValidationError(f"column names must be strings, got {list(dataframe.columns)!r}")
        folder_rel = f"{src['path']}/{uuid.uuid4()}".lstrip("/")
        store = Datastore(ws, src["datastore"])
        dest = store.resolve(folder_rel) / "part-00000.csv"
        dest.parent.mkdir(parents=True, exist_ok=True)
        frame = dataframe.copy()
        for c in frame.columns:
            if _kind_of_dtype(frame[c].dtype) == "datetime":
                frame[c] = frame[c].map(lambda v: v.isoformat() if not pd.isna(v) else None)
        frame.to_csv(dest, index=False)
        types = {c: DataType(_kind_of_dtype(dataframe[c].dtype)) for c in dataframe.columns}
        ds = TabularDatasetFactory.from_delimited_files(DataPath(store, folder_rel), set_column_types=types)
        if show_progress:
            print(f"Wrote {len(dataframe)} rows to {store.name}/{folder_rel}")
        return ds.register(ws, name, description=description, tags=tags, create_new_version=True)  # type: ignore[return-value]


class FileDatasetFactory:
    """``Dataset.File``: creates :class:`FileDataset` objects (Azure's ``FileDatasetFactory``)."""

    @staticmethod
    def from_files(path: Any, validate: bool = True, partition_format: str | None = None,
                   is_file: bool = False) -> FileDataset:
        """Files at ``path`` (files, folders, globs, datastore paths). ``validate=True`` checks
        now that they exist. Raises ValidationError for cloud URLs or missing files."""
        _check_options(validate=validate)
        if partition_format is not None:
            raise ValidationError("partition_format is not supported here")
        sources, ws = _sources(path)
        ds = FileDataset({"format": "files", "sources": sources, "options": {}, "transforms": []}, ws)
        if validate:
            ds._files()
        return ds

    @staticmethod
    def upload_directory(src_dir: str | os.PathLike[str], target: Any, pattern: str | None = None,
                         overwrite: bool = False, show_progress: bool = True) -> FileDataset:
        """Upload ``src_dir`` to ``target`` (``(datastore, "folder")``/``DataPath``) and return a
        FileDataset over the upload."""
        if isinstance(target, Datastore):
            target = DataPath(target, "")
        elif isinstance(target, tuple) and len(target) == 2 and isinstance(target[0], Datastore):
            target = DataPath(target[0], target[1])
        if not isinstance(target, DataPath):
            raise ValidationError("target must be a Datastore, (datastore, 'folder') or DataPath")
        target.datastore.upload(src_dir, target.path_on_datastore, overwrite=overwrite, show_progress=show_progress)
        return FileDatasetFactory.from_files(target if pattern is None else
                                             DataPath(target.datastore, f"{target.path_on_datastore}/{pattern}"))


class Dataset:
    """Azure's ``azureml.core.Dataset``: ``Dataset.Tabular`` / ``Dataset.File`` create
    datasets; ``get_by_name``, ``get_by_id``, ``get_all`` read registered ones."""

    Tabular = TabularDatasetFactory
    File = FileDatasetFactory

    @staticmethod
    def get_by_name(workspace: Any, name: str, version: int | str = "latest") -> AbstractDataset:
        """Version ``version`` (``"latest"`` by default) of the dataset registered as ``name``.
        Raises NotFoundError naming the registered datasets or versions."""
        ws = resolve_workspace(workspace)
        folder = ws.path / "datasets" / name
        versions = _versions(folder) if isinstance(name, str) and _NAME.match(name) else []
        if not versions:
            raise NotFoundError(f"no dataset named {name!r} is registered; registered: {sorted(Dataset.get_all(ws)) or 'none'}")
        if version == "latest":
            return _read(ws, folder / f"{versions[-1]}.json")
        if isinstance(version, bool) or not str(version).isdigit() or int(version) not in versions:
            raise NotFoundError(f"dataset {name!r} has no version {version!r}; versions: {versions}")
        return _read(ws, folder / f"{int(version)}.json")

    @staticmethod
    def get_by_id(workspace: Any, id: str) -> AbstractDataset:
        """A saved dataset by its id (registered or saved by ``Model.register``)."""
        ws = resolve_workspace(workspace)
        p = ws.path / "datasets" / ".ids" / f"{id}.json"
        if not isinstance(id, str) or "/" in id or not p.is_file():
            raise NotFoundError(f"no dataset with id {id!r} in workspace {ws.path}")
        return _read(ws, p)

    @staticmethod
    def get_all(workspace: Any) -> dict[str, AbstractDataset]:
        """The latest version of every registered dataset, by name."""
        ws = resolve_workspace(workspace)
        root = ws.path / "datasets"
        out: dict[str, AbstractDataset] = {}
        if root.is_dir():
            for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
                versions = _versions(folder)
                if versions:
                    out[folder.name] = _read(ws, folder / f"{versions[-1]}.json")
        return out


__all__ = [
    "AbstractDataset",
    "DataPath",
    "DataType",
    "Datastore",
    "Dataset",
    "FileDataset",
    "FileDatasetFactory",
    "TabularDataset",
    "TabularDatasetFactory",
]


# ---------------------------------------------------------------------------- on registered models
# Model.register(sample_input_dataset=, sample_output_dataset=, datasets=) keeps the datasets'
# ids in the model's (write-once) properties under these keys; Model hides them from
# ``model.properties`` and gives them back as Azure's attributes.
PROP_SAMPLE_INPUT = "mlmanage.sample_input_dataset"
PROP_SAMPLE_OUTPUT = "mlmanage.sample_output_dataset"
PROP_DATASETS = "mlmanage.datasets"


def model_dataset_properties(
    workspace: Any,
    sample_input_dataset: Any = None,
    sample_output_dataset: Any = None,
    datasets: Any = None,
) -> dict[str, str]:
    """The properties recording a model's datasets (each saved in ``workspace`` first).

    ``sample_input_dataset`` / ``sample_output_dataset``: a :class:`TabularDataset` (the
    columns and first rows of a request / answer); ``datasets``: a list of ``(scenario,
    dataset)`` tuples, Azure's form (e.g. ``[("training data", train_ds)]``). Raises
    ValidationError naming the argument that is not of that shape."""
    import json

    props: dict[str, str] = {}
    for key, what, ds in ((PROP_SAMPLE_INPUT, "sample_input_dataset", sample_input_dataset),
                          (PROP_SAMPLE_OUTPUT, "sample_output_dataset", sample_output_dataset)):
        if ds is None:
            continue
        if not isinstance(ds, TabularDataset):
            raise ValidationError(
                f"{what} must be a TabularDataset (Dataset.Tabular.from_delimited_files(...) or "
                f"register_pandas_dataframe(...)), got {type(ds).__name__}"
            )
        props[key] = ds._ensure_saved(workspace)
    if datasets is not None:
        if not isinstance(datasets, (list, tuple)):
            raise ValidationError(f"datasets must be a list of (scenario, Dataset) tuples, got {type(datasets).__name__}")
        pairs = []
        for item in datasets:
            if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str) and item[0].strip()
                    and isinstance(item[1], AbstractDataset)):
                raise ValidationError(f"datasets must be a list of (scenario, Dataset) tuples like ('training data', ds), got {item!r}")
            pairs.append([item[0], item[1]._ensure_saved(workspace)])
        if pairs:
            props[PROP_DATASETS] = json.dumps(pairs)
    return props


def model_sample_dataset(workspace: Any, properties: dict[str, str], which: str) -> TabularDataset | None:
    """A model's ``"input"`` or ``"output"`` sample dataset, or None when not registered with one."""
    dataset_id = properties.get(PROP_SAMPLE_INPUT if which == "input" else PROP_SAMPLE_OUTPUT)
    return Dataset.get_by_id(workspace, dataset_id) if dataset_id else None  # type: ignore[return-value]


def model_datasets(workspace: Any, properties: dict[str, str]) -> dict[str, list[AbstractDataset]]:
    """A model's ``datasets``: ``{scenario: [dataset, ...]}`` (Azure's shape)."""
    import json

    out: dict[str, list[AbstractDataset]] = {}
    for scenario, dataset_id in json.loads(properties.get(PROP_DATASETS) or "[]"):
        out.setdefault(scenario, []).append(Dataset.get_by_id(workspace, dataset_id))
    return out
