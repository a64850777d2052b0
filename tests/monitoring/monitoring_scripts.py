"""Entry scripts of the monitoring tests (a module with a unique name: importing from
``conftest`` picks whichever conftest pytest loaded last)."""

from __future__ import annotations

import textwrap

SCORE_PY = textwrap.dedent(
    """
    import json, os, joblib

    def init():
        global model
        model = joblib.load(os.path.join(os.environ["AZUREML_MODEL_DIR"], "sklearn_regression_model.pkl"))

    def run(raw_data):
        data = json.loads(raw_data)
        if "raise" in data:
            raise RuntimeError(data["raise"])
        return model.predict(data["data"]).tolist()
    """
)
