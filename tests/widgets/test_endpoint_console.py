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


def test_json_answer_in_the_collapsible_view_and_keys_masked(served: Any) -> None:
    e, svc = served
    c = EndpointConsole(svc)
    c.send(timeout=60)
    (out,) = c.response_json.outputs
    assert out["data"]["application/json"] == pytest.approx(e.sklearn.predict(SAMPLE).tolist())
    assert c.response_json.layout.display is None and c.response.layout.display == "none"
    primary, secondary = svc.get_keys()
    assert "mlmanage-key" in c.key_view.value and primary in c.key_view.value and secondary in c.key_view.value
    assert "•" * 12 in c.key_view.value  # dots until the user opens it


def test_consume_snippets_call_the_service(served: Any, tmp_path: Any) -> None:
    """The Python snippet, pasted and run as is, gets the prediction; curl and fetch carry
    the same URI, key and body."""
    import subprocess
    import sys

    e, svc = served
    c = EndpointConsole(svc)
    primary = svc.get_keys()[0]
    assert [c.consume.get_title(i) for i in range(3)] == ["Python", "curl", "JavaScript"]
    for lang, code in c.snippets.items():
        assert svc.scoring_uri in code and f"Bearer {primary}" in code, lang
        assert primary not in c.consume.children[list(c.snippets).index(lang)].value.split("navigator")[0]  # shown masked
    script = tmp_path / "client.py"
    script.write_text(c.snippets["Python"])
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().replace("'", '"')) == pytest.approx(e.sklearn.predict(SAMPLE).tolist())
    curl = subprocess.run(["bash", "-c", c.snippets["curl"]], capture_output=True, text=True, timeout=60)
    assert curl.returncode == 0 and json.loads(curl.stdout) == pytest.approx(e.sklearn.predict(SAMPLE).tolist())


def test_no_prefilled_caption_without_a_schema(env: Any, cleanup_services: Any) -> None:
    from mlmanage_jupyter.core.environment import InferenceConfig
    from mlmanage_jupyter.core.webservice import LocalWebservice, deploy

    cleanup_services(env.workspace)
    plain = env.workspace.path / "scripts" / "plain.py"
    plain.write_text("def init():\n    pass\n\ndef run(data):\n    return data\n")
    svc = deploy(env.workspace, "diab-plain", [env.model], InferenceConfig(entry_script=str(plain)),
                 LocalWebservice.deploy_configuration())  # fmt: skip
    svc.wait_for_deployment(timeout_sec=120)
    c = EndpointConsole(svc)
    assert "prefilled" not in shown(c.sample_note) and "type the request body" in shown(c.sample_note)
