"""Per-request telemetry records and Prometheus metrics.

Records: one JSON line per request in ``$MLMANAGE_RUN_DIR/telemetry/<worker-pid>.jsonl``
with ``time`` (UTC ISO 8601), ``request_id`` (at most 128 characters), ``route``, ``status``,
``latency_ms``, ``request_bytes``, ``response_bytes``, ``models``, ``service``, ``worker``.
Requests refused 401 (no or a wrong key) are not recorded one by one: they only count in
``mlmanage_requests_total{status="401"}``, so clients without a key cannot fill the disk.
The request path only appends a tuple to a bounded in-memory buffer (no formatting, no I/O);
every 0.5 s a background task has a thread format and append them (off the event loop), and
at shutdown. When ``max_buffer`` records (default 100,000) are waiting, new ones are dropped
and counted in ``mlmanage_telemetry_dropped_total`` (scoring never waits for telemetry).

Size bound: each worker's file rotates at ``MLMANAGE_TELEMETRY_MAX_BYTES`` (default 64 MiB)
and the folder keeps ``MLMANAGE_TELEMETRY_MAX_FILES`` (default 4) closed files
(:class:`TelemetryWriter`). A full or read-only disk drops records (counted in
``mlmanage_telemetry_disk_dropped_total``, one log line) and never stops scoring; writing
resumes by itself once there is space. :func:`read_telemetry` reads from the end of the files,
so ``GET /telemetry?limit=10`` costs ten records, not the history.

Metrics (Prometheus, multiprocess mode when ``PROMETHEUS_MULTIPROC_DIR`` is set, which the
supervisor does): ``mlmanage_requests_total{route,status}`` (counter) and
``mlmanage_request_latency_seconds{route}`` (histogram, seconds). Their memory-mapped files
get real disk blocks reserved (:func:`reserve_metric_files`) so a full disk cannot SIGBUS a worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from mlmanage_jupyter.server.jsonio import dumps
from mlmanage_jupyter.server.lifecycle import METRIC_FILE_SIZE, reserve_blocks

REQUESTS = Counter("mlmanage_requests", "HTTP requests answered", ["route", "status"])
LATENCY = Histogram(
    "mlmanage_request_latency_seconds",
    "Request latency in seconds",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
DROPPED = Counter("mlmanage_telemetry_dropped", "Telemetry records dropped because the buffer was full")
DISK_DROPPED = Counter(
    "mlmanage_telemetry_disk_dropped", "Telemetry records dropped because the disk refused them (full, read-only)"
)

log = logging.getLogger("mlmanage.server.telemetry")

SUFFIX = ".jsonl"
#: defaults of ``Settings.telemetry_max_bytes`` / ``telemetry_max_files``
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_FILES = 4
#: request ids are stored cut to this many characters
MAX_REQUEST_ID = 128
#: bytes read per step when reading a file backwards
READ_BLOCK = 64 * 1024
#: bytes of disk reserved for each metrics file, and how often (s) the reservation is renewed
METRIC_FILE_RESERVE = METRIC_FILE_SIZE
RESERVE_EVERY_S = 10.0


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


_last_second: tuple[int, str] = (-1, "")  # utc_iso's last whole second and its text


def utc_iso(t: float) -> str:
    """Unix time ``t`` (s) as ISO 8601 in UTC with microseconds
    (``2026-12-02T18:00:00.000000+00:00``); the text of the last whole second is reused
    (records come in time order), so a call is ~0.4 us instead of ``datetime``'s ~1.5 us."""
    global _last_second
    whole = int(t)
    second, text = _last_second
    if whole != second:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        _last_second = (whole, text)
    return f"{text}.{int((t - whole) * 1e6):06d}+00:00"


#: records formatted per hold of the GIL by the flushing thread
FORMAT_CHUNK = 256


