"""Profiling the quickstart model with real load on loopback: figures measured in the run,
consistent with what the service itself recorded, and a chart."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlmanage_jupyter.core.errors import ValidationError


def _check_profile(prof: Any, levels: list[int]) -> None:
    df = prof.to_dataframe()
    assert list(df["concurrency"]) == levels
    assert (df["requests"] > 0).all() and (df["errors"] == 0).all()
    assert prof.requests_sent == df["requests"].sum()
    assert prof.server_requests == prof.requests_sent  # the service counted every request sent
    assert (df["cpu_cores"] > 0).all()
    assert (df["peak_memory_bytes"] > 10 * 2**20).all()  # a python process with sklearn loaded
    assert (df["p50_ms"] <= df["p95_ms"]).all() and (df["p95_ms"] <= df["p99_ms"]).all()
    assert (df["p99_ms"] <= df["max_ms"]).all()
    for lv in prof.levels:
        assert lv.throughput_rps == pytest.approx(lv.requests / lv.duration_s)
    cpu_max = df["cpu_cores"].max()
    mem_max_gib = df["peak_memory_bytes"].max() / 2**30
    assert prof.recommended_cpu_cores >= cpu_max * 1.25 - 1e-9
    assert prof.recommended_cpu_cores < cpu_max * 1.25 + 0.1 + 1e-9
    assert prof.recommended_memory_gb >= mem_max_gib * 1.25 - 1e-9
    assert prof.recommended_memory_gb < mem_max_gib * 1.25 + 0.1 + 1e-9
    assert "1.25" in prof.recommendation_rule and str(prof.recommended_cpu_cores) in prof.recommendation_rule
    d = prof.get_details()
    assert d["totalQueries"] == prof.requests_sent and d["successRate"] == 1.0
    assert d["recommendedCpu"] == prof.recommended_cpu_cores
    assert d["recommendedMemoryInGB"] == prof.recommended_memory_gb
    assert len(d["levels"]) == len(levels)
    assert "ModelProfile" in prof._repr_html_()


def test_service_profile(deploy_service: Callable[..., Any], sklearn_model: Any, tmp_path: Path) -> None:
    svc = deploy_service("prof", workers=2)
    samples = [{"data": [row.tolist()]} for row in sklearn_model.X]
    prof = svc.profile(samples, concurrency=[1, 2, 4], duration_s=1.5)
    _check_profile(prof, [1, 2, 4])
    fig = prof.plot()
    assert len(fig.axes) == 3  # latency, throughput, CPU on a twin axis
    assert [line.get_label() for line in fig.axes[0].lines] == ["p50", "p95", "p99"]
    assert list(fig.axes[1].lines[0].get_ydata()) == list(prof.to_dataframe()["throughput_rps"])
    out = tmp_path / "profile.png"
    fig.savefig(out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the profile's requests are in the service's telemetry too
    tel = svc.get_telemetry(since=prof.started)
    assert (tel["request_id"].str.startswith("profile-")).sum() == prof.requests_sent


def test_model_profile_deploys_profiles_and_deletes(workspace: Any, quickstart: tuple[Any, Any], sklearn_model: Any, tmp_path: Path) -> None:
    import json

    from mlmanage_jupyter.core.model import Model
    from mlmanage_jupyter.core.webservice import Webservice

    model, ic = quickstart
    dataset = tmp_path / "requests.jsonl"
    dataset.write_text("".join(json.dumps({"data": [row.tolist()]}) + "\n" for row in sklearn_model.X))
    prof = Model.profile(workspace, "quick", [model], ic, str(dataset), cpu=1, memory_in_gb=0.5,
                         concurrency=[1, 2], duration_s=1.0)
    assert prof.name == "quick" and prof.samples == 5
    _check_profile(prof, [1, 2])
    d = prof.get_details()
    assert (d["requestedCpu"], d["requestedMemoryInGB"]) == (1, 0.5)
    assert list(Webservice.list(workspace)) == []
    assert not any((workspace.path / "services").glob("profile-*/run"))


def test_bad_arguments_are_named(deploy_service: Callable[..., Any], workspace: Any, quickstart: tuple[Any, Any]) -> None:
    from mlmanage_jupyter.core.errors import WebserviceException
    from mlmanage_jupyter.core.model import Model

    svc = deploy_service("profbad")
    with pytest.raises(ValidationError, match="samples"):
        svc.profile([], duration_s=1)
    with pytest.raises(ValidationError, match="concurrency"):
        svc.profile([{"data": [[0] * 10]}], concurrency=[0], duration_s=1)
    with pytest.raises(ValidationError, match="duration_s"):
        svc.profile([{"data": [[0] * 10]}], duration_s=10_000)
    with pytest.raises(WebserviceException, match="answered 500 to sample 0"):
        svc.profile([{"data": "not rows"}], concurrency=[1], duration_s=0.5)
    with pytest.raises(ValidationError, match="input_dataset"):
        Model.profile(workspace, "x", [quickstart[0]], quickstart[1], 42)
