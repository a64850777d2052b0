"""``RegistryBrowser``: the model registry as a panel — list, search, detail, actions."""

from __future__ import annotations

import html
import os
import threading
from typing import Any

import ipywidgets as W

from mlmanage_jupyter.core.entities.lists import format_bytes
from mlmanage_jupyter.core.errors import ValidationError
from mlmanage_jupyter.core.model import Model
from mlmanage_jupyter.core.workspace import Workspace, resolve_workspace
from mlmanage_jupyter.widgets._common import error_text, status_html

_STYLE = {"description_width": "80px"}


class RegistryBrowser(W.VBox):
    """Browse the models of a workspace (Azure ML Studio's *Models* page, in a notebook).

    Args:
        workspace: a Workspace, a path, or None for the default workspace.
        poll_interval_s: how often (seconds) a background thread checks the workspace's
            event log for changes (a model registered from another cell or process) and
            refreshes the list; ``None`` or 0 disables auto-refresh.
        poll_for_s: auto-refresh stops after this many seconds (bounded); ``close()``
            stops it at once.

    Widgets (drive them as the frontend does): ``search`` (name substring), ``tag_filter``
    (``key`` or ``key=value``, comma-separated, all must match), ``latest_only``,
    ``models`` (a Select whose value is a model id ``"name:version"``), ``detail`` (HTML),
    ``download_dir`` + ``download_button``, ``tag_key``/``tag_value`` + ``add_tag_button``,
    ``deploy_button`` (opens a prefilled :class:`DeploymentForm` in ``deploy_area``),
    ``refresh_button``, ``status``.

    Attributes:
        model_list: the :class:`~mlmanage_jupyter.core.model.Model` objects listed now.
        selected: the selected Model or None.
        form: the DeploymentForm opened by the deploy button, or None.
        last_download: the path the download button wrote last.
    """

    def __init__(
        self,
        workspace: Workspace | str | os.PathLike[str] | None = None,
        *,
        poll_interval_s: float | None = 2.0,
        poll_for_s: float = 4 * 3600.0,
    ) -> None:
        self.workspace = resolve_workspace(workspace)
        self.model_list: list[Model] = []
        self.selected: Model | None = None
        self.form: Any = None
        self.last_download: str | None = None
        self._last_mark: tuple[Any, ...] | None = None
        self._stop = threading.Event()
        self._lock = threading.RLock()

        self.search = W.Text(placeholder="name contains…", description="Search", style=_STYLE)
        self.tag_filter = W.Text(placeholder="key or key=value, …", description="Tags", style=_STYLE)
        self.latest_only = W.Checkbox(value=False, description="latest versions only", indent=False)
        self.refresh_button = W.Button(description="Refresh", icon="refresh", layout=W.Layout(width="100px"))
        self.models = W.Select(options=[], rows=12, layout=W.Layout(width="380px"))
        self.detail = W.HTML("<i>select a model</i>", layout=W.Layout(width="auto", min_width="360px"))
        self.download_dir = W.Text(value=os.getcwd(), description="to folder", style=_STYLE)
        self.download_button = W.Button(description="Download", icon="download", disabled=True)
        self.tag_key = W.Text(placeholder="key", layout=W.Layout(width="120px"))
        self.tag_value = W.Text(placeholder="value", layout=W.Layout(width="140px"))
        self.add_tag_button = W.Button(description="Add tag", icon="tag", disabled=True)
        self.deploy_button = W.Button(description="Deploy…", icon="rocket", button_style="primary", disabled=True)
        self.status = W.HTML()
        self.deploy_area = W.VBox()

        self.search.observe(self._on_filter, "value")
        self.tag_filter.observe(self._on_filter, "value")
        self.latest_only.observe(self._on_filter, "value")
        self.models.observe(self._on_select, "value")
        self.refresh_button.on_click(lambda _b: self.refresh())
        self.download_button.on_click(self._on_download)
        self.add_tag_button.on_click(self._on_add_tag)
        self.deploy_button.on_click(self._on_deploy)

        actions = W.VBox(
            [
                W.HBox([self.download_dir, self.download_button]),
                W.HBox([W.Label("tag", layout=W.Layout(width="80px")), self.tag_key, self.tag_value, self.add_tag_button]),
                W.HBox([self.deploy_button]),
            ]
        )
        super().__init__(
            [
                W.HTML(f"<b>Models</b> in workspace <code>{html.escape(self.workspace.name)}</code>"),
                W.HBox([self.search, self.tag_filter, self.latest_only, self.refresh_button]),
                W.HBox([self.models, W.VBox([self.detail, actions], layout=W.Layout(padding="0 0 0 12px"))]),
                self.status,
                self.deploy_area,
            ]
        )
        self.refresh()
        self._poller: threading.Thread | None = None
        if poll_interval_s:
            self._poller = threading.Thread(
                target=self._poll, args=(float(poll_interval_s), float(poll_for_s)), name="RegistryBrowser-poll", daemon=True
            )
            self._poller.start()

    # ------------------------------------------------------------------ data
    def _tag_filters(self) -> list[Any]:
        out: list[Any] = []
        for part in self.tag_filter.value.split(","):
            part = part.strip()
            if not part:
                continue
            k, sep, v = part.partition("=")
            if not k.strip():
                raise ValidationError(f"tag filter {part!r}: write key or key=value (comma-separated)")
            out.append([k.strip(), v.strip()] if sep else k.strip())
        return out

    def _change_mark(self) -> tuple[Any, ...]:
        """Cheap: the newest event id (every registry change logs an event)."""
        return (self.workspace.last_event_id(),)

    def refresh(self) -> None:
        """Re-read the models (with the current search and tag filters) and the detail pane."""
        with self._lock:
            try:
                mark = self._change_mark()
                models = Model.list(self.workspace, tags=self._tag_filters() or None, latest=self.latest_only.value)
            except ValidationError as e:
                self.status.value = status_html(str(e), "error")
                return
            needle = self.search.value.strip().lower()
            self.model_list = [m for m in models if needle in m.name.lower()]
            self._last_mark = mark
            keep = self.models.value
            opts = [(self._label(m), m.id) for m in self.model_list]
            ids = [i for _, i in opts]
            self.models.options = opts
            self.models.value = keep if keep in ids else None
            self._show_detail()
            n = len(self.model_list)
            self.status.value = status_html(f"{n} model version{'s' if n != 1 else ''}")

    @staticmethod
    def _label(m: Model) -> str:
        fw = f" [{m.model_framework}]" if m.model_framework else ""
        tags = " ".join(f"{k}={v}" for k, v in m.tags.items())
        return f"{m.name}:{m.version}{fw} {tags}".rstrip()

    def _poll(self, interval: float, lifetime: float) -> None:
        import time

        deadline = time.monotonic() + lifetime
        while not self._stop.wait(interval):
            if time.monotonic() > deadline:
                self.status.value = status_html("auto-refresh stopped (time limit); click Refresh")
                return
            try:
                if self._change_mark() != self._last_mark:
                    self.refresh()
            except Exception as e:  # noqa: BLE001 - a locked or moved workspace: show it, keep polling
                self.status.value = status_html(f"auto-refresh: {error_text(e)}", "error")

    def close(self) -> None:
        """Stop auto-refresh and close the panel (and the deploy form it opened)."""
        self._stop.set()
        if self.form is not None:
            self.form.close()
        super().close()

    # ------------------------------------------------------------------ events
    def _on_filter(self, _change: Any) -> None:
        self.refresh()

    def _on_select(self, _change: Any) -> None:
        self._show_detail()

    def _show_detail(self) -> None:
        mid = self.models.value
        self.selected = next((m for m in self.model_list if m.id == mid), None)
        for b in (self.download_button, self.add_tag_button, self.deploy_button):
            b.disabled = self.selected is None
        if self.selected is None:
            self.detail.value = "<i>select a model</i>"
            return
        m = self.selected
        try:
            files = m.get_files()
            users = m.users()
        except Exception as e:  # noqa: BLE001 - deleted meanwhile
            self.detail.value = status_html(error_text(e), "error")
            return
        esc = html.escape
        rows = [
            ("model", f"<code>{esc(m.id)}</code>"),
            ("framework", esc(" ".join(x for x in (m.model_framework, m.model_framework_version) if x) or "—")),
            ("description", esc(m.description or "—")),
            ("tags", esc(", ".join(f"{k}={v}" for k, v in m.tags.items()) or "—")),
            ("properties", esc(", ".join(f"{k}={v}" for k, v in m.properties.items()) or "—")),
            ("size", f"{esc(format_bytes(m.size))} ({m.size} bytes), {m.file_count} file{'s' if m.file_count != 1 else ''}"),
            ("sha256", f"<code style='font-size:11px'>{esc(m.sha256)}</code>"),
            ("created", esc(m.created_time)),
            ("services", esc(", ".join(users["services"]) or "none")),
            ("images", esc(", ".join(users["images"]) or "none")),
        ]
        table = "".join(f"<tr><th style='text-align:left;padding-right:1em'>{k}</th><td style='text-align:left'>{v}</td></tr>" for k, v in rows)
        frows = "".join(
            f"<tr><td style='text-align:left'><code>{esc(f['path'])}</code></td><td style='text-align:right'>{esc(format_bytes(f['size']))}</td>"
            f"<td style='text-align:left'><code style='font-size:11px'>{esc(f['sha256'][:16])}…</code></td></tr>"
            for f in files[:200]
        )
        more = f"<div><i>… and {len(files) - 200} more files</i></div>" if len(files) > 200 else ""
        self.detail.value = (
            f"<table>{table}</table><b>files</b><table><tr><th>path</th><th>size</th><th>sha256</th></tr>{frows}</table>{more}"
        )

    def _on_download(self, _b: Any) -> None:
        m = self.selected
        if m is None:
            return
        try:
            path = m.download(self.download_dir.value.strip() or ".", exist_ok=False)
        except Exception as e:  # noqa: BLE001 - shown to the user
            self.status.value = status_html(f"download failed: {error_text(e)}", "error")
            return
        self.last_download = path
        self.status.value = status_html(f"downloaded {m.id} to {path}", "ok")

    def _on_add_tag(self, _b: Any) -> None:
        m = self.selected
        key, value = self.tag_key.value.strip(), self.tag_value.value
        if m is None:
            return
        if not key:
            self.status.value = status_html("type a tag key (and a value) first", "error")
            return
        try:
            m.add_tags({key: value})
        except Exception as e:  # noqa: BLE001
            self.status.value = status_html(f"add tag failed: {error_text(e)}", "error")
            return
        self.tag_key.value = self.tag_value.value = ""
        self.refresh()
        self.status.value = status_html(f"tagged {m.id} with {key}={value}", "ok")

    def _on_deploy(self, _b: Any) -> None:
        from mlmanage_jupyter.widgets.deployment_form import DeploymentForm

        m = self.selected
        if m is None:
            return
        if self.form is not None:
            self.form.close()
        self.form = DeploymentForm(self.workspace, model=m)
        self.deploy_area.children = [self.form]
