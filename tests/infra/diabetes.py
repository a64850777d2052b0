"""The diabetes entry script the serverext, widget and browser tests deploy, and its sample row.

``score_script(tag)`` is an ``inference_schema``-decorated entry script that loads
``sklearn_regression_model.pkl`` (a scikit-learn regressor on ``load_diabetes``' 10 features)
from ``AZUREML_MODEL_DIR`` and prints ``"<tag>: model loaded"`` in ``init()`` and
``"<tag>: scoring <n> rows"`` per request, so a test can find its own lines in a service's logs.
"""

from __future__ import annotations

SAMPLE = [[0.03, 0.05, 0.06, 0.02, -0.04, -0.03, -0.04, -0.002, 0.02, -0.02]]

_SCORE = '''
import os, joblib
import numpy as np
from inference_schema.schema_decorators import input_schema, output_schema
from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType
from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType

def init():
    global model
    model = joblib.load(os.path.join(os.environ["AZUREML_MODEL_DIR"], "sklearn_regression_model.pkl"))
    print("@TAG@: model loaded", flush=True)

@input_schema("data", NumpyParameterType(np.array([[0.03, 0.05, 0.06, 0.02, -0.04, -0.03, -0.04, -0.002, 0.02, -0.02]])))
@output_schema(StandardPythonParameterType([152.1]))
def run(data):
    print(f"@TAG@: scoring {len(data)} rows", flush=True)
    return model.predict(data).tolist()
'''


def score_script(tag: str) -> str:
    """The entry script's source, its log lines prefixed with ``tag``."""
    return _SCORE.replace("@TAG@", tag)
