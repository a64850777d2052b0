"""One scoring worker: load the entry script, call init(), then serve on the inherited socket.

Started by the supervisor with ``MLMANAGE_LISTEN_FD`` (the shared listening socket) and
``MLMANAGE_WORKER_STATUS_FD`` (a pipe where the worker reports ``{"state": "ready"}`` once it
serves, or ``{"state": "failed", "error": <traceback>}``; ``"recycle": {"reason", "message"}``
next to ``"ready"`` asks the supervisor to replace it, ``server/lifecycle.py``; a pipe, so a
full disk cannot silence it: ``server/worker_status.py``). With
``MLMANAGE_FAILURE_FILE`` it skips the entry script and serves 503 with that file's text (a
generation whose init failed). ``MLMANAGE_SUPERVISOR_PID``: the worker dies with that process
(SIGTERM from the kernel when it exits, and a parent check every tick of the server loop).
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import uvicorn

from mlmanage_jupyter.server import schema_fast
from mlmanage_jupyter.server.config import Settings
from mlmanage_jupyter.server.http_limits import HeadLimits, uvicorn_http_options
from mlmanage_jupyter.server.lifecycle import claim_metric_files, die_with_parent, parent_gone
from mlmanage_jupyter.server.worker_status import StatusWriter

log = logging.getLogger("mlmanage.server.worker")


def _write_status(channel: StatusWriter | None, **data: object) -> None:
    """Report ``data`` to the supervisor (nothing without one). Raises OSError when the
    supervisor is gone (its end of the pipe is closed)."""
    if channel is not None:
        channel.send(**data)


def freeze_startup_objects() -> int:
    """Move every object alive after ``init()`` (modules, the model) out of the garbage
    collector's sight (``gc.freeze()``, after one full collection): a full collection then only
    scans what requests allocate, instead of pausing the worker ~20-90 ms to walk ~140,000
    objects of numpy/scikit-learn/pandas - a tail-latency spike. Returns the objects frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def setup_logging() -> None:
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format=f"%(asctime)s %(levelname)s [{os.getpid()}] %(name)s: %(message)s",
    )


def main() -> int:
    setup_logging()
    supervisor_pid = int(os.environ.get("MLMANAGE_SUPERVISOR_PID") or 0) or None
    if not die_with_parent(supervisor_pid):
        log.error("the supervisor (pid %s) is gone: exiting", supervisor_pid)
        return 4
    settings = Settings.from_env()
    status = StatusWriter.from_env()
    failure_file = os.environ.get("MLMANAGE_FAILURE_FILE")
    if why := claim_metric_files(os.environ.get("PROMETHEUS_MULTIPROC_DIR")):
        # a full disk: multiprocess metrics would SIGBUS this worker, so it keeps its own
        log.warning("metrics: %s: this worker's metrics stay in the worker (not in /metrics of the others)", why)
        del os.environ["PROMETHEUS_MULTIPROC_DIR"]
    from mlmanage_jupyter.server.app import create_app
    from mlmanage_jupyter.server.batching import batchable
    from mlmanage_jupyter.server.entry import EntryScript, EntryScriptError

    script = None
    failure = None
    if failure_file:
        failure = Path(failure_file).read_text(encoding="utf-8")
    else:
        try:
            schema_fast.install()  # inference_schema's numpy input conversion without its per-row loop
            log.info("loading entry script %s", settings.app_root / settings.entry_script)
            script = EntryScript(settings.app_root, settings.entry_script, settings.source_directory)
            if settings.max_batch_size > 1 and (why := batchable(script)):
                raise EntryScriptError(
                    f"MLMANAGE_MAX_BATCH_SIZE={settings.max_batch_size} (max_batch_size) needs a run() that "
                    f"takes a batch of rows, but {why}: set max_batch_size=1 or decorate run() with "
                    "@input_schema for one parameter"
                )
            log.info("calling init()")
            script.init()
            log.info("init() completed")
            freeze_startup_objects()
        except BaseException:
            tb = traceback.format_exc()
            log.error("the entry script failed to start:\n%s", tb)
            _write_status(status, state="failed", error=tb)
            return 3

    def on_recycle(reason: str, message: str) -> None:
        log.warning("asking to be replaced (%s): %s", reason, message)
        try:
            _write_status(status, state="ready", recycle={"reason": reason, "message": message})
        except OSError as e:  # the supervisor is gone: that must not fail the request that hit the limit
            log.error("cannot ask to be replaced: the status pipe failed: %s", e)

    http_options = uvicorn_http_options(HeadLimits.of(settings))
    app = create_app(
        settings,
        script,
        on_ready=lambda: _write_status(status, state="ready"),
        failure=failure,
        on_recycle=on_recycle,
        # the httptools protocol checks the head's bounds while parsing; h11 does not
        head_checked=http_options.get("http") != "h11",
    )
    fd = os.environ.get("MLMANAGE_LISTEN_FD")
    kwargs: dict[str, object] = {"fd": int(fd)} if fd else {"host": settings.host, "port": settings.port}
    config = uvicorn.Config(
        app,
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=settings.scoring_timeout_ms / 1000 + 5,
        timeout_keep_alive=5,
        # X-Forwarded-* is only trusted from 127.0.0.1 (uvicorn's default), where no proxy of
        # ours runs: reading it cost every request a header dict
        proxy_headers=False,
        # bounded header count/sizes and URL length, checked while parsing (server/http_limits.py)
        **http_options,
        **kwargs,  # type: ignore[arg-type]
    )
    DrainingServer(
        config,
        drain_s=float(os.environ.get("MLMANAGE_DRAIN_S", DRAIN_S)),
        parent_pid=supervisor_pid,
        wedged=lambda: bool(app.state.hung_runs.tripped),
    ).run()
    hung = app.state.hung_runs.count
    if hung:
        # Python's exit would join the run threads, and these never return: leave without
        log.warning("exiting with %d run() calls still hung", hung)
        logging.shutdown()
        os._exit(0)
    return 0


