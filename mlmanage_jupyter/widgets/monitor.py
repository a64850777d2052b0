"""``MonitorPanel``: a service's traffic over time from its telemetry (``%monitor SERVICE``)."""

from __future__ import annotations

import html
import io
import threading
import time
from typing import Any

import ipywidgets as W

from mlmanage_jupyter.core.webservice import Webservice
from mlmanage_jupyter.widgets._common import COLORS, error_text, status_html

#: columns of :func:`per_minute` (rate in requests/s, latencies in ms, error_rate 0..1)
MINUTE_COLUMNS = ["minute", "requests", "rate_rps", "p50_ms", "p95_ms", "p99_ms", "errors", "error_rate"]


def per_minute(df: Any) -> Any:
    """Telemetry records (``Webservice.get_telemetry()``: ``time``, ``status``,
    ``latency_ms``) grouped by UTC minute: ``minute`` (datetime64, the minute's start),
    ``requests``, ``rate_rps`` (requests / 60 s), ``p50_ms``/``p95_ms``/``p99_ms`` (latency
    percentiles), ``errors`` (status >= 400, as ``TelemetrySummary`` counts them) and
    ``error_rate`` (errors / requests). Minutes without requests inside the range appear
    with 0 requests, so a gap in traffic shows as a gap."""
    import pandas as pd

    if df is None or len(df) == 0:
        return pd.DataFrame(columns=MINUTE_COLUMNS)
    d = df.assign(minute=pd.to_datetime(df["time"], utc=True).dt.floor("min"), err=(df["status"] >= 400).astype(int))
    g = d.groupby("minute")
    out = pd.DataFrame(
        {
            "requests": g.size(),
            "p50_ms": g["latency_ms"].quantile(0.50),
            "p95_ms": g["latency_ms"].quantile(0.95),
            "p99_ms": g["latency_ms"].quantile(0.99),
            "errors": g["err"].sum(),
        }
    )
    full = pd.date_range(out.index.min(), out.index.max(), freq="min")
    out = out.reindex(full)
    out["requests"] = out["requests"].fillna(0).astype(int)
    out["errors"] = out["errors"].fillna(0).astype(int)
    out["rate_rps"] = out["requests"] / 60.0
    out["error_rate"] = (out["errors"] / out["requests"].where(out["requests"] > 0)).fillna(0.0)
    out = out.rename_axis("minute").reset_index()
    return out[MINUTE_COLUMNS]


