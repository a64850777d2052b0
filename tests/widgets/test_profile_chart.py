"""ProfileChart: measured by the core profiling API from a click, or a given ModelProfile."""

from __future__ import annotations

from typing import Any

from widget_helpers import SAMPLE, shown

from mlmanage_jupyter.widgets import ProfileChart
from mlmanage_jupyter.widgets.profile_chart import COLUMNS

PNG = b"\x89PNG\r\n\x1a\n"


def test_click_profiles_the_service(served: Any) -> None:
    _e, svc = served
    pc = ProfileChart(svc, concurrency=(1, 2), duration_s=1.0)
    assert pc.data is None and not pc.run_button.disabled
    pc.run_button.click()
    assert pc.wait(120)
    assert pc.source_kind == "profile" and pc.profile is not None
    df = pc.data
    assert list(df.columns) == COLUMNS and list(df["concurrency"]) == [1, 2]
    assert (df["requests"] > 0).all() and (df["throughput_rps"] > 0).all()
    assert (df["p50_ms"] <= df["p99_ms"]).all()
    assert bytes(pc.chart.value).startswith(PNG)
    assert "mlmanage-profile" in pc.table.value and "done:" in shown(pc.status)


def test_shows_a_given_profile(served: Any) -> None:
    _e, svc = served
    prof = svc.profile([{"data": SAMPLE}], concurrency=[1], duration_s=0.5)
    pc = ProfileChart(prof)
    assert pc.run_button.disabled  # nothing to measure: it is a result
    assert bytes(pc.chart.value).startswith(PNG)
    assert pc.data["requests"].iloc[0] == prof.levels[0].requests


def test_bad_concurrency_is_reported(served: Any) -> None:
    _e, svc = served
    pc = ProfileChart(svc)
    pc.concurrency.value = "1,x"
    pc.run_button.click()
    assert "positive integers" in shown(pc.status) and pc.data is None
