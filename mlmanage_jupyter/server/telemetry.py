"""Per-request telemetry records and Prometheus metrics.

Records: one JSON line per request in ``$MLMANAGE_RUN_DIR/telemetry/<worker-pid>.jsonl``
with ``time`` (UTC ISO 8601), ``request_id``, ``route``, ``status``, ``latency_ms``,
``request_bytes``, ``response_bytes``, ``models``, ``service``, ``worker``. The request
path only appends a tuple to a bounded in-memory buffer (no formatting, no I/O); every 0.5 s a
background task has a thread format and append them (off the event loop), and at shutdown. When ``max_buffer`` records
(default 100,000) are waiting, new ones are dropped and counted in
``mlmanage_telemetry_dropped_total`` (scoring never waits for telemetry).

Metrics (Prometheus, multiprocess mode when ``PROMETHEUS_MULTIPROC_DIR`` is set, which the
supervisor does): ``mlmanage_requests_total{route,status}`` (counter) and
``mlmanage_request_latency_seconds{route}`` (histogram, seconds).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from mlmanage_jupyter.server.jsonio import dumps

REQUESTS = Counter("mlmanage_requests", "HTTP requests answered", ["route", "status"])
LATENCY = Histogram(
    "mlmanage_request_latency_seconds",
    "Request latency in seconds",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
DROPPED = Counter("mlmanage_telemetry_dropped", "Telemetry records dropped because the buffer was full")


class RouteMetrics:
    """The Prometheus children of one route, bound once (``labels()`` costs a lock and a
    dict lookup per call); ``observe(status, seconds)`` counts one answer."""

    def __init__(self, route: str) -> None:
        self.route = route
        self.latency = LATENCY.labels(route)
        self._requests: dict[int, Any] = {}

    def observe(self, status: int, seconds: float) -> None:
        child = self._requests.get(status)
        if child is None:
            child = self._requests[status] = REQUESTS.labels(self.route, str(status))
        child.inc()
        self.latency.observe(seconds)


def metrics_text() -> tuple[bytes, str]:
    """The Prometheus exposition of every worker (multiprocess) or this process."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


class TelemetryWriter:
    """Buffers records; ``flush()`` appends them to this worker's JSONL file."""

    def __init__(
        self, run_dir: Path, service: str, models: tuple[str, ...], interval_s: float = 0.5, max_buffer: int = 100_000
    ) -> None:
        self.dir = Path(run_dir) / "telemetry"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.pid = os.getpid()
        self.path = self.dir / f"{self.pid}.jsonl"
        self.service = service
        self.models = list(models)
        self.interval_s = interval_s
        self.max_buffer = max_buffer
        self._buf: list[tuple[float, str, str, int, float, int, int]] = []
        self._task: asyncio.Task[None] | None = None
        self._lock = threading.Lock()  # one flush at a time: records reach the file in order

    def record(self, *, request_id: str, route: str, status: int, latency_ms: float, request_bytes: int, response_bytes: int) -> None:
        """Buffer one record (O(1), no I/O); dropped and counted when the buffer is full."""
        if len(self._buf) >= self.max_buffer:
            DROPPED.inc()
            return
        self._buf.append((time.time(), request_id, route, status, latency_ms, request_bytes, response_bytes))

    def flush(self) -> None:
        """Format the buffered records and append them to this worker's file (thread-safe)."""
        with self._lock:
            if not self._buf:
                return
            recs, self._buf = self._buf, []
            self._write(recs)

    def _write(self, recs: list[tuple[float, str, str, int, float, int, int]]) -> None:
        models, service, pid = self.models, self.service, self.pid
        lines = [
            dumps(
                {
                    "time": datetime.fromtimestamp(t, timezone.utc).isoformat(),
                    "request_id": rid,
                    "route": route,
                    "status": status,
                    "latency_ms": round(latency_ms, 3),
                    "request_bytes": nin,
                    "response_bytes": nout,
                    "models": models,
                    "service": service,
                    "worker": pid,
                }
            )
            for t, rid, route, status, latency_ms, nin, nout in recs
        ]
        with open(self.path, "ab") as f:
            f.write(b"\n".join(lines) + b"\n")

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await loop.run_in_executor(None, self.flush)
            except OSError:
                pass

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self.flush()
