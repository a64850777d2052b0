from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from contexts import ServerProcess, make_context  # noqa: E402


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """serve(script, **env) -> a running ServerProcess (stopped at teardown)."""
    started: list[ServerProcess] = []

    def _serve(script: str, wait: bool = True, **env: str) -> ServerProcess:
        ctx = make_context(tmp_path / f"ctx{len(started)}", script)
        sp = ServerProcess(ctx, tmp_path / f"run{len(started)}", **env)
        started.append(sp)
        sp.context = ctx  # type: ignore[attr-defined]
        if wait:
            sp.wait_state("Healthy")
        return sp

    yield _serve
    for sp in started:
        sp.stop()
