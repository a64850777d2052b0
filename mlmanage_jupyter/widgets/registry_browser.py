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
from mlmanage_jupyter.widgets._common import error_text, status_html, workspace_label

_STYLE = {"description_width": "80px"}
#: the table's columns: (key, header, grid width)
COLUMNS = [
    ("name", "name", "minmax(110px, 1.4fr)"),
    ("version", "version", "96px"),
    ("framework", "framework", "minmax(112px, 1fr)"),
    ("tags", "tags", "minmax(100px, 1.6fr)"),
    ("files", "files", "minmax(100px, 1.6fr)"),
    ("created", "created", "minmax(90px, 1.1fr)"),
    ("used_by", "used by", "minmax(80px, 1.2fr)"),
]
_MAX_ROWS = 200


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
        # the selection (value: a model id); the sortable table below is how a person sets it
        self.models = W.Select(options=[], rows=12, layout=W.Layout(display="none"))
        self.sort_key: str | None = None
        self.sort_descending = False
        self.header_buttons = {
            key: W.Button(description=title, layout=W.Layout(width="auto", min_width="0"), tooltip=f"sort by {title}")
            for key, title, _w in COLUMNS
        }
        for key, b in self.header_buttons.items():
            b.on_click(lambda _b, k=key: self.sort_by(k))
        self.table = W.GridBox(
            layout=W.Layout(
                grid_template_columns=" ".join(w for _k, _t, w in COLUMNS), width="100%", grid_gap="1px 6px",
                max_height="320px", overflow_y="auto", overflow_x="hidden",
            )
        )  # fmt: skip
        self.rows: list[dict[str, Any]] = []
        self.compare_a = W.Dropdown(options=[], description="compare", style={"description_width": "60px"}, layout=W.Layout(width="180px"))
        self.compare_b = W.Dropdown(options=[], description="with", style={"description_width": "40px"}, layout=W.Layout(width="160px"))
        self.comparison = W.HTML()
        self.compare_a.observe(lambda _c: self._show_comparison(), "value")
        self.compare_b.observe(lambda _c: self._show_comparison(), "value")
        self.detail = W.HTML("<i>select a model (click its name)</i>", layout=W.Layout(width="auto", min_width="0"))
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
                W.HTML(f"<b>Models</b> in workspace {workspace_label(self.workspace)}"),
                W.HBox([self.search, self.tag_filter, self.latest_only, self.refresh_button], layout=W.Layout(flex_flow="row wrap")),
                self.table,
                self.models,
                self.status,
                W.HBox([W.VBox([self.detail, actions], layout=W.Layout(flex="1 1 auto", min_width="0")),
                        W.VBox([W.HBox([self.compare_a, self.compare_b]), self.comparison],
                               layout=W.Layout(flex="1 1 auto", min_width="0", padding="0 0 0 12px"))],
                       layout=W.Layout(flex_flow="row wrap", width="100%")),
                self.deploy_area,
            ],
            layout=W.Layout(max_width="100%", overflow_x="hidden"),
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
            self.rows = [self._row(m) for m in self.model_list[:_MAX_ROWS]]
            self._sort_rows()
            opts = [(self._label(m), m.id) for m in self.model_list]
            ids = [i for _, i in opts]
            self.models.options = opts
            self.models.value = keep if keep in ids else None
            self._render_table()
            self._show_detail()
            n = len(self.model_list)
            self.status.value = status_html(f"{n} model version{'s' if n != 1 else ''}")

    def _row(self, m: Model) -> dict[str, Any]:
        try:
            files = [f["path"] for f in m.get_files()]
            users = m.users()
            used = [f"service {s}" for s in users["services"]] or [f"image {i}" for i in users["images"]]
        except Exception:  # noqa: BLE001 - deleted meanwhile: the next refresh drops it
            files, used = [], []
        return {
            "id": m.id,
            "name": m.name,
            "version": m.version,
            "framework": " ".join(x for x in (m.model_framework, m.model_framework_version) if x),
            "tags": ", ".join(f"{k}={v}" for k, v in m.tags.items()),
            "files": ", ".join(files[:3]) + (f" (+{len(files) - 3})" if len(files) > 3 else ""),
            "created": (m.created_time or "")[:16].replace("T", " "),
            "used_by": ", ".join(used),
        }

    def _sort_rows(self) -> None:
        if self.sort_key is None:
            return
        key = self.sort_key
        self.rows.sort(key=lambda r: (r[key] == "", r[key] if key == "version" else str(r[key]).lower()), reverse=self.sort_descending)

    def sort_by(self, key: str) -> None:
        """Sort the table by a column (``name``, ``version``, ``framework``, ``tags``,
        ``files``, ``created``, ``used_by``); the same column again reverses the order."""
        if key not in self.header_buttons:
            raise ValidationError(f"unknown column {key!r}: use one of {', '.join(self.header_buttons)}")
        if self.sort_key == key:
            self.sort_descending = not self.sort_descending
        else:
            self.sort_key, self.sort_descending = key, key in ("version", "created")
        with self._lock:
            self._sort_rows()
            self._render_table()

    def _render_table(self) -> None:
        for key, b in self.header_buttons.items():
            arrow = (" ▼" if self.sort_descending else " ▲") if key == self.sort_key else ""
            b.description = dict((k, t) for k, t, _w in COLUMNS)[key] + arrow
            b.button_style = "info" if key == self.sort_key else ""
        cells: list[W.Widget] = list(self.header_buttons.values())
        selected = self.models.value
        for r in self.rows:
            pick = W.Button(description=r["name"], tooltip=f"show {r['id']}", layout=W.Layout(width="auto", min_width="0"),
                            button_style="primary" if r["id"] == selected else "")  # fmt: skip
            pick.on_click(lambda _b, mid=r["id"]: self._pick(mid))
            pick.add_class("mlmanage-row")
            cells.append(pick)
            for key, _t, _w in COLUMNS[1:]:
                cells.append(W.HTML(f"<span style='font-size:12px;overflow-wrap:anywhere'>{html.escape(str(r[key]) or '—')}</span>",
                                    layout=W.Layout(min_width="0")))  # fmt: skip
        self.table.children = cells

    def _pick(self, model_id: str) -> None:
        self.models.value = model_id

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

    def stop_refresh(self) -> None:
        """Stop the auto-refresh thread; the panel stays shown and usable (Refresh button)."""
        self._stop.set()
        if self._poller is not None and self._poller is not threading.current_thread():
            self._poller.join(5)

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
        self._render_table()
        self._show_detail()

    def _show_detail(self) -> None:
        mid = self.models.value
        self.selected = next((m for m in self.model_list if m.id == mid), None)
        for b in (self.download_button, self.add_tag_button, self.deploy_button):
            b.disabled = self.selected is None
        if self.selected is None:
            self.detail.value = "<i>select a model (click its name)</i>"
            self.compare_a.options, self.compare_b.options = [], []
            self.comparison.value = ""
            return
        versions = [mm.id for mm in Model.list(self.workspace, name=self.selected.name)]
        self.compare_a.options = versions
        self.compare_a.value = self.selected.id
        others = [v for v in versions if v != self.selected.id]
        self.compare_b.options = others
        self.compare_b.value = others[0] if others else None
        self._show_comparison()
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

    def _show_comparison(self) -> None:
        a, b = self.compare_a.value, self.compare_b.value
        if not a or not b or a == b:
            self.comparison.value = "<small>only one version: nothing to compare</small>" if a and not b else ""
            return
        name = a.split(":")[0]
        try:
            self.comparison.value = compare_html(Model(self.workspace, name, int(a.split(":")[1])),
                                                 Model(self.workspace, name, int(b.split(":")[1])))  # fmt: skip
        except Exception as e:  # noqa: BLE001 - deleted meanwhile
            self.comparison.value = status_html(error_text(e), "error")

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