class TelemetryWriter:
    """Buffers records; ``flush()`` appends them to this worker's JSONL file, rotating it by size.

    Rotation (Python's ``RotatingFileHandler`` idea, across workers): when this worker's
    ``<pid>.jsonl`` reaches ``max_bytes`` it is renamed ``<pid>-<unix ns>.jsonl`` (closed) and a
    new one started; then the folder keeps the ``max_files`` newest closed files (files of
    workers that are gone count as closed) and deletes older ones. The folder so holds at most
    about ``max_bytes * (max_files + live workers)`` bytes (default 64 MiB x (4 + workers)).

    A write the disk refuses (``ENOSPC`` full, ``EDQUOT``, ``EROFS``, any ``OSError``) drops
    that batch: the records are counted in ``mlmanage_telemetry_disk_dropped_total``, the file
    is cut back to its last whole record, one warning is logged when writes start failing and
    one line when they work again (the next flush retries: nothing to restart).
    """

    def __init__(
        self,
        run_dir: Path,
        service: str,
        models: tuple[str, ...],
        interval_s: float = 0.5,
        max_buffer: int = 100_000,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_files: int = DEFAULT_MAX_FILES,
    ) -> None:
        self.dir = Path(run_dir) / "telemetry"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.pid = os.getpid()
        self.path = self.dir / f"{self.pid}{SUFFIX}"
        self.service = service
        self.models = list(models)
        self.interval_s = interval_s
        self.max_buffer = max_buffer
        self.max_bytes = max_bytes
        self.max_files = max_files
        self.failing: str | None = None  # the error while writes fail, None when they work
        self._buf: list[tuple[float, str, str, int, float, int, int]] = []
        self._task: asyncio.Task[None] | None = None
        self._lock = threading.Lock()  # one flush at a time: records reach the file in order
        self._last_reserve = 0.0

    def record(self, *, request_id: str, route: str, status: int, latency_ms: float, request_bytes: int, response_bytes: int) -> None:
        """Buffer one record (O(1), no I/O); dropped and counted when the buffer is full.
        A request id longer than :data:`MAX_REQUEST_ID` characters is cut to that length."""
        if len(self._buf) >= self.max_buffer:
            DROPPED.inc()
            return
        self._buf.append((time.time(), request_id[:MAX_REQUEST_ID], route, status, latency_ms, request_bytes, response_bytes))

    def flush(self) -> None:
        """Format the buffered records and append them to this worker's file (thread-safe).
        Never raises for a disk error (class docstring)."""
        with self._lock:
            if not self._buf:
                return
            recs, self._buf = self._buf, []
            try:
                self._write(recs)
            except OSError as e:
                DISK_DROPPED.inc(len(recs))
                if self.failing is None:
                    log.warning(
                        "telemetry: cannot write to %s (%s): dropping records until the disk accepts them again "
                        "(counted in mlmanage_telemetry_disk_dropped_total)", self.dir, e,
                    )
                self.failing = str(e)
                return
            if self.failing is not None:
                log.warning("telemetry: writing to %s works again (it failed with: %s)", self.dir, self.failing)
                self.failing = None

    def format(self, recs: list[tuple[float, str, str, int, float, int, int]]) -> list[bytes]:
        """JSON lines of buffered records: ``{"time" (ISO 8601 UTC, microseconds), "request_id",
        "route", "status", "latency_ms", "request_bytes", "response_bytes", "models",
        "service", "worker"}``. One bytes template per record (~1 us; a dict through
        ``dumps`` and ``datetime.isoformat()`` took ~5 us, all of it holding the GIL the
        worker's event loop needs); the same JSON values."""
        tail = dumps({"models": self.models, "service": self.service, "worker": self.pid})[1:]
        routes: dict[str, bytes] = {}
        lines = []
        for t, rid, route, status, latency_ms, nin, nout in recs:
            route_json = routes.get(route)
            if route_json is None:
                route_json = routes[route] = dumps(route)
            lines.append(
                b'{"time":"%s","request_id":%s,"route":%s,"status":%d,"latency_ms":%r,'
                b'"request_bytes":%d,"response_bytes":%d,%s'
                % (utc_iso(t).encode(), dumps(rid), route_json, status, round(latency_ms, 3), nin, nout, tail)
            )
        return lines

    def _write(self, recs: list[tuple[float, str, str, int, float, int, int]]) -> None:
        lines: list[bytes] = []
        for i in range(0, len(recs), FORMAT_CHUNK):
            if i:
                time.sleep(0)  # let the event loop have the GIL between chunks
            lines += self.format(recs[i : i + FORMAT_CHUNK])
        with open(self.path, "ab") as f:
            start = f.tell()
            try:
                f.write(b"\n".join(lines) + b"\n")
                f.flush()
            except OSError:
                with contextlib.suppress(OSError):
                    f.truncate(start)  # no half record for the next batch to glue onto
                raise
            size = f.tell()
        if size >= self.max_bytes:
            self.rotate()

    def rotate(self) -> None:
        """Close this worker's file (rename it ``<pid>-<unix ns>.jsonl``) and apply retention."""
        with contextlib.suppress(FileNotFoundError):
            os.replace(self.path, self.dir / f"{self.pid}-{time.time_ns()}{SUFFIX}")
        prune(self.dir, self.max_files)

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await loop.run_in_executor(None, self.flush)
                if time.monotonic() - self._last_reserve > RESERVE_EVERY_S:
                    self._last_reserve = time.monotonic()
                    await loop.run_in_executor(None, reserve_metric_files)
            except OSError:
                pass

    def start(self) -> None:
        """Start the flush loop (in the running event loop); applies retention once and
        reserves this worker's metric files (:func:`reserve_metric_files`)."""
        with contextlib.suppress(OSError):
            prune(self.dir, self.max_files)
        reserve_metric_files()
        self._last_reserve = time.monotonic()
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self.flush()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def prune(folder: Path, max_files: int) -> list[Path]:
    """Delete the oldest closed telemetry files of ``folder`` beyond the ``max_files`` newest.

    Closed: rotated files (``<pid>-<ns>.jsonl``) and the current file of a worker that is no
    longer running. Returns the deleted paths."""
    closed: list[tuple[float, Path]] = []
    for p in folder.glob(f"*{SUFFIX}"):
        stem = p.name[: -len(SUFFIX)]
        if stem.isdigit() and _alive(int(stem)):
            continue  # a running worker's current file
        try:
            closed.append((p.stat().st_mtime, p))
        except FileNotFoundError:
            continue
    closed.sort(reverse=True)
    gone = []
    for _, p in closed[max_files:]:
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
            gone.append(p)
    return gone


