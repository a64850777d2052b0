"""``LiveLogs``: a service's logs as they are written, without blocking the kernel."""

from __future__ import annotations

import html
import threading
import time
from typing import Any

import ipywidgets as W

from mlmanage_jupyter.core.webservice import Webservice
from mlmanage_jupyter.widgets._common import COLORS, error_text, pre, status_html


class LiveLogs(W.VBox):
    """Stream ``service.stream_logs()`` into the panel from a background thread.

    Args:
        service: a :class:`Webservice` (any target).
        follow: start following at once.
        max_lines: how many of the newest (filtered) lines the panel shows.
        refresh_s: how often (seconds) the view and the state line are redrawn.
        follow_for_s: following stops by itself after this many seconds (bounded);
            ``close()`` stops it at once.

    Widgets: ``follow`` (ToggleButton: on = a thread reads the log and the view updates;
    off = the thread stops), ``filter`` (case-insensitive substring), ``clear_button``
    (hides what was read so far), ``view`` (HTML), ``status``.

    Attributes:
        lines: every line read since the panel opened (or since the last clear).
    """

    def __init__(
        self,
        service: Webservice,
        *,
        follow: bool = True,
        max_lines: int = 1000,
        refresh_s: float = 0.3,
        follow_for_s: float = 4 * 3600.0,
    ) -> None:
        self.service = service
        self.max_lines = max_lines
        self.refresh_s = refresh_s
        self.follow_for_s = follow_for_s
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._dirty = threading.Event()
        self._reader: threading.Thread | None = None
        self._painter: threading.Thread | None = None
        self._closed = False

        self.follow = W.ToggleButton(value=False, description="Follow", icon="play", tooltip="stream new lines")
        self.filter = W.Text(placeholder="filter (substring)", layout=W.Layout(width="240px"))
        self.clear_button = W.Button(description="Clear", icon="eraser", layout=W.Layout(width="90px"))
        self.view = W.HTML(pre("", height="300px", bottom=True))
        self.status = W.HTML()
        self.follow.observe(self._on_follow, "value")
        self.filter.observe(lambda _c: self._render(), "value")
        self.clear_button.on_click(lambda _b: self.clear())
        super().__init__(
            [
                W.HTML(f"<b>Logs</b> of <code>{html.escape(service.name)}</code> ({html.escape(service.compute_type)})"),
                W.HBox([self.follow, self.filter, self.clear_button, self.status]),
                self.view,
            ]
        )
        if follow:
            self.follow.value = True
        else:
            self._snapshot()

    # ------------------------------------------------------------------ view
    def shown_lines(self) -> list[str]:
        """The lines the view shows now (filter applied, newest ``max_lines``)."""
        needle = self.filter.value.lower()
        with self._lock:
            lines = [ln for ln in self.lines if needle in ln.lower()] if needle else list(self.lines)
        return lines[-self.max_lines :]

    def _render(self) -> None:
        self.view.value = pre("\n".join(self.shown_lines()), height="300px", bottom=True)
        self._dirty.clear()

    def _state_line(self, extra: str = "") -> None:
        try:
            state = self.service.state
        except Exception as e:  # noqa: BLE001
            self.status.value = status_html(error_text(e), "error")
            return
        color = COLORS.get(state, "#57606a")
        self.status.value = f"<span style='color:{color}'>{html.escape(state)}</span> · {len(self.lines)} lines{html.escape(extra)}"

    def clear(self) -> None:
        """Forget the lines read so far (the service's log file is not touched)."""
        with self._lock:
            self.lines = []
        self._render()
        self._state_line()

    def _snapshot(self) -> None:
        with self._lock:
            self.lines = self.service.get_logs().splitlines()
        self._render()
        self._state_line(" · not following")

    # ------------------------------------------------------------------ following
    def _on_follow(self, change: Any) -> None:
        if change["new"]:
            self._start()
        else:
            self._halt()

    def _start(self) -> None:
        self._halt()
        self._stop = threading.Event()
        stop = self._stop
        with self._lock:
            self.lines = []  # the stream starts from the beginning of the log
        deadline = time.monotonic() + self.follow_for_s
        self.follow.icon = "pause"

        def should_stop() -> bool:
            return stop.is_set() or time.monotonic() > deadline

        def read() -> None:
            try:
                for line in self.service.stream_logs(stop=should_stop):
                    with self._lock:
                        self.lines.append(line)
                    self._dirty.set()
                    if should_stop():
                        break
            except Exception as e:  # noqa: BLE001 - shown, the panel stays usable
                self.status.value = status_html(f"log stream ended: {error_text(e)}", "error")
            finally:
                stop.set()

        def paint() -> None:
            while not stop.wait(self.refresh_s):
                if self._dirty.is_set():
                    self._render()
                self._state_line()
            self._render()
            if not self._closed:
                self._state_line(" · not following")
                if self.follow.value:
                    self.follow.value = False

        self._reader = threading.Thread(target=read, name=f"LiveLogs-read-{self.service.name}", daemon=True)
        self._painter = threading.Thread(target=paint, name=f"LiveLogs-paint-{self.service.name}", daemon=True)
        self._reader.start()
        self._painter.start()

    def _halt(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self.follow.icon = "play"
        current = threading.current_thread()
        for t in (self._reader, self._painter):
            if t is not None and t is not current:
                t.join(timeout)

    @property
    def following(self) -> bool:
        """True while the reader thread runs."""
        return self._reader is not None and self._reader.is_alive()

    def close(self) -> None:
        """Stop following (the threads end within about one poll) and close the panel."""
        self._closed = True
        self._halt()
        super().close()