def render_png(m: Any, title: str = "", window_min: int | None = None) -> bytes:
    """Three charts over time (request rate, latency percentiles, error rate) as PNG bytes;
    every y axis starts at 0; the x axis spans the last ``window_min`` minutes (else the
    data's minutes), labelled HH:MM UTC. matplotlib's object API (safe from threads)."""
    import pandas as pd
    from matplotlib.dates import DateFormatter
    from matplotlib.figure import Figure

    from mlmanage_jupyter.widgets.profile_chart import y_range

    fig = Figure(figsize=(12, 3.2), dpi=90, layout="constrained")
    ax1, ax2, ax3 = fig.subplots(1, 3)
    x = [t.to_pydatetime() for t in m["minute"].dt.tz_localize(None)] if len(m) else []
    end = (m["minute"].max().tz_localize(None) if len(m) else pd.Timestamp.now(tz="UTC").tz_localize(None).floor("min"))
    start = end - pd.Timedelta(minutes=(window_min or max(len(m), 1)) - 1)
    xlim = ((start - pd.Timedelta(seconds=30)).to_pydatetime(), (end + pd.Timedelta(seconds=30)).to_pydatetime())
    ax1.plot(x, m["rate_rps"], "o-", color="#1a7f37")
    ax1.set(title="request rate", ylabel="requests / s", ylim=y_range(m["rate_rps"]))
    for col, style in (("p50_ms", "o-"), ("p95_ms", "^--"), ("p99_ms", "v:")):
        ax2.plot(x, m[col], style, label=col.replace("_ms", ""))
    ax2.set(title="latency", ylabel="ms", ylim=y_range([v for c in ("p50_ms", "p95_ms", "p99_ms") for v in m[c].tolist()]))
    ax2.legend(fontsize=8)
    ax3.plot(x, m["error_rate"] * 100, "o-", color=COLORS["Failed"])
    ax3.set(title="errors", ylabel="% of requests", ylim=(0, max(5.0, float((m["error_rate"] * 100).max() or 0) * 1.15)))
    for ax in (ax1, ax2, ax3):
        ax.grid(alpha=0.3)
        ax.set_xlabel("minute (UTC)")
        ax.set_xlim(*xlim)
        ax.xaxis.set_major_formatter(DateFormatter("%H:%M"))
        for label in ax.get_xticklabels():
            label.set_rotation(30)
    if title:
        fig.suptitle(title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


class MonitorPanel(W.VBox):
    """Request rate, p50/p95/p99 latency and error rate per minute of a service, refreshed
    live from ``service.get_telemetry()``, with its last errors listed.

    Args:
        service: a :class:`Webservice` (any target).
        window_min: how many of the latest minutes are shown.
        refresh_s: seconds between refreshes while ``live`` is on; ``None``/0: no thread.
        live_for_s: live refresh stops by itself after this many seconds; ``close()`` at once.
        max_errors: how many of the latest errors are listed.

    Widgets: ``live`` (ToggleButton), ``refresh_button``, ``summary`` (HTML: totals of the
    window), ``chart`` (Image, PNG), ``errors`` (HTML table: time, status, latency,
    request id), ``status``.

    Attributes:
        minutes: the :func:`per_minute` DataFrame shown (or None before the first read).
        refreshes: how many times the panel read the telemetry.
    """

    def __init__(
        self,
        service: Webservice,
        *,
        window_min: int = 30,
        refresh_s: float | None = 5.0,
        live_for_s: float = 3600.0,
        max_errors: int = 10,
    ) -> None:
        self.service = service
        self.window_min = window_min
        self.max_errors = max_errors
        self.minutes: Any = None
        self.refreshes = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.live = W.ToggleButton(value=False, description="Live", icon="play", tooltip=f"refresh every {refresh_s or 0:g} s")
        self.refresh_button = W.Button(description="Refresh", icon="refresh", layout=W.Layout(width="100px"))
        self.summary = W.HTML()
        self.status = W.HTML()
        self.chart = W.Image(format="png", layout=W.Layout(width="100%", max_width="1080px"))
        self.errors = W.HTML()
        self.refresh_button.on_click(lambda _b: self.refresh())
        self.live.observe(self._on_live, "value")
        super().__init__(
            [
                W.HTML(f"<b>Monitoring</b> of <code>{html.escape(service.name)}</code> ({html.escape(service.compute_type)}), "
                       f"per minute, last {window_min} min"),  # fmt: skip
                W.HBox([self.live, self.refresh_button, self.status]),
                self.summary,
                self.chart,
                W.HTML("<b>Last errors</b>"),
                self.errors,
            ],
            layout=W.Layout(max_width="100%", overflow_x="hidden"),
        )
        self.refresh()
        self._refresh_s = refresh_s
        self._live_for_s = live_for_s
        if refresh_s:
            self.live.value = True

    # ------------------------------------------------------------------ data
    def refresh(self) -> None:
        """Read the telemetry of the window and redraw (errors are shown, never raised)."""
        import pandas as pd

        with self._lock:
            since = pd.Timestamp.now(tz="UTC").floor("min") - pd.Timedelta(minutes=self.window_min - 1)
            try:
                df = self.service.get_telemetry(since=since.tz_localize(None).to_pydatetime())
            except Exception as e:  # noqa: BLE001 - a service that is down: say so, keep the last view
                self.status.value = status_html(f"telemetry unavailable: {error_text(e)}", "error")
                return
            self.refreshes += 1
            m = per_minute(df)
            self.minutes = m
            n = int(m["requests"].sum()) if len(m) else 0
            errs = int(m["errors"].sum()) if len(m) else 0
            if n:
                p = df["latency_ms"].quantile([0.5, 0.95, 0.99]).tolist()
                self.summary.value = (
                    f"<span class='mlmanage-monitor-summary'>{n} requests · {errs} errors ({errs / n:.1%}) · "
                    f"p50 {p[0]:.1f} ms · p95 {p[1]:.1f} ms · p99 {p[2]:.1f} ms</span>"
                )
                self.chart.value = render_png(m, f"{self.service.name}: per minute (UTC)", self.window_min)
                self.chart.layout.display = None
            else:
                self.summary.value = f"<i>no requests in the last {self.window_min} min: call the service and they appear here</i>"
                self.chart.layout.display = "none"
            bad = df[df["status"] >= 400].tail(self.max_errors).iloc[::-1] if n else df.iloc[0:0]
            if len(bad):
                rows = "".join(
                    f"<tr><td>{html.escape(str(r.time)[:19])}</td><td style='color:{COLORS['Failed']}'>{int(r.status)}</td>"
                    f"<td>{r.latency_ms:.1f} ms</td><td><code>{html.escape(str(r.request_id))}</code></td></tr>"
                    for r in bad.itertuples()
                )
                self.errors.value = (
                    "<table class='mlmanage-errors' style='font-size:12px'><tr><th>time (UTC)</th><th>status</th>"
                    f"<th>latency</th><th>request id (in the service log)</th></tr>{rows}</table>"
                )
            else:
                self.errors.value = "<small>no errors in the window</small>"
            self.status.value = status_html(f"updated {time.strftime('%H:%M:%S')}")

    # ------------------------------------------------------------------ live refresh
    def _on_live(self, change: Any) -> None:
        if change["new"]:
            self._stop = threading.Event()
            stop = self._stop
            deadline = time.monotonic() + self._live_for_s
            self.live.icon = "pause"

            def loop() -> None:
                while not stop.wait(self._refresh_s or 5.0):
                    if time.monotonic() > deadline:
                        self.status.value = status_html("live refresh stopped (time limit); click Refresh or Live")
                        break
                    self.refresh()
                self.live.icon = "play"

            self._thread = threading.Thread(target=loop, name=f"Monitor-{self.service.name}", daemon=True)
            self._thread.start()
        else:
            self._stop.set()

    def close(self) -> None:
        """Stop the live refresh and close the panel."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5)
        super().close()
