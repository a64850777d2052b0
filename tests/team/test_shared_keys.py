"""Service keys on a team's PostgreSQL workspace (revision 0004, ``store/keys.py``): two workspace
folders on one real PostgreSQL database; a service deployed from folder A has its keys in the
``service_keys`` table, so folder B gets them, scores with them and regenerates them (the
running service takes the new key at once). Keys a folder kept in files before 0004 move into
the table (the migration for the migrating folder, the first read for the others)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from alembic import command
from sqlalchemy import select, text

from mlmanage_jupyter import InferenceConfig, LocalWebservice, Model, Webservice, Workspace
from mlmanage_jupyter.core.store import metadata as md
from mlmanage_jupyter.core.store.keys import key_file, read_keys, write_keys

pytestmark = [pytest.mark.postgres]

SCORE = "import json\n\ndef init():\n    pass\n\ndef run(data):\n    return json.loads(data)\n"


def _post(uri: str, key: str | None) -> int:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return requests.post(uri, json={"x": 1}, headers=headers, timeout=30).status_code


def _table_keys(ws: Workspace, name: str) -> dict[str, str] | None:
    with ws.read() as conn:
        row = conn.execute(select(md.service_keys.c["keys"]).where(md.service_keys.c.service_name == name)).first()
    return None if row is None else dict(row[0])


@pytest.fixture
def two_folders(postgres_url: str, tmp_path: Path) -> Iterator[tuple[Workspace, Workspace]]:
    a = Workspace(tmp_path / "alice", metadata_url=postgres_url)
    b = Workspace(tmp_path / "bob", metadata_url=postgres_url)
    try:
        yield a, b
    finally:
        for s in Webservice.list(a, refresh=False):
            s.delete()
        a.close()
        b.close()


@pytest.mark.slow
def test_a_teammate_in_another_folder_gets_uses_and_regenerates_the_keys_and_gets_tokens(two_folders, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a, b = two_folders
    (tmp_path / "score.py").write_text(SCORE)
    (tmp_path / "m.json").write_text("{}")
    m = Model.register(a, tmp_path / "m.json", "m")
    svc = Model.deploy(a, "shared-keys", [m], InferenceConfig(entry_script=str(tmp_path / "score.py")),
                       LocalWebservice.deploy_configuration(auth_enabled=True))  # fmt: skip
    svc.wait_for_deployment(timeout_sec=120)
    keys = svc.get_keys()
    # bob, in his own folder: lists it, gets the keys, scores with them
    bobs = Webservice(b, "shared-keys")
    assert [s.name for s in Webservice.list(b)] == ["shared-keys"]
    assert bobs.get_keys() == keys
    assert _post(bobs.scoring_uri, keys[0]) == 200 and _post(bobs.scoring_uri, None) == 401
    assert bobs.run({"x": 2}) == {"x": 2}
    # they are in the shared table, not in alice's folder
    assert _table_keys(a, "shared-keys") == {"primaryKey": keys[0], "secondaryKey": keys[1]}
    assert not key_file(a.path, "shared-keys").exists()
    # bob regenerates the primary key: the running service takes it, alice sees it
    bobs.regen_key("Primary")
    new_primary, secondary = bobs.get_keys()
    assert new_primary != keys[0] and secondary == keys[1]
    assert _post(bobs.scoring_uri, keys[0]) == 401
    assert _post(bobs.scoring_uri, new_primary) == 200
    assert Webservice(a, "shared-keys").get_keys() == (new_primary, secondary)
    assert not key_file(b.path, "shared-keys").exists()
    # deleting the service deletes its keys
    Webservice(b, "shared-keys").delete()
    assert _table_keys(a, "shared-keys") is None
    # token auth: bob gets a token alice's service accepts (the signing secret is shared the same way)
    tok = Model.deploy(a, "shared-token", [m], InferenceConfig(entry_script=str(tmp_path / "score.py")),
                       LocalWebservice.deploy_configuration(token_auth_enabled=True))  # fmt: skip
    tok.wait_for_deployment(timeout_sec=120)
    token, _ = Webservice(b, "shared-token").get_token()
    assert _post(tok.scoring_uri, token) == 200 and _post(tok.scoring_uri, "not-a-token") == 401
    assert not (a.path / "services" / "shared-token" / "token.json").exists()


def _service_row(conn, name: str) -> None:  # type: ignore[no-untyped-def]
    conn.execute(
        md.services.insert().values(name=name, compute_type="local", state="Unhealthy", config={"auth_enabled": True},
                                    runtime={}, keys={}, created_time=md.utcnow(), updated_time=md.utcnow())
    )  # fmt: skip


def test_keys_a_folder_kept_in_files_move_into_the_table(postgres_url: str, tmp_path: Path) -> None:
    # a team database at revision 0003: alice's service's keys in alice's folder, bob's in bob's
    alice, bob = tmp_path / "alice", tmp_path / "bob"
    engine = md.make_engine(postgres_url)
    with engine.begin() as conn:
        command.upgrade(md._alembic_config(conn), "0003")
        _service_row(conn, "alices-svc")
        _service_row(conn, "bobs-svc")
    engine.dispose()
    ka = {"primaryKey": "alice-primary-" + "a" * 20, "secondaryKey": "alice-secondary-" + "b" * 20}
    kb = {"primaryKey": "bob-primary-" + "c" * 20, "secondaryKey": "bob-secondary-" + "d" * 20}
    write_keys(alice, "alices-svc", ka)
    write_keys(bob, "bobs-svc", kb)
    write_keys(alice, "no-such-svc", ka)  # a stale file: no row, not copied
    # alice opens first: revision 0004 copies her folder's keys into the table
    a = Workspace(alice, metadata_url=postgres_url)
    b = Workspace(bob, metadata_url=postgres_url)
    try:
        with a.read() as conn:
            assert md.schema_revision(conn) == md.head_revision()
            copied = {n: json.loads(k) if isinstance(k, str) else k
                      for n, k in conn.execute(text("SELECT service_name, keys FROM service_keys"))}  # fmt: skip
        assert copied == {"alices-svc": ka}
        # bob's keys: still only in his folder, so alice can't see them yet; bob's first read moves them
        assert Webservice(a, "bobs-svc").record.keys == {}
        assert Webservice(b, "bobs-svc").get_keys() == (kb["primaryKey"], kb["secondaryKey"])
        assert not key_file(bob, "bobs-svc").exists()
        assert Webservice(a, "bobs-svc").get_keys() == (kb["primaryKey"], kb["secondaryKey"])
        # alice's copied file goes once she reads the keys from the table; bob sees hers
        assert Webservice(b, "alices-svc").get_keys() == (ka["primaryKey"], ka["secondaryKey"])
        assert Webservice(a, "alices-svc").get_keys() == (ka["primaryKey"], ka["secondaryKey"])
        assert not key_file(alice, "alices-svc").exists()
        assert read_keys(alice, "no-such-svc") == ka  # not a service's: left alone
    finally:
        a.close()
        b.close()
