"""The quickstart, headless, through the Python API (the same steps as notebooks/01-quickstart.ipynb).

Trains a scikit-learn LinearRegression on the diabetes data set, registers it, writes an
entry script with ``inference_schema`` decorators, deploys it on the local target (a child
process on 127.0.0.1), calls it with ``requests`` and with ``service.run``, registers a
Ridge model as version 2, rolls the service over to it, lists models and services, and
cleans up. Prints the endpoint's predictions.

    python scripts/quickstart.py [--workspace DIR] [--keep]

Without ``--workspace`` everything happens in a temporary folder that is removed at the end.
Exit code 0 when every step worked.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

SCORE_PY = '''\
import joblib
import numpy as np
from inference_schema.parameter_types.numpy_parameter_type import NumpyParameterType
from inference_schema.schema_decorators import input_schema, output_schema
from sklearn.datasets import load_diabetes

from mlmanage_jupyter import Model

input_sample = load_diabetes(return_X_y=True)[0][:2]
output_sample = np.array([152.1, 80.3])


def init():
    global model
    model = joblib.load(Model.get_model_path("diabetes"))


@input_schema("data", NumpyParameterType(input_sample, enforce_shape=False))
@output_schema(NumpyParameterType(output_sample, enforce_shape=False))
def run(data):
    return model.predict(data).tolist()
'''


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", help="workspace folder (default: a temporary one, removed at the end)")
    parser.add_argument("--keep", action="store_true", help="keep the service running and the workspace")
    args = parser.parse_args(argv)

    import joblib
    import requests
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import LinearRegression, Ridge

    from mlmanage_jupyter import InferenceConfig, LocalWebservice, Model, Webservice, Workspace

    tmp = None if args.workspace else Path(tempfile.mkdtemp(prefix="mlmanage-quickstart-"))
    root = Path(args.workspace) if args.workspace else tmp
    assert root is not None
    service = None
    try:
        ws = Workspace(root / "workspace")
        print(f"workspace: {ws.path}")

        # 1. train and register
        X, y = load_diabetes(return_X_y=True)
        model_file = root / "sklearn_regression_model.pkl"
        joblib.dump(LinearRegression().fit(X, y), model_file)
        v1 = Model.register(ws, model_file, "diabetes", tags={"algorithm": "LinearRegression"},
                            description="diabetes progression, linear regression", model_framework="ScikitLearn")  # fmt: skip
        print(f"registered {v1.id}")

        # 2. the entry script and the deployment
        script = root / "score.py"
        script.write_text(SCORE_PY)
        inference_config = InferenceConfig(entry_script=str(script))
        service = Model.deploy(ws, "diabetes-svc", [v1], inference_config, LocalWebservice.deploy_configuration(),
                               overwrite=True)  # fmt: skip
        service.wait_for_deployment(show_output=True)
        print(f"scoring_uri: {service.scoring_uri}")
        print(f"swagger_uri: {service.swagger_uri}")

        # 3. call it: plain HTTP, then service.run
        rows = X[:3].tolist()
        answer = requests.post(service.scoring_uri, json={"data": rows}, timeout=30)
        answer.raise_for_status()
        print(f"predictions v1 (requests):    {json.dumps(answer.json())}")
        print(f"predictions v1 (service.run): {json.dumps(service.run({'data': rows}))}")

        # 4. version 2 (Ridge), rolled out on the same scoring_uri
        v2 = Model.register_object(ws, Ridge(alpha=0.1).fit(X, y), "diabetes", tags={"algorithm": "Ridge"})
        print(f"registered {v2.id}")
        service.update(models=[v2], show_output=True)
        print(f"predictions v2 (service.run): {json.dumps(service.run({'data': rows}))}")

        # 5. what is there
        print(Model.list(ws).to_dataframe()[["name", "version", "tags", "framework"]].to_string(index=False))
        print(Webservice.list(ws).to_dataframe()[["name", "state", "models", "scoring_uri"]].to_string(index=False))
        return 0
    finally:
        if service is not None and not args.keep:
            service.delete()
            print("deleted service diabetes-svc")
        if tmp is not None and not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
