"""One scoring worker: load the entry script, call init(), then serve on the inherited socket.

Started by the supervisor with ``MLMANAGE_LISTEN_FD`` (the shared listening socket) and
``MLMANAGE_WORKER_STATUS`` (a file where the worker writes ``{"state": "ready"}`` once it
serves, or ``{"state": "failed", "error": <traceback>}``). With ``MLMANAGE_FAILURE_FILE`` it
skips the entry script and serves 503 with that file's text (a generation whose init failed).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
from pathlib import Path

import uvicorn

from mlmanage_jupyter.server.config import Settings

log = logging.getLogger("mlmanage.server.worker")


def _write_status(path: str | None, **data: object) -> None:
    if not path:
        return
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f)
    os.replace(tmp, path)


def setup_logging() -> None:
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format=f"%(asctime)s %(levelname)s [{os.getpid()}] %(name)s: %(message)s",
    )


def main() -> int:
    setup_logging()
    settings = Settings.from_env()
    status_path = os.environ.get("MLMANAGE_WORKER_STATUS")
    failure_file = os.environ.get("MLMANAGE_FAILURE_FILE")
    from mlmanage_jupyter.server.app import create_app
    from mlmanage_jupyter.server.entry import EntryScript

    script = None
    failure = None
    if failure_file:
        failure = Path(failure_file).read_text(encoding="utf-8")
    else:
        try:
            log.info("loading entry script %s", settings.app_root / settings.entry_script)
            script = EntryScript(settings.app_root, settings.entry_script)
            log.info("calling init()")
            script.init()
            log.info("init() completed")
        except BaseException:
            tb = traceback.format_exc()
            log.error("the entry script failed to start:\n%s", tb)
            _write_status(status_path, state="failed", error=tb)
            return 3

    app = create_app(settings, script, on_ready=lambda: _write_status(status_path, state="ready"), failure=failure)
    fd = os.environ.get("MLMANAGE_LISTEN_FD")
    kwargs: dict[str, object] = {"fd": int(fd)} if fd else {"host": settings.host, "port": settings.port}
    config = uvicorn.Config(
        app,
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=settings.scoring_timeout_ms / 1000 + 5,
        timeout_keep_alive=5,
        **kwargs,  # type: ignore[arg-type]
    )
    uvicorn.Server(config).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
