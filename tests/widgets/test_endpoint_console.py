"""EndpointConsole against a real local service with auth on."""

from __future__ import annotations

import json
from typing import Any

import pytest
from widget_helpers import SAMPLE, shown

from mlmanage_jupyter.core.errors import ValidationError
from mlmanage_jupyter.widgets import EndpointConsole


def test_prefilled_from_swagger_and_send_with_key(served: Any) -> None:
    e, svc = served
    c = EndpointConsole(svc)
    assert json.loads(c.editor.value) == {"data": SAMPLE}
    assert "requestBody example" in shown(c.sample_note)
    assert c.key.options == ("primary", "secondary", "none")
    call = c.send(timeout=60)
    expected = e.sklearn.predict(SAMPLE).tolist()
    assert call.status == 200 and json.loads(call.response) == pytest.approx(expected)
    assert call.latency_ms > 0
    assert shown(c.status_code) == "200"
    assert shown(c.latency) == f"{call.latency_ms:.1f} ms"
    assert json.loads(shown(c.response)) == pytest.approx(expected)

    c.key.value = "secondary"
    assert c.send(timeout=60).status == 200
    c.key.value = "none"
    refused = c.send(timeout=60)
    assert refused.status == 401 and shown(c.status_code) == "401"

    c.key.value = "primary"
    c.editor.value = json.dumps({"data": [[1.0, 2.0]]})  # wrong shape: the service says why
    bad = c.send(timeout=60)
    assert bad.status >= 400 and "error" in bad.response.lower()

    assert len(c.calls) == 4 and len(c.history.options) == 4
    assert c.history.options[0][0].startswith("#4 ")  # newest first
    c.history.value = 0  # reload the first call
    assert json.loads(c.editor.value) == {"data": SAMPLE} and shown(c.status_code) == "200"


def test_invalid_json_is_refused_without_a_request(served: Any) -> None:
    _e, svc = served
    c = EndpointConsole(svc)
    c.editor.value = '{"data": [1, 2,'
    with pytest.raises(ValidationError, match="not valid JSON"):
        c.send(timeout=10)
    assert c.calls == [] and "not valid JSON" in shown(c.message)
