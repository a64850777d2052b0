"""``ProfileChart``: latency, throughput, CPU and memory of a service by concurrency.

Fed by ``Webservice.profile(...)`` (``core/profiling.py``), a real bounded load test of the
service, or by a ``ModelProfile`` already measured. Every number shown was measured.
"""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from typing import Any

import ipywidgets as W

from mlmanage_jupyter.widgets._common import Worker, error_text, status_html, swagger_sample

#: columns shown (latencies in ms, memory in MiB, CPU in cores)
COLUMNS = [
    "concurrency", "requests", "errors", "throughput_rps", "p50_ms", "p90_ms", "p95_ms", "p99_ms",
    "cpu_cores", "memory_mib",
]  # fmt: skip

# names a ModelProfile's DataFrame may use for the same quantities
_ALIASES = {
    "concurrency": ["concurrency", "users", "clients"],
    "throughput_rps": ["throughput_rps", "req_per_s", "requests_per_s", "rps", "throughput"],
    "p50_ms": ["p50_ms", "latency_p50_ms", "median_ms"],
    "p90_ms": ["p90_ms", "latency_p90_ms"],
    "p95_ms": ["p95_ms", "latency_p95_ms"],
    "p99_ms": ["p99_ms", "latency_p99_ms"],
    "cpu_cores": ["cpu_cores", "cpu_cores_used", "cpu"],
    "memory_mib": ["memory_mib", "memory_mb", "memory_used_mb"],
}


def normalize(df: Any) -> Any:
    """A profile DataFrame with this module's column names (aliases mapped; missing ones NaN)."""
    import pandas as pd

    out = pd.DataFrame(index=df.index)
    for col in COLUMNS:
        for name in _ALIASES.get(col, [col]):
            if name in df.columns:
                out[col] = df[name]
                break
        else:
            out[col] = float("nan")
    if out["memory_mib"].isna().all():
        if "memory_gb" in df.columns:
            out["memory_mib"] = df["memory_gb"] * 1024
        for col in ("peak_memory_bytes", "memory_bytes"):
            if col in df.columns:
                out["memory_mib"] = df[col].astype(float) / 2**20
                break
    return out


