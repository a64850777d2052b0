"""The text helpers shared by magics and panels: compact JSON and a failure told once."""

from __future__ import annotations

import json
from pathlib import Path

from mlmanage_jupyter._display import compact_json, failure_report

TB = """Traceback (most recent call last):
  File "/app/score.py", line 2, in init
    raise ValueError('boom')
ValueError: boom"""

OLD_GENERATION = "2026-01-01 10:00:00,000 INFO [1] mlmanage.server.worker: loading entry script /app/v1/score.py\nserved 10 requests"
LOG = f"""{OLD_GENERATION}
2026-01-01 10:05:00,000 INFO [2] mlmanage.server.supervisor: supervisor 2 listening on 127.0.0.1 port 5001
2026-01-01 10:05:00,100 INFO [3] mlmanage.server.worker: loading entry script /app/score.py
2026-01-01 10:05:00,200 ERROR [3] mlmanage.server.worker: the entry script failed to start:
{TB}

2026-01-01 10:05:00,300 ERROR [2] mlmanage.server.supervisor: the service failed to start:
{TB}
"""


def test_failure_report_tells_the_traceback_once_with_this_attempts_log() -> None:
    rep = failure_report(f"service s is Failed: {TB}\n", LOG)
    assert rep.headline == "service s is Failed: ValueError: boom"
    assert rep.traceback == TB
    assert "served 10 requests" not in rep.log  # the older generation's lines are not this failure's
    assert "listening on 127.0.0.1" in rep.log and "the service failed to start" in rep.log
    text = rep.as_text()
    assert text.count("Traceback (most recent call last)") == 1 and text.splitlines()[0] == rep.headline


def test_failure_report_without_a_traceback_in_the_message() -> None:
    rep = failure_report("the rollout of s did not finish in 60 s", "")
    assert rep.headline == "the rollout of s did not finish in 60 s" and rep.traceback == "" and rep.log == ""
    rep = failure_report("service s is Failed: failed", LOG)  # the traceback from the log, once
    assert rep.traceback == TB and rep.headline.endswith("ValueError: boom")
    assert rep.as_text().count("Traceback (most recent call last)") == 1


def test_compact_json_is_one_readable_document() -> None:
    assert compact_json([152.1, 98.3]) == "[152.1, 98.3]"
    value = {"predictions": list(range(60)), "model": {"name": "diabetes", "version": 2}}
    text = compact_json(value, width=60)
    assert json.loads(text) == value
    assert all(len(line) <= 60 for line in text.splitlines())
    assert len(text.splitlines()) < 15  # not one number per line


def test_workspace_default_name_is_its_folder_not_tmp(tmp_path: Path) -> None:
    from mlmanage_jupyter.core.workspace import Workspace

    assert Workspace(tmp_path / "tour-x1").name == "tour-x1"  # was "<tmp_path's name>": the parent
    assert Workspace(tmp_path / "proj" / ".mlmanage").name == "proj"
