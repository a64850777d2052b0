"""Shared by tests/serverext and tests/browser: a workspace with a registered scikit-learn
model (two versions) and an entry script that prints one line per request."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

from infra.diabetes import SAMPLE, score_script

SCORE = score_script("lab-test")


class LabEnv(NamedTuple):
    workspace: Any
    models: list[Any]  # diabetes:1, diabetes:2
    script: Path
    expected: float  # v1's prediction for SAMPLE


def make_lab_env(ws: Any, tmp: Path, name: str = "diabetes") -> LabEnv:
    """Register ``name`` v1 (LinearRegression) and v2 (the same refit on half the data)
    and write the entry script ``<tmp>/score.py``."""
    import joblib
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import LinearRegression

    from mlmanage_jupyter import Model

    X, y = load_diabetes(return_X_y=True)
    models = []
    est = None
    for version, rows in ((1, len(X)), (2, len(X) // 2)):
        fitted = LinearRegression().fit(X[:rows], y[:rows])
        est = est or fitted
        path = tmp / f"m{version}" / "sklearn_regression_model.pkl"
        path.parent.mkdir(parents=True, exist_ok=True)
        joblib.dump(fitted, path)
        models.append(Model.register(ws, str(path), name, tags={"area": "health", "v": str(version)},
                                     model_framework="ScikitLearn"))  # fmt: skip
    script = tmp / "score.py"
    script.write_text(SCORE)
    return LabEnv(ws, models, script, float(est.predict(SAMPLE)[0]))


def deploy_local(env: LabEnv, name: str, auth: bool = True) -> Any:
    """Deploy v1 of the model as local service ``name`` and wait until it is Healthy."""
    from mlmanage_jupyter import InferenceConfig, LocalWebservice, Model

    svc = Model.deploy(env.workspace, name, [env.models[0]], InferenceConfig(entry_script=str(env.script)),
                       LocalWebservice.deploy_configuration(auth_enabled=auth))  # fmt: skip
    svc.wait_for_deployment(timeout_sec=120)
    return svc
