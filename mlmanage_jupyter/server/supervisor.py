"""The supervisor: one listening socket, generations of workers, rolling reloads, status.json.

``python -m mlmanage_jupyter.server`` runs :func:`main`. The supervisor

* opens ONE listening socket on ``MLMANAGE_HOST:MLMANAGE_PORT`` and never closes it until
  it exits: workers inherit it (``pass_fds``) and accept on it, so connections queued in
  its backlog are never lost while workers come and go;
* starts a generation of :func:`worker_count` workers (:mod:`.worker`) with the environment
  of ``$MLMANAGE_RUN_DIR/spec.json`` (``{"id": str, "env": {VAR: value}}``, on top of its
  own environment) when that file exists;
* on SIGHUP re-reads spec.json and starts the next generation on the same socket; once
  every new worker reports ready (``init()`` done; each worker reports on its own pipe,
  :mod:`.worker_status`, which works on a full disk) it stops the old workers gracefully
  (in-flight requests finish). If the new generation fails, it is killed, the old one keeps
  serving and ``last_update_error`` holds the traceback;
* restarts a worker that dies; SIGTERM/SIGINT stops everything gracefully;
* replaces a worker gracefully (:meth:`Supervisor.recycle`: the replacement serves before the
  old one drains) when the worker asks for it (hung ``run()`` calls, ``max_requests``) or
  its RSS passes its share of ``memory_gb`` (``server/lifecycle.py``); each replacement is
  logged and counted in status.json's ``recycles`` and the Prometheus counter
  ``mlmanage_worker_recycles_total{reason}``; workers die with the supervisor (PDEATHSIG);
* when the first generation cannot start it writes ``Failed`` with the error (traceback) to
  status.json and then either keeps one failure process answering 503 with that error on the
  socket (the default: a container stays up) or, with ``MLMANAGE_EXIT_ON_FAILURE=1``
  (``Settings.exit_on_failure``, the local target), exits with code 1, releasing every
  process and the port; status.json keeps saying ``Failed``.

``$MLMANAGE_RUN_DIR/status.json``::

    {"state": "Transitioning|Healthy|Unhealthy|Failed", "generation": int, "pid": int,
     "port": int, "workers": [pid, ...], "error": str|null, "last_update_error": str|null,
     "spec_id": str|null (spec of the serving generation),
     "last_update_spec_id": str|null (spec of the last SIGHUP handled),
     "recycles": {"hung_runs": int, "max_requests": int, "memory": int} (workers replaced),
     "last_recycle": {"reason", "worker", "message", "time"}|null, "updated": ISO 8601 UTC}
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mlmanage_jupyter.server.config import ConfigError, Settings
from mlmanage_jupyter.server.lifecycle import GIB, RECYCLE_REASONS, claim_metric_files, rss_bytes
from mlmanage_jupyter.server.worker_status import STATUS_FD_VAR, StatusReader

log = logging.getLogger("mlmanage.server.supervisor")

POLL_S = 0.05
#: seconds between two RSS checks of the workers (memory_gb)
MEMORY_CHECK_S = 1.0
#: seconds before a failed replacement is tried again
RECYCLE_BACKOFF_S = 10.0


def cgroup_cpu_quota(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """The CPU quota (in CPUs) of this process's cgroup: ``cpu.max`` (cgroup v2) or
    ``cpu.cfs_quota_us / cpu.cfs_period_us`` (v1), as a container runtime sets them for
    ``--cpus`` / a Kubernetes CPU limit; None when unlimited or unreadable."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        if quota != "max" and int(period) > 0:
            return int(quota) / int(period)
        return None
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        if quota_us > 0 and period_us > 0:
            return quota_us / period_us
    except (OSError, ValueError):
        pass
    return None


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity mask (``os.sched_getaffinity``), capped by
    the cgroup CPU quota rounded up; at least 1."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        n = os.cpu_count() or 1
    quota = cgroup_cpu_quota()
    if quota is not None:
        n = min(n, math.ceil(quota))
    return max(1, n)


