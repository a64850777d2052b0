"""``ProfileChart``: latency, throughput, CPU and memory of a service by concurrency.

Fed by ``Webservice.profile(...)`` (``core/profiling.py``) when the core has it; otherwise
by a small bounded load test run here (:func:`load_test`). Every number shown was measured.
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
import requests

from mlmanage_jupyter.widgets._common import Worker, error_text, status_html, swagger_sample

#: columns of :func:`load_test`'s DataFrame (latencies in ms, memory in MiB, CPU in cores)
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


def _percentile(sorted_ms: list[float], q: float) -> float | None:
    if not sorted_ms:
        return None
    k = (len(sorted_ms) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(sorted_ms) - 1)
    return sorted_ms[lo] + (sorted_ms[hi] - sorted_ms[lo]) * (k - lo)


class _ProcessMeter:
    """CPU (cores) and peak RSS (MiB) of a local service's process tree while a level runs.
    Only for the ``local`` target (its ``runtime["pid"]``); None elsewhere."""

    def __init__(self, service: Any) -> None:
        self.procs: list[Any] = []
        pid = (service.runtime or {}).get("pid") if service.compute_type == "local" else None
        if pid:
            try:
                import psutil

                root = psutil.Process(int(pid))
                self.procs = [root, *root.children(recursive=True)]
            except Exception:  # noqa: BLE001 - gone: nothing measured
                self.procs = []

    def _cpu_s(self) -> float:
        total = 0.0
        for p in self.procs:
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except Exception:  # noqa: BLE001
                pass
        return total

    def _rss_mib(self) -> float:
        total = 0
        for p in self.procs:
            try:
                total += p.memory_info().rss
            except Exception:  # noqa: BLE001
                pass
        return total / 2**20

    def measure(self, stop: threading.Event, interval: float = 0.2) -> tuple[float | None, float | None]:
        """Sample until ``stop`` is set; returns (cpu cores used on average, peak MiB)."""
        if not self.procs:
            stop.wait()
            return None, None
        c0, t0, peak = self._cpu_s(), time.perf_counter(), self._rss_mib()
        while not stop.wait(interval):
            peak = max(peak, self._rss_mib())
        wall = time.perf_counter() - t0
        return ((self._cpu_s() - c0) / wall if wall > 0 else None), max(peak, self._rss_mib())


def load_test(
    service: Any,
    samples: Sequence[Any],
    concurrency: Sequence[int] = (1, 2, 4),
    duration_s: float = 3.0,
    *,
    timeout_s: float = 30.0,
) -> Any:
    """A small, bounded load test of ``service``: for each concurrency level, that many
    threads POST the samples (round robin) to ``scoring_uri`` for ``duration_s`` seconds.

    Returns a pandas DataFrame with :data:`COLUMNS` (one row per level): requests, errors
    (non-2xx or no answer), throughput_rps (successful requests / s), latency percentiles
    of successful requests (ms), cpu_cores (average cores used) and memory_mib (peak RSS)
    of the service's processes — measured for the ``local`` target only, NaN elsewhere.

    Raises ValueError for empty samples or a concurrency below 1.
    """
    import pandas as pd

    if not samples:
        raise ValueError("load_test needs at least one sample request")
    if not concurrency or min(concurrency) < 1:
        raise ValueError(f"concurrency levels must be >= 1, got {list(concurrency)!r}")
    bodies = [s.encode() if isinstance(s, str) else json.dumps(s).encode() for s in samples]
    headers = {"Content-Type": "application/json"}
    if service.auth_enabled:
        headers["Authorization"] = f"Bearer {service.get_keys()[0]}"
    rows = [_run_level(service, bodies, headers, level, duration_s, timeout_s) for level in concurrency]
    return pd.DataFrame(rows, columns=COLUMNS).astype({c: float for c in COLUMNS if c not in ("concurrency", "requests", "errors")})


def _run_level(
    service: Any, bodies: list[bytes], headers: dict[str, str], level: int, duration_s: float, timeout_s: float
) -> dict[str, Any]:
    """One concurrency level of :func:`load_test` (bounded: ``duration_s`` + one request timeout)."""
    lat: list[float] = []
    errors = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + duration_s

    def client(i: int) -> None:
        n = i
        with requests.Session() as s:
            while time.monotonic() < deadline:
                body = bodies[n % len(bodies)]
                n += 1
                t0 = time.perf_counter()
                try:
                    ok = s.post(service.scoring_uri, data=body, headers=headers, timeout=timeout_s).ok
                except requests.RequestException:
                    ok = False
                ms = (time.perf_counter() - t0) * 1000
                with lock:
                    if ok:
                        lat.append(ms)
                    else:
                        errors[0] += 1

    meter = _ProcessMeter(service)
    done = threading.Event()
    usage: list[Any] = [None, None]

    def sample_usage() -> None:
        usage[:] = meter.measure(done)

    mt = threading.Thread(target=sample_usage, daemon=True)
    mt.start()
    t_start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(level)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(duration_s + timeout_s + 5)
    wall = time.perf_counter() - t_start
    done.set()
    mt.join(5)
    lat.sort()
    return {
        "concurrency": level,
        "requests": len(lat) + errors[0],
        "errors": errors[0],
        "throughput_rps": len(lat) / wall if wall > 0 else float("nan"),
        "p50_ms": _percentile(lat, 0.50),
        "p90_ms": _percentile(lat, 0.90),
        "p95_ms": _percentile(lat, 0.95),
        "p99_ms": _percentile(lat, 0.99),
        "cpu_cores": usage[0],
        "memory_mib": usage[1],
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
        profile: the ModelProfile from ``service.profile`` when the core has it, else None.
        source_kind: ``"profile"`` (core profiling API) or ``"load_test"`` (this module's).
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
            if hasattr(svc, "profile"):
                try:
                    prof = svc.profile(samples, concurrency=levels, duration_s=duration)
                except ImportError:  # core.profiling not there yet
                    prof = None
                if prof is not None:
                    self.profile = prof
                    self._show(prof.to_dataframe(), "profile")
                    return
            self._show(load_test(svc, samples, levels, duration), "load_test")

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
