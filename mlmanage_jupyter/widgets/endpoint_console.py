"""``EndpointConsole``: send requests to a service's ``scoring_uri`` and read the answers."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import ipywidgets as W

from mlmanage_jupyter.core.errors import ValidationError
from mlmanage_jupyter.core.webservice import Webservice
from mlmanage_jupyter.widgets._common import (
    Worker,
    copy_button,
    error_text,
    link,
    masked_key,
    pre,
    pretty_json,
    status_html,
    swagger_sample,
)


def consume_snippets(service: Webservice, sample: Any, key: str | None) -> dict[str, str]:
    """Ready-to-paste clients of ``service`` (as Azure ML studio's endpoint *Consume* tab):
    ``{"Python": ..., "curl": ..., "JavaScript": ...}`` posting ``sample`` (JSON-able; ``{}``
    when None) to ``scoring_uri`` with ``Authorization: Bearer <key>`` when ``key`` is given."""
    uri = service.scoring_uri or "<scoring_uri>"
    body = json.dumps(sample if sample is not None else {})
    py_headers = '{"Content-Type": "application/json"' + (f', "Authorization": "Bearer {key}"' if key else "") + "}"
    python = (
        "import json\nimport requests\n\n"
        f"scoring_uri = {json.dumps(uri)}\n"
        f"headers = {py_headers}\n"
        f"data = {body}\n\n"
        "response = requests.post(scoring_uri, data=json.dumps(data), headers=headers, timeout=60)\n"
        "response.raise_for_status()\nprint(response.json())\n"
    )
    auth = f" \\\n  -H 'Authorization: Bearer {key}'" if key else ""
    quoted = body.replace("'", "'\\''")
    curl = f"curl -sS -X POST '{uri}' \\\n  -H 'Content-Type: application/json'{auth} \\\n  -d '{quoted}'\n"
    js_headers = '{ "Content-Type": "application/json"' + (f', "Authorization": "Bearer {key}"' if key else "") + " }"
    js = (
        f"const response = await fetch({json.dumps(uri)}, {{\n"
        f'  method: "POST",\n  headers: {js_headers},\n'
        f"  body: JSON.stringify({body}),\n}});\n"
        "if (!response.ok) throw new Error(`${response.status}: ${await response.text()}`);\n"
        "console.log(await response.json());\n"
    )
    return {"Python": python, "curl": curl, "JavaScript": js}


@dataclass
class Call:
    """One request sent from the console.

    Attributes:
        time: UTC ISO-8601 of the send; request: the body sent (text); status: HTTP status
        code (0 when the service could not be reached); latency_ms: from send to the whole
        answer read (ms); response: the answer's body (text); key: which key was applied.
    """

    time: str
    request: str
    status: int
    latency_ms: float
    response: str
    key: str


class EndpointConsole(W.VBox):
    """A request editor for a web service, like Azure ML Studio's *Test* tab.

    Args:
        service: a :class:`Webservice`.
        timeout_s: HTTP timeout of one call (seconds); default the service's scoring
            timeout + 10 s.

    The editor (``editor``, a Textarea) starts with the example of the service's OpenAPI
    ``requestBody`` (from ``swagger_uri``; written by the scoring engine from the entry
    script's ``input_schema`` sample). ``send_button`` POSTs it to ``scoring_uri`` with
    ``Authorization: Bearer <key>`` when the service has auth on (``key`` chooses primary,
    secondary or none, to try a refusal); ``status_code``, ``latency`` and ``response`` show
    the answer (a JSON object/array in ``response_json``, an Output holding JupyterLab's
    collapsible JSON view; other answers as text in ``response``); ``history`` (a Select)
    lists every call and reloads one when chosen; ``key_view`` shows the keys masked, with
    reveal and copy; ``consume`` (a Tab) holds Python ``requests`` / curl / JavaScript
    ``fetch`` clients (``snippets``, see :func:`consume_snippets`) with copy buttons.

    Attributes:
        calls: the :class:`Call` list, oldest first.
    """

    def __init__(self, service: Webservice, *, timeout_s: float | None = None) -> None:
        self.service = service
        self.timeout_s = timeout_s or service.deploy_config.scoring_timeout_ms / 1000 + 10
        self.calls: list[Call] = []
        self.last_error: str | None = None
        self._worker = Worker(self._on_error)

        sample, where = swagger_sample(service)
        self.sample = sample
        text = pretty_json(sample) if sample is not None else "{}"
        rows = min(12, max(3, text.count("\n") + 2))  # as tall as the example, within 3..12 lines
        self.editor = W.Textarea(value=text, rows=rows, layout=W.Layout(width="100%", font_family="monospace"))
        if sample in (None, {}, [], ""):  # nothing to prefill: say why, never "prefilled"
            why = where if sample is None else "the service's swagger has an empty request example"
            self.sample_note = W.HTML(f"<small>{html.escape(why)}; type the request body</small>")
        else:
            self.sample_note = W.HTML(f"<small>prefilled from the service's swagger ({html.escape(where)})</small>")
        keys = ["primary", "secondary", "none"] if service.auth_enabled else ["none"]
        self.key = W.Dropdown(options=keys, value=keys[0], description="Key", layout=W.Layout(width="180px"),
                              style={"description_width": "40px"})
        self.send_button = W.Button(description="Send", icon="paper-plane", button_style="primary")
        self.status_code = W.HTML()
        self.latency = W.HTML()
        self.response = W.HTML(pre("", height="160px"))
        # JSON answers: JupyterLab's collapsible JSON view (application/json); text answers in ``response``
        self.response_json = W.Output(layout=W.Layout(max_height="320px", overflow="auto", display="none"))
        self.key_view = W.HTML(self._keys_html())
        self.consume = self._consume_tabs()
        self.history = W.Select(options=[], rows=5, layout=W.Layout(width="100%"))
        self.message = W.HTML()
        self.send_button.on_click(self._on_send)
        self.history.observe(self._on_history, "value")
        super().__init__(
            [
                W.HTML(f"<b>Endpoint</b> <code>{html.escape(service.name)}</code> → {link(service.scoring_uri)}"),
                self.key_view,
                self.sample_note,
                self.editor,
                W.HBox([self.send_button, self.key, self.status_code, self.latency, self.message]),
                W.HTML("<b>Response</b>"),
                self.response,
                self.response_json,
                W.HTML("<b>History</b>"),
                self.history,
                W.HTML("<b>Consume</b> <small>(ready-to-paste clients; the copy buttons include the key)</small>"),
                self.consume,
            ],
            layout=W.Layout(max_width="100%", overflow_x="hidden"),
        )

    def _keys_html(self) -> str:
        if not self.service.auth_enabled:
            return "<small>auth: none (no key needed)</small>"
        try:
            primary, secondary = self.service.get_keys()
        except Exception as e:  # noqa: BLE001 - shown, the console stays usable
            return status_html(f"keys unavailable: {error_text(e)}", "error")
        return (
            f"<div style='font-size:12px'>primary key {masked_key(primary)}</div>"
            f"<div style='font-size:12px'>secondary key {masked_key(secondary)}</div>"
        )

    def _consume_tabs(self) -> W.Tab:
        key = None
        if self.service.auth_enabled:
            try:
                key = self.service.get_keys()[0]
            except Exception:  # noqa: BLE001 - snippets with a placeholder then
                key = "<primary key>"
        shown_snippets = consume_snippets(self.service, self.sample, "•" * 12 if key else None)
        real = consume_snippets(self.service, self.sample, key)
        self.snippets = real
        children = [
            W.HTML(f"<div class='mlmanage-consume'>{copy_button(real[lang], f'copy {lang}')}{pre(shown_snippets[lang], height='170px')}</div>")
            for lang in real
        ]
        tabs = W.Tab(children=children, layout=W.Layout(max_width="100%"))
        for i, lang in enumerate(real):
            tabs.set_title(i, lang)
        return tabs

    def _fail(self, msg: str) -> None:
        self.last_error = msg
        self.message.value = status_html(msg, "error")

    def _on_error(self, e: BaseException) -> None:
        self._fail(error_text(e))
        self.send_button.disabled = False

    def _on_send(self, _b: Any) -> None:
        if self._worker.busy:
            return
        body = self.editor.value
        try:
            json.loads(body)
        except json.JSONDecodeError as e:
            self._fail(f"the request is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}")
            return
        if not self.service.scoring_uri:
            self._fail(f"service {self.service.name} has no scoring_uri yet")
            return
        self.last_error = None
        self.message.value = status_html("sending…", "busy")
        self.send_button.disabled = True
        key = self.key.value

        def job() -> None:
            when = datetime.now(timezone.utc).isoformat(timespec="seconds")
            res = self.service.call(body, key=None if key == "none" else key, timeout=self.timeout_s)
            text = res.body if isinstance(res.body, str) else json.dumps(res.body)
            call = Call(when, body, res.status_code, res.latency_ms, text, key)
            self.calls.append(call)
            self._show(call)
            self.history.options = [
                (f"#{i + 1} {c.time} {c.status or 'no answer'} {c.latency_ms:.1f} ms", i) for i, c in enumerate(self.calls)
            ][::-1]
            self.message.value = ""
            self.send_button.disabled = False

        self._worker.start(job, f"EndpointConsole-{self.service.name}")

    def _show(self, call: Call) -> None:
        ok = 200 <= call.status < 300
        color = "#1a7f37" if ok else "#cf222e"
        self.status_code.value = f"<b style='color:{color}' class='mlmanage-status'>{call.status or 'no answer'}</b>"
        self.latency.value = f"<span class='mlmanage-latency'>{call.latency_ms:.1f} ms</span>"
        self.response.value = pre(pretty_json(call.response), height="160px")
        try:
            value = json.loads(call.response)
        except ValueError:
            value = None
        if isinstance(value, (dict, list)):
            self.response_json.outputs = (
                {
                    "output_type": "display_data",
                    "data": {"application/json": value, "text/plain": pretty_json(value)},
                    "metadata": {"application/json": {"expanded": True, "root": "response"}},
                },
            )
            self.response_json.layout.display = None
            self.response.layout.display = "none"
        else:
            self.response_json.outputs = ()
            self.response_json.layout.display = "none"
            self.response.layout.display = None

    def _on_history(self, change: Any) -> None:
        i = change["new"]
        if i is None or self._worker.busy:
            return
        call = self.calls[i]
        self.editor.value = call.request
        self._show(call)

    def send(self, timeout: float | None = None) -> Call:
        """Click Send and wait for the answer (for scripts and tests); returns the call.
        Raises ValidationError when the editor's text is not JSON (nothing sent), TimeoutError
        when no answer came within ``timeout`` seconds."""
        n = len(self.calls)
        self.send_button.click()
        if not self._worker.wait(timeout if timeout is not None else self.timeout_s + 5):
            raise TimeoutError(f"no answer from {self.service.name} within {timeout} s")
        if len(self.calls) == n:
            raise ValidationError(self.last_error or "nothing was sent")
        return self.calls[-1]

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a request in flight; True when none is."""
        return self._worker.wait(timeout)
