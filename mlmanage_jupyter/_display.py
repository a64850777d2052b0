"""Plain-text helpers shared by the magics and the widget panels (no IPython/ipywidgets
imports): a compact JSON layout for answers, and a failed deployment's report with its
traceback once.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_TRACEBACK = re.compile(r"Traceback \(most recent call last\):")
#: a log line that starts a new start attempt of the scoring engine (server/worker.py's own words)
_ATTEMPT_START = re.compile(r"loading entry script|listening on|starting the scoring engine")


def compact_json(value: Any, width: int = 88, indent: int = 2, _level: int = 0) -> str:
    """``value`` as one JSON document, indented only where a line would pass ``width``
    characters: ``[152.1, 98.3]`` stays on one line (``json.dumps(indent=...)`` would put
    each number on its own line). Non-JSON values are written with ``str``."""
    flat = json.dumps(value, ensure_ascii=False, default=str)
    pad = " " * (indent * _level)
    if len(flat) + len(pad) <= width or not isinstance(value, (dict, list)) or not value:
        return flat
    inner = " " * (indent * (_level + 1))
    if isinstance(value, dict):
        items = [
            f"{inner}{json.dumps(str(k), ensure_ascii=False)}: {compact_json(v, width, indent, _level + 1).lstrip()}"
            for k, v in value.items()
        ]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if all(not isinstance(v, (dict, list)) for v in value):  # a long row of numbers: wrap, several a line
        lines, cur = [], ""
        for v in value:
            token = json.dumps(v, ensure_ascii=False, default=str)
            if cur and len(inner) + len(cur) + len(token) + 3 > width:  # ", " + the trailing ","
                lines.append(cur)
                cur = ""
            cur = f"{cur}, {token}" if cur else token
        lines.append(cur)
        return "[\n" + ",\n".join(inner + ln for ln in lines) + f"\n{pad}]"
    items = [inner + compact_json(v, width, indent, _level + 1) for v in value]
    return "[\n" + ",\n".join(items) + f"\n{pad}]"


@dataclass
class FailureReport:
    """A failed deployment/update told once: ``headline`` (one line: what failed and the
    exception's last line), ``traceback`` (the first Python traceback found, or ""), and
    ``log`` (the service log of the last start attempt, with that traceback's repeats
    replaced by one marker line)."""

    headline: str
    traceback: str
    log: str

    def as_text(self, log_lines: int = 40) -> str:
        parts = [self.headline]
        if self.traceback:
            parts.append(self.traceback)
        tail = "\n".join(self.log.splitlines()[-log_lines:]).strip()
        if tail:
            parts.append(f"--- service log of this attempt ---\n{tail}")
        return "\n".join(parts)


def _traceback_in(text: str) -> tuple[int, int] | None:
    """(start, end) of the first traceback block in ``text``: from its header to its
    exception line (the first non-indented line after the frames)."""
    m = _TRACEBACK.search(text)
    if m is None:
        return None
    lines = text[m.end() :].split("\n")
    end = m.end()
    for i, ln in enumerate(lines[1:], start=1):
        end += len(lines[i - 1]) + 1
        if ln and not ln.startswith((" ", "\t")):
            if ln.startswith(("During handling", "The above exception")):
                continue
            return m.start(), end + len(ln)
    return m.start(), len(text)


def failure_report(message: str, logs: str = "") -> FailureReport:
    """Split a DeploymentFailedError's ``message`` and ``logs`` (the engine's message often
    embeds the init() traceback, and the log repeats it once per process that reported it)."""
    tb = ""
    span = _traceback_in(message)
    if span is not None:
        tb = message[span[0] : span[1]].strip()
        head = message[: span[0]].strip().rstrip(":").strip()
    else:
        head = message.strip()
        span_log = _traceback_in(logs)
        if span_log is not None:
            tb = logs[span_log[0] : span_log[1]].strip()
    last = tb.splitlines()[-1].strip() if tb else ""
    headline = head.splitlines()[0] if head else "deployment failed"
    if last and last not in headline:
        headline = f"{headline}: {last}"
    lines = logs.splitlines()
    # the last start attempt that precedes the traceback (older generations' lines are noise)
    first_tb = next((i for i, ln in enumerate(lines) if _TRACEBACK.search(ln)), len(lines))
    starts = [i for i, ln in enumerate(lines[:first_tb]) if _ATTEMPT_START.search(ln)]
    if starts:
        begin = starts[-1]
        while begin - 1 in starts:  # adjacent markers belong to the same attempt
            begin -= 1
        lines = lines[begin:]
    log = "\n".join(lines)
    if tb:
        log = log.replace(tb, "(the traceback above)")
    return FailureReport(headline, tb, log.strip())