def reserve_metric_files(folder: str | None = None, size: int = METRIC_FILE_RESERVE) -> None:
    """Give this process's Prometheus multiprocess files real disk blocks
    (``posix_fallocate`` up to ``size`` bytes, default 256 KiB).

    prometheus_client memory-maps them and grows them with ``truncate`` (a sparse file): on a
    full disk the first write into a page without a block kills the process with SIGBUS. With
    the blocks reserved (while there is space) those writes cannot fail. Does nothing without
    ``PROMETHEUS_MULTIPROC_DIR``; a disk already full is logged once, not raised."""
    global _reserve_failed
    folder = folder or os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not folder or not hasattr(os, "posix_fallocate"):
        return
    suffix = f"_{os.getpid()}.db"
    try:
        names = [n for n in os.listdir(folder) if n.endswith(suffix)]
    except OSError:
        return
    for n in names:
        try:
            fd = os.open(os.path.join(folder, n), os.O_RDWR)
        except OSError:
            continue
        try:
            reserve_blocks(fd, size)
            _reserve_failed = False
        except OSError as e:
            if not _reserve_failed:
                log.warning("metrics: cannot reserve disk blocks for %s (%s)", n, e)
            _reserve_failed = True
        finally:
            os.close(fd)


_reserve_failed = False


# ------------------------------------------------------------------ reading
def _parse_time(rec: dict[str, Any]) -> datetime | None:
    try:
        return datetime.fromisoformat(rec["time"])
    except (KeyError, ValueError, TypeError):
        return None


def _tail(path: Path, since: datetime | None, limit: int | None) -> list[dict[str, Any]]:
    """Records of one file with ``time > since``, newest first, at most ``limit``: read
    backwards in blocks from the end, stopping at the first record not newer than ``since``
    (a worker appends its records in time order). A last line without its newline (being
    written) is skipped, as are lines that are not JSON."""
    out: list[dict[str, Any]] = []
    try:
        f = open(path, "rb")
    except OSError:
        return out
    with f:
        pos = f.seek(0, os.SEEK_END)
        buf = b""
        started = False  # the partial last line has been cut off

        def take(line: bytes) -> bool:
            """Handle one complete line; False to stop reading."""
            if not line.strip():
                return True
            try:
                rec = json.loads(line)
            except ValueError:
                return True
            if not isinstance(rec, dict):
                return True
            if since is not None:
                t = _parse_time(rec)
                if t is None:
                    return True
                if t <= since:
                    return False
            out.append(rec)
            return limit is None or len(out) < limit

        while pos > 0:
            n = min(READ_BLOCK, pos)
            pos -= n
            f.seek(pos)
            buf = f.read(n) + buf
            if not started:
                cut = buf.rfind(b"\n")
                if cut < 0:
                    continue
                buf, started = buf[:cut], True
            parts = buf.split(b"\n")
            buf = parts[0]
            for line in reversed(parts[1:]):
                if not take(line):
                    return out
        if started and buf:
            take(buf)
    return out


def read_telemetry(run_dir: Path, since: datetime | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """Records of ``run_dir/telemetry/*.jsonl`` (every worker's, rotated files too) with
    ``time > since``, oldest first; ``limit`` keeps the most recent ones.

    Reads from the end of each file (:func:`_tail`) and skips whole files older than ``since``
    or than the ``limit``-th newest record found so far (by modification time): the cost grows
    with the records returned, not with the history kept. ``since`` must be timezone-aware
    (UTC). A line being written (no trailing newline yet) is skipped."""
    folder = Path(run_dir) / "telemetry"
    if limit is not None and limit <= 0:
        return []
    files: list[tuple[float, Path]] = []
    try:
        entries = list(folder.glob(f"*{SUFFIX}"))
    except OSError:
        return []
    for p in entries:
        try:
            files.append((p.stat().st_mtime, p))
        except OSError:
            continue
    files.sort(reverse=True)  # newest first
    floor = since.timestamp() if since is not None else None
    # (time, file rank, line order, record): equal times keep each file's line order
    out: list[tuple[str, int, int, dict[str, Any]]] = []
    threshold: str | None = None  # with a limit: the limit-th newest time found so far
    for rank, (mtime, p) in enumerate(files):
        if floor is not None and mtime < floor:
            continue  # every record in it is older than since
        if threshold is not None and mtime < (_parse_iso_ts(threshold) or 0):
            continue
        recs = _tail(p, since, limit)  # newest first
        out.extend((str(r.get("time", "")), -rank, -k, r) for k, r in enumerate(recs))
        if limit is not None and len(out) >= limit:
            out.sort(key=lambda x: x[:3], reverse=True)
            del out[limit:]
            threshold = out[-1][0]
    out.sort(key=lambda x: x[:3])
    if limit is not None:
        out = out[-limit:]
    return [r for *_, r in out]


def _parse_iso_ts(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None
