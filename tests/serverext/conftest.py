"""pytest-jupyter's server fixtures (``jp_fetch``, ``jp_serverapp``, ...) for this folder only
(imported here rather than as a global plugin: its autouse fixtures and hooks then stay out
of the other test folders), with the mlmanage server extension enabled."""

from __future__ import annotations

from typing import Any

import pytest
from pytest_jupyter.jupyter_server import *  # noqa: F403


@pytest.fixture
def jp_server_config() -> dict[str, Any]:
    return {"ServerApp": {"jpserver_extensions": {"mlmanage_jupyter.serverext": True}}}