def render_png(df: Any, title: str = "") -> bytes:
    """Three charts (latency percentiles, throughput, CPU + memory) by concurrency as PNG bytes.
    Uses matplotlib's object API (no pyplot state, safe from threads)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 3.6), dpi=90, layout="constrained")
    ax1, ax2, ax3 = fig.subplots(1, 3)
    x = df["concurrency"]
    for col, style in (("p50_ms", "o-"), ("p90_ms", "s--"), ("p95_ms", "^--"), ("p99_ms", "v:")):
        if df[col].notna().any():
            ax1.plot(x, df[col], style, label=col.replace("_ms", ""))
    ax1.set(title="latency", xlabel="concurrency", ylabel="ms")
    ax1.legend(fontsize=8)
    ax2.plot(x, df["throughput_rps"], "o-", color="#1a7f37")
    ax2.set(title="throughput", xlabel="concurrency", ylabel="requests / s")
    if df["cpu_cores"].notna().any():
        ax3.plot(x, df["cpu_cores"], "o-", color="#cf222e", label="CPU (cores)")
        ax3.set_ylabel("cores")
    else:
        ax3.text(0.5, 0.6, "CPU not measured\n(local target only)", ha="center", transform=ax3.transAxes, fontsize=9)
    if df["memory_mib"].notna().any():
        ax3b = ax3.twinx()
        ax3b.plot(x, df["memory_mib"], "s--", color="#0969da", label="memory (MiB)")
        ax3b.set_ylabel("MiB")
        ax3b.legend(loc="lower right", fontsize=8)
    if df["cpu_cores"].notna().any():
        ax3.legend(loc="upper left", fontsize=8)
    ax3.set(title="resources", xlabel="concurrency")
    for ax in (ax1, ax2, ax3):
        ax.set_xticks(list(x))
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


class ProfileChart(W.VBox):
    """Latency percentiles and throughput by concurrency, CPU and memory, as charts.

    Args:
        source: a :class:`Webservice` (the panel measures it when ``run_button`` is
            clicked), or a ``ModelProfile`` already measured (shown at once; anything with
            ``to_dataframe()``).
        samples: request bodies (JSON-able, or JSON strings); default the example of the
            service's swagger.
        concurrency: levels to test; duration_s: seconds per level.

    Widgets: ``concurrency`` (Text "1,2,4"), ``duration`` (seconds), ``run_button``,
    ``status``, ``chart`` (an Image widget holding the PNG), ``table`` (HTML).

    Attributes:
        data: the measured DataFrame (columns :data:`COLUMNS`) or None.
        profile: the ModelProfile shown (from ``service.profile`` or given), else None.
        source_kind: ``"profile"`` once something is shown.
    """

    def __init__(
        self,
        source: Any,
        *,
        samples: Sequence[Any] | None = None,
        concurrency: Sequence[int] = (1, 2, 4),
        duration_s: float = 3.0,
    ) -> None:
        self.data: Any = None
        self.profile: Any = None
        self.source_kind: str | None = None
        self._worker = Worker(self._on_error)
        is_service = hasattr(source, "scoring_uri")
        self.service = source if is_service else None
        self.samples = list(samples) if samples is not None else None
        self.concurrency = W.Text(value=",".join(str(c) for c in concurrency), description="Concurrency", style={"description_width": "90px"},
                                  layout=W.Layout(width="220px"))
        self.duration = W.BoundedFloatText(value=duration_s, min=0.5, max=600, step=0.5, description="Seconds/level",
                                           style={"description_width": "100px"}, layout=W.Layout(width="200px"))
        self.run_button = W.Button(description="Run profile", icon="tachometer", button_style="primary",
                                   disabled=not is_service)
        self.status = W.HTML()
        self.chart = W.Image(format="png", layout=W.Layout(width="100%", max_width="1080px"))
        self.table = W.HTML()
        self.run_button.on_click(self._on_run)
        name = getattr(source, "name", None) or getattr(getattr(source, "service", None), "name", None) or "service"
        self.name = str(name)
        super().__init__(
            [
                W.HTML(f"<b>Profile</b> of <code>{html.escape(self.name)}</code>"),
                W.HBox([self.concurrency, self.duration, self.run_button, self.status]),
                self.chart,
                self.table,
            ]
        )
        if not is_service:
            self.profile = source
            self._show(source.to_dataframe(), "profile")

    def _on_error(self, e: BaseException) -> None:
        self.status.value = status_html(f"profiling failed: {error_text(e)}", "error")
        self.run_button.disabled = self.service is None

    def _levels(self) -> list[int]:
        try:
            levels = [int(x) for x in self.concurrency.value.split(",") if x.strip()]
        except ValueError:
            levels = []
        if not levels or min(levels) < 1:
            raise ValueError(f"concurrency {self.concurrency.value!r}: give positive integers like 1,2,4")
        return levels

    def _on_run(self, _b: Any) -> None:
        if self._worker.busy or self.service is None:
            return
        try:
            levels = self._levels()
        except ValueError as e:
            self.status.value = status_html(str(e), "error")
            return
        samples = self.samples
        if samples is None:
            sample, why = swagger_sample(self.service)
            if sample is None:
                self.status.value = status_html(f"give samples=[...]: {why}", "error")
                return
            samples = [sample]
        duration = float(self.duration.value)
        svc = self.service
        self.run_button.disabled = True
        total = len(levels) * duration
        self.status.value = status_html(f"measuring {len(levels)} levels × {duration:g} s (about {total:.0f} s)…", "busy")

        def job() -> None:
            self.profile = svc.profile(samples, concurrency=levels, duration_s=duration)
            self._show(self.profile.to_dataframe(), "profile")

        self._worker.start(job, f"ProfileChart-{self.name}")

    def _show(self, df: Any, kind: str) -> None:
        data = normalize(df)
        self.data, self.source_kind = data, kind
        self.chart.value = render_png(data, f"{self.name} ({'Webservice.profile' if kind == 'profile' else 'load test'})")
        fmt = {c: "{:.1f}".format for c in COLUMNS if c not in ("concurrency", "requests", "errors")}
        self.table.value = data.to_html(index=False, na_rep="—", formatters=fmt, classes="mlmanage-profile")
        errs = int(data["errors"].fillna(0).sum())
        rec = ""
        prof = self.profile if kind == "profile" else None
        if prof is not None and getattr(prof, "recommended_cpu_cores", None) is not None:
            rec = f"; recommended: {prof.recommended_cpu_cores:g} cores, {prof.recommended_memory_gb:g} GiB"
        self.status.value = status_html(
            f"done: {int(data['requests'].fillna(0).sum())} requests, {errs} errors{rec}", "error" if errs else "ok"
        )
        self.run_button.disabled = self.service is None

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a measurement in progress; True when none is."""
        return self._worker.wait(timeout)
