"""Worker lifecycle: hung-run watchdog, max-requests budget, memory cap, death with the supervisor.

A worker asks the supervisor to replace it by writing ``"recycle": {"reason": <kind>,
"message": <str>}`` on its status pipe (``MLMANAGE_WORKER_STATUS_FD``, next to
``"state": "ready"``; ``server/worker_status.py``); the supervisor then starts a replacement,
waits until it is ready and stops the old worker gracefully (its in-flight requests finish, its keep-alive connections
drain). Reasons (:data:`RECYCLE_REASONS`, the ``reason`` label of the Prometheus counter
``mlmanage_worker_recycles_total`` and the keys of status.json's ``"recycles"``):

* ``hung_runs``: :data:`HUNG_RUNS_LIMIT` ``run()`` calls are still running past
  ``scoring_timeout_ms`` (Python cannot stop a thread, so each keeps one of the worker's
  :data:`RUN_THREADS` run threads). The worker also answers ``/health/ready`` 503 with the
  reason until it is replaced (:class:`HungRuns`).
* ``max_requests``: the worker answered ``max_requests`` + a random ``0..max_requests_jitter``
  requests (gunicorn's ``max_requests`` / ``max_requests_jitter``, every route counted;
  :class:`RequestBudget`).
* ``memory``: the worker's resident set size (RSS) passed its share of the service's
  ``memory_gb`` (``memory_gb / workers`` GiB; measured by the supervisor, :func:`rss_bytes`).

Workers die with their supervisor: :func:`die_with_parent` asks Linux to send SIGTERM when
the supervisor exits (``prctl(PR_SET_PDEATHSIG)``), and :func:`parent_gone` is the portable
check the worker also makes every tick (its parent pid changes when the supervisor dies).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import random
import signal
from collections.abc import Callable

#: run() threads of one worker (the ThreadPoolExecutor that calls run())
RUN_THREADS = 8
#: run() calls still running past their deadline that make a worker ask to be replaced
HUNG_RUNS_LIMIT = RUN_THREADS // 2
#: what a worker may be recycled for
RECYCLE_REASONS = ("hung_runs", "max_requests", "memory")

PR_SET_PDEATHSIG = 1


class RunTimedOut(BaseException):
    """Raised inside a run() called on the event loop when scoring_timeout_ms passes
    (``server/runner.py``). A BaseException, so an entry script's ``except Exception`` does not
    swallow it; the app answers 504."""

GIB = 1024**3


class HungRuns:
    """Counts run() calls that passed their deadline and still hold a run thread.

    ``expired()`` when a call's deadline passes, ``returned()`` when such a call finally
    returns; both on the event loop's thread (no lock). Once ``limit`` calls hang at the same
    time the worker is tripped for good (it is to be replaced: ``on_trip(reason)`` is called
    once) and ``reason`` is the message a not-ready answer and the supervisor's log give;
    before that ``reason`` is None.
    """

    def __init__(
        self,
        timeout_ms: int,
        limit: int = HUNG_RUNS_LIMIT,
        threads: int = RUN_THREADS,
        on_trip: Callable[[str], None] | None = None,
    ) -> None:
        self.timeout_ms = timeout_ms
        self.limit = limit
        self.threads = threads
        self.on_trip = on_trip
        self.count = 0
        self.tripped = False
        self._message: str | None = None

    def expired(self) -> None:
        """Count one more hung call; trips at ``limit``."""
        self.count += 1
        if self.count >= self.limit:
            self.trip()

    def trip(self, message: str | None = None) -> None:
        """Mark the worker wedged now (once), with ``message`` or the hung-threads one."""
        if self.tripped:
            return
        self.tripped = True
        self._message = message
        if self.on_trip is not None:
            self.on_trip(self.reason or "")

    def returned(self) -> None:
        self.count = max(0, self.count - 1)

    @property
    def reason(self) -> str | None:
        if not self.tripped:
            return None
        if self._message is not None:
            return self._message
        return (
            f"{self.count} run() calls are still running past scoring_timeout_ms ({self.timeout_ms} ms) and hold "
            f"{self.count} of the worker's {self.threads} run threads: the worker is being replaced"
        )


class RequestBudget:
    """gunicorn's ``max_requests`` with ``max_requests_jitter``: the worker is done after
    ``max_requests + randint(0, max_requests_jitter)`` requests; ``max_requests=0`` never."""

    def __init__(self, max_requests: int, jitter: int = 0, rng: random.Random | None = None) -> None:
        self.limit = max_requests + (rng or random).randint(0, jitter) if max_requests > 0 else 0
        self.served = 0

    def spend(self) -> bool:
        """Count one request; True exactly when this one exhausts the budget."""
        self.served += 1
        return self.served == self.limit


def die_with_parent(parent_pid: int | None, sig: int = signal.SIGTERM) -> bool:
    """Have the kernel send ``sig`` to this process when its parent exits (Linux
    ``prctl(PR_SET_PDEATHSIG)``, prctl(2)). Returns False when the parent is already gone
    (not ``parent_pid`` any more: the caller should exit) or True; on a system without
    prctl it only checks the parent, and :func:`parent_gone` covers the rest."""
    libc_name = ctypes.util.find_library("c")
    if libc_name and hasattr(os, "getppid"):
        try:
            libc = ctypes.CDLL(libc_name, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        except (OSError, AttributeError):
            pass
    # the parent may have died before prctl took effect (prctl(2): checked afterwards)
    return not parent_gone(parent_pid)


def parent_gone(parent_pid: int | None) -> bool:
    """True when ``parent_pid`` is set and is no longer this process's parent."""
    return bool(parent_pid) and os.getppid() != parent_pid