def compare_rows(a: Model, b: Model) -> list[tuple[str, str, str]]:
    """Two versions side by side: ``(field, value in a, value in b)`` for framework,
    description, every tag and property key (``—`` when absent), and every file (size and
    the first 12 hex digits of its sha256)."""
    rows = [
        ("framework", " ".join(x for x in (a.model_framework, a.model_framework_version) if x) or "—",
         " ".join(x for x in (b.model_framework, b.model_framework_version) if x) or "—"),
        ("description", a.description or "—", b.description or "—"),
        ("created", a.created_time, b.created_time),
        ("size", format_bytes(a.size), format_bytes(b.size)),
    ]  # fmt: skip
    for label, da, db in (("tag", a.tags, b.tags), ("property", a.properties, b.properties)):
        for k in sorted(set(da) | set(db)):
            rows.append((f"{label} {k}", str(da.get(k, "—")), str(db.get(k, "—"))))
    fa = {f["path"]: f for f in a.get_files()}
    fb = {f["path"]: f for f in b.get_files()}
    for path in sorted(set(fa) | set(fb)):
        def cell(f: dict[str, Any] | None) -> str:
            return f"{format_bytes(f['size'])} {f['sha256'][:12]}" if f else "—"

        rows.append((f"file {path}", cell(fa.get(path)), cell(fb.get(path))))
    return rows


def compare_html(a: Model, b: Model) -> str:
    """:func:`compare_rows` as an HTML table; rows that differ are highlighted."""
    esc = html.escape
    body = "".join(
        f"<tr class='{'mlmanage-diff' if va != vb else ''}' style='{'background:#fff8c5' if va != vb else ''}'>"
        f"<th style='text-align:left;padding-right:1em'>{esc(k)}</th>"
        f"<td style='text-align:left;overflow-wrap:anywhere'>{esc(va)}</td><td style='text-align:left;overflow-wrap:anywhere'>{esc(vb)}</td></tr>"
        for k, va, vb in compare_rows(a, b)
    )
    return (
        f"<table class='mlmanage-compare' style='font-size:12px;width:100%;table-layout:fixed'><tr><th></th>"
        f"<th style='text-align:left'>{esc(a.id)}</th><th style='text-align:left'>{esc(b.id)}</th></tr>{body}</table>"
    )
