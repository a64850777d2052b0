"""Fixtures for the kubernetes target: a Kubernetes API to talk to.

Without ``MLMANAGE_TEST_KUBECONFIG`` the suite starts kmock's in-memory API emulator
(``scripts/kmock_server.py``) on a free loopback port and writes a kubeconfig for it. kmock
has no controllers: tests marked ``fake_controller`` play the Deployment controller and the
kubelet by writing Deployment status and Pod objects through the API; they are skipped on a
real cluster, where tests marked ``real_cluster`` (pods really appearing) run instead.
Other kmock gaps the target tolerates: Namespace creation is refused, label selectors are
ignored, patches are plain JSON merges, no server-filled metadata (generation, nodePort).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Kube:
    kubeconfig: str
    real: bool

    def clients(self):
        from kubernetes import client, config

        api = config.new_client_from_config(config_file=self.kubeconfig)
        return client.CoreV1Api(api), client.AppsV1Api(api), client.AutoscalingV2Api(api)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def kube(tmp_path_factory: pytest.TempPathFactory):
    real = os.environ.get("MLMANAGE_TEST_KUBECONFIG")
    if real:
        yield Kube(kubeconfig=real, real=True)
        return
    pytest.importorskip("kmock")
    port = _free_port()
    log = tmp_path_factory.mktemp("kmock") / "kmock.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "scripts" / "kmock_server.py"), str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while "listening" not in log.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"kmock did not start: {log.read_text()}")
            time.sleep(0.1)
        kc = tmp_path_factory.mktemp("kube") / "kubeconfig"
        kc.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "kmock", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
                    "users": [{"name": "kmock", "user": {"token": "kmock"}}],
                    "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "kmock"}}],
                    "current-context": "kmock",
                }
            )
        )
        yield Kube(kubeconfig=str(kc), real=False)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture
def namespace(kube: Kube):
    """A fresh namespace name per test (created and removed on a real cluster)."""
    ns = f"mlm-test-{uuid.uuid4().hex[:8]}"
    core, _, _ = kube.clients()
    if kube.real:
        core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    yield ns
    if kube.real:
        core.delete_namespace(ns)


def pytest_collection_modifyitems(config, items):
    real = bool(os.environ.get("MLMANAGE_TEST_KUBECONFIG"))
    for item in items:
        if real and item.get_closest_marker("fake_controller"):
            item.add_marker(pytest.mark.skip(reason="plays the controller; a real cluster has one"))
        if not real and item.get_closest_marker("real_cluster"):
            item.add_marker(pytest.mark.skip(reason="needs a real cluster: set MLMANAGE_TEST_KUBECONFIG"))


def pytest_configure(config):
    config.addinivalue_line("markers", "fake_controller: the test writes Deployment status / Pods itself (kmock)")
    config.addinivalue_line("markers", "real_cluster: needs pods really scheduled (MLMANAGE_TEST_KUBECONFIG)")