def worker_count(env: Mapping[str, str]) -> int:
    """Workers of a generation: Azure's ``WORKER_COUNT`` (azureml-inference-server-http's
    variable; an Azure user sets it in ``Environment.environment_variables``, which reach the
    engine verbatim, so it wins over the deployment's ``workers``), else ``MLMANAGE_WORKERS``,
    else :func:`usable_cpus` (one CPU-bound worker per usable core). Raises ConfigError naming
    the variable on a bad value."""
    counts: dict[str, int] = {}
    for name in ("WORKER_COUNT", "MLMANAGE_WORKERS"):
        raw = (env.get(name) or "").strip()
        if not raw:
            continue
        try:
            n = int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
        if n < 1:
            raise ConfigError(f"{name} must be >= 1, got {n}")
        counts[name] = n
    if "WORKER_COUNT" in counts:
        if counts.get("MLMANAGE_WORKERS", counts["WORKER_COUNT"]) != counts["WORKER_COUNT"]:
            log.info("WORKER_COUNT=%d overrides MLMANAGE_WORKERS=%d", counts["WORKER_COUNT"], counts["MLMANAGE_WORKERS"])
        return counts["WORKER_COUNT"]
    return counts.get("MLMANAGE_WORKERS") or usable_cpus()


@dataclass
class Generation:
    number: int
    env: dict[str, str]
    spec_id: str | None
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    memory_gb: float | None = None  # Settings.memory_gb of this generation


