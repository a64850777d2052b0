"""The metadata schema's Alembic migrations on SQLite: a workspace written by 0.1.0 (the
committed fixture) opens and is upgraded in place; a new one is made at head; concurrent
openers migrate once; a newer schema gives a clear error; a workspace at head is not written
on open; the head revision matches ``metadata.py`` exactly. PostgreSQL: tests/team/."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, event, select

from mlmanage_jupyter import Image, Model, Webservice, Workspace
from mlmanage_jupyter.core.store import metadata as md

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "workspace-0.1.0"


@pytest.fixture
def old_ws(tmp_path: Path) -> Path:
    """A copy of the workspace 0.1.0 wrote (tests/fixtures/README.md says what it holds)."""
    dest = tmp_path / "ws-0.1.0"
    shutil.copytree(FIXTURE, dest)
    return dest


def _revision(db: Path) -> str | None:
    with sqlite3.connect(db) as c:
        tables = {r[0] for r in c.execute("select name from sqlite_master where type='table'")}
        if md.VERSION_TABLE not in tables:
            return None
        return c.execute(f"select version_num from {md.VERSION_TABLE}").fetchone()[0]


def test_0_1_0_workspace_opens_upgrades_and_keeps_everything(old_ws: Path, tmp_path: Path) -> None:
    assert _revision(old_ws / "metadata.db") is None  # 0.1.0 had no version table
    ws = Workspace(old_ws)
    try:
        assert _revision(old_ws / "metadata.db") == md.head_revision()
        # the models, with their tags, files and bytes
        v1, v2 = Model(ws, "weights", 1), Model(ws, "weights", 2)
        assert v1.tags == {"stage": "dev"} and v1.description == "v1 file" and not v1.is_folder
        assert v2.is_folder and [f["path"] for f in v2.get_files()] == ["README", "weights.json"]
        assert json.loads(Path(v1.download(tmp_path / "d1")).read_text()) == {"w": 2}
        assert json.loads((Path(Model.get_model_path("weights", 2, ws)) / "weights.json").read_text()) == {"w": 3}
        # the image and its build context (0.1.0 stored the context's absolute path where it was made)
        img = Image(ws, "echo", 1)
        assert img.model_ids == ["weights:1"] and img.models == [v1] and img.entry_script == "score.py"
        ctx = ws.path / "images" / img.content_hash
        assert (ctx / "app" / "score.py").is_file() and (ctx / "azureml-models" / "weights" / "1" / "weights.json").is_file()
        # the service row (its process was stopped when the fixture was made)
        svc = Webservice(ws, "echo")
        assert svc.compute_type == "local" and svc.models == ["weights:1"] and svc.image is not None
        assert svc.image.id == "echo:1" and svc.scoring_uri and svc.scoring_uri.endswith("/score")
        assert svc.state in ("Unhealthy", "Failed")  # nothing serves it any more: said so, not lost
        assert [s.name for s in Webservice.list(ws)] == ["echo"]
        # the event log kept its history, and new writes work: a new version is 3
        kinds = [e["kind"] for e in ws.get_events()]
        assert kinds[:3] == ["model.register", "model.register", "image.create"]
        f = tmp_path / "w3.json"
        f.write_text(json.dumps({"w": 4}))
        v3 = Model.register(ws, f, "weights")
        assert v3.version == 3 and [m.version for m in Model.list(ws, name="weights")] == [3, 2, 1]
        assert ws.get_events(since=ws.last_event_id() - 1)[0]["subject"] == "weights:3"
    finally:
        ws.close()
    # opened again: already at head, nothing to do
    assert md.upgrade_schema(create_engine(f"sqlite:///{old_ws / 'metadata.db'}")) is False


def test_new_workspace_is_created_at_head(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    assert _revision(ws.path / "metadata.db") == md.head_revision()
    ws.close()


def test_head_matches_metadata_py(old_ws: Path, tmp_path: Path) -> None:
    """Both a new database and an upgraded 0.1.0 one have exactly the tables, columns, types,
    indexes and constraints metadata.py declares (a table change without a revision fails here)."""
    for db in (tmp_path / "new.db", old_ws / "metadata.db"):
        engine = md.make_engine(f"sqlite:///{db}")
        md.upgrade_schema(engine)
        with engine.connect() as conn:
            ctx = MigrationContext.configure(
                conn, opts={"compare_type": True, "include_name": lambda name, kind, _p: name != md.VERSION_TABLE}
            )
            diff = compare_metadata(ctx, md.metadata)
        engine.dispose()
        assert diff == [], f"{db.name}: {diff}"


def test_unknown_newer_revision_is_a_clear_error_and_changes_nothing(old_ws: Path) -> None:
    ws = Workspace(old_ws)
    ws.close()
    db = old_ws / "metadata.db"
    with sqlite3.connect(db) as c:
        c.execute(f"update {md.VERSION_TABLE} set version_num = 'f00d'")
    before = db.read_bytes()
    with pytest.raises(md.SchemaVersionError, match=r"schema revision 'f00d'.*newer.*pip install -U mlmanage-jupyter"):
        Workspace(old_ws)
    assert _revision(db) == "f00d" and db.read_bytes() == before


def test_opening_a_workspace_at_head_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "ws"
    Workspace(path).close()
    statements: list[str] = []
    make_engine = md.make_engine

    def recording(url: str):  # type: ignore[no-untyped-def]
        engine = make_engine(url)
        event.listen(engine, "before_cursor_execute", lambda conn, cur, stmt, *a: statements.append(stmt))
        return engine

    monkeypatch.setattr(md, "make_engine", recording)
    ws = Workspace(path)
    assert Model.list(ws) == []
    ws.close()
    assert statements, "the recorder saw nothing"
    writes = [s for s in statements if s.split()[0].upper() in {"INSERT", "UPDATE", "DELETE", "CREATE", "ALTER", "DROP"}]
    assert writes == [] and not any("IMMEDIATE" in s.upper() for s in statements)


OPEN_AND_REPORT = """
import sys
from mlmanage_jupyter.core.store import metadata as md
engine = md.make_engine(sys.argv[1])
sys.stdin.readline()  # start together
print(md.upgrade_schema(engine))
"""


def _open_concurrently(url: str, n: int) -> list[str]:
    procs = [
        subprocess.Popen([sys.executable, "-c", OPEN_AND_REPORT, url], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for _ in range(n)
    ]  # fmt: skip
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        results.append(out.strip())
    return results


@pytest.mark.slow
def test_concurrent_openers_of_a_0_1_0_workspace_migrate_once(old_ws: Path) -> None:
    results = _open_concurrently(f"sqlite:///{old_ws / 'metadata.db'}", 6)
    assert sorted(results) == ["False"] * 5 + ["True"]
    assert _revision(old_ws / "metadata.db") == md.head_revision()
    engine = md.make_engine(f"sqlite:///{old_ws / 'metadata.db'}")
    with engine.connect() as conn:
        assert conn.execute(select(md.models.c.version).where(md.models.c.name == "weights")).scalars().all() == [1, 2]
    engine.dispose()


@pytest.mark.slow
def test_concurrent_openers_of_a_new_database_create_the_schema_once(tmp_path: Path) -> None:
    results = _open_concurrently(f"sqlite:///{tmp_path / 'new.db'}", 6)
    assert sorted(results) == ["False"] * 5 + ["True"]
    assert _revision(tmp_path / "new.db") == md.head_revision()


def test_a_database_of_another_application_is_refused_untouched(tmp_path: Path) -> None:
    db = tmp_path / "other.db"
    with sqlite3.connect(db) as c:
        c.execute("create table models (id integer primary key, blob text)")
        c.execute("create table events (id integer primary key)")
    with pytest.raises(md.SchemaVersionError, match=r"tables named \['events', 'models'\].*empty database"):
        Workspace(tmp_path / "ws", metadata_url=f"sqlite:///{db}")
    with sqlite3.connect(db) as c:
        assert {r[0] for r in c.execute("select name from sqlite_master where type='table'")} == {"models", "events"}
    # unrelated tables are left alone and the workspace's are created beside them
    db2 = tmp_path / "shared.db"
    with sqlite3.connect(db2) as c:
        c.execute("create table notes (id integer primary key)")
    ws = Workspace(tmp_path / "ws2", metadata_url=f"sqlite:///{db2}")
    assert _revision(db2) == md.head_revision()
    ws.close()
