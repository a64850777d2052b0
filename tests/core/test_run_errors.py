"""A run() that raises: clients get only the exception's type (issue 16: no traceback leaves
the service), while the owner's ``service.run()`` in the notebook shows the traceback the
service logged under that request id."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests

from mlmanage_jupyter import InferenceConfig, LocalWebservice, Model
from mlmanage_jupyter.core.errors import WebserviceException

pytestmark = pytest.mark.slow

SCORE = """
import json

def init():
    pass

def run(raw_data):
    secret_value = "hunter2"
    return json.loads(raw_data)["data"]
"""


def test_owner_sees_the_logged_traceback_clients_do_not(workspace: Any, tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "score.py").write_text(SCORE)
    (tmp_path / "m.txt").write_text("m")
    model = Model.register(workspace, str(tmp_path / "m.txt"), "m")
    ic = InferenceConfig(entry_script="score.py", source_directory=str(tmp_path / "src"))
    svc = Model.deploy(workspace, "run-errors", [model], ic, LocalWebservice.deploy_configuration())
    try:
        svc.wait_for_deployment(timeout_sec=300)
        assert svc.run('{"data": [1]}') == [1]
        # a client: the type and the request id, not the source line or its values
        r = requests.post(svc.scoring_uri, data='{"other": 1}', timeout=30)
        assert r.status_code == 500
        assert "KeyError" in r.text and "Traceback" not in r.text and "json.loads" not in r.text
        # the owner: the same call from the notebook names the line that failed
        with pytest.raises(WebserviceException) as info:
            svc.run('{"other": 1}')
        e = info.value
        assert e.status_code == 500 and e.request_id
        msg = str(e)
        assert "answered 500" in msg and "Traceback (most recent call last)" in msg
        assert 'return json.loads(raw_data)["data"]' in msg and msg.rstrip().endswith("KeyError: 'data'")
    finally:
        svc.delete()
