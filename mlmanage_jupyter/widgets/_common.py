"""Helpers shared by the widget panels: background work, status lines, swagger samples,
which deployment targets can be used here.

Nothing here holds product logic; it only adapts the core API to ipywidgets.
"""

from __future__ import annotations

import html
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ipywidgets as W

from mlmanage_jupyter._display import compact_json, failure_report
from mlmanage_jupyter.core.errors import MlManageError

COLORS = {"Healthy": "#1a7f37", "Failed": "#cf222e", "Unhealthy": "#bf8700", "Transitioning": "#57606a"}


def status_html(text: str, kind: str = "info") -> str:
    """One line of status as HTML; ``kind``: info, ok, error, busy."""
    color = {"ok": "#1a7f37", "error": "#cf222e", "busy": "#0969da"}.get(kind, "#57606a")
    return f"<span style='color:{color}'>{html.escape(text)}</span>"


def pre(text: str, height: str | None = None, bottom: bool = False) -> str:
    """Text in a scrolling ``<pre>``; ``bottom=True`` keeps the view scrolled to the newest
    line (a ``column-reverse`` flex box, no JavaScript needed).

    The outer ``div.mlmanage-scroll`` is the only scroller: JupyterLab's stylesheet gives an
    output's ``pre`` its own ``overflow:auto``, which made the inner ``pre`` scroll itself
    and sit at its oldest line, so the inline ``overflow:visible`` on the ``pre`` is needed."""
    style = "margin:0;white-space:pre-wrap;word-break:break-all;font-size:12px;overflow:visible;max-height:none;flex:none;padding:0"
    inner = f"<pre style='{style}'>{html.escape(text)}</pre>"
    if height is None:
        return inner
    direction = "column-reverse" if bottom else "column"
    return (
        f"<div class='mlmanage-scroll' style='height:{height};overflow:auto;display:flex;flex-direction:{direction};"
        f"border:1px solid #d0d7de;padding:4px;background:#f6f8fa;box-sizing:border-box;max-width:100%'>{inner}</div>"
    )


def failure_html(message: str, logs: str = "", title: str = "Deployment failed") -> str:
    """A failed deployment/update as HTML: one red headline, the traceback once in a
    collapsible ``<pre>``, and the service log of this attempt only (``_display.failure_report``)."""
    rep = failure_report(message, logs)
    out = f"<div style='color:{COLORS['Failed']}' class='mlmanage-failure'><b>{html.escape(title)}</b>: {html.escape(rep.headline)}</div>"
    if rep.traceback:
        out += f"<details class='mlmanage-traceback'><summary>traceback</summary>{pre(rep.traceback, height='220px')}</details>"
    if rep.log:
        out += f"<details><summary>service log of this attempt</summary>{pre(rep.log[-8000:], height='200px', bottom=True)}</details>"
    return out


def link(url: str | None) -> str:
    """A URI as a link opening in a new tab (``—`` when None)."""
    if not url:
        return "—"
    u = html.escape(url, quote=True)
    return f"<a href='{u}' target='_blank' rel='noopener' style='color:#0969da;text-decoration:underline'><code>{u}</code></a>"


def copy_button(text: str, label: str = "copy") -> str:
    """A small button copying ``text`` to the clipboard (``navigator.clipboard``; JupyterLab
    runs on localhost or https, where the clipboard API is available)."""
    payload = html.escape(json.dumps(text), quote=True)
    return (
        f"<button class='mlmanage-copy' style='font-size:11px;padding:0 6px;margin-left:6px;cursor:pointer' "
        f"onclick='navigator.clipboard.writeText({payload}).then(() => {{ this.textContent = \"copied\"; }})'>"
        f"{html.escape(label)}</button>"
    )


def masked_key(key: str) -> str:
    """An auth key shown as dots, revealed by clicking (``<details>``), with a copy button."""
    k = html.escape(key)
    return (
        f"<span class='mlmanage-key'><details style='display:inline-block;vertical-align:top'>"
        f"<summary style='cursor:pointer'><code>{'•' * 12}</code> <small>show</small></summary>"
        f"<code style='word-break:break-all'>{k}</code></details>{copy_button(key)}</span>"
    )


def workspace_label(ws: Any) -> str:
    """How a panel names a workspace: its folder (``~`` for the home directory), so that
    ``/tmp/x/.mlmanage`` is not called "x" or "tmp"."""
    path = str(ws.path)
    home = str(Path.home())
    if path == home or path.startswith(home + os.sep):
        path = "~" + path[len(home) :]
    return f"<code title='{html.escape(str(ws.path), quote=True)}'>{html.escape(path)}</code>"


