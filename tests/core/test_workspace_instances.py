"""One Workspace (one SQLAlchemy engine) per workspace folder per process: reused by
``Workspace(path)`` and ``resolve_workspace(path)``, replaced when its config changes or its
folder is made again, disposed on ``close()`` and at exit."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mlmanage_jupyter import Model
from mlmanage_jupyter.core import workspace as wsmod
from mlmanage_jupyter.core.store import metadata as md
from mlmanage_jupyter.core.store.artifacts import LocalArtifactStore
from mlmanage_jupyter.core.workspace import Workspace, resolve_workspace


@pytest.fixture
def engines(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every engine the workspace module makes during the test."""
    made: list[object] = []
    make_engine = md.make_engine

    def counting(url: str):  # type: ignore[no-untyped-def]
        made.append(make_engine(url))
        return made[-1]

    monkeypatch.setattr(md, "make_engine", counting)
    return made


def test_same_path_100_times_is_one_instance_and_one_engine(tmp_path: Path, engines: list[object]) -> None:
    path = tmp_path / "ws"
    first = Workspace(path)
    got = {id(resolve_workspace(str(path))) for _ in range(50)} | {id(Workspace(path)) for _ in range(50)}
    assert got == {id(first)} and len(engines) == 1
    # another spelling of the same folder is the same workspace
    (tmp_path / "link").symlink_to(path)
    assert resolve_workspace(tmp_path / "link" / ".." / "ws") is first and Workspace(tmp_path / "link") is first
    assert len(engines) == 1
    # and a whole register/list cycle through paths makes no engine either
    f = tmp_path / "m.bin"
    f.write_bytes(b"x")
    Model.register(str(path), f, "m")
    assert [m.id for m in Model.list(str(path))] == ["m:1"] and len(engines) == 1
    first.close()


def test_config_change_or_recreated_folder_gives_a_new_instance(tmp_path: Path, engines: list[object]) -> None:
    path = tmp_path / "ws"
    a = Workspace(path)
    with a.read() as conn:
        conn.exec_driver_sql("select 1")
    assert a.engine.pool.checkedin() == 1
    cfg = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps({**cfg, "name": "renamed"}))
    b = Workspace(path)
    assert b is not a and b.name == "renamed" and len(engines) == 2
    assert a.engine.pool.checkedin() == 0  # the replaced instance's connections were closed
    assert Workspace(path) is b
    # the folder deleted and made again with the same config: not an engine on a deleted file
    shutil.rmtree(path)
    path.mkdir()
    (path / "config.json").write_text(json.dumps({**cfg, "name": "renamed"}))
    c = Workspace(path)
    assert c is not b and Model.list(c) == []
    c.close()


def test_close_disposes_and_forgets(tmp_path: Path, engines: list[object]) -> None:
    with Workspace(tmp_path / "ws") as ws:
        assert Model.list(ws) == [] and ws.engine.pool.checkedin() == 1
    assert ws.engine.pool.checkedin() == 0
    again = Workspace(tmp_path / "ws")
    assert again is not ws and len(engines) == 2
    # an overridden artifact store is the caller's own: that instance is not shared
    own = Workspace(tmp_path / "ws", artifact_store=LocalArtifactStore(tmp_path / "elsewhere"))
    assert own is not again and Workspace(tmp_path / "ws") is again
    own.close()
    again.close()


def test_exit_disposes_every_cached_engine(tmp_path: Path) -> None:
    a, b = Workspace(tmp_path / "a"), Workspace(tmp_path / "b")
    for ws in (a, b):
        assert Model.list(ws) == [] and ws.engine.pool.checkedin() == 1
    wsmod._dispose_all()  # what atexit runs
    assert a.engine.pool.checkedin() == 0 and b.engine.pool.checkedin() == 0
    assert Workspace(tmp_path / "a") is not a


def test_bad_metadata_url_names_what_to_fix_and_hides_the_password(tmp_path: Path) -> None:
    from infra.components import free_port

    from mlmanage_jupyter.core.errors import ValidationError

    path = tmp_path / "ws"
    path.mkdir()
    cases = {
        "postgres://team:s3cret@db/x": "names a database this install can't talk to.*postgresql\\+psycopg://",
        "not a url": "is not a valid SQLAlchemy URL",
        f"postgresql+psycopg://team:s3cret@127.0.0.1:{free_port()}/x": "can't open the metadata database.*refused",
    }
    for url, message in cases.items():
        (path / "config.json").write_text(json.dumps({"name": "t", "metadata_url": url}))
        with pytest.raises(ValidationError, match=f"metadata_url in {path / 'config.json'}") as err:
            Workspace(path)
        assert err.match(message) and "s3cret" not in str(err.value)
    (path / "config.json").write_text(json.dumps({"name": "t"}))
    ws = Workspace(path, metadata_url=f"sqlite:///{tmp_path / 'other.db'}")
    assert ws.get_details()["metadata_url"] == f"sqlite:///{tmp_path / 'other.db'}"
    ws.close()


def test_copies_and_pickles_are_the_same_workspace(tmp_path: Path) -> None:
    import copy
    import pickle

    ws = Workspace(tmp_path / "ws")
    other = Workspace(tmp_path / "other", metadata_url=f"sqlite:///{tmp_path / 'other.db'}")
    assert copy.copy(ws) is ws and copy.deepcopy({"w": ws})["w"] is ws
    assert pickle.loads(pickle.dumps(ws)) is ws
    back = pickle.loads(pickle.dumps(other))
    assert back is other and back.metadata_url == f"sqlite:///{tmp_path / 'other.db'}"
    # the process default was not touched by any of it
    assert Workspace.get_default().path != ws.path
    ws.close()
    other.close()
