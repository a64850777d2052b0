"""Profiling: a measured load test of a web service, and Azure ML v1's ``Model.profile``.

:func:`profile_service` sends the user's own samples (any JSON) to a service's
``scoring_uri`` from ``concurrency`` client threads (one ``requests.Session`` each), level
after level, each level for ``duration_s`` seconds (every request bounded by
``request_timeout_s``). It measures, per level, latency percentiles (client side, ms),
throughput (answered requests per second), errors, and — when the service's processes are
visible here (the ``local`` target: the supervisor pid from ``runtime["pid"]`` and all its
children, through psutil) — the CPU they used (average cores over the level) and their peak
resident memory (bytes, sampled every 0.1 s). The load generator runs on the same machine,
so on a small machine it competes with the service for CPU: compare levels, not machines.

Each request carries ``x-ms-request-id: profile-<run id>-<n>``; after the last level the
service's own telemetry is read back and the requests it recorded with that prefix are
reported as ``server_requests`` (equal to the requests sent when nothing was lost).

:func:`profile_models` is ``Model.profile``: it deploys a temporary local service, profiles
it and deletes it.
"""

from __future__ import annotations

import itertools
import json
import math
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

from mlmanage_jupyter.core import deployment, telemetry
from mlmanage_jupyter.core.client import ScoringClient
from mlmanage_jupyter.core.dataset import TabularDataset
from mlmanage_jupyter.core.entities.records import ModelRecord, ServiceRecord
from mlmanage_jupyter.core.environment import InferenceConfig
from mlmanage_jupyter.core.errors import ValidationError, WebserviceException
from mlmanage_jupyter.core.targets.base import LocalDeploymentConfig
from mlmanage_jupyter.core.workspace import Workspace

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure


#: headroom applied to measured CPU and memory for the recommendations
HEADROOM = 1.25
MAX_DURATION_S = 600.0
MAX_CONCURRENCY = 256
GIB = 1024**3


@dataclass
class LevelResult:
    """One concurrency level of a profile.

    Attributes:
        concurrency: client threads. requests: requests sent and finished (any status, or no
        answer); errors: those with status >= 400 or no answer (connection error, timeout). duration_s: wall time of
        the level (s). throughput_rps: requests / duration_s. p50_ms, p90_ms, p95_ms, p99_ms,
        mean_ms, max_ms: client-side latency (ms, linear interpolation). cpu_cores: average
        CPU cores used by the service's processes (None when not measurable).
        peak_memory_bytes: their largest summed RSS seen (bytes; None when not measurable).
    """

    concurrency: int
    requests: int
    errors: int
    duration_s: float
    throughput_rps: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    cpu_cores: float | None
    peak_memory_bytes: int | None


