"""Fixtures shared by the local target's tests (test_local_target.py, test_local_lifecycle.py).

    ws              a Workspace in ``tmp_path / "ws"`` (services and cache folders of requests)
    deploy_request  deploy_request(name, script=UNDECORATED, version=1, keys=None, **config)
                    -> a DeployRequest of a hand-built image context (tests/server/contexts.py)
    target          the local target; every service a test deploys and does not delete itself is
                    deleted afterwards (with the runtime of its last update()), and a delete
                    that fails there fails the test: no process or port outlives a test unnoticed
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "server"))

from contexts import UNDECORATED, make_context  # noqa: E402

from mlmanage_jupyter.core.targets.base import (  # noqa: E402
    DeployRequest,
    DeployResult,
    ImageSpec,
    LocalDeploymentConfig,
    Target,
    get_target,
)
from mlmanage_jupyter.core.workspace import Workspace  # noqa: E402


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "ws")


@pytest.fixture
def target() -> Iterator[Target]:
    t = get_target("local")
    live: list[tuple[str, dict[str, Any]]] = []  # (name, runtime) the test has not deleted
    deploy, update, delete = t.deploy, t.update, t.delete

    def tracked_deploy(req: DeployRequest) -> DeployResult:
        res = deploy(req)
        live.append((req.name, res.runtime))
        return res

    def tracked_update(req: DeployRequest, runtime: dict[str, Any]) -> DeployResult:
        res = update(req, runtime)
        live[:] = [(n, r) for n, r in live if (n, r) != (req.name, runtime)] + [(req.name, res.runtime)]
        return res

    def tracked_delete(name: str, runtime: dict[str, Any]) -> None:
        live[:] = [(n, r) for n, r in live if (n, r) != (name, runtime)]
        delete(name, runtime)

    t.deploy, t.update, t.delete = tracked_deploy, tracked_update, tracked_delete  # type: ignore[method-assign]
    yield t
    errors = []
    for name, runtime in live:
        try:
            delete(name, runtime)
        except Exception as e:  # noqa: BLE001 - delete them all, then fail naming each
            errors.append(f"{name}: {e}")
    if errors:
        pytest.fail("deleting the services the test left running failed: " + "; ".join(errors))


@pytest.fixture
def deploy_request(ws: Workspace, tmp_path: Path) -> Callable[..., DeployRequest]:
    """deploy_request(name, script=UNDECORATED, version=1, keys=None, **LocalDeploymentConfig
    fields) -> a DeployRequest of a hand-built image (tests/server/contexts.py) in ``ws``."""

    def make(
        name: str, script: str = UNDECORATED, version: int = 1, keys: dict[str, str] | None = None, **cfg: Any
    ) -> DeployRequest:
        ctx = make_context(tmp_path / f"ctx-{name}-{version}", script, version=version)
        return DeployRequest(
            name=name,
            image=ImageSpec.from_context(ctx),
            config=LocalDeploymentConfig(**cfg),
            service_dir=ws.path / "services" / name,
            cache_dir=ws.path / "cache",
            keys=keys or {},
        )

    return make
