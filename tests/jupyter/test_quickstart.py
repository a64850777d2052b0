"""The quickstart end to end: the notebook under nbval (as CI runs tutorials) and the headless script."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.notebook
@pytest.mark.slow
def test_quickstart_notebook_runs_under_nbval(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
         "--rootdir", str(tmp_path), str(REPO / "notebooks" / "01-quickstart.ipynb")],
        capture_output=True, text=True, cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]
    assert re.search(r"\b1[0-9] passed\b", r.stdout), r.stdout[-2000:]


@pytest.mark.slow
def test_quickstart_script_prints_predictions(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "quickstart.py"), "--workspace", str(tmp_path)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    preds = {
        m.group(1): [float(x) for x in m.group(2).split(",")]
        for m in re.finditer(r"predictions (v1 \(requests\)|v1 \(service\.run\)|v2 \(service\.run\)):\s+\[([^\]]+)\]", r.stdout)
    }
    assert set(preds) == {"v1 (requests)", "v1 (service.run)", "v2 (service.run)"}, r.stdout
    assert preds["v1 (requests)"] == preds["v1 (service.run)"]
    assert len(preds["v2 (service.run)"]) == 3 and preds["v2 (service.run)"] != preds["v1 (service.run)"]
    # the same numbers as the model computes in-process
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import LinearRegression

    X, y = load_diabetes(return_X_y=True)
    assert preds["v1 (requests)"] == pytest.approx(LinearRegression().fit(X, y).predict(X[:3]).tolist())
    assert "deleted service diabetes-svc" in r.stdout
    from mlmanage_jupyter.core.webservice import Webservice

    assert Webservice.list(tmp_path / "workspace", refresh=False) == []  # cleaned up