@dataclass
class ModelProfile:
    """The result of a profile (Azure ML v1: ``azureml.core.profile.ModelProfile``).

    Attributes:
        name: the profile name. service_name: the service profiled.
        levels: one :class:`LevelResult` per concurrency level.
        requests_sent: requests sent in all levels; server_requests: those the service's
            telemetry recorded (None when it could not be read).
        recommended_cpu_cores (cores) / recommended_memory_gb (GiB): see ``recommendation_rule``;
            None when the service's processes were not measurable from here.
        recommendation_rule: the rule, in words, with the measured figures it used.
        samples: number of distinct samples. started, ended: UTC times. state: "Succeeded".
        requested_cpu_cores / requested_memory_gb: ``Model.profile``'s ``cpu``/``memory_in_gb``
            (recorded only: the local target sets no limits).

    ``get_details()`` holds all of these under Azure's keys (``recommendedCpu``,
    ``recommendedMemoryInGB``, ``requestedCpu``, ``requestedMemoryInGB``, ...).
    """

    name: str
    service_name: str
    levels: list[LevelResult]
    requests_sent: int
    server_requests: int | None
    recommended_cpu_cores: float | None
    recommended_memory_gb: float | None
    recommendation_rule: str
    samples: int
    started: datetime
    ended: datetime
    state: str = "Succeeded"
    description: str | None = None
    requested_cpu_cores: float | None = None
    requested_memory_gb: float | None = None

    # -------------------------------------------------------------- Azure surface
    def wait_for_completion(self, show_output: bool = False) -> None:
        """Profiles here complete before they are returned (Azure's API waits here)."""
        if show_output:
            print(f"profile {self.name}: {self.state}", flush=True)

    def get_details(self) -> dict[str, Any]:
        """Azure's keys (camelCase): totals over all levels plus ``levels`` (one dict each)."""
        total = sum(lv.requests for lv in self.levels)
        ok = total - sum(lv.errors for lv in self.levels)
        best = max(self.levels, key=lambda lv: lv.throughput_rps) if self.levels else None
        cpus = [lv.cpu_cores for lv in self.levels if lv.cpu_cores is not None]
        mems = [lv.peak_memory_bytes for lv in self.levels if lv.peak_memory_bytes is not None]
        return {
            "name": self.name,
            "serviceName": self.service_name,
            "state": self.state,
            "description": self.description,
            "createdTime": self.started.isoformat(),
            "endTime": self.ended.isoformat(),
            "totalQueries": total,
            "successQueries": ok,
            "successRate": ok / total if total else 0.0,
            "requestsSent": self.requests_sent,
            "serverRecordedQueries": self.server_requests,
            "measuredQueriesPerSecond": best.throughput_rps if best else None,
            "bestConcurrency": best.concurrency if best else None,
            "latencyPercentile50InMs": best.p50_ms if best else None,
            "latencyPercentile90InMs": best.p90_ms if best else None,
            "latencyPercentile95InMs": best.p95_ms if best else None,
            "latencyPercentile99InMs": best.p99_ms if best else None,
            "maxUtilizedCpu": max(cpus) if cpus else None,
            "maxUtilizedMemoryInGB": max(mems) / GIB if mems else None,
            "recommendedCpu": self.recommended_cpu_cores,
            "recommendedMemoryInGB": self.recommended_memory_gb,
            "recommendationRule": self.recommendation_rule,
            "requestedCpu": self.requested_cpu_cores,
            "requestedMemoryInGB": self.requested_memory_gb,
            "levels": [asdict(lv) for lv in self.levels],
        }

    def to_dataframe(self) -> pd.DataFrame:
        """One row per concurrency level (the :class:`LevelResult` fields)."""
        import pandas as pd

        cols = [f for f in LevelResult.__dataclass_fields__]
        return pd.DataFrame([asdict(lv) for lv in self.levels], columns=cols)

    def plot(self) -> Figure:
        """A matplotlib Figure: latency percentiles (ms) and throughput (req/s, with CPU cores
        used on a second axis) against concurrency."""
        from matplotlib.figure import Figure

        df = self.to_dataframe()
        fig = Figure(figsize=(10, 3.8), layout="constrained")
        ax1, ax2 = fig.subplots(1, 2)
        for col, label in (("p50_ms", "p50"), ("p95_ms", "p95"), ("p99_ms", "p99")):
            ax1.plot(df["concurrency"], df[col], marker="o", label=label)
        ax1.set_xscale("log", base=2)
        ax1.set_xticks(list(df["concurrency"]), [str(c) for c in df["concurrency"]])
        ax1.set_xlabel("concurrent clients")
        ax1.set_ylabel("latency (ms)")
        ax1.set_title("latency")
        ax1.legend()
        ax2.plot(df["concurrency"], df["throughput_rps"], marker="o", color="tab:green", label="throughput")
        ax2.set_xscale("log", base=2)
        ax2.set_xticks(list(df["concurrency"]), [str(c) for c in df["concurrency"]])
        ax2.set_xlabel("concurrent clients")
        ax2.set_ylabel("requests / s")
        ax2.set_title("throughput and CPU")
        if df["cpu_cores"].notna().any():
            ax3 = ax2.twinx()
            ax3.plot(df["concurrency"], df["cpu_cores"], marker="s", linestyle="--", color="tab:red", label="CPU cores")
            ax3.set_ylabel("CPU cores used")
            ax3.set_ylim(bottom=0)
            h1, l1 = ax2.get_legend_handles_labels()
            h2, l2 = ax3.get_legend_handles_labels()
            ax2.legend(h1 + h2, l1 + l2, loc="upper left")
        ax2.set_ylim(bottom=0)
        fig.suptitle(f"profile {self.name} of {self.service_name}")
        return fig

    def serialize(self) -> dict[str, Any]:
        return self.get_details()

    def _repr_html_(self) -> str:
        from html import escape

        rec = (
            f"recommended: <b>{self.recommended_cpu_cores}</b> cores, <b>{self.recommended_memory_gb}</b> GiB"
            f"<br><small>{escape(self.recommendation_rule)}</small>"
        )
        return (
            f"<div><b>ModelProfile</b> <code>{escape(self.name)}</code> of <code>{escape(self.service_name)}</code>: "
            f"{self.requests_sent} requests sent, {self.server_requests} recorded by the service<br>{rec}"
            f"{self.to_dataframe().to_html(index=False, float_format=lambda v: f'{v:.3g}')}</div>"
        )


