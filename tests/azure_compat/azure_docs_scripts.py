"""Entry scripts in the shape Azure ML v1's docs give them (MicrosoftDocs azure-docs
``articles/machine-learning/v1/how-to-deploy-advanced-entry-script.md`` and
``how-to-enable-data-collection.md``): the same imports, decorators, calls and request /
response handling, written for these tests; and ``write_source`` to put them in a source
directory."""

from __future__ import annotations

import textwrap
from pathlib import Path


def write_source(folder: Path, files: dict[str, str]) -> Path:
    """Write ``{relative path: text}`` into ``folder`` (dedented); returns ``folder``."""
    for rel, text in files.items():
        p = folder / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text).lstrip("\n"))
    return folder


# "Binary (that is, image) data": @rawhttp, a multipart image in request.files, GET echoes
# request.full_path, anything else is the script's own 500
BINARY_SCORE = '''
import json
from azureml.contrib.services.aml_request import AMLRequest, rawhttp
from azureml.contrib.services.aml_response import AMLResponse
from PIL import Image


def init():
    print("binary scorer ready")


@rawhttp
def run(request):
    print("scoring a", request.method)
    if request.method == "GET":
        return AMLResponse(request.full_path.encode(), 200)
    if request.method == "POST":
        picture = Image.open(request.files["image"]).convert("RGB")
        return AMLResponse(json.dumps(picture.size), 200)
    return AMLResponse("bad request", 500)
'''

# "Cross-origin resource sharing (CORS)": AMLResponse headers set on every answer, OPTIONS
# (the browser's preflight) answered by the script, POST echoes request.get_data(False)
CORS_SCORE = '''
from azureml.contrib.services.aml_request import AMLRequest, rawhttp
from azureml.contrib.services.aml_response import AMLResponse

ORIGIN = "http://www.example.com"


def init():
    pass


def with_cors(resp):
    resp.headers["Allow"] = "OPTIONS, GET, POST"
    resp.headers["Access-Control-Allow-Methods"] = "OPTIONS, GET, POST"
    resp.headers["Access-Control-Allow-Origin"] = ORIGIN
    resp.headers["Access-Control-Allow-Headers"] = "*"
    return resp


@rawhttp
def run(request):
    print("request:", request)
    if request.method == "GET":
        return with_cors(AMLResponse(request.full_path.encode(), 200))
    if request.method == "POST":
        return with_cors(AMLResponse(request.get_data(False), 200))
    if request.method == "OPTIONS":
        return with_cors(AMLResponse("", 200))
    return AMLResponse("bad request", 400)
'''

# "Power BI compatible endpoint": inference_schema with a nested 'Inputs' (numpy, pandas and
# standard samples), an optional 'GlobalParameters' and an output nested under 'Results'
POWER_BI_SCORE = '''
import os
import joblib
import numpy as np
import pandas as pd
from inference_schema.schema_decorators import input_schema, output_schema
from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType
from inference_schema.parameter_types.pandas_parameter_type import PandasParameterType
from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType


def init():
    global model
    model = joblib.load(os.path.join(os.getenv("AZUREML_MODEL_DIR"), "sklearn_regression_model.pkl"))


inputs_sample = StandardPythonParameterType({
    "input1": NumpyParameterType(np.array([[1.0] * 10, [2.0] * 10], dtype="float64")),
    "input2": PandasParameterType(pd.DataFrame({"name": ["Ann", "Bob"], "age": [31, 42]})),
    "input3": StandardPythonParameterType(0.0),
})
global_sample = StandardPythonParameterType(1.0)
results_sample = StandardPythonParameterType({"Results": StandardPythonParameterType([1.0, 1.0])})


@input_schema("Inputs", inputs_sample)
@input_schema("GlobalParameters", global_sample)
@output_schema(results_sample)
def run(Inputs, GlobalParameters):
    features = Inputs["input1"]
    assert isinstance(features, np.ndarray)
    return model.predict(features).tolist()
'''

# "Load registered models" (several models, AZUREML_MODEL_DIR and get_model_path), plus what
# scripts commonly do with Azure's source-directory layout, Run.get_context() and Workspace.
MULTI_MODEL_SCORE = '''
import json
import os
import joblib
from azureml.core import Workspace
from azureml.core.model import Model
from azureml.core.run import Run
import helper  # a sibling module of the source directory

import mlmanage_jupyter


def init():
    global first, second, extra, paths
    first_model_path = os.path.join(os.getenv('AZUREML_MODEL_DIR'), 'my_first_model', '1', 'my_first_model.pkl')
    second_model_path = os.path.join(os.getenv('AZUREML_MODEL_DIR'), 'my_second_model', '2', 'my_second_model.pkl')
    first = joblib.load(first_model_path)
    second = joblib.load(second_model_path)
    # Azure's layout: the cwd is AML_APP_ROOT, the source directory a folder in it
    with open(os.path.join('.', os.environ['AZUREML_SOURCE_DIRECTORY'], 'extra.json')) as f:
        extra = json.load(f)
    paths = {
        'first': Model.get_model_path('my_first_model'),
        'second': Model.get_model_path('my_second_model', version=2),
        'first_mlmanage': mlmanage_jupyter.Model.get_model_path('my_first_model'),
        'first_file': first_model_path,
    }
    Run.get_context().log('init_done', 1)


def run(raw_data):
    try:
        Workspace.from_config()
        cloud = 'no error'
    except Exception as e:
        cloud = type(e).__name__ + ': ' + str(e)
    try:
        Model.get_model_path('not_deployed')
        missing = 'no error'
    except Exception as e:
        missing = str(e)
    return {
        'first': first, 'second': second, 'extra': extra, 'helper': helper.HELLO, 'paths': paths,
        'cloud': cloud, 'missing': missing, 'cwd': os.getcwd(),
        'env': {k: os.environ.get(k) for k in ('AML_APP_ROOT', 'AZUREML_ENTRY_SCRIPT', 'AZUREML_SOURCE_DIRECTORY')},
    }
'''

# how-to-enable-data-collection.md: two ModelDataCollector objects made in init(), collect()
# of the inputs and of the predictions in run()
DATA_COLLECTION_SCORE = '''
import json
import os
import joblib
import numpy as np
from azureml.monitoring import ModelDataCollector

FEATURES = ["feat%d" % i for i in range(1, 11)]


def init():
    global model, inputs_dc, prediction_dc
    model = joblib.load(os.path.join(os.getenv("AZUREML_MODEL_DIR"), "sklearn_regression_model.pkl"))
    inputs_dc = ModelDataCollector("best_model", designation="inputs", feature_names=FEATURES)
    prediction_dc = ModelDataCollector("best_model", designation="predictions", feature_names=["prediction1"])


def run(raw_data):
    data = np.array(json.loads(raw_data)["data"])
    result = model.predict(data)
    inputs_dc.collect(data)
    prediction_dc.collect(result)
    return result.tolist()
'''
