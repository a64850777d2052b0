"""``ProfileChart``: latency, throughput, CPU and memory of a service by concurrency.

Fed by ``Webservice.profile(...)`` (``core/profiling.py``), a real bounded load test of the
service, or by a ``ModelProfile`` already measured. Every number shown was measured.
"""

from __future__ import annotations

import html
import io
import json
import threading
import time
from collections.abc import Sequence
from typing import Any

import ipywidgets as W

from mlmanage_jupyter.widgets._common import Worker, error_text, pretty_json, status_html, swagger_sample

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


#: headroom above the largest value of a chart (fraction)
HEADROOM = 0.15


def y_range(values: Any) -> tuple[float, float]:
    """The y range of one chart: from 0 to the largest value plus :data:`HEADROOM` (1 when
    nothing is positive). Starting at 0 keeps a 1 % difference 1 % tall: matplotlib's
    automatic range (0.626 to 0.633) made noise look like a trend."""
    import math

    finite = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    top = max(finite, default=0.0)
    return 0.0, (top * (1 + HEADROOM) if top > 0 else 1.0)


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
    lat = [v for c in ("p50_ms", "p90_ms", "p95_ms", "p99_ms") for v in df[c].tolist()]
    ax1.set(title="latency", xlabel="concurrency", ylabel="ms", ylim=y_range(lat))
    ax1.legend(fontsize=8)
    ax2.plot(x, df["throughput_rps"], "o-", color="#1a7f37")
    ax2.set(title="throughput", xlabel="concurrency", ylabel="requests / s", ylim=y_range(df["throughput_rps"]))
    if df["cpu_cores"].notna().any():
        ax3.plot(x, df["cpu_cores"], "o-", color="#cf222e", label="CPU (cores)")
        ax3.set_ylabel("cores")
        ax3.set_ylim(*y_range(df["cpu_cores"]))
    else:
        ax3.text(0.5, 0.6, "CPU not measured\n(local target only)", ha="center", transform=ax3.transAxes, fontsize=9)
    if df["memory_mib"].notna().any():
        ax3b = ax3.twinx()
        ax3b.plot(x, df["memory_mib"], "s--", color="#0969da", label="memory (MiB)")
        ax3b.set_ylabel("MiB")
        ax3b.set_ylim(*y_range(df["memory_mib"]))
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

    Widgets: ``concurrency`` (Text "1,2,4"), ``duration`` (seconds), ``samples_field`` (a
    JSON list of request bodies; prefilled from ``samples`` or the swagger example),
    ``run_button`` (disabled with the reason in ``why_disabled`` and its tooltip), ``status``
    (the level being measured while it runs), ``chart`` (an Image widget holding the PNG;
    every y axis starts at 0, see :func:`y_range`), ``table`` (HTML, the one results table).

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
        self._worker = Worker(self._on_error, after=lambda: self._check_ready())
        is_service = hasattr(source, "scoring_uri")
        self.service = source if is_service else None
        self.samples = list(samples) if samples is not None else None
        self.concurrency = W.Text(value=",".join(str(c) for c in concurrency), description="Concurrency", style={"description_width": "90px"},
                                  layout=W.Layout(width="220px"))
        self.duration = W.BoundedFloatText(value=duration_s, min=0.5, max=600, step=0.5, description="Seconds/level",
                                           style={"description_width": "100px"}, layout=W.Layout(width="200px"))
        self.run_button = W.Button(description="Run profile", icon="tachometer", button_style="primary",
                                   disabled=not is_service)
        self.samples_field = W.Textarea(
            value=self._samples_text(source if is_service else None), placeholder='[{"data": [[...]]}]  (a JSON list of request bodies)',
            description="Samples", style={"description_width": "90px"}, layout=W.Layout(width="100%", height="80px"),
        )  # fmt: skip
        self.samples_field.observe(lambda _c: self._check_ready(), "value")
        self.why_disabled = W.HTML()
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
                self.samples_field,
                self.why_disabled,
                self.chart,
                self.table,
            ]
        )
        if not is_service:
            self.profile = source
            self.samples_field.layout.display = "none"
            self._show(source.to_dataframe(), "profile")
        self._check_ready()

    def _samples_text(self, service: Any) -> str:
        if self.samples is not None:
            return pretty_json(list(self.samples))
        if service is None:
            return ""
        sample, _why = swagger_sample(service)
        return pretty_json([sample]) if sample not in (None, {}, []) else ""

    def parse_samples(self) -> list[Any]:
        """The request bodies in ``samples_field``: a non-empty JSON list. Raises ValueError
        saying what to fix."""
        text = self.samples_field.value.strip()
        if not text:
            raise ValueError("type the samples: a JSON list of request bodies, e.g. [{\"data\": [[1, 2]]}]")
        try:
            value = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"samples are not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
        if not isinstance(value, list) or not value:
            raise ValueError("samples must be a non-empty JSON list of request bodies, e.g. [{\"data\": [[1, 2]]}]")
        return value

    def _check_ready(self) -> str | None:
        """Enable Run only when it can run; ``why_disabled`` says why not. Returns the reason."""
        if self.service is None:
            why = "Run is off: this panel shows a profile already measured; give ProfileChart a Webservice to measure one."
        elif self._worker.busy:
            why = None
        else:
            try:
                self.parse_samples()
                why = None
            except ValueError as e:
                why = f"Run is off: {e}"
        self.run_button.disabled = why is not None or self._worker.busy
        self.run_button.tooltip = why or "measure the service at each concurrency level"
        self.why_disabled.value = status_html(why, "info") if why else ""
        return why

    def _on_error(self, e: BaseException) -> None:
        self.status.value = status_html(f"profiling failed: {error_text(e)}", "error")

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
        try:
            samples = self.parse_samples()
        except ValueError as e:
            self.status.value = status_html(str(e), "error")
            return
        duration = float(self.duration.value)
        svc = self.service
        self.run_button.disabled = True
        finished = threading.Event()

        def job() -> None:
            ticker = threading.Thread(target=self._tick, args=(levels, duration, finished), daemon=True)
            ticker.start()
            try:
                self.profile = svc.profile(samples, concurrency=levels, duration_s=duration)
            finally:
                finished.set()
                ticker.join()
            self._show(self.profile.to_dataframe(), "profile")

        self._worker.start(job, f"ProfileChart-{self.name}")

    def _tick(self, levels: list[int], duration: float, finished: threading.Event) -> None:
        """Say which level runs (the levels run one after the other, ``duration`` s each)."""
        t0 = time.monotonic()
        while not finished.wait(0.25):
            i = min(len(levels) - 1, int((time.monotonic() - t0) / duration))
            left = max(0.0, len(levels) * duration - (time.monotonic() - t0))
            self.status.value = status_html(
                f"level {i + 1}/{len(levels)}: concurrency {levels[i]} (about {left:.0f} s left)…", "busy"
            )

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

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a measurement in progress; True when none is."""
        return self._worker.wait(timeout)
