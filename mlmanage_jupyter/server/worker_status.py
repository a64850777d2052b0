"""Worker -> supervisor status over a pipe: a channel that needs no disk.

The supervisor opens one pipe per worker (``os.pipe``) and passes its write end to the worker
(``pass_fds``), naming it in ``MLMANAGE_WORKER_STATUS_FD``. The worker writes one JSON object
per line (UTF-8, ``\\n``-terminated; ``json.dumps`` escapes newlines inside strings):

* ``{"state": "ready"}`` once it serves;
* ``{"state": "failed", "error": <traceback str>}`` when the entry script cannot start;
* ``{"state": "ready", "recycle": {"reason": <str>, "message": <str>}}`` to ask to be
  replaced (``server/lifecycle.py``).

The last complete line is the worker's state (:attr:`StatusReader.state`). A pipe lives in
the kernel: a full or read-only disk cannot keep a worker from reporting (the status file this
replaces could not be written then, so a worker restarted on a full disk never counted as
ready and recycles and rolling updates stalled until space came back).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Mapping
from typing import Any

log = logging.getLogger("mlmanage.server.worker_status")

#: the write end's file descriptor number, in the worker's environment
STATUS_FD_VAR = "MLMANAGE_WORKER_STATUS_FD"

#: bytes read from a pipe per ``os.read`` call
READ_CHUNK = 65536


class StatusWriter:
    """The worker's end: :meth:`send` writes one status line (blocking until the pipe took it
    all; a status line is small, a traceback at most a few hundred KiB, and the supervisor
    drains the pipe while it waits for the worker). Safe to call from several threads."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        os.set_inheritable(fd, False)  # processes the entry script starts must not hold it open
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> StatusWriter | None:
        """The writer for ``$MLMANAGE_WORKER_STATUS_FD``; None when it is unset (a worker run
        on its own, with no supervisor). Raises ValueError when it is not a descriptor number."""
        raw = (environ.get(STATUS_FD_VAR) or "").strip()
        if not raw:
            return None
        try:
            fd = int(raw)
        except ValueError:
            raise ValueError(f"{STATUS_FD_VAR} must be a file descriptor number, got {raw!r}") from None
        return cls(fd)

    def send(self, **data: Any) -> None:
        """Write ``data`` as one JSON line. Raises OSError when the pipe is closed (the
        supervisor is gone: BrokenPipeError) and TypeError when ``data`` is not JSON."""
        line = memoryview((json.dumps(data) + "\n").encode("utf-8"))
        with self._lock:
            while line:
                line = line[os.write(self.fd, line) :]


class StatusReader:
    """The supervisor's end of one worker's pipe (non-blocking). :meth:`poll` takes what the
    worker wrote so far and returns its latest state (``{}`` before its first line)."""

    def __init__(self, fd: int) -> None:
        self.fd: int | None = fd
        os.set_blocking(fd, False)
        self._buf = b""
        #: the last complete status line the worker wrote, parsed
        self.state: dict[str, Any] = {}
        #: True once the worker closed its end (it exited)
        self.eof = False

    @classmethod
    def pipe(cls) -> tuple[StatusReader, int]:
        """A new pipe: its reader, and the write end's descriptor for the worker (the caller
        passes it with ``pass_fds`` and closes it once the worker started)."""
        r, w = os.pipe()
        return cls(r), w

    def poll(self) -> dict[str, Any]:
        while self.fd is not None and not self.eof:
            try:
                chunk = os.read(self.fd, READ_CHUNK)
            except BlockingIOError:
                break
            if not chunk:
                self.eof = True
                break
            self._buf += chunk
        if b"\n" in self._buf:
            *lines, self._buf = self._buf.split(b"\n")
            for line in lines:
                try:
                    state = json.loads(line)
                except ValueError:
                    state = None
                if isinstance(state, dict):
                    self.state = state
                else:
                    log.warning("ignoring a worker status line that is not a JSON object: %r", line[:200])
        return self.state

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
