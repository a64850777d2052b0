"""ProfileChart: measured by the core profiling API from a click, or a given ModelProfile."""

from __future__ import annotations

from typing import Any

from widget_helpers import SAMPLE, shown

from mlmanage_jupyter.widgets import ProfileChart
from mlmanage_jupyter.widgets.profile_chart import COLUMNS, y_range

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
    assert pc.run_button.disabled  # nothing to measure: it is a result, and the panel says so
    assert "already measured" in shown(pc.why_disabled) and "already measured" in pc.run_button.tooltip
    assert bytes(pc.chart.value).startswith(PNG)
    assert pc.data["requests"].iloc[0] == prof.levels[0].requests


def test_bad_concurrency_is_reported(served: Any) -> None:
    _e, svc = served
    pc = ProfileChart(svc)
    pc.concurrency.value = "1,x"
    pc.run_button.click()
    assert "positive integers" in shown(pc.status) and pc.data is None


def test_samples_field_prefilled_from_swagger_and_checked(served: Any) -> None:
    import json

    _e, svc = served
    pc = ProfileChart(svc, concurrency=(1,), duration_s=0.5)
    assert json.loads(pc.samples_field.value) == [{"data": SAMPLE}]
    assert not pc.run_button.disabled and shown(pc.why_disabled) == ""
    pc.samples_field.value = "{}"
    assert pc.run_button.disabled and "non-empty JSON list" in shown(pc.why_disabled)
    pc.samples_field.value = "[{"
    assert pc.run_button.disabled and "not valid JSON" in shown(pc.why_disabled)
    pc.samples_field.value = json.dumps([{"data": SAMPLE}, {"data": SAMPLE + SAMPLE}])
    pc.run_button.click()
    assert pc.wait(60) and pc.profile.requests_sent > 0 and not pc.run_button.disabled


def test_axes_start_at_zero_so_noise_stays_flat() -> None:
    low, high = y_range([0.626, 0.630, 0.633])
    assert low == 0 and high >= 0.633
    assert (0.633 - 0.626) / (high - low) < 0.02  # a 1 % difference is 1 % of the axis
    assert y_range([float("nan")]) == (0.0, 1.0) and y_range([0, 0]) == (0.0, 1.0)


def test_profile_magic_shows_one_chart_and_one_table(served: Any) -> None:
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    from mlmanage_jupyter.magics import ProfileResult

    _e, svc = served
    res = ProfileResult(svc.profile([{"data": SAMPLE}], concurrency=[1], duration_s=0.5))
    assert res.levels[0].concurrency == 1 and res.requests_sent > 0  # the ModelProfile's attributes
    assert not hasattr(res, "_repr_html_")  # no second table next to the chart
    InteractiveShell.instance()  # display() needs a shell
    with capture_output() as cap:
        res._ipython_display_()
    assert len(cap.outputs) == 1 and "application/vnd.jupyter.widget-view+json" in cap.outputs[0].data
