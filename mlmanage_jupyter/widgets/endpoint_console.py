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
from mlmanage_jupyter.widgets._common import Worker, error_text, pre, pretty_json, status_html, swagger_sample


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
    the answer; ``history`` (a Select) lists every call and reloads one when chosen.

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
        self.editor = W.Textarea(
            value=pretty_json(sample) if sample is not None else "{}",
            layout=W.Layout(width="100%", height="160px", font_family="monospace"),
        )
        self.sample_note = W.HTML(f"<small>prefilled from the service's swagger ({html.escape(where)})</small>" if sample is not None
                                  else f"<small>{html.escape(where)}</small>")
        keys = ["primary", "secondary", "none"] if service.auth_enabled else ["none"]
        self.key = W.Dropdown(options=keys, value=keys[0], description="Key", layout=W.Layout(width="180px"),
                              style={"description_width": "40px"})
        self.send_button = W.Button(description="Send", icon="paper-plane", button_style="primary")
        self.status_code = W.HTML()
        self.latency = W.HTML()
        self.response = W.HTML(pre("", height="160px"))
        self.history = W.Select(options=[], rows=5, layout=W.Layout(width="100%"))
        self.message = W.HTML()
        self.send_button.on_click(self._on_send)
        self.history.observe(self._on_history, "value")
        super().__init__(
            [
                W.HTML(
                    f"<b>Endpoint</b> <code>{html.escape(service.name)}</code> → <code>{html.escape(service.scoring_uri or '—')}</code>"
                ),
                self.sample_note,
                self.editor,
                W.HBox([self.send_button, self.key, self.status_code, self.latency, self.message]),
                W.HTML("<b>Response</b>"),
                self.response,
                W.HTML("<b>History</b>"),
                self.history,
            ]
        )

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
