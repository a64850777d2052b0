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

from mlmanage_jupyter.core.errors import MlManageError

COLORS = {"Healthy": "#1a7f37", "Failed": "#cf222e", "Unhealthy": "#bf8700", "Transitioning": "#57606a"}


def status_html(text: str, kind: str = "info") -> str:
    """One line of status as HTML; ``kind``: info, ok, error, busy."""
    color = {"ok": "#1a7f37", "error": "#cf222e", "busy": "#0969da"}.get(kind, "#57606a")
    return f"<span style='color:{color}'>{html.escape(text)}</span>"


def pre(text: str, height: str | None = None, bottom: bool = False) -> str:
    """Text in a scrolling ``<pre>``; ``bottom=True`` keeps the view scrolled to the end
    (a ``column-reverse`` flex box, no JavaScript needed)."""
    style = "margin:0;white-space:pre-wrap;word-break:break-all;font-size:12px"
    inner = f"<pre style='{style}'>{html.escape(text)}</pre>"
    if height is None:
        return inner
    direction = "column-reverse" if bottom else "column"
    return (
        f"<div style='height:{height};overflow:auto;display:flex;flex-direction:{direction};"
        f"border:1px solid #d0d7de;padding:4px;background:#f6f8fa'>{inner}</div>"
    )


def error_text(e: BaseException) -> str:
    """The message a person can act on: our own errors as they are, others with their type."""
    if isinstance(e, MlManageError):
        return str(e)
    return f"{type(e).__name__}: {e}"


class Worker:
    """One background thread at a time for a panel, with a ``done`` event tests can wait on.

    ``start(fn)`` runs ``fn()`` in a daemon thread; exceptions go to ``on_error``.
    """

    def __init__(self, on_error: Callable[[BaseException], None]) -> None:
        self._on_error = on_error
        self.thread: threading.Thread | None = None
        self.done = threading.Event()
        self.done.set()

    @property
    def busy(self) -> bool:
        return not self.done.is_set()

    def start(self, fn: Callable[[], None], name: str) -> None:
        self.done.clear()

        def run() -> None:
            try:
                fn()
            except BaseException as e:  # noqa: BLE001 - shown in the panel, never lost
                self._on_error(e)
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
    if isinstance(value, (str, bytes)):
        try:
            value = json.loads(value)
        except ValueError:
            return value.decode(errors="replace") if isinstance(value, bytes) else value
    return json.dumps(value, indent=2, ensure_ascii=False)


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
