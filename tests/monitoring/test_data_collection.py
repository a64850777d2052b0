"""Model data collection with real services and real traffic: every input comes back with its
prediction, partitioned like Azure's model data, in order per worker, from the local store
and from Azure Blob Storage (Azurite); a clean stop under load loses nothing."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests
from monitoring_scripts import SCORE_PY

from mlmanage_jupyter.server.collector import ModelDataCollector, _FolderSink

KEY_RE = re.compile(r"^modeldata/(?P<svc>[a-z0-9-]+)/diabetes/1/\d{4}/\d{2}/\d{2}/(?P<worker>\d+x[0-9a-f]{8})-(?P<seq>\d{6})\.jsonl$")


def _wait_rows(get: Callable[[], pd.DataFrame], n: int, timeout_s: float = 30.0) -> pd.DataFrame:
    deadline = time.monotonic() + timeout_s
    while True:
        df = get()
        if len(df) >= n or time.monotonic() > deadline:
            return df
        time.sleep(0.25)


def _post(url: str, body: Any, rid: str, session: Any = requests) -> requests.Response:
    return session.post(url, json=body, headers={"x-ms-request-id": rid}, timeout=30)


def _check_round_trip(svc: Any, model: Any, X: Any, n: int) -> pd.DataFrame:
    inputs = {f"in-{i}": {"data": [X[i % len(X)].tolist()], "n": i} for i in range(n)}
    for rid, body in inputs.items():
        assert _post(svc.scoring_uri, body, rid).status_code == 200
    assert _post(svc.scoring_uri, {"raise": "no"}, "err").status_code == 500
    df = _wait_rows(svc.get_collected_data, n)
    assert len(df) == n  # the error was not collected
    assert set(df["request_id"]) == set(inputs)
    for rec in df.itertuples():
        assert rec.input == inputs[rec.request_id]
        assert rec.prediction == pytest.approx(model.predict(rec.input["data"]).tolist())
        assert (rec.service, rec.model, rec.model_version, rec.models) == (svc.name, "diabetes", "1", ["diabetes:1"])
    # in order per worker: seq runs 0, 1, 2 ... and times never go back
    for _, g in df.groupby("worker", sort=False):
        assert list(g["seq"]) == list(range(len(g)))
        assert g["time"].is_monotonic_increasing
    keys = svc.workspace.artifacts.list_blobs("modeldata/")
    assert keys and all(KEY_RE.match(k) and KEY_RE.match(k)["svc"] == svc.name for k in keys), keys
    return df


def test_round_trip_local_store(deploy_service: Callable[..., Any], sklearn_model: Any) -> None:
    svc = deploy_service("collect", workers=2, collect_model_data=True)
    df = _check_round_trip(svc, sklearn_model.model, sklearn_model.X, 40)
    root = Path(svc.workspace.artifacts.root) / "blobs" / "modeldata" / "collect"
    assert root.is_dir() and not list(root.rglob(".partial-*"))
    # start / end select by time; model selects the partition
    mid = df["time"].sort_values().iloc[20]
    assert len(svc.get_collected_data(start=mid)) == (df["time"] >= mid).sum()
    assert len(svc.get_collected_data(end=mid)) == (df["time"] < mid).sum()
    assert len(svc.get_collected_data(model="diabetes:1")) == 40
    assert len(svc.get_collected_data(model="other")) == 0


def test_off_by_default(deploy_service: Callable[..., Any], sklearn_model: Any) -> None:
    svc = deploy_service("nocollect")
    assert _post(svc.scoring_uri, {"data": sklearn_model.X[:1].tolist()}, "x").status_code == 200
    time.sleep(1.5)  # more than the flush interval: a collector would have written by now
    assert svc.get_collected_data().empty
    assert svc.workspace.artifacts.list_blobs("modeldata/") == []


def test_clean_stop_under_load_loses_nothing(
    deploy_service: Callable[..., Any], sklearn_model: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # no periodic flush during the test: everything must come from the shutdown flush
    monkeypatch.setenv("MLMANAGE_DATA_COLLECTION_FLUSH_MS", "600000")
    svc = deploy_service("collectstop", workers=2, collect_model_data=True)
    url, ws = svc.scoring_uri, svc.workspace
    answered: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    row = sklearn_model.X[:1].tolist()

    def client(c: int) -> None:
        with requests.Session() as s:
            i = 0
            while not stop.is_set():
                rid = f"c{c}-{i}"
                i += 1
                try:
                    r = _post(url, {"data": row, "rid": rid}, rid, s)
                except requests.RequestException:
                    continue  # the service is going away
                if r.status_code == 200:
                    with lock:
                        answered.append(rid)

    threads = [threading.Thread(target=client, args=(c,), daemon=True) for c in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while len(answered) < 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    before = len(answered)
    assert ws.artifacts.list_blobs("modeldata/") == []  # nothing flushed yet
    svc.delete()  # SIGTERM: graceful stop while the clients keep sending
    stop.set()
    for t in threads:
        t.join(30)
    from mlmanage_jupyter.core.telemetry import get_collected_data

    df = get_collected_data(ws, "collectstop")
    assert before >= 200
    assert set(answered) <= set(df["request_id"])
    assert df["request_id"].is_unique
    assert all(rec["rid"] == rid for rec, rid in zip(df["input"], df["request_id"], strict=True))


def test_azurite_round_trip(tmp_path: Path, azurite_connection_string: str, blob_container: str, sklearn_model: Any) -> None:
    from mlmanage_jupyter.core.environment import InferenceConfig
    from mlmanage_jupyter.core.model import Model
    from mlmanage_jupyter.core.webservice import LocalWebservice, deploy
    from mlmanage_jupyter.core.workspace import Workspace

    ws = Workspace.create(tmp_path / "ws", artifact_store={"type": "azure_blob", "container": blob_container})
    assert ws.artifacts.kind == "azure_blob"
    model = Model.register(ws, sklearn_model.path, "diabetes")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "score.py").write_text(SCORE_PY)
    ic = InferenceConfig(entry_script="score.py", source_directory=str(tmp_path / "src"))
    svc = deploy(ws, "collectaz", [model], ic, LocalWebservice.deploy_configuration(workers=2, collect_model_data=True))
    try:
        svc.wait_for_deployment(timeout_sec=120)
        _check_round_trip(svc, sklearn_model.model, sklearn_model.X, 25)
        # really in the container, where Azure's tools would look
        from azure.storage.blob import ContainerClient

        with ContainerClient.from_connection_string(azurite_connection_string, blob_container) as cc:
            names = list(cc.list_blob_names(name_starts_with="blobs/modeldata/collectaz/diabetes/1/"))
        assert names and all(n.endswith(".jsonl") for n in names)
    finally:
        svc.delete()
        ws.engine.dispose()


# ------------------------------------------------------------------ the collector on its own
def _collector(root: Path, **kw: Any) -> ModelDataCollector:
    return ModelDataCollector(_FolderSink(root), "svc", ("m:3",), **kw)


def test_bounded_buffer_drops_and_counts(tmp_path: Path) -> None:
    c = _collector(tmp_path / "out", max_buffer=10, batch=4)
    for i in range(15):
        c.collect(f"r{i}", b'{"x": %d}' % i, b"[1]")
    assert c.dropped == 5
    assert c.flush() == 10
    files = sorted((tmp_path / "out").rglob("*.jsonl"))
    assert [f.name.rsplit("-", 1)[1] for f in files] == ["000000.jsonl", "000001.jsonl", "000002.jsonl"]
    lines = [ln for f in files for ln in f.read_text().splitlines()]
    assert [json.loads(ln)["request_id"] for ln in lines] == [f"r{i}" for i in range(10)]


def test_failed_write_is_retried(tmp_path: Path) -> None:
    root = tmp_path / "blobs" / "out"
    c = _collector(root)
    c.collect("a", b"1", b"2")
    blocker = root / "svc"
    blocker.write_text("a file where the partition folder must go")
    assert c.flush() == 0  # cannot write: kept
    c.collect("b", b"3", b"4")
    blocker.unlink()
    assert c.flush() == 2
    from mlmanage_jupyter.core.store.artifacts import LocalArtifactStore

    store = LocalArtifactStore(tmp_path)
    keys = store.list_blobs("out/")
    assert len(keys) == 2 and all("/svc/m/3/" in k for k in keys)


def test_misconfigured_collection_is_named() -> None:
    with pytest.raises(ValueError, match="MLMANAGE_DATA_COLLECTION_DIR"):
        ModelDataCollector.from_env("s", ("m:1",), {"MLMANAGE_COLLECT_MODEL_DATA": "1"})
    assert ModelDataCollector.from_env("s", ("m:1",), {}) is None
