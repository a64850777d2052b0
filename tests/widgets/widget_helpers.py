"""Shared by tests/widgets and tests/browser: the entry script, a workspace with a registered
scikit-learn model and a saved script (as ``%%score_script`` writes it), a bounded wait."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from infra.diabetes import SAMPLE as SAMPLE  # re-exported to the widget tests
from infra.diabetes import score_script

SCORE = score_script("widget-test")
INIT_RAISES = "def init():\n    raise ValueError('cannot load the model: boom')\ndef run(data):\n    return data\n"


class Env(NamedTuple):
    workspace: Any
    model: Any
    script: Path
    sklearn: Any


def make_env(ws: Any, tmp: Path) -> Env:
    import joblib
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import LinearRegression

    from mlmanage_jupyter.core.model import Model

    X, y = load_diabetes(return_X_y=True)
    est = LinearRegression().fit(X, y)
    path = tmp / "model" / "sklearn_regression_model.pkl"
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(est, path)
    model = Model.register(ws, path, "diabetes", tags={"area": "health"}, description="diabetes regression",
                           model_framework="ScikitLearn", model_framework_version="1")  # fmt: skip
    script = ws.subdir("scripts") / "diabetes.py"  # what %%score_script diabetes writes
    script.write_text(SCORE)
    return Env(ws, model, script, est)


def wait_until(cond: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05) -> Any:
    """Poll ``cond`` until truthy (returned) or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


def shown(widget: Any) -> str:
    """The text an HTML widget shows (tags removed, entities decoded)."""
    import html
    import re

    return html.unescape(re.sub(r"<[^>]+>", "", widget.value))
