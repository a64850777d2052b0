"""Telemetry of real local services under real HTTP traffic: counts, errors, percentiles,
``since``, and the engine's ``GET /telemetry`` route (auth like /score)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd
import pytest
import requests

from mlmanage_jupyter.core import telemetry
from mlmanage_jupyter.core.errors import ValidationError, WebserviceException


def _wait_rows(get: Callable[[], pd.DataFrame], n: int, timeout_s: float = 20.0) -> pd.DataFrame:
    deadline = time.monotonic() + timeout_s
    while True:
        df = get()
        if len(df) >= n or time.monotonic() > deadline:
            return df
        time.sleep(0.2)


def _send(svc: Any, body: str, rid: str, key: str | None = None) -> int:
    h = {"Content-Type": "application/json", "x-ms-request-id": rid}
    if key:
        h["Authorization"] = f"Bearer {key}"
    return requests.post(svc.scoring_uri, data=body, headers=h, timeout=30).status_code


def test_counts_errors_and_percentiles(deploy_service: Callable[..., Any], sklearn_model: Any) -> None:
    svc = deploy_service("telem", workers=2)
    row = sklearn_model.X[:2].tolist()
    sent: dict[str, int] = {}
    for i in range(30):
        sent[f"ok-{i}"] = _send(svc, f'{{"data": {row}}}', f"ok-{i}")
    for i in range(5):
        sent[f"boom-{i}"] = _send(svc, '{"raise": "boom"}', f"boom-{i}")
    for i in range(3):
        sent[f"bad-{i}"] = _send(svc, "{not json", f"bad-{i}")
    assert [s for k, s in sent.items() if k.startswith("ok")] == [200] * 30
    assert {s for k, s in sent.items() if k.startswith("boom")} == {500}
    assert {s for k, s in sent.items() if k.startswith("bad")} == {400}

    df = _wait_rows(svc.get_telemetry, len(sent))
    assert len(df) == len(sent)
    assert isinstance(df["time"].dtype, pd.DatetimeTZDtype) and str(df["time"].dt.tz) == "UTC"
    assert dict(zip(df["request_id"], df["status"], strict=True)) == sent
    assert set(df["route"]) == {"/score"}
    assert df["worker"].nunique() >= 1 and set(df["service"]) == {"telem"}
    assert (df.loc[df["status"] == 200, "response_bytes"] > 0).all()
    assert df["time"].is_monotonic_increasing

    s = svc.get_telemetry_summary()
    assert s.requests == 38 and s.errors == 8
    assert s.error_rate == pytest.approx(8 / 38)
    lat = df["latency_ms"].to_numpy()
    assert s.p50_ms == pytest.approx(np.percentile(lat, 50))
    assert s.p95_ms == pytest.approx(np.percentile(lat, 95))
    assert s.p99_ms == pytest.approx(np.percentile(lat, 99))
    span = (df["time"].max() - (df["time"] - pd.to_timedelta(lat, unit="ms")).min()).total_seconds()
    assert s.req_per_s == pytest.approx(38 / span)

    # since: only what came after
    cut = datetime.now(timezone.utc)
    time.sleep(0.01)
    for i in range(4):
        _send(svc, f'{{"data": {row}}}', f"late-{i}")
    late = _wait_rows(lambda: svc.get_telemetry(since=cut), 4)
    assert sorted(late["request_id"]) == [f"late-{i}" for i in range(4)]
    assert len(svc.get_telemetry(since=cut.replace(tzinfo=None))) == 4  # naive = UTC
    # every route: /score only unless asked
    assert len(svc.get_telemetry(route=None)) >= len(svc.get_telemetry())


def test_http_route_with_auth_matches_run_dir(deploy_service: Callable[..., Any], sklearn_model: Any) -> None:
    svc = deploy_service("telemauth", auth_enabled=True)
    key, _ = svc.get_keys()
    row = sklearn_model.X[:1].tolist()
    ids = [f"r-{uuid.uuid4().hex[:6]}" for _ in range(12)]
    for rid in ids:
        assert _send(svc, f'{{"data": {row}}}', rid, key) == 200
    assert _send(svc, f'{{"data": {row}}}', "nokey") == 401

    base = svc.scoring_uri.rsplit("/score", 1)[0]
    assert requests.get(base + "/telemetry", timeout=10).status_code == 401
    bad = requests.get(base + "/telemetry", params={"since": "yesterday"}, headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "BadRequest"

    # the route flushes its own buffer: no wait needed with one worker
    over_http = telemetry.fetch_records(base, headers={"Authorization": f"Bearer {key}"})
    # a request refused 401 is only counted (issue 16: clients without a key can't fill the disk)
    assert [r["request_id"] for r in over_http if r["route"] == "/score"] == ids
    from_dir = telemetry.read_run_dir(svc.runtime["run_dir"])
    assert over_http == from_dir

    # the same Webservice API through HTTP, as containers and pods are read
    svc.record.compute_type = "docker"
    df = svc.get_telemetry()
    assert list(df["request_id"]) == ids
    assert list(df["status"]) == [200] * 12
    cut = df["time"].iloc[5]
    assert list(svc.get_telemetry(since=cut)["request_id"]) == ids[6:]
    svc.record.keys = {"primaryKey": "wrong", "secondaryKey": "wrong"}
    with pytest.raises(WebserviceException, match="401"):
        svc.get_telemetry()


def test_bad_since_is_a_validation_error(deploy_service: Callable[..., Any]) -> None:
    svc = deploy_service("telemsince")
    with pytest.raises(ValidationError, match="since"):
        svc.get_telemetry(since="not a time")


def test_summary_of_nothing() -> None:
    s = telemetry.summarize(telemetry.records_to_dataframe([]))
    assert s.requests == 0 and s.error_rate == 0.0 and np.isnan(s.p50_ms)
