"""Per-request telemetry records and Prometheus metrics.

Records: one JSON line per request in ``$MLMANAGE_RUN_DIR/telemetry/<worker-pid>.jsonl``
with ``time`` (UTC ISO 8601), ``request_id``, ``route``, ``status``, ``latency_ms``,
``request_bytes``, ``response_bytes``, ``models``, ``service``, ``worker``. They are
buffered in memory and flushed by a background task every 0.5 s and at shutdown.

Metrics (Prometheus, multiprocess mode when ``PROMETHEUS_MULTIPROC_DIR`` is set, which the
supervisor does): ``mlmanage_requests_total{route,status}`` (counter) and
``mlmanage_request_latency_seconds{route}`` (histogram, seconds).
"""

from __future__ import annotations

import asyncio
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

REQUESTS = Counter("mlmanage_requests", "HTTP requests answered", ["route", "status"])
LATENCY = Histogram(
    "mlmanage_request_latency_seconds",
    "Request latency in seconds",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)


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

    def __init__(self, run_dir: Path, service: str, models: tuple[str, ...], interval_s: float = 0.5) -> None:
        self.dir = Path(run_dir) / "telemetry"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.pid = os.getpid()
        self.path = self.dir / f"{self.pid}.jsonl"
        self.service = service
        self.models = list(models)
        self.interval_s = interval_s
        self._buf: list[str] = []
        self._task: asyncio.Task[None] | None = None

    def record(self, *, request_id: str, route: str, status: int, latency_ms: float, request_bytes: int, response_bytes: int) -> None:
        rec: dict[str, Any] = {
            "time": datetime.now(timezone.utc).isoformat(),
            "request_id": request_id,
            "route": route,
            "status": status,
            "latency_ms": round(latency_ms, 3),
            "request_bytes": request_bytes,
            "response_bytes": response_bytes,
            "models": self.models,
            "service": self.service,
            "worker": self.pid,
        }
        self._buf.append(json.dumps(rec))

    def flush(self) -> None:
        if not self._buf:
            return
        lines, self._buf = self._buf, []
        with open(self.path, "a", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                self.flush()
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
