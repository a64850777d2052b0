"""A team workspace: metadata on a real PostgreSQL server, artifacts on Azure Blob Storage
(Azurite). Separate processes, each with its own notebook folder and ``.mlmanage/config.json``
naming the same database and container, register, deploy (local target), list and update
against one registry; 16 processes registering one name get versions 1..16; the schema is
created and upgraded on PostgreSQL as on SQLite."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from mlmanage_jupyter.core.store import metadata as md
from mlmanage_jupyter.core.workspace import Workspace

pytestmark = [pytest.mark.postgres]


def _notebook_folder(root: Path, who: str, postgres_url: str, container: str) -> Path:
    """``root/who`` with ``.mlmanage/config.json`` as the README's "Team workspace" shows it
    (the connection string comes from AZURE_STORAGE_CONNECTION_STRING)."""
    folder = root / who
    (folder / ".mlmanage").mkdir(parents=True)
    cfg = {"name": "team", "metadata_url": postgres_url, "artifact_store": {"type": "azure_blob", "container": container}}
    (folder / ".mlmanage" / "config.json").write_text(json.dumps(cfg))
    return folder


def _run(folder: Path, code: str, *args: str, timeout: float = 300) -> str:
    """Run ``code`` in a new Python process whose cwd is ``folder``; its stdout."""
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], cwd=folder, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{folder.name}: {r.stderr[-3000:]}"
    return r.stdout


def _size_types(conn) -> list[str]:  # type: ignore[no-untyped-def]
    """SQL types of models.size and model_files.size."""
    return [str(c["type"]) for t in ("models", "model_files") for c in inspect(conn).get_columns(t) if c["name"] == "size"]


def _diff(engine) -> list:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "include_name": lambda n, k, p: n != md.VERSION_TABLE})
        return compare_metadata(ctx, md.metadata)


def test_schema_on_postgres_is_created_at_head_and_matches_metadata(postgres_url: str, tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws", metadata_url=postgres_url)
    try:
        with ws.engine.connect() as conn:
            assert md.schema_revision(conn) == md.head_revision()
            assert _size_types(conn) == ["BIGINT", "BIGINT"]
        assert _diff(ws.engine) == []
        assert md.upgrade_schema(ws.engine) is False
    finally:
        ws.close()


UPGRADE = """
import sys
from mlmanage_jupyter.core.store import metadata as md
engine = md.make_engine(sys.argv[1])
sys.stdin.readline()  # start together
print(md.upgrade_schema(engine))
"""


@pytest.mark.slow
def test_0_1_0_database_on_postgres_is_upgraded_once_by_concurrent_openers(postgres_url: str) -> None:
    # a database as 0.1.0 made it: revision 0001's tables (= 0.1.0's schema), no version table
    engine = md.make_engine(postgres_url)
    with engine.begin() as conn:
        cfg = md._alembic_config(conn)
        command.upgrade(cfg, "0001")
        conn.execute(text(f"DROP TABLE {md.VERSION_TABLE}"))
        conn.execute(text("INSERT INTO events (time, kind, subject, detail) VALUES ('2026-01-01T00:00:00Z', 'model.register', 'm:1', '{}')"))
    with engine.connect() as conn:
        assert md.schema_revision(conn) == "0001" and _size_types(conn) == ["INTEGER", "INTEGER"]
    procs = [
        subprocess.Popen([sys.executable, "-c", UPGRADE, postgres_url], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for _ in range(6)
    ]  # fmt: skip
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e[-1500:] for _, e in outs]
    assert sorted(o.strip() for o, _ in outs) == ["False"] * 5 + ["True"]
    with engine.connect() as conn:
        assert md.schema_revision(conn) == md.head_revision() and _size_types(conn) == ["BIGINT", "BIGINT"]
        assert conn.execute(text("SELECT subject FROM events")).scalars().all() == ["m:1"]
    assert _diff(engine) == []
    engine.dispose()


REGISTER = """
import sys
from mlmanage_jupyter import Model
from mlmanage_jupyter.core.workspace import Workspace
ws = Workspace.from_config()
sys.stdin.readline()  # start together
print(Model.register(ws, sys.argv[1], "shared").version)
"""


@pytest.mark.slow
def test_sixteen_processes_get_versions_1_to_16(postgres_url: str, blob_container: str, tmp_path: Path) -> None:
    folders = [_notebook_folder(tmp_path, f"user{i}", postgres_url, blob_container) for i in range(16)]
    for i, f in enumerate(folders):
        (f / "model.bin").write_bytes(f"weights of user {i}".encode())
    procs = [
        subprocess.Popen([sys.executable, "-c", REGISTER, "model.bin"], cwd=f, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for f in folders
    ]  # fmt: skip
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e[-1500:] for _, e in outs]
    assert sorted(int(o) for o, _ in outs) == list(range(1, 17))
    # each version holds the bytes its process registered (files in the shared blob container)
    out = _run(
        folders[0],
        """
        import json
        from mlmanage_jupyter import Model
        from mlmanage_jupyter.core.workspace import Workspace
        ws = Workspace.from_config()
        print(json.dumps({m.version: open(Model.get_model_path("shared", m.version, ws), "rb").read().decode()
                          for m in Model.list(ws, name="shared")}))
        """,
    )
    contents = json.loads(out)
    assert sorted(contents.values()) == sorted(f"weights of user {i}" for i in range(16))


SCORE = """
import json
from mlmanage_jupyter import Model