#: seconds a stopping worker keeps answering on its open keep-alive connections (each answer
#: carrying ``Connection: close``) before it closes what is left
DRAIN_S = 2.0


class DrainingServer(uvicorn.Server):
    """uvicorn's server with a drain phase on SIGTERM.

    Plain uvicorn closes idle keep-alive connections as soon as it is told to stop; a client
    that sends its next request on such a connection at that moment gets a reset, which is a
    failed request during a rolling update. Here SIGTERM first makes every answer carry
    ``Connection: close`` (so each client's next request opens a new connection, which the
    next generation accepts on the shared socket) until no connection is left or ``drain_s``
    passes; then the usual graceful shutdown runs. SIGINT, or a second signal, stops at once.
    ``parent_pid``: when this process's parent is no longer that (the supervisor died), the
    server stops as on SIGTERM (checked every tick, ~0.1 s). ``wedged()`` True (hung run()
    calls, ``server/lifecycle.py``): while draining it also stops accepting at once, so the
    replaced worker takes no new request (its replacement accepts on the same socket). A
    healthy worker keeps accepting while it drains: with SO_REUSEPORT (the docker target's
    swap) its socket's queue has no other taker.
    """

    def __init__(
        self,
        config: uvicorn.Config,
        drain_s: float = DRAIN_S,
        parent_pid: int | None = None,
        wedged: Callable[[], bool] = lambda: False,
    ) -> None:
        super().__init__(config)
        self.drain_s = drain_s
        self.parent_pid = parent_pid
        self.wedged = wedged
        self._drain_deadline: float | None = None

    def handle_exit(self, sig: int, frame: object) -> None:
        if sig == signal.SIGTERM and self._drain_deadline is None and self.started and self.drain_s > 0:
            self._drain_deadline = time.monotonic() + self.drain_s
            self._close_connections_after_answer()
            return
        super().handle_exit(sig, frame)  # type: ignore[arg-type]

    def _close_connections_after_answer(self) -> None:
        headers = self.server_state.default_headers
        if (b"connection", b"close") not in headers:
            self.server_state.default_headers = [*headers, (b"connection", b"close")]

    async def on_tick(self, counter: int) -> bool:
        should_exit = await super().on_tick(counter)
        if self._drain_deadline is None and parent_gone(self.parent_pid):
            log.error("the supervisor (pid %s) is gone: stopping", self.parent_pid)
            self.handle_exit(signal.SIGTERM, None)
        if self._drain_deadline is not None:
            if self.wedged():
                for server in getattr(self, "servers", ()):
                    server.close()  # stop accepting (here, on the loop: not in the signal handler)
            self._close_connections_after_answer()  # on_tick rewrites the default headers every second
            if not self.server_state.connections or time.monotonic() >= self._drain_deadline:
                self.should_exit = True
                return True
        return should_exit


if __name__ == "__main__":
    sys.exit(main())
