"""``deploy(..., overwrite=True)`` loses nothing when the new service can't run: the checks that
can fail (port, configuration, image) run before the old service stops, and a new service that
fails to start after it stopped brings the old one back (same port, same keys), or says that the
service is stopped and how to start it. Local target, real processes and real HTTP."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from mlmanage_jupyter import InferenceConfig, LocalWebservice, Model, Webservice, Workspace
from mlmanage_jupyter.core import deployment, images
from mlmanage_jupyter.core.errors import DeploymentFailedError, ValidationError

OLD = "import json\n\ndef init():\n    pass\n\ndef run(data):\n    return {'version': 'old', 'echo': json.loads(data)}\n"
NEW = "import json\n\ndef init():\n    pass\n\ndef run(data):\n    return {'version': 'new', 'echo': json.loads(data)}\n"


def _listener(port: int = 0) -> socket.socket:
    """A socket listening on 127.0.0.1:``port`` (0: a free one): "some other process"."""
    return socket.create_server(("127.0.0.1", port))


def _score(svc: Webservice, key: str | None) -> requests.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return requests.post(svc.scoring_uri, json={"x": 1}, headers=headers, timeout=30)


class Old:
    def __init__(self, ws: Workspace, svc: Webservice, new_ic: InferenceConfig, model: Model) -> None:
        self.ws, self.svc, self.new_ic, self.model = ws, svc, new_ic, model
        self.keys = svc.get_keys()
        self.image = svc.image.id
        self.uri = svc.scoring_uri

    def assert_intact(self) -> None:
        """The old service answers on its scoring_uri with its keys; its record is unchanged."""
        again = Webservice(self.ws, "owsvc")
        again.wait_for_deployment(timeout_sec=120)
        assert again.scoring_uri == self.uri and again.image.id == self.image
        assert again.get_keys() == self.keys
        assert again.models == [self.model.id]
        r = _score(again, self.keys[0])
        assert r.status_code == 200 and r.json()["version"] == "old"
        assert _score(again, None).status_code == 401
        assert [i.id for i in images.list_images(self.ws, name="owsvc")] == [self.image]


@pytest.fixture
def old(tmp_path: Path) -> Iterator[Old]:
    ws = Workspace(tmp_path / "ws")
    (tmp_path / "old.py").write_text(OLD)
    (tmp_path / "new.py").write_text(NEW)
    (tmp_path / "m.json").write_text("{}")
    m = Model.register(ws, tmp_path / "m.json", "m")
    svc = Model.deploy(ws, "owsvc", [m], InferenceConfig(entry_script=str(tmp_path / "old.py")),
                       LocalWebservice.deploy_configuration(auth_enabled=True))  # fmt: skip
    try:
        svc.wait_for_deployment(timeout_sec=120)
        yield Old(ws, svc, InferenceConfig(entry_script=str(tmp_path / "new.py")), m)
    finally:
        for s in Webservice.list(ws, refresh=False):
            s.delete()
        ws.close()


def test_overwrite_onto_a_port_another_process_holds_keeps_the_old_service(old: Old) -> None:
    with _listener() as other:
        port = other.getsockname()[1]
        with pytest.raises(ValidationError, match=rf"port {port} on 127.0.0.1 is already in use") as e:
            Model.deploy(old.ws, "owsvc", [old.model], old.new_ic,
                         LocalWebservice.deploy_configuration(port=port, auth_enabled=True), overwrite=True)  # fmt: skip
    old.assert_intact()
    assert "held by pid " in str(e.value)  # names what to stop
    kinds = [e["kind"] for e in old.ws.get_events()]
    assert "service.delete" not in kinds and kinds.count("service.deploy") == 1


def test_overwrite_onto_the_old_services_own_port_replaces_it(old: Old) -> None:
    port = int(old.uri.split(":")[2].split("/")[0])
    svc = Model.deploy(old.ws, "owsvc", [old.model], old.new_ic,
                       LocalWebservice.deploy_configuration(port=port, auth_enabled=True), overwrite=True)  # fmt: skip
    svc.wait_for_deployment(timeout_sec=120)
    assert svc.scoring_uri == old.uri and svc.image.id != old.image
    new_keys = svc.get_keys()
    assert new_keys != old.keys
    assert _score(svc, new_keys[0]).json()["version"] == "new"
    assert _score(svc, old.keys[0]).status_code == 401
    # the old image (made for the old service) went with it; the record is the new one's
    assert [i.id for i in images.list_images(old.ws, name="owsvc")] == [svc.image.id]
    assert Webservice(old.ws, "owsvc").get_keys() == new_keys


def test_new_service_failing_to_start_after_the_old_stopped_brings_the_old_back(old: Old) -> None:
    held: list[socket.socket] = []
    with _listener() as probe:
        port = probe.getsockname()[1]  # free when the checks run ...

    def progress(msg: str) -> None:  # ... taken by another process once the old one is stopped
        if msg.startswith("starting owsvc on the local target"):
            held.append(_listener(port))

    try:
        with pytest.raises(DeploymentFailedError) as e:
            deployment.deploy(old.ws, "owsvc", [old.model.id], old.new_ic,
                              LocalWebservice.deploy_configuration(port=port, auth_enabled=True),
                              overwrite=True, progress=progress)  # fmt: skip
    finally:
        for s in held:
            s.close()
    assert held, "the new service was never started"
    msg = str(e.value)
    assert f"port {port}" in msg and "was started again at " + old.uri in msg
    old.assert_intact()
    assert "service.replace_failed" in [ev["kind"] for ev in old.ws.get_events()]


def test_when_the_old_cannot_come_back_either_the_service_says_it_is_stopped(old: Old) -> None:
    old_port = int(old.uri.split(":")[2].split("/")[0])
    held: list[socket.socket] = []
    with _listener() as probe:
        port = probe.getsockname()[1]

    def progress(msg: str) -> None:  # another process takes both ports once the old one stopped
        if msg.startswith("starting owsvc on the local target"):
            held.extend([_listener(port), _listener(old_port)])

    try:
        with pytest.raises(DeploymentFailedError, match="service 'owsvc' is stopped: .*service.update\\(\\) starts it again"):
            deployment.deploy(old.ws, "owsvc", [old.model.id], old.new_ic,
                              LocalWebservice.deploy_configuration(port=port, auth_enabled=True),
                              overwrite=True, progress=progress)  # fmt: skip
        rec = deployment.get(old.ws, "owsvc")  # as recorded; the live state says the process is gone
        assert rec.state == "Failed" and "is stopped" in (rec.error or "")
        svc = Webservice(old.ws, "owsvc")
        assert svc.state == "Unhealthy" and "update() or redeploy" in (svc.error or "")
        assert svc.get_keys() == old.keys and svc.image.id == old.image
    finally:
        for s in held:
            s.close()
    # what the message says works: update() starts the old version again, with its keys
    svc = Webservice(old.ws, "owsvc")
    svc.update()
    svc.wait_for_deployment(timeout_sec=120)
    r = _score(svc, old.keys[0])
    assert r.status_code == 200 and r.json()["version"] == "old"