# ------------------------------------------------------------------ measuring
class _ProcessTree:
    """CPU time and RSS of a process and all its descendants (psutil)."""

    def __init__(self, pid: int) -> None:
        import psutil

        self._psutil = psutil
        self.root = psutil.Process(pid)

    def procs(self) -> list[Any]:
        try:
            return [self.root, *self.root.children(recursive=True)]
        except self._psutil.Error:
            return []

    def cpu_by_pid(self) -> dict[int, float]:
        out = {}
        for p in self.procs():
            try:
                t = p.cpu_times()
                out[p.pid] = t.user + t.system
            except self._psutil.Error:
                pass
        return out

    def rss(self) -> int:
        total = 0
        for p in self.procs():
            try:
                total += p.memory_info().rss
            except self._psutil.Error:
                pass
        return total


def _percentile(sorted_vals: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not sorted_vals:
        return float("nan")
    pos = (len(sorted_vals) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_vals[lo] + (sorted_vals[hi] - sorted_vals[lo]) * (pos - lo)


def _encode_samples(samples: Any) -> list[bytes]:
    if isinstance(samples, (str, bytes, dict)) or not isinstance(samples, Sequence) or len(samples) == 0:
        raise ValidationError("samples must be a non-empty list of request bodies (any JSON value, or JSON text)")
    out = []
    for i, s in enumerate(samples):
        if isinstance(s, bytes):
            out.append(s)
        elif isinstance(s, str):
            out.append(s.encode("utf-8"))
        else:
            try:
                out.append(json.dumps(s).encode("utf-8"))
            except (TypeError, ValueError) as e:
                raise ValidationError(f"sample {i} is not JSON-serializable: {e}") from e
    return out


def _check_levels(concurrency: Sequence[int], duration_s: float) -> list[int]:
    levels = list(concurrency)
    if not levels or any(not isinstance(c, int) or not 1 <= c <= MAX_CONCURRENCY for c in levels):
        raise ValidationError(f"concurrency must be a non-empty list of integers from 1 to {MAX_CONCURRENCY}, got {concurrency!r}")
    if not isinstance(duration_s, (int, float)) or not 0 < duration_s <= MAX_DURATION_S:
        raise ValidationError(f"duration_s must be a number of seconds in (0, {MAX_DURATION_S:.0f}], got {duration_s!r}")
    return levels


def _run_level(
    url: str,
    headers: dict[str, str],
    bodies: list[bytes],
    concurrency: int,
    duration_s: float,
    request_timeout_s: float,
    rid_prefix: str,
    counter: itertools.count[int],
    tree: _ProcessTree | None,
) -> LevelResult:
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    peak = [tree.rss() if tree else 0]
    stop_sampling = threading.Event()

    def sampler() -> None:
        while not stop_sampling.wait(0.1):
            peak[0] = max(peak[0], tree.rss())  # type: ignore[union-attr]

    def client(deadline: float) -> None:
        nonlocal errors
        with requests.Session() as session:
            local_lat: list[float] = []
            local_err = 0
            while time.monotonic() < deadline:
                n = next(counter)
                h = dict(headers, **{"x-ms-request-id": f"{rid_prefix}-{n}"})
                t0 = time.perf_counter()
                try:
                    r = session.post(url, data=bodies[n % len(bodies)], headers=h, timeout=request_timeout_s)
                    ok = r.status_code < 400
                except requests.RequestException:
                    ok = False
                local_lat.append((time.perf_counter() - t0) * 1000)
                if not ok:
                    local_err += 1
        with lock:
            latencies.extend(local_lat)
            errors += local_err

    cpu0 = tree.cpu_by_pid() if tree else {}
    sampler_thread = threading.Thread(target=sampler, daemon=True) if tree else None
    if sampler_thread:
        sampler_thread.start()
    t0 = time.monotonic()
    deadline = t0 + duration_s
    threads = [threading.Thread(target=client, args=(deadline,), daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(duration_s + request_timeout_s + 10)
    elapsed = time.monotonic() - t0
    cpu_cores = None
    if tree:
        cpu1 = tree.cpu_by_pid()
        used = sum(v - cpu0.get(pid, 0.0) for pid, v in cpu1.items())
        cpu_cores = max(used, 0.0) / elapsed
        stop_sampling.set()
        sampler_thread.join(5)  # type: ignore[union-attr]
        peak[0] = max(peak[0], tree.rss())
    with lock:
        lat = sorted(latencies)
        n_err = errors
    return LevelResult(
        concurrency=concurrency,
        requests=len(lat),
        errors=n_err,
        duration_s=elapsed,
        throughput_rps=len(lat) / elapsed if elapsed > 0 else float("nan"),
        p50_ms=_percentile(lat, 0.5),
        p90_ms=_percentile(lat, 0.9),
        p95_ms=_percentile(lat, 0.95),
        p99_ms=_percentile(lat, 0.99),
        mean_ms=sum(lat) / len(lat) if lat else float("nan"),
        max_ms=lat[-1] if lat else float("nan"),
        cpu_cores=cpu_cores,
        peak_memory_bytes=peak[0] if tree else None,
    )


def _round_up(x: float, step: float = 0.1) -> float:
    return round(max(step, math.ceil(x / step - 1e-9) * step), 4)


def _recommend(levels: list[LevelResult]) -> tuple[float | None, float | None, str]:
    cpus = [lv.cpu_cores for lv in levels if lv.cpu_cores is not None]
    mems = [lv.peak_memory_bytes for lv in levels if lv.peak_memory_bytes is not None]
    if not cpus or not mems:
        return None, None, "no recommendation: the service's processes are not visible from this machine (not the local target)"
    cpu_max, mem_max = max(cpus), max(mems)
    cpu = _round_up(cpu_max * HEADROOM)
    mem = _round_up(mem_max * HEADROOM / GIB)
    rule = (
        f"cpu_cores = the most CPU the service used at any level ({cpu_max:.3f} cores, averaged over the level) "
        f"x {HEADROOM} headroom, rounded up to 0.1 core = {cpu}; memory_gb = the service's peak resident memory "
        f"({mem_max / GIB:.3f} GiB) x {HEADROOM}, rounded up to 0.1 GiB = {mem}"
    )
    return cpu, mem, rule


def _count_server_records(
    service: ServiceRecord, since: datetime, prefix: str, expected: int, wait_s: float = 10.0
) -> int | None:
    """Requests the service's telemetry recorded with ids ``prefix-*`` (waits for the 0.5 s flush)."""
    deadline = time.monotonic() + wait_s
    count = None
    while True:
        try:
            recs = telemetry.service_records(service, since)
        except Exception:  # noqa: BLE001 - the engine has no /telemetry or is unreachable
            return count
        count = sum(1 for r in recs if str(r.get("request_id", "")).startswith(prefix + "-"))
        if count >= expected or time.monotonic() > deadline:
            return count
        time.sleep(0.25)


def profile_service(
    service: ServiceRecord,
    samples: Sequence[Any],
    concurrency: Sequence[int] = (1, 2, 4, 8),
    duration_s: float = 5.0,
    *,
    name: str | None = None,
    request_timeout_s: float | None = None,
    pid: int | None = None,
    warmup_requests: int = 5,
    description: str | None = None,
) -> ModelProfile:
    """Load-test ``service`` and return a :class:`ModelProfile`.

    Args:
        samples: request bodies (any JSON value; a ``str``/``bytes`` is sent as is), used
            round-robin.
        concurrency: client threads per level (1..256), in order.
        duration_s: seconds per level (0 < d <= 600); the whole run is bounded by
            ``len(concurrency) * (duration_s + request_timeout_s)``.
        request_timeout_s: per-request timeout (default: the service's scoring timeout + 5 s).
        pid: the process whose tree is measured (default: the local target's supervisor).
        warmup_requests: requests sent (and not counted) before the first level.

    Raises ValidationError for bad arguments, WebserviceException when the service has no
    scoring_uri or answers a warm-up request with an error (the message says which).
    """
    bodies = _encode_samples(samples)
    levels = _check_levels(concurrency, duration_s)
    if not service.scoring_uri:
        raise WebserviceException(f"service {service.name} has no scoring_uri (state {service.state}): deploy it first")
    timeout = request_timeout_s or service.scoring_timeout_ms / 1000 + 5
    headers = ScoringClient.for_service(service).headers()
    tree = None
    root = pid or (service.runtime.get("pid") if service.compute_type == "local" else None)
    if root:
        try:
            tree = _ProcessTree(int(root))
        except Exception:  # noqa: BLE001 - gone, or no permission
            tree = None
    with requests.Session() as s:
        for i in range(max(0, warmup_requests)):
            try:
                r = s.post(service.scoring_uri, data=bodies[i % len(bodies)], headers=headers, timeout=timeout)
            except requests.RequestException as e:
                raise WebserviceException(f"could not reach {service.scoring_uri}: {e}") from e
            if r.status_code >= 400:
                raise WebserviceException(
                    f"{service.name} answered {r.status_code} to sample {i % len(bodies)}: {r.text[:500]} — fix the samples"
                )
    run_id = uuid.uuid4().hex[:8]
    prefix = f"profile-{run_id}"
    counter = itertools.count()
    started = datetime.now(timezone.utc)
    results = [_run_level(service.scoring_uri, headers, bodies, c, float(duration_s), timeout, prefix, counter, tree) for c in levels]
    ended = datetime.now(timezone.utc)
    sent = sum(lv.requests for lv in results)
    server = _count_server_records(service, started, prefix, sent)
    cpu, mem, rule = _recommend(results)
    return ModelProfile(
        name=name or f"{service.name}-{run_id}",
        service_name=service.name,
        levels=results,
        requests_sent=sent,
        server_requests=server,
        recommended_cpu_cores=cpu,
        recommended_memory_gb=mem,
        recommendation_rule=rule,
        samples=len(bodies),
        started=started,
        ended=ended,
        description=description,
    )


def load_input_dataset(input_dataset: Any) -> list[Any]:
    """Samples from Azure's ``input_dataset``: a list of samples, a path to a ``.json`` file
    (a list) or ``.jsonl`` file (one sample per line), or a pandas DataFrame whose first
    column holds JSON strings (Azure's tabular dataset of requests), or such a
    :class:`~mlmanage_jupyter.core.dataset.TabularDataset` (Azure's ``input_dataset``)."""
    if isinstance(input_dataset, TabularDataset):
        input_dataset = input_dataset.to_pandas_dataframe()
    if hasattr(input_dataset, "iloc"):
        return [str(v) for v in input_dataset.iloc[:, 0].tolist()]
    if isinstance(input_dataset, (str, Path)) and Path(input_dataset).is_file():
        p = Path(input_dataset)
        text = p.read_text(encoding="utf-8")
        try:
            if p.suffix == ".jsonl":
                return [json.loads(line) for line in text.splitlines() if line.strip()]
            data = json.loads(text)
        except ValueError as e:
            raise ValidationError(f"{p} is not valid JSON{' Lines' if p.suffix == '.jsonl' else ''}: {e}") from e
        if not isinstance(data, list):
            raise ValidationError(f"{p} must hold a JSON list of samples")
        return data
    if isinstance(input_dataset, list):
        return input_dataset
    raise ValidationError(
        "input_dataset must be a list of samples, a .json/.jsonl file path, or a TabularDataset or DataFrame of JSON strings, "
        f"got {type(input_dataset).__name__}"
    )


def profile_models(
    workspace: Workspace,
    profile_name: str,
    models: Sequence[ModelRecord | str],
    inference_config: InferenceConfig,
    input_dataset: Any,
    cpu: float | None = None,
    memory_in_gb: float | None = None,
    description: str | None = None,
    *,
    concurrency: Sequence[int] = (1, 2, 4, 8),
    duration_s: float = 5.0,
    show_output: bool = False,
) -> ModelProfile:
    """Azure ML v1's ``Model.profile``: deploy ``models`` with ``inference_config`` as a
    temporary local service, profile it with ``input_dataset`` (see :func:`load_input_dataset`)
    and delete it (also on failure). ``cpu``/``memory_in_gb`` are accepted for Azure
    compatibility and recorded in the details (the local target has no limits)."""
    if not isinstance(profile_name, str) or not profile_name.strip():
        raise ValidationError("profile_name must be a non-empty string")
    samples = load_input_dataset(input_dataset)
    _encode_samples(samples)
    _check_levels(concurrency, duration_s)
    svc_name = f"profile-{uuid.uuid4().hex[:10]}"
    progress = deployment.progress_fn(None, show_output)
    svc = deployment.deploy(workspace, svc_name, models, inference_config, LocalDeploymentConfig(), progress=progress)
    try:
        deployment.wait_for_deployment(workspace, svc, show_output=show_output, timeout_sec=300)
        svc = deployment.get(workspace, svc_name)
        prof = profile_service(svc, samples, concurrency, duration_s, name=profile_name, description=description)
        prof.requested_cpu_cores, prof.requested_memory_gb = cpu, memory_in_gb
        return prof
    finally:
        deployment.delete(workspace, deployment.get(workspace, svc_name))