class Supervisor:
    def __init__(self) -> None:
        base = Settings.from_env()
        self.run_dir = base.run_dir
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.spec_file = self.run_dir / "spec.json"
        self.status_file = self.run_dir / "status.json"
        self.prom_dir = self.run_dir / "prometheus"
        shutil.rmtree(self.prom_dir, ignore_errors=True)
        self.prom_dir.mkdir()
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(self.prom_dir)
        os.environ["MLMANAGE_RUN_DIR"] = str(self.run_dir)
        self.sock = socket.create_server(
            (base.host, base.port), backlog=2048, reuse_port=os.environ.get("MLMANAGE_REUSEPORT") == "1"
        )
        self.sock.set_inheritable(True)
        # accepted connections inherit it: no Nagle/delayed-ACK stall between the
        # response's header and body writes (uvloop does not set it on an fd it is given)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.port = self.sock.getsockname()[1]
        self.status: dict[str, Any] = {
            "state": "Transitioning",
            "generation": 0,
            "pid": os.getpid(),
            "port": self.port,
            "workers": [],
            "error": None,
            "last_update_error": None,
            "spec_id": None,
            "last_update_spec_id": None,
            "recycles": dict.fromkeys(RECYCLE_REASONS, 0),
            "last_recycle": None,
        }
        self.current: Generation | None = None
        self.failure_proc: subprocess.Popen[bytes] | None = None
        self.hup = False
        self.stop = False
        self.init_timeout_s = float(os.environ.get("MLMANAGE_INIT_TIMEOUT_S") or 600)
        self.exit_on_failure = base.exit_on_failure
        self.exit_code = 0
        self.status_unwritten: str | None = None  # the error while status.json can't be written
        #: replaced workers still draining: (process, kill deadline)
        self.retiring: list[tuple[subprocess.Popen[bytes], float]] = []
        self.next_memory_check = 0.0
        self.recycle_after: dict[int, float] = {}  # worker pid -> no replacement before (monotonic)
        self.memory_warned: set[int] = set()
        self._recycles_counter: Any = None
        # the disk blocks of its metric file, reserved while there is space (recycles_counter)
        self._metric_file_claimed = claim_metric_files(str(self.prom_dir), ("counter",)) is None
        #: each live worker's status pipe (server/worker_status.py): no disk needed to report
        self.channels: dict[subprocess.Popen[bytes], StatusReader] = {}

    # -- status ---------------------------------------------------------------------------
    def write_status(self, **changes: Any) -> None:
        self.status.update(changes)
        procs = list(self.current.procs) if self.current else []
        if self.failure_proc:
            procs.append(self.failure_proc)
        self.status["workers"] = [p.pid for p in procs]
        self.status["updated"] = datetime.now(timezone.utc).isoformat()
        self.flush_status()

    def flush_status(self) -> None:
        """Write status.json (atomically: a temporary file renamed). A disk that refuses it
        (full, read-only) never stops the supervisor: the status stays in memory, one line is
        logged, and the main loop retries until the write works again."""
        tmp = self.status_file.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps(self.status, indent=1))
            os.replace(tmp, self.status_file)
        except OSError as e:
            with contextlib.suppress(OSError):
                tmp.unlink()
            if self.status_unwritten is None:
                log.error("cannot write %s (%s): keeping the status in memory and retrying", self.status_file, e)
            self.status_unwritten = str(e)
            return
        if self.status_unwritten is not None:
            log.info("%s written again (it failed with: %s)", self.status_file, self.status_unwritten)
            self.status_unwritten = None

    # -- specs and workers ------------------------------------------------------------------
    def read_spec(self) -> tuple[dict[str, str], str | None]:
        env = dict(os.environ)
        spec_id = None
        if self.spec_file.is_file():
            spec = json.loads(self.spec_file.read_text())
            env.update({str(k): str(v) for k, v in (spec.get("env") or {}).items()})
            spec_id = spec.get("id")
        env["PROMETHEUS_MULTIPROC_DIR"] = str(self.prom_dir)
        env["MLMANAGE_RUN_DIR"] = str(self.run_dir)
        return env, spec_id

    def spawn(self, env: dict[str, str], extra: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        channel, status_fd = StatusReader.pipe()
        wenv = dict(
            env,
            MLMANAGE_LISTEN_FD=str(self.sock.fileno()),
            MLMANAGE_SUPERVISOR_PID=str(os.getpid()),
            **{STATUS_FD_VAR: str(status_fd)},
            **(extra or {}),
        )
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "mlmanage_jupyter.server.worker"],
                env=wenv,
                pass_fds=(self.sock.fileno(), status_fd),
            )
        except BaseException:
            channel.close()
            raise
        finally:
            os.close(status_fd)  # the worker holds it now: its exit is the reader's end of file
        self.channels[proc] = channel
        log.info("started worker %d", proc.pid)
        return proc

    def worker_state(self, p: subprocess.Popen[bytes]) -> dict[str, Any]:
        """What worker ``p`` last reported on its status pipe (``{}`` before its first report)."""
        channel = self.channels.get(p)
        return channel.poll() if channel is not None else {}

    def wait_ready(self, procs: list[subprocess.Popen[bytes]]) -> str | None:
        """None when every worker is ready, else the error (traceback) of the first that failed."""
        deadline = time.monotonic() + self.init_timeout_s
        pending = list(procs)
        while pending:
            for p in list(pending):
                state = self.worker_state(p)
                if not state and p.poll() is not None:
                    state = self.worker_state(p)  # what it wrote just before it exited is in the pipe
                if state.get("state") == "ready":
                    pending.remove(p)
                elif state.get("state") == "failed":
                    return str(state.get("error") or "init() failed")
                elif p.poll() is not None:
                    return f"worker {p.pid} exited with code {p.returncode} before it was ready (see the log)"
            if self.stop:
                return "the service is stopping"
            if time.monotonic() > deadline:
                return f"init() did not finish within {self.init_timeout_s:.0f} s (MLMANAGE_INIT_TIMEOUT_S)"
            time.sleep(POLL_S)
        return None

    def terminate(self, procs: list[subprocess.Popen[bytes]], grace_s: float) -> None:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for p in procs:
            try:
                p.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("worker %d did not stop within %.0f s: killing it", p.pid, grace_s)
                p.kill()
                p.wait()
            self._forget(p)

    def _forget(self, p: subprocess.Popen[bytes]) -> None:
        try:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(p.pid, str(self.prom_dir))
        except Exception:  # noqa: BLE001 - metrics cleanup must never stop the supervisor
            pass
        channel = self.channels.pop(p, None)
        if channel is not None:
            channel.close()

    def grace_s(self, env: dict[str, str]) -> float:
        return Settings.from_env(env).scoring_timeout_ms / 1000 + 10

    # -- generations ------------------------------------------------------------------------
    def start_generation(self, env: dict[str, str], spec_id: str | None) -> tuple[Generation | None, str | None]:
        number = self.status["generation"] + 1
        try:
            memory_gb = Settings.from_env(env).memory_gb
            n = worker_count(env)
        except ValueError as e:
            return None, str(e)
        gen = Generation(number, env, spec_id, memory_gb=memory_gb)
        gen.procs = [self.spawn(env) for _ in range(n)]
        err = self.wait_ready(gen.procs)
        if err is not None:
            for p in gen.procs:
                if p.poll() is None:
                    p.kill()
                p.wait()
                self._forget(p)
            return None, err
        self.note_baseline(gen, gen.procs)
        self.status["generation"] = number
        return gen, None

    def serve_failure(self, env: dict[str, str], error: str) -> None:
        """Answer 503 with the error on the socket instead of leaving clients hanging."""
        failure_file = self.run_dir / "failure.txt"
        failure_file.write_text(error)
        if self.failure_proc is None or self.failure_proc.poll() is not None:
            if self.failure_proc is not None:
                self._forget(self.failure_proc)
            self.failure_proc = self.spawn(env, {"MLMANAGE_FAILURE_FILE": str(failure_file), "MLMANAGE_WORKERS": "1"})

    def first_start(self) -> None:
        env, spec_id = self.read_spec()
        self.write_status(state="Transitioning")
        gen, err = self.start_generation(env, spec_id)
        if gen is None:
            log.error("the service failed to start:\n%s", err)
            if self.exit_on_failure:
                self.write_status(state="Failed", error=err, last_update_spec_id=spec_id)
                log.error("exiting: the Failed service releases its port %d (MLMANAGE_EXIT_ON_FAILURE)", self.port)
                self.stop, self.exit_code = True, 1
                return
            if not self.stop:
                self.serve_failure(env, err or "")
            self.write_status(state="Failed", error=err, last_update_spec_id=spec_id)
            return
        self.current = gen
        self.write_status(state="Healthy", error=None, spec_id=spec_id, last_update_spec_id=spec_id)
        log.info("generation %d is serving on port %d with workers %s", gen.number, self.port, self.status["workers"])

    def reload(self) -> None:
        try:
            env, spec_id = self.read_spec()
        except (OSError, ValueError) as e:
            self.write_status(last_update_error=f"cannot read {self.spec_file}: {e}")
            return
        log.info("SIGHUP: starting the next generation (spec %s)", spec_id)
        previous_state = self.status["state"]
        if self.current is None:
            self.write_status(state="Transitioning")
        gen, err = self.start_generation(env, spec_id)
        if gen is None:
            log.error("the new generation failed; the previous one keeps serving:\n%s", err)
            changes: dict[str, Any] = {"last_update_error": err, "last_update_spec_id": spec_id}
            if self.current is None:
                changes.update(state="Failed", error=err)
                self.serve_failure(env, err or "")
            else:
                changes["state"] = previous_state
            self.write_status(**changes)
            return
        old, self.current = self.current, gen
        old_procs = list(old.procs) if old else []
        if self.failure_proc is not None:
            old_procs.append(self.failure_proc)
            self.failure_proc = None
        log.info("generation %d is serving; stopping the previous workers", gen.number)
        # The update is reported done only once the old workers are gone: until then one of
        # them could still accept a request and answer with the previous version.
        self.terminate(old_procs, self.grace_s(old.env if old else env))
        self.write_status(
            state="Healthy", error=None, last_update_error=None, spec_id=spec_id, last_update_spec_id=spec_id
        )

    def check_workers(self) -> None:
        self.reap_retiring()
        if self.current is None:
            return
        for i, p in enumerate(self.current.procs):
            if p.poll() is None:
                self.check_recycle(i, p)
                continue
            self._forget(p)
            msg = f"worker {p.pid} exited with code {p.returncode}; restarting it"
            log.error(msg)
            self.write_status(state="Unhealthy", error=msg)
            new = self.spawn(self.current.env)
            self.current.procs[i] = new
            err = self.wait_ready([new])
            if err is None:
                self.note_baseline(self.current, [new])
                log.info("worker %d is ready (it replaced worker %d)", new.pid, p.pid)
                self.write_status(state="Healthy", error=None)
            else:
                self.write_status(state="Unhealthy", error=err)
                time.sleep(2)  # back off before the next restart
        self.check_memory()

    # -- recycling (server/lifecycle.py) ----------------------------------------------------
    def check_recycle(self, i: int, p: subprocess.Popen[bytes]) -> None:
        """Replace worker ``i`` when its last status report asks for it (once its back-off
        after a failed replacement, if any, has passed)."""
        if time.monotonic() < self.recycle_after.get(p.pid, 0.0):
            return
        ask = self.worker_state(p).get("recycle")
        if isinstance(ask, dict) and ask.get("reason") in RECYCLE_REASONS:
            self.recycle(i, str(ask["reason"]), str(ask.get("message") or ""))

    def check_memory(self) -> None:
        """With ``memory_gb``, every MEMORY_CHECK_S: replace each worker whose RSS passed
        ``memory_gb / workers`` GiB (not one that was over it right after init(): its
        replacement would be too; that is logged once)."""
        gen = self.current
        if gen is None or gen.memory_gb is None or time.monotonic() < self.next_memory_check:
            return
        self.next_memory_check = time.monotonic() + MEMORY_CHECK_S
        memory_gb = gen.memory_gb
        cap = memory_gb * GIB / len(gen.procs)
        for i, p in enumerate(gen.procs):
            if p.poll() is None and time.monotonic() >= self.recycle_after.get(p.pid, 0.0):
                self._check_rss(i, p, cap, memory_gb)

    def _check_rss(self, i: int, p: subprocess.Popen[bytes], cap: float, memory_gb: float) -> None:
        assert self.current is not None
        rss = rss_bytes(p.pid)
        if rss is None or rss <= cap:
            return
        if (getattr(p, "ready_rss", None) or 0) > cap:
            # over the cap right after init(): a replacement would be too; say so once
            if p.pid not in self.memory_warned:
                self.memory_warned.add(p.pid)
                log.warning(
                    "worker %d uses %.3f GiB right after init(), more than its share of memory_gb "
                    "(%.3f GiB = %s GiB / %d workers): raise memory_gb",
                    p.pid, rss / GIB, cap / GIB, memory_gb, len(self.current.procs),
                )
            return
        self.recycle(
            i, "memory", f"resident set {rss / GIB:.3f} GiB passed its share of memory_gb ({cap / GIB:.3f} GiB)"
        )

    def note_baseline(self, gen: Generation, procs: list[subprocess.Popen[bytes]]) -> None:
        """Remember the RSS of freshly ready workers (only with memory_gb: psutil)."""
        if gen.memory_gb is not None:
            for p in procs:
                p.ready_rss = rss_bytes(p.pid)  # type: ignore[attr-defined]

    def recycles_counter(self) -> Any:
        """``mlmanage_worker_recycles_total{reason}``, created on first use: prometheus_client
        picks its multiprocess mode at import, after __init__ set PROMETHEUS_MULTIPROC_DIR.
        Raises OSError when the disk has no blocks for its file (a sparse one would SIGBUS the
        supervisor on a full disk: :func:`.lifecycle.claim_metric_files`)."""
        if self._recycles_counter is None:
            if not self._metric_file_claimed:
                why = claim_metric_files(str(self.prom_dir), ("counter",))
                if why:
                    raise OSError(why)
                self._metric_file_claimed = True
            from prometheus_client import Counter

            self._recycles_counter = Counter(
                "mlmanage_worker_recycles", "Workers replaced by the supervisor, by reason", ["reason"]
            )
        return self._recycles_counter

    def recycle(self, i: int, reason: str, message: str) -> None:
        """Start a replacement for worker ``i``; once it is ready, stop the old one
        gracefully (it drains in the background, see :meth:`reap_retiring`). If the
        replacement fails, the old worker keeps serving and it is tried again later."""
        assert self.current is not None
        old = self.current.procs[i]
        log.warning("replacing worker %d (%s): %s", old.pid, reason, message)
        counts = dict(self.status["recycles"])
        counts[reason] = counts.get(reason, 0) + 1
        last = {"reason": reason, "worker": old.pid, "message": message, "time": datetime.now(timezone.utc).isoformat()}
        with_metrics = True
        try:  # counted before status.json says so: a reader of both sees them agree
            self.recycles_counter().labels(reason).inc()
        except Exception as e:  # noqa: BLE001 - metrics must never stop the supervisor
            log.warning("metrics: cannot count this replacement: %s", e)
            with_metrics = False
        if reason == "hung_runs":
            self.write_status(state="Unhealthy", error=f"worker {old.pid}: {message}", recycles=counts, last_recycle=last)
        else:
            self.write_status(recycles=counts, last_recycle=last)
        new = self.spawn(self.current.env)
        err = self.wait_ready([new])
        if err is not None:
            if new.poll() is None:
                new.kill()
            new.wait()
            self._forget(new)
            self.recycle_after[old.pid] = time.monotonic() + RECYCLE_BACKOFF_S  # then its request is acted on again
            msg = f"the replacement of worker {old.pid} ({reason}) failed; it keeps serving: {err}"
            log.error(msg)
            self.write_status(state="Unhealthy", error=msg)
            return
        self.note_baseline(self.current, [new])
        self.current.procs[i] = new
        old.send_signal(signal.SIGTERM)
        self.retiring.append((old, time.monotonic() + self.grace_s(self.current.env)))
        self.write_status(state="Healthy", error=None)
        log.info("worker %d replaced worker %d (%s)%s", new.pid, old.pid, reason, "" if with_metrics else " (metrics off)")

    def reap_retiring(self) -> None:
        """Forget replaced workers that exited; kill those past their grace period."""
        for entry in list(self.retiring):
            p, deadline = entry
            if p.poll() is None:
                if time.monotonic() < deadline:
                    continue
                log.warning("replaced worker %d did not stop in time: killing it", p.pid)
                p.kill()
                p.wait()
            self.retiring.remove(entry)
            self.recycle_after.pop(p.pid, None)
            self.memory_warned.discard(p.pid)
            self._forget(p)

    # -- main loop --------------------------------------------------------------------------
    def run(self) -> int:
        def on_hup(_s: int, _f: Any) -> None:
            self.hup = True

        def on_term(_s: int, _f: Any) -> None:
            self.stop = True

        signal.signal(signal.SIGHUP, on_hup)
        signal.signal(signal.SIGTERM, on_term)
        signal.signal(signal.SIGINT, on_term)
        log.info("supervisor %d listening on %s port %d", os.getpid(), self.sock.getsockname()[0], self.port)
        self.first_start()
        while not self.stop:
            if self.hup:
                self.hup = False
                self.reload()
                continue
            self.check_workers()
            if self.status_unwritten is not None:
                self.flush_status()
            time.sleep(POLL_S)
        log.info("stopping")
        procs = list(self.current.procs) if self.current else []
        if self.failure_proc:
            procs.append(self.failure_proc)
        procs += [p for p, _ in self.retiring]
        self.retiring = []
        self.terminate(procs, self.grace_s(self.current.env if self.current else dict(os.environ)))
        self.current, self.failure_proc = None, None
        if self.exit_code == 0:
            self.write_status(state="Stopped")
        self.sock.close()
        return self.exit_code


def main() -> int:
    from mlmanage_jupyter.server.worker import setup_logging

    setup_logging()
    try:
        sup = Supervisor()
    except (OSError, ValueError) as e:
        log.error("cannot start the scoring engine: %s", e)
        return 2
    return sup.run()