def rss_bytes(pid: int) -> int | None:
    """Resident set size of ``pid`` in bytes (psutil), None when it is gone or unreadable."""
    import psutil  # a dependency of the local target (the only one that sets memory_gb)

    try:
        return int(psutil.Process(pid).memory_info().rss)
    except (psutil.Error, OSError):
        return None


#: the Prometheus multiprocess files a worker writes: prometheus_client names them
#: ``<prefix>_<pid>.db`` after the metric type (the engine's metrics are counters and histograms)
METRIC_FILE_PREFIXES = ("counter", "histogram")
#: bytes reserved per metric file at worker start (telemetry.METRIC_FILE_RESERVE keeps them so)
METRIC_FILE_SIZE = 256 * 1024


def claim_metric_files(
    folder: str | None, prefixes: tuple[str, ...] = METRIC_FILE_PREFIXES, size: int = METRIC_FILE_SIZE
) -> str | None:
    """Create this process's Prometheus multiprocess files in ``folder`` with ``size`` bytes
    of disk blocks reserved (``posix_fallocate``), before prometheus_client creates them.

    prometheus_client creates them sparse and memory-maps them: on a full disk its first write
    into the map kills the process with SIGBUS, so a worker started on a full disk died before
    it served. Call this before prometheus_client is imported. Returns None when the files are
    reserved (or there is no ``folder``, or no ``posix_fallocate``), else why they cannot be
    (the files this call created are removed again): the caller must then not use the
    multiprocess mode (unset ``PROMETHEUS_MULTIPROC_DIR`` before importing prometheus_client)."""
    if not folder or not hasattr(os, "posix_fallocate"):
        return None
    created: list[str] = []
    for prefix in prefixes:
        path = os.path.join(folder, f"{prefix}_{os.getpid()}.db")
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            created.append(path)
        except FileExistsError:
            try:
                fd = os.open(path, os.O_RDWR)
            except OSError as e:
                return _unclaim(created, f"cannot open {path}: {e}")
        except OSError as e:
            return _unclaim(created, f"cannot create {path}: {e}")
        try:
            reserve_blocks(fd, size)
        except OSError as e:
            return _unclaim(created, f"cannot reserve {size} bytes for {path}: {e}")
        finally:
            os.close(fd)
    return None


def reserve_blocks(fd: int, size: int = METRIC_FILE_SIZE) -> None:
    """Give the open file ``fd`` real disk blocks for at least ``size`` bytes (and all it
    already has): ``posix_fallocate``. Raises OSError (ENOSPC on a full disk)."""
    os.posix_fallocate(fd, 0, max(size, os.fstat(fd).st_size))


def _unclaim(created: list[str], why: str) -> str:
    for path in created:
        try:
            os.unlink(path)
        except OSError:
            pass
    return why
