"""Workspace resolution, config files, stores, and the core's layering rule."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import mlmanage_jupyter
from mlmanage_jupyter.core.errors import NotFoundError, ValidationError
from mlmanage_jupyter.core.model import Model
from mlmanage_jupyter.core.store.artifacts import LocalArtifactStore, check_blob_key
from mlmanage_jupyter.core.workspace import Workspace


def test_default_from_env_and_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLMANAGE_WORKSPACE", raising=False)
    assert Workspace().path == tmp_path / ".mlmanage"
    monkeypatch.setenv("MLMANAGE_WORKSPACE", str(tmp_path / "elsewhere"))
    ws = Workspace.get_default()
    assert ws.path == tmp_path / "elsewhere" and (ws.path / "metadata.db").exists()


def test_create_and_from_config_search(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = Workspace.create(path=tmp_path / "proj" / ".mlmanage", name="team")
    with pytest.raises(ValidationError, match="already exists"):
        Workspace.create(path=ws.path, exist_ok=False)
    deep = tmp_path / "proj" / "notebooks" / "sub"
    deep.mkdir(parents=True)
    found = Workspace.from_config(deep)
    assert found.path == ws.path and found.name == "team"
    # an Azure-style config.json that points at a workspace folder
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text(json.dumps({"workspace": "../proj/.mlmanage"}))
    assert Workspace.from_config(tmp_path / "other").path == ws.path
    with pytest.raises(NotFoundError, match="no config.json"):
        Workspace.from_config(Path("/"))


def test_bad_config_and_file_path(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(ValidationError, match="is a file"):
        Workspace(tmp_path / "f")
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "config.json").write_text("{nope")
    with pytest.raises(ValidationError, match="not valid JSON"):
        Workspace(tmp_path / "w")
    (tmp_path / "w" / "config.json").write_text(json.dumps({"artifact_store": {"type": "ftp"}}))
    with pytest.raises(ValidationError, match="unknown artifact_store type"):
        Workspace(tmp_path / "w")


def test_two_workspaces_are_independent(tmp_path: Path) -> None:
    a, b = Workspace(tmp_path / "a"), Workspace(tmp_path / "b")
    f = tmp_path / "m.bin"
    f.write_bytes(b"123")
    Model.register(a, f, "m")
    assert len(Model.list(a)) == 1 and len(Model.list(b)) == 0


def test_local_artifact_store_atomic_and_keys(tmp_path: Path) -> None:
    st = LocalArtifactStore(tmp_path / "st")
    sha, size = st.put_bytes(b"hello")
    assert size == 5 and st.exists(sha) and st.put_bytes(b"hello") == (sha, 5)
    assert list(st.iter_objects()) == [sha]
    assert not any((tmp_path / "st" / "tmp").iterdir())
    st.write_blob("modeldata/svc/m/1/2026/01/01/a.jsonl", b"{}\n")
    assert st.list_blobs("modeldata/svc") == ["modeldata/svc/m/1/2026/01/01/a.jsonl"]
    assert st.read_blob("modeldata/svc/m/1/2026/01/01/a.jsonl") == b"{}\n"
    for bad in ("../x", "/abs", "a//b", "a/../b"):
        with pytest.raises(ValidationError):
            check_blob_key(bad)


def _imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    mods: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            mods |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            mods.add(node.module.split(".")[0])
            if node.module.startswith("mlmanage_jupyter."):
                mods.add(node.module)
    return mods


JUPYTER_MODULES = {"IPython", "ipywidgets", "ipykernel", "jupyter_server", "jupyterlab", "notebook", "traitlets", "nbformat"}


def test_core_has_no_jupyter_imports() -> None:
    core = Path(mlmanage_jupyter.__file__).parent / "core"
    offenders = {
        str(p.relative_to(core)): sorted(_imports_of(p) & JUPYTER_MODULES) for p in core.rglob("*.py") if _imports_of(p) & JUPYTER_MODULES
    }
    assert offenders == {}
    # and importing the whole core in a fresh interpreter loads none of them
    code = (
        "import sys, pkgutil, importlib, mlmanage_jupyter.core as c\n"
        "for m in pkgutil.walk_packages(c.__path__, 'mlmanage_jupyter.core.'):\n"
        "    try: importlib.import_module(m.name)\n"
        "    except ImportError: pass\n"
        f"print(sorted(set(m.split('.')[0] for m in sys.modules) & set({sorted(JUPYTER_MODULES)!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_server_does_not_import_core() -> None:
    server = Path(mlmanage_jupyter.__file__).parent / "server"
    bad = {
        str(p.name): sorted(m for m in _imports_of(p) if m.startswith("mlmanage_jupyter.core"))
        for p in server.rglob("*.py")
        if any(m.startswith("mlmanage_jupyter.core") for m in _imports_of(p))
    }
    assert bad == {}


def test_event_feed_reports_registry_changes_in_order(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "ws")
    assert ws.last_event_id() == 0 and ws.get_events() == []
    f = tmp_path / "m.pkl"
    f.write_bytes(b"model")
    Model.register(ws, model_path=str(f), model_name="feed")
    mark = ws.last_event_id()
    assert mark > 0
    m2 = Model.register(ws, model_path=str(f), model_name="feed")
    m2.add_tags({"stage": "dev"})
    events = ws.get_events(since=mark)
    assert [(e["kind"], e["subject"]) for e in events] == [("model.register", "feed:2"), ("model.tags", "feed:2")]
    assert [e["id"] for e in events] == sorted(e["id"] for e in events) and events[-1]["id"] == ws.last_event_id()
    assert len(ws.get_events(limit=1)) == 1
    with pytest.raises(ValidationError, match="since"):
        ws.get_events(since=-1)
    with pytest.raises(ValidationError, match="limit"):
        ws.get_events(limit=0)
