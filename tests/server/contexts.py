"""Hand-built image build contexts (CONTRIBUTING.md layout) with a scikit-learn model, and a
scoring-engine process fixture helper. Shared by tests/server and tests/core/test_local_target.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import joblib
import requests
from sklearn.datasets import load_diabetes
from sklearn.linear_model import LinearRegression

MODEL_NAME, MODEL_VERSION = "diabetes", "1"

UNDECORATED = """
import json, os, joblib
VERSION = {version}
def init():
    global model
    model = joblib.load(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.pkl"))
def run(raw_data):
    data = json.loads(raw_data)
    if "sleep" in data:
        import time
        time.sleep(data["sleep"])
    if "raise" in data:
        raise RuntimeError(data["raise"])
    out = model.predict(data["data"]).tolist()
    return {{"version": VERSION, "predictions": out}} if VERSION > 1 else out
"""

DECORATED = """
import os, joblib
import numpy as np
from inference_schema.schema_decorators import input_schema, output_schema
from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType
from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType

def init():
    global model
    model = joblib.load(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.pkl"))

@input_schema("data", NumpyParameterType(np.array([[0.03, 0.05, 0.06, 0.02, -0.04, -0.03, -0.04, -0.002, 0.02, -0.02]])))
@output_schema(StandardPythonParameterType([152.1]))
def run(data):
    assert isinstance(data, np.ndarray), type(data)
    return model.predict(data).tolist()
"""

SYNTAX_ERROR = "def init(:\n    pass\n"
NO_RUN = "def init():\n    pass\n"
INIT_RAISES = "def init():\n    raise ValueError('cannot load the model: boom')\ndef run(data):\n    return data\n"
SLOW_INIT_FAILS = "import time\ndef init():\n    time.sleep(0.5)\n    raise ValueError('v2 init failed on purpose')\ndef run(data):\n    return data\n"


def diabetes() -> tuple[Any, Any]:
    X, y = load_diabetes(return_X_y=True)
    return X, y


def make_context(root: Path, script: str, *, version: int = 1) -> Path:
    """A build context: app/score.py + azureml-models/diabetes/1/model.pkl + image.json."""
    X, y = diabetes()
    root.mkdir(parents=True, exist_ok=True)
    (root / "app").mkdir(exist_ok=True)
    (root / "app" / "score.py").write_text(textwrap.dedent(script).format(version=version) if "{version}" in script else script)
    mdir = root / "azureml-models" / MODEL_NAME / MODEL_VERSION
    mdir.mkdir(parents=True, exist_ok=True)
    if not (mdir / "model.pkl").exists():
        joblib.dump(LinearRegression().fit(X, y), mdir / "model.pkl")
    spec = {
        "name": "img",
        "version": version,
        "content_hash": f"h{version}",
        "entry_script": "score.py",
        "models": [{"name": MODEL_NAME, "version": MODEL_VERSION, "root_name": "model.pkl", "is_folder": False}],
        "environment": {},
    }
    (root / "image.json").write_text(json.dumps(spec))
    return root


def model_predictions(context: Path, rows: Any) -> list[float]:
    model = joblib.load(context / "azureml-models" / MODEL_NAME / MODEL_VERSION / "model.pkl")
    return model.predict(rows).tolist()


class ServerProcess:
    """``python -m mlmanage_jupyter.server`` on a free port, configured by env vars."""

    def __init__(self, context: Path, run_dir: Path, **env: str) -> None:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.run_dir = run_dir
        self.log_path = run_dir.parent / f"{run_dir.name}.log"
        model_dir = str(context / "azureml-models" / MODEL_NAME / MODEL_VERSION)
        full_env = dict(
            os.environ,
            MLMANAGE_APP_ROOT=str(context / "app"),
            MLMANAGE_ENTRY_SCRIPT="score.py",
            AZUREML_MODEL_DIR=model_dir,
            MLMANAGE_MODEL_DIR=model_dir,
            MLMANAGE_MODELS=f"{MODEL_NAME}:{MODEL_VERSION}",
            MLMANAGE_SERVICE_NAME="svc",
            MLMANAGE_PORT=str(self.port),
            MLMANAGE_RUN_DIR=str(run_dir),
            **{"MLMANAGE_WORKERS": "1", **env},  # the engine's own default follows the cores
        )
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mlmanage_jupyter.server"],
            env=full_env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.url = f"http://127.0.0.1:{self.port}"

    def status(self) -> dict[str, Any]:
        try:
            return json.loads((self.run_dir / "status.json").read_text())
        except (OSError, ValueError):
            return {}

    def wait_state(self, *states: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = self.status()
            if st.get("state") in states:
                return st
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.logs()}")
            time.sleep(0.05)
        raise AssertionError(f"state not in {states} after {timeout}s: {self.status()}\n{self.logs()}")

    def logs(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def score(self, body: Any, **kw: Any) -> requests.Response:
        return requests.post(f"{self.url}/score", json=body, timeout=30, **kw)

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
            except ProcessLookupError:
                pass
        self.log.close()


def telemetry_records(run_dir: Path) -> list[dict[str, Any]]:
    recs = []
    for f in sorted((run_dir / "telemetry").glob("*.jsonl")):
        recs += [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    return recs