def error_text(e: BaseException) -> str:
    """The message a person can act on: our own errors as they are, others with their type."""
    if isinstance(e, MlManageError):
        return str(e)
    return f"{type(e).__name__}: {e}"


class Worker:
    """One background thread at a time for a panel, with a ``done`` event tests can wait on.

    ``start(fn)`` runs ``fn()`` in a daemon thread; exceptions go to ``on_error``; ``after()``
    (optional) runs once the job is over and ``busy`` is False (to redraw a panel's state).
    """

    def __init__(self, on_error: Callable[[BaseException], None], after: Callable[[], None] | None = None) -> None:
        self._on_error = on_error
        self._after = after
        self.thread: threading.Thread | None = None
        self.done = threading.Event()
        self.done.set()
        self._running = False

    @property
    def busy(self) -> bool:
        return self._running

    def start(self, fn: Callable[[], None], name: str) -> None:
        self.done.clear()
        self._running = True

        def run() -> None:
            try:
                fn()
            except BaseException as e:  # noqa: BLE001 - shown in the panel, never lost
                self._on_error(e)
            finally:
                self._running = False
                try:
                    if self._after is not None:  # before done: wait() returns on the final state
                        self._after()
                finally:
                    self.done.set()

        self.thread = threading.Thread(target=run, name=name, daemon=True)
        self.thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait (at most ``timeout`` seconds) for the current job; True when it finished."""
        return self.done.wait(timeout)


def swagger_sample(service: Any) -> tuple[Any | None, str]:
    """The request example of a service's OpenAPI document: ``(example, where)``.

    Looks in ``paths["/score"].post.requestBody.content["application/json"].example``, then
    the referenced schema's ``example`` (OpenAPI 3, as the scoring engine writes it; Azure's
    swagger 2 ``parameters[in=body].schema.example`` too). ``(None, reason)`` when none.
    """
    try:
        doc = service.get_swagger()
    except Exception as e:  # noqa: BLE001 - the service may be down; say so in the panel
        return None, f"could not read the swagger document: {error_text(e)}"
    post = ((doc.get("paths") or {}).get("/score") or {}).get("post") or {}
    content = ((post.get("requestBody") or {}).get("content") or {}).get("application/json") or {}
    if "example" in content:
        return content["example"], "requestBody example"
    schema = content.get("schema") or {}
    for p in post.get("parameters") or []:  # swagger 2
        if p.get("in") == "body":
            schema = p.get("schema") or {}
    ref = schema.get("$ref", "")
    if ref.startswith("#/"):
        node: Any = doc
        for part in ref[2:].split("/"):
            node = node.get(part, {}) if isinstance(node, dict) else {}
        schema = node
    if isinstance(schema, dict) and "example" in schema:
        return schema["example"], "request schema example"
    return None, "the service's swagger has no request example (the entry script has no input_schema sample)"


def pretty_json(value: Any) -> str:
    """A JSON value (or JSON text) laid out as one readable document (``compact_json``);
    text that is not JSON as is."""
    if isinstance(value, (str, bytes)):
        try:
            value = json.loads(value)
        except ValueError:
            return value.decode(errors="replace") if isinstance(value, bytes) else value
    return compact_json(value)


def target_usable(compute_type: str) -> tuple[bool, str]:
    """Whether a deployment target can be used from this machine, and why not.

    ``local`` always; ``docker`` when its module imports and the Docker Engine answers a
    ping (3 s); ``kubernetes`` when its module imports and a kubeconfig (``$KUBECONFIG``,
    ``~/.kube/config``) or an in-cluster service account is present.
    """
    from mlmanage_jupyter.core.targets.base import get_target

    try:
        get_target(compute_type)
    except Exception as e:  # noqa: BLE001 - ImportError, ValidationError, ...
        return False, f"{compute_type} target unavailable: {error_text(e)}"
    if compute_type == "docker":
        try:
            import docker

            client = docker.from_env(timeout=3)
            try:
                client.ping()
            finally:
                client.close()
        except Exception as e:  # noqa: BLE001
            return False, f"Docker Engine not reachable: {error_text(e)}"
    if compute_type == "kubernetes":
        kubeconfig = [p for p in (os.environ.get("KUBECONFIG") or "").split(os.pathsep) if p]
        kubeconfig.append(str(Path.home() / ".kube" / "config"))
        if not any(Path(p).is_file() for p in kubeconfig) and not os.environ.get("KUBERNETES_SERVICE_HOST"):
            return False, "no kubeconfig ($KUBECONFIG or ~/.kube/config) and not inside a cluster"
    return True, ""


def labeled(widget: W.Widget, width: str = "130px") -> None:
    """Give a widget's description a fixed width so forms line up."""
    widget.style = {"description_width": width}
