"""AzureBlobArtifactStore against a real Azurite (marker azurite)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from mlmanage_jupyter.core.errors import ArtifactCorruptError, NotFoundError, ValidationError

pytestmark = pytest.mark.azurite


@pytest.fixture
def store(azurite_connection_string: str, blob_container: str):
    from mlmanage_jupyter.core.store.blob import AzureBlobArtifactStore

    # small blocks so a few hundred KiB exercise multi-block staging and ranged reads
    return AzureBlobArtifactStore(azurite_connection_string, blob_container, block_size=64 * 1024, max_concurrency=3)


def _container(conn: str, name: str):
    from azure.storage.blob import BlobServiceClient

    return BlobServiceClient.from_connection_string(conn).get_container_client(name)


def _write(path: Path, n: int, seed: int = 0) -> Path:
    """A deterministic file of ``n`` bytes."""
    path.write_bytes((hashlib.sha256(str(seed).encode()).digest() * (n // 32 + 1))[:n])
    return path


def test_creates_container_and_round_trips_bytes(store, azurite_connection_string, blob_container, tmp_path):
    assert _container(azurite_connection_string, blob_container).exists()
    src = tmp_path / "model.bin"
    src.write_bytes(os.urandom(300_001))  # 5 blocks of 64 KiB, the last one partial
    sha, size = store.put_file(src)
    assert (sha, size) == (hashlib.sha256(src.read_bytes()).hexdigest(), 300_001)
    assert store.exists(sha)
    # stored at objects/<sha256> with its hash in metadata, nothing else in the container
    cc = _container(azurite_connection_string, blob_container)
    assert list(cc.list_blob_names()) == [f"objects/{sha}"]
    assert cc.get_blob_client(f"objects/{sha}").get_blob_properties().metadata["sha256"] == sha
    dest = tmp_path / "out" / "model.bin"
    assert store.get_file(sha, dest) == 300_001
    assert dest.read_bytes() == src.read_bytes()
    assert store.verify(sha)
    assert list(store.iter_objects()) == [sha]


def test_open_streams_in_pieces(store, tmp_path):
    src = tmp_path / "f"
    data = os.urandom(200_000)
    src.write_bytes(data)
    sha, _ = store.put_file(src)
    with store.open(sha) as f:
        first = f.read(10)
        rest = f.read()
    assert first + rest == data


def test_put_is_idempotent_and_dedups(store, azurite_connection_string, blob_container, tmp_path):
    a = _write(tmp_path / "a", 150_000, seed=1)
    b = tmp_path / "b"
    b.write_bytes(a.read_bytes())
    first = store.put_file(a)
    blob = _container(azurite_connection_string, blob_container).get_blob_client(f"objects/{first[0]}")
    etag = blob.get_blob_properties().etag
    assert store.put_file(b) == first
    assert store.put_bytes(a.read_bytes()) == first
    # not uploaded again: the blob is the same version
    assert blob.get_blob_properties().etag == etag
    assert list(store.iter_objects()) == [first[0]]


def test_empty_file(store, tmp_path):
    src = tmp_path / "empty"
    src.write_bytes(b"")
    sha, size = store.put_file(src)
    assert (sha, size) == (hashlib.sha256(b"").hexdigest(), 0)
    assert store.get_file(sha, tmp_path / "empty.out") == 0
    assert (tmp_path / "empty.out").read_bytes() == b""


def test_corrupt_object_is_detected(store, azurite_connection_string, blob_container, tmp_path):
    src = tmp_path / "m"
    src.write_bytes(os.urandom(100_000))
    sha, _ = store.put_file(src)
    # someone overwrites the object behind the store's back
    _container(azurite_connection_string, blob_container).upload_blob(f"objects/{sha}", b"tampered", overwrite=True)
    assert store.verify(sha) is False
    dest = tmp_path / "dest" / "m"
    with pytest.raises(ArtifactCorruptError, match=sha[:12]):
        store.get_file(sha, dest)
    assert not dest.exists()
    assert [p.name for p in dest.parent.iterdir()] == []  # no partial download left behind


def test_missing_object_and_blob(store, tmp_path):
    missing = "0" * 64
    assert not store.exists(missing)
    with pytest.raises(NotFoundError, match="000000000000"):
        store.open(missing)
    with pytest.raises(NotFoundError):
        store.get_file(missing, tmp_path / "x")
    with pytest.raises(NotFoundError, match="nope"):
        store.read_blob("nope")
    store.delete(missing)  # no-op
    store.delete_blob("nope")  # no-op
    with pytest.raises(ValidationError):
        store.exists("not-a-sha")


def test_blobs_by_prefix(store):
    store.write_blob("collected/svc/model/1/2024-01-01.jsonl", b"a\n")
    store.write_blob("collected/svc/model/1/2024-01-02.jsonl", b"b\n")
    store.write_blob("collected/other/model/1/2024-01-01.jsonl", b"c\n")
    store.write_blob("collected/svc/model/1/2024-01-01.jsonl", b"a2\n")  # replace
    assert store.read_blob("collected/svc/model/1/2024-01-01.jsonl") == b"a2\n"
    assert store.list_blobs("collected/svc/") == [
        "collected/svc/model/1/2024-01-01.jsonl",
        "collected/svc/model/1/2024-01-02.jsonl",
    ]
    assert len(store.list_blobs()) == 3
    assert list(store.iter_objects()) == []  # blobs are not objects
    store.delete_blob("collected/svc/model/1/2024-01-02.jsonl")
    assert store.list_blobs("collected/svc/") == ["collected/svc/model/1/2024-01-01.jsonl"]
    with pytest.raises(ValidationError):
        store.write_blob("../escape", b"x")


def test_delete_object(store, tmp_path):
    sha, _ = store.put_bytes(b"bye")
    store.delete(sha)
    assert not store.exists(sha)
    assert list(store.iter_objects()) == []


def test_bad_input_errors(azurite_connection_string):
    from mlmanage_jupyter.core.store.blob import AzureBlobArtifactStore, BlobStorageError

    with pytest.raises(ValidationError, match="container name"):
        AzureBlobArtifactStore(azurite_connection_string, "Bad_Name")
    with pytest.raises(ValidationError, match="connection string"):
        AzureBlobArtifactStore("this is not a connection string", "ok-name")
    wrong_key = azurite_connection_string.replace("AccountKey=Eby8", "AccountKey=Zby8")
    with pytest.raises(ValidationError, match="rejected the credentials"):
        AzureBlobArtifactStore(wrong_key, "ok-name")
    # nothing listens on port 9 (discard): unreachable service
    unreachable = azurite_connection_string.split("BlobEndpoint=")[0] + "BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;"
    with pytest.raises(BlobStorageError, match="cannot reach"):
        AzureBlobArtifactStore(unreachable, "ok-name")


def test_store_does_not_leak_key(store):
    assert "AccountKey" not in store.describe() and "Eby8" not in store.describe()
    assert store.describe().startswith("azure_blob:http://")


def test_workspace_selects_blob_store_from_config(azurite_connection_string, blob_container, tmp_path):
    from mlmanage_jupyter.core.store.blob import AzureBlobArtifactStore
    from mlmanage_jupyter.core.workspace import Workspace

    ws = Workspace.create(tmp_path / "ws", artifact_store={"type": "azure_blob", "container": blob_container})
    assert isinstance(ws.artifacts, AzureBlobArtifactStore)
    assert ws.artifacts.container == blob_container
    assert blob_container in ws.get_details()["artifact_store"]
    # nothing stored locally
    assert not (ws.path / "artifacts").exists()


def test_workspace_register_and_download_model_through_blob(
    azurite_connection_string, blob_container, tmp_path, sklearn_model
):
    import joblib

    from mlmanage_jupyter.core.model import Model
    from mlmanage_jupyter.core.workspace import Workspace

    ws = Workspace.create(tmp_path / "ws", artifact_store={"type": "azure_blob", "container": blob_container})
    folder = tmp_path / "bundle"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "weights.bin").write_bytes(os.urandom(70_000))
    (folder / "model.pkl").write_bytes(sklearn_model.path.read_bytes())

    m1 = Model.register(ws, model_path=str(sklearn_model.path), model_name="diabetes")
    m2 = Model.register(ws, model_path=str(folder), model_name="bundle")
    objects = set(ws.artifacts.iter_objects())
    assert len(objects) == 2  # the pickle is stored once although both models hold it
    assert not (ws.path / "artifacts").exists()

    out = Path(m1.download(target_dir=str(tmp_path / "dl1")))
    assert out.read_bytes() == sklearn_model.path.read_bytes()
    restored = joblib.load(out)
    assert (restored.predict(sklearn_model.X) == sklearn_model.model.predict(sklearn_model.X)).all()
    out2 = Path(m2.download(target_dir=str(tmp_path / "dl2")))
    assert (out2 / "sub" / "weights.bin").read_bytes() == (folder / "sub" / "weights.bin").read_bytes()
    # another Workspace object on the same folder (as another process would) materializes
    # the model from the blob store for get_model_path
    path = Model.get_model_path("diabetes", _workspace=Workspace(ws.path))
    assert Path(path).read_bytes() == sklearn_model.path.read_bytes()


def test_file_changing_during_upload_commits_nothing(store, azurite_connection_string, blob_container, tmp_path, monkeypatch):
    from mlmanage_jupyter.core.store import blob as blob_mod

    src = tmp_path / "growing.log"
    src.write_bytes(os.urandom(200_000))
    real = blob_mod.sha256_file

    def hash_then_append(path):
        result = real(path)
        with open(path, "ab") as f:  # another writer appends between hashing and uploading
            f.write(b"more")
        return result

    monkeypatch.setattr(blob_mod, "sha256_file", hash_then_append)
    with pytest.raises(ValidationError, match="changed while it was uploaded"):
        store.put_file(src)
    # the staged blocks are uncommitted: no blob exists under objects/<sha256>
    assert list(_container(azurite_connection_string, blob_container).list_blob_names()) == []
    assert list(store.iter_objects()) == []
    monkeypatch.setattr(blob_mod, "sha256_file", real)
    sha, size = store.put_file(src)  # once the file is stable it stores fine
    assert size == 200_004 and store.verify(sha)
