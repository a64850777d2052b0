"""Run a coroutine on its own event loop in a fresh thread.

Playwright's sync API (the browser tests' session fixture) leaves its event loop marked as
the main thread's running loop for the rest of the pytest session, so a plain
``asyncio.run()`` in a later test fails with "cannot be called from a running event loop".
A new thread has no running loop, whatever ran before in the session."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


def run_async(make: Callable[[], Awaitable[T]], timeout_s: float = 120.0) -> T:
    """``asyncio.run(make())`` on a new thread; returns its result or re-raises its exception.
    Raises TimeoutError when it does not finish within ``timeout_s`` seconds."""
    out: dict[str, Any] = {}

    def main() -> None:
        try:
            out["value"] = asyncio.run(make())  # type: ignore[arg-type]
        except BaseException as e:  # re-raised in the caller's thread
            out["error"] = e

    t = threading.Thread(target=main, name="run-async", daemon=True)
    t.start()
    t.join(timeout_s)
    if t.is_alive():
        raise TimeoutError(f"coroutine still running after {timeout_s} s")
    if "error" in out:
        raise out["error"]
    return out["value"]