def init():
    global w
    w = json.load(open(Model.get_model_path("team-model")))["w"]

def run(data):
    return [x * w for x in json.loads(data)["data"]]
"""

ALICE_DEPLOYS = """
import json
from mlmanage_jupyter import InferenceConfig, LocalWebservice, Model, Workspace
ws = Workspace.from_config()
open("w.json", "w").write(json.dumps({"w": 2}))
open("score.py", "w").write(SCORE)
m = Model.register(ws, "w.json", "team-model", tags={"owner": "alice"})
svc = Model.deploy(ws, "team-svc", [m], InferenceConfig(entry_script="score.py"), LocalWebservice.deploy_configuration())
svc.wait_for_deployment(timeout_sec=180)
print(json.dumps({"model": m.id, "state": svc.state, "answer": svc.run({"data": [1, 2]}), "workspace": str(ws.path)}))
"""

BOB_UPDATES = """
import json
from mlmanage_jupyter import Model, Webservice, Workspace
ws = Workspace.from_config()
seen = {"models": [m.id for m in Model.list(ws)], "services": [s.name for s in Webservice.list(ws)],
        "tags": Model(ws, "team-model").tags}
open("w.json", "w").write(json.dumps({"w": 10}))
m2 = Model.register(ws, "w.json", "team-model", tags={"owner": "bob"})
svc = Webservice(ws, "team-svc")
svc.update(models=[m2])
seen.update(model=m2.id, served=svc.models, answer=svc.run({"data": [1, 2]}), workspace=str(ws.path))
print(json.dumps(seen))
"""

ALICE_LISTS = """
import json
from mlmanage_jupyter import Model, Webservice, Workspace
ws = Workspace.from_config()
svc = Webservice(ws, "team-svc")
out = {"versions": [m.version for m in Model.list(ws, name="team-model")], "served": svc.models,
       "state": svc.state, "answer": svc.run({"data": [1, 2]}),
       "events": [e["kind"] for e in ws.get_events()]}
svc.delete()
out["services_after_delete"] = [s.name for s in Webservice.list(ws)]
print(json.dumps(out))
"""


@pytest.mark.slow
def test_two_notebook_folders_share_one_team_workspace(postgres_url: str, blob_container: str, tmp_path: Path) -> None:
    alice = _notebook_folder(tmp_path, "alice", postgres_url, blob_container)
    bob = _notebook_folder(tmp_path, "bob", postgres_url, blob_container)
    prelude = f"SCORE = {SCORE!r}\n"
    try:
        a = json.loads(_run(alice, prelude + textwrap.dedent(ALICE_DEPLOYS)))
        assert a["model"] == "team-model:1" and a["state"] == "Healthy" and a["answer"] == [2, 4]
        b = json.loads(_run(bob, textwrap.dedent(BOB_UPDATES)))
        assert b["models"] == ["team-model:1"] and b["services"] == ["team-svc"] and b["tags"] == {"owner": "alice"}
        assert b["model"] == "team-model:2" and b["served"] == ["team-model:2"] and b["answer"] == [10, 20]
        assert a["workspace"] != b["workspace"]  # two folders, one registry
        c = json.loads(_run(alice, textwrap.dedent(ALICE_LISTS)))
        assert c["versions"] == [2, 1] and c["served"] == ["team-model:2"]
        assert c["state"] == "Healthy" and c["answer"] == [10, 20]
        assert c["events"].count("model.register") == 2 and "service.update" in c["events"]
        assert c["services_after_delete"] == []
    finally:
        # whatever happened, stop a service left running (its pid is in the shared registry)
        _run(
            alice,
            """
            from mlmanage_jupyter import Webservice, Workspace
            for s in Webservice.list(Workspace.from_config()):
                s.delete()
            """,
        )
