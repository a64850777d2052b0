"""Issue 16, the workspace side: keys never in the metadata database (migration 0003, 0600
files), the database file itself private, read-only workspaces readable (writes refused with
one error naming the folder), and a service's state readable when the database can't be
written."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlmanage_jupyter import InferenceConfig, LocalWebservice, Model, Webservice, Workspace
from mlmanage_jupyter.core.errors import ReadOnlyWorkspaceError
from mlmanage_jupyter.core.store import metadata as md
from mlmanage_jupyter.core.store.keys import key_file, read_keys

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "workspace-0.1.0"
SCORE = "import json\n\ndef init():\n    pass\n\ndef run(data):\n    return json.loads(data)\n"


def _db_bytes(ws_path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in ws_path.glob("metadata.db*") if p.is_file())


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.fixture
def deployed(tmp_path: Path) -> Iterator[tuple[Workspace, Webservice]]:
    ws = Workspace(tmp_path / "ws")
    (tmp_path / "score.py").write_text(SCORE)
    (tmp_path / "m.json").write_text("{}")
    m = Model.register(ws, tmp_path / "m.json", "m")
    svc = Model.deploy(
        ws, "keyed", [m], InferenceConfig(entry_script=str(tmp_path / "score.py")),
        LocalWebservice.deploy_configuration(auth_enabled=True),
    )  # fmt: skip
    try:
        svc.wait_for_deployment(timeout_sec=120)
        yield ws, svc
    finally:
        try:
            svc.delete()
        finally:
            ws.close()


@pytest.mark.slow
def test_keys_never_reach_the_metadata_db_and_get_keys_works(deployed) -> None:  # type: ignore[no-untyped-def]
    ws, svc = deployed
    primary, secondary = svc.get_keys()
    assert svc.run("[1, 2]") == [1, 2]  # the client authenticates with the stored key
    svc.regen_key("Secondary")
    primary2, secondary2 = svc.get_keys()
    assert primary2 == primary and secondary2 != secondary
    # another process finds the keys (they are in the workspace, not in memory)
    assert Webservice(ws, "keyed").get_keys() == (primary2, secondary2)
    data = _db_bytes(ws.path)
    for k in (primary, secondary, secondary2):
        assert k.encode() not in data, "a service key is in metadata.db or its WAL"
    kf = key_file(ws.path, "keyed")
    assert _mode(kf) == 0o600 and _mode(kf.parent) == 0o700
    assert read_keys(ws.path, "keyed")["secondaryKey"] == secondary2
    # the metadata database is the owner's only (its WAL/SHM inherit the mode)
    assert _mode(ws.path / "metadata.db") & 0o077 == 0
    svc.delete()
    assert not kf.exists()


def test_0_1_0_keys_move_to_0600_files_and_leave_the_db(tmp_path: Path) -> None:
    old = tmp_path / "ws-0.1.0"
    shutil.copytree(FIXTURE, old)
    keys = {"primaryKey": "PRIMARY-0.1.0-" + "a" * 20, "secondaryKey": "SECONDARY-0.1.0-" + "b" * 20}
    with sqlite3.connect(old / "metadata.db") as c:  # a 0.1.0 service deployed with auth
        (cfg,) = c.execute("select config from services where name = 'echo'").fetchone()
        cfg = {**json.loads(cfg), "auth_enabled": True}
        c.execute("update services set keys = ?, config = ? where name = 'echo'", (json.dumps(keys), json.dumps(cfg)))
    assert keys["primaryKey"].encode() in _db_bytes(old)
    ws = Workspace(old)
    try:
        svc = Webservice(ws, "echo")
        assert svc.get_keys() == (keys["primaryKey"], keys["secondaryKey"])
        assert _mode(key_file(old, "echo")) == 0o600
        with ws.read() as conn:
            assert conn.execute(md.services.select()).first().keys == {}
    finally:
        ws.close()
    data = _db_bytes(old)
    assert keys["primaryKey"].encode() not in data and keys["secondaryKey"].encode() not in data


@pytest.fixture
def read_only_copy(tmp_path: Path) -> Iterator[Path]:
    """A workspace (at head, one model) behind a read-only bind mount (root) or chmod (others)."""
    src = tmp_path / "src"
    ws = Workspace(src)
    (tmp_path / "m.json").write_text('{"w": 1}')
    Model.register(ws, tmp_path / "m.json", "m", tags={"team": "a"})
    ws.close()
    if os.geteuid() == 0:
        mnt = tmp_path / "ro"
        mnt.mkdir()
        r = subprocess.run(["mount", "--bind", "-o", "ro", str(src), str(mnt)], capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"cannot make a read-only bind mount here: {r.stderr.strip()}")
        subprocess.run(["mount", "-o", "remount,bind,ro", str(mnt)], check=False)
        try:
            yield mnt
        finally:
            subprocess.run(["umount", "-l", str(mnt)], check=False)
    else:
        for p in [src, *src.rglob("*")]:
            p.chmod(p.stat().st_mode & ~0o222)
        try:
            yield src
        finally:
            for p in [src, *src.rglob("*")]:
                p.chmod(p.stat().st_mode | 0o200)


def test_a_read_only_workspace_lists_and_reads_and_refuses_writes_by_name(read_only_copy: Path, tmp_path: Path) -> None:
    ws = Workspace(read_only_copy)
    try:
        assert ws.read_only is not None
        (m,) = Model.list(ws)
        assert m.name == "m" and m.tags == {"team": "a"}
        assert json.loads(Path(m.download(tmp_path / "out")).read_text()) == {"w": 1}
        assert len(Webservice.list(ws)) == 0
        f = tmp_path / "m2.json"
        f.write_text("{}")
        with pytest.raises(ReadOnlyWorkspaceError, match=f"workspace {read_only_copy} is open read-only"):
            Model.register(ws, f, "m")
        with pytest.raises(ReadOnlyWorkspaceError, match="read-only"):
            m.add_tags({"x": "y"})
        assert [x.version for x in Model.list(ws)] == [1]
    finally:
        ws.close()


def test_a_read_only_workspace_needing_a_migration_says_so(tmp_path: Path) -> None:
    old = tmp_path / "old"
    shutil.copytree(FIXTURE, old)
    if os.geteuid() == 0:
        mnt = tmp_path / "ro"
        mnt.mkdir()
        if subprocess.run(["mount", "--bind", "-o", "ro", str(old), str(mnt)], capture_output=True).returncode != 0:
            pytest.skip("cannot make a read-only bind mount here")
        subprocess.run(["mount", "-o", "remount,bind,ro", str(mnt)], check=False)
        target = mnt
    else:
        for p in [old, *old.rglob("*")]:
            p.chmod(p.stat().st_mode & ~0o222)
        target = old
    try:
        with pytest.raises(ReadOnlyWorkspaceError, match="open it once with write access to upgrade it"):
            Workspace(target)
    finally:
        if target != old:
            subprocess.run(["umount", "-l", str(target)], check=False)
        else:
            for p in [old, *old.rglob("*")]:
                p.chmod(p.stat().st_mode | 0o200)


@pytest.mark.slow
def test_service_state_is_readable_when_the_disk_is_full(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs the tests as root)")
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk)], capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    ws = None
    svc = None
    try:
        ws = Workspace(disk / "ws")
        (tmp_path / "score.py").write_text(SCORE)
        (tmp_path / "m.json").write_text("{}")
        m = Model.register(ws, tmp_path / "m.json", "m")
        svc = Model.deploy(ws, "full", [m], InferenceConfig(entry_script=str(tmp_path / "score.py")))
        svc.wait_for_deployment(timeout_sec=120)
        assert svc.state == "Healthy"
        filler = disk / "filler"
        with open(filler, "wb", buffering=0) as f:
            for size in (1 << 16, 512):
                while True:
                    try:
                        f.write(b"\0" * size)
                    except OSError:
                        break
        os.killpg(int(svc.runtime["pid"]), 9)  # the state changes while the database can't take a write
        for _ in range(100):  # killpg is asynchronous: the process may take a moment to go
            if svc.state == "Unhealthy":
                break
            time.sleep(0.1)
        assert svc.state == "Unhealthy" and "gone" in (svc.error or "")
        filler.unlink()
        assert Webservice(ws, "full").state == "Unhealthy"  # space is back: recorded now
        with ws.read() as conn:
            assert conn.execute(md.services.select()).first().state == "Unhealthy"
    finally:
        if svc is not None:
            try:
                svc.delete()
            except Exception:
                pass
        if ws is not None:
            ws.close()
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_an_unreadable_or_damaged_keys_file_does_not_break_reading_the_service(tmp_path: Path) -> None:
    old = tmp_path / "ws"
    shutil.copytree(FIXTURE, old)
    ws = Workspace(old)
    try:
        kf = key_file(old, "echo")
        kf.parent.mkdir(mode=0o700, exist_ok=True)
        kf.write_text("{not json")
        assert Webservice(ws, "echo").name == "echo"  # listed and read; its keys are just unavailable
        assert [s.name for s in Webservice.list(ws)] == ["echo"]
    finally:
        ws.close()
