"""pytest-jupyter's server fixtures (``jp_fetch``, ``jp_serverapp``, ...) for this folder only
(imported here rather than as a global plugin: its autouse fixtures and hooks then stay out
of the other test folders), with the mlmanage server extension enabled."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from jupyter_core.utils import _loop as _jupyter_loop
from pytest_jupyter.jupyter_server import *  # noqa: F403


@pytest.fixture
def jp_server_config() -> dict[str, Any]:
    return {"ServerApp": {"jpserver_extensions": {"mlmanage_jupyter.serverext": True}}}


@pytest.fixture(autouse=True)
def jp_asyncio_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """A fresh event loop per test, made current for the test only. pytest-jupyter's own
    fixture reuses the thread's current loop, which is Playwright's when the browser tests ran
    earlier in the same session: its sync API leaves that loop marked as the thread's running
    loop. The mark is lifted for the test and restored after, with the previous loop."""
    running = asyncio.events._get_running_loop()
    asyncio.events._set_running_loop(None)
    try:
        previous: asyncio.AbstractEventLoop | None = asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:
        previous = None
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    token = _jupyter_loop.set(loop)  # what pytest-jupyter's test runner (ensure_event_loop) uses
    try:
        yield loop
    finally:
        _jupyter_loop.reset(token)
        loop.close()
        asyncio.set_event_loop(previous)
        asyncio.events._set_running_loop(running)
