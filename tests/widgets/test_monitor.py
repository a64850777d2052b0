"""MonitorPanel over a real local service's telemetry: per-minute rate, latency, errors."""

from __future__ import annotations

from typing import Any

import pandas as pd
from widget_helpers import SAMPLE, shown, wait_until

from mlmanage_jupyter.widgets import MonitorPanel
from mlmanage_jupyter.widgets.monitor import MINUTE_COLUMNS, per_minute

PNG = b"\x89PNG\r\n\x1a\n"


def test_per_minute_groups_rates_percentiles_and_errors() -> None:
    t0 = pd.Timestamp("2026-01-01T10:00:05Z")
    df = pd.DataFrame(
        {
            "time": [t0, t0 + pd.Timedelta(seconds=10), t0 + pd.Timedelta(minutes=2)],
            "status": [200, 500, 200],
            "latency_ms": [10.0, 30.0, 20.0],
            "request_id": ["a", "b", "c"],
        }
    )
    m = per_minute(df)
    assert list(m.columns) == MINUTE_COLUMNS
    assert list(m["requests"]) == [2, 0, 1]  # the quiet minute is there, with 0
    assert list(m["errors"]) == [1, 0, 0] and list(m["error_rate"]) == [0.5, 0.0, 0.0]
    assert m["rate_rps"].iloc[0] == 2 / 60 and m["p50_ms"].iloc[0] == 20.0
    assert per_minute(df.iloc[0:0]).empty


def test_panel_shows_traffic_and_the_last_errors_and_refreshes_live(served: Any) -> None:
    _e, svc = served
    for _ in range(5):
        assert svc.call({"data": SAMPLE}).status_code == 200
    bad = svc.call({"data": [[1.0, 2.0]]})  # wrong shape: an error answer
    assert bad.status_code >= 400
    wait_until(lambda: (svc.get_telemetry()["request_id"] == bad.request_id).any(), timeout=30)  # flushed every 0.5 s
    panel = MonitorPanel(svc, refresh_s=0.2)
    try:
        m = panel.minutes
        assert int(m["requests"].sum()) >= 6 and int(m["errors"].sum()) >= 1
        assert "errors" in shown(panel.summary) and "p95" in shown(panel.summary)
        assert bytes(panel.chart.value).startswith(PNG)
        assert bad.request_id in shown(panel.errors) and str(bad.status_code) in shown(panel.errors)
        first = panel.refreshes
        wait_until(lambda: panel.refreshes >= first + 2, timeout=30)  # live
        svc.call({"data": SAMPLE})
        n = int(m["requests"].sum())
        wait_until(lambda: int(panel.minutes["requests"].sum()) > n, timeout=30)
    finally:
        panel.close()
    assert not panel._thread.is_alive()
    stopped = panel.refreshes
    import time

    time.sleep(0.5)
    assert panel.refreshes == stopped
