"""Azure's ``az ml`` v1 CLI lines run as ``mlmanage`` lines (issue 12): the deploy-local CLI
tutorial (Azure/azureml-examples ``python-sdk/tutorials/deploy-local/2.deploy-local-cli.ipynb``,
the CLI tab of azure-docs ``articles/machine-learning/v1/how-to-deploy-and-where.md``) in order,
with its config files as the tutorial ships them, and the flags of Azure's v1 CLI reference
(``-o json|tsv|table|yaml|none``, ``--query`` JMESPath, ``--model-id``, ``--model-name``,
``--latest``, ``-w/-g``, ``get-logs``, ``get-keys``, ``regen-key``, ``update --ic/--dc``).

Commands run in process through ``mlmanage_jupyter.cli.main`` under click's ``CliRunner``
isolation (stdout and stderr apart); the tutorial's ``os.popen('az ml model list ...')`` cell
runs the installed ``mlmanage`` console script as a real subprocess."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import requests
import yaml
from click.testing import CliRunner

from mlmanage_jupyter.cli import main

# the tutorial's source_dir/echo_score.py, as published
ECHO_SCORE = """
import json


def init():
    print("This is init")


def run(data):
    test = json.loads(data)
    print(f"received data {test}")
    return f"test is {test}"
"""

# the tutorial's source_dir/score.py shape (init finds the model under AZUREML_MODEL_DIR, run
# scores the JSON body) for the scikit-learn model these tests have instead of the ONNX one
SCORE = """
import json
import os

import joblib
import numpy as np


def init():
    global model
    model = joblib.load(os.path.join(os.getenv("AZUREML_MODEL_DIR"), "sklearn_regression_model.pkl"))
    print("model loaded")


def run(data):
    return model.predict(np.array(json.loads(data)["data"])).tolist()
"""


def _environment(pip: list[str], version: str) -> dict[str, Any]:
    """The ``environment`` block of the tutorial's inference configs (docker off, conda deps)."""
    return {
        "docker": {"arguments": [], "baseDockerfile": None, "baseImage": "mcr.microsoft.com/azureml/openmpi3.1.2-ubuntu18.04",
                   "enabled": False, "sharedVolumes": True, "shmSize": None},
        "environmentVariables": {"EXAMPLE_ENV_VAR": "EXAMPLE_VALUE"},
        "name": "my-deploy-env",
        "python": {"baseCondaEnvironment": None,
                   "condaDependencies": {"channels": [], "dependencies": ["python=3.6.2", {"pip": pip}],
                                         "name": "project_environment"},
                   "condaDependenciesFile": None, "interpreterPath": "python", "userManagedDependencies": False},
        "version": version,
    }  # fmt: skip


class Run(NamedTuple):
    code: int
    out: str
    err: str


class Az:
    """``az ml <args>`` as ``mlmanage <args>`` in this process, cwd the tutorial folder."""

    def __init__(self, folder: Path, ws: Path) -> None:
        self.folder, self.ws = folder, ws

    def __call__(self, *args: str, input: str | None = None, env: dict[str, str | None] | None = None) -> Run:
        """Run it; ``env`` adds variables (``AZURE_CORE_OUTPUT`` is unset unless given)."""
        runner = CliRunner()
        cwd = os.getcwd()
        os.chdir(self.folder)
        try:
            variables = {"MLMANAGE_WORKSPACE": str(self.ws), "AZURE_CORE_OUTPUT": None, **(env or {})}
            with runner.isolation(input=input, env=variables) as (out, err, _):
                code = main(list(args))
        finally:
            os.chdir(cwd)
        return Run(code, out.getvalue().decode(), err.getvalue().decode())

    def ok(self, *args: str, **kw: Any) -> Run:
        r = self(*args, **kw)
        assert r.code == 0, f"mlmanage {' '.join(args)} -> {r.code}\n{r.out}\n{r.err}"
        return r

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "-o", "json").out)

    def error(self, *args: str, env: dict[str, str | None] | None = None) -> str:
        """A command that must fail: exit 2, nothing on stdout, one ``error: ...`` line."""
        r = self(*args, env=env)
        assert r.code == 2 and r.out == "", r
        lines = r.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), r.err
        return lines[0]


@pytest.fixture
def tutorial(tmp_path: Path, sklearn_model: Any) -> Path:
    """The tutorial folder: model file, source_dir/{echo_score,score}.py, the two inference
    configs, deploymentconfig.json (local, a free port for the tutorial's 32267) and
    re-deploymentconfig.json (ACI) as the tutorial ships them."""
    folder = tmp_path / "deploy-local"
    (folder / "source_dir").mkdir(parents=True)
    shutil.copy(sklearn_model.path, folder / "sklearn_regression_model.pkl")
    (folder / "source_dir" / "echo_score.py").write_text(textwrap.dedent(ECHO_SCORE).lstrip())
    (folder / "source_dir" / "score.py").write_text(textwrap.dedent(SCORE).lstrip())
    (folder / "dummyinferenceconfig.json").write_text(json.dumps(
        {"entryScript": "echo_score.py", "sourceDirectory": "./source_dir",
         "environment": _environment(["azureml-defaults"], "1")}, indent=4))  # fmt: skip
    (folder / "inferenceconfig.json").write_text(json.dumps(
        {"entryScript": "score.py", "sourceDirectory": "./source_dir",
         "environment": _environment(["azureml-defaults", "numpy", "scikit-learn", "joblib"], "2")}, indent=4))  # fmt: skip
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (folder / "deploymentconfig.json").write_text(json.dumps({"computeType": "local", "port": port}, indent=4))
    (folder / "re-deploymentconfig.json").write_text(json.dumps(
        {"computeType": "aci", "containerResourceRequirements": {"cpu": 0.5, "memoryInGB": 1.0},
         "authEnabled": True, "sslEnabled": False, "appInsightsEnabled": False}, indent=4))  # fmt: skip
    return folder


@pytest.fixture
def az(tutorial: Path, tmp_path: Path) -> Az:
    return Az(tutorial, tmp_path / "ws")


@pytest.mark.slow
def test_deploy_local_cli_tutorial(az: Az, tutorial: Path, sklearn_model: Any) -> None:
    port = json.loads((tutorial / "deploymentconfig.json").read_text())["port"]
    rows = sklearn_model.X[:2].tolist()
    # "Register a model from a local file"
    az.ok("model", "register", "-n", "diabetes_sklearn", "-p", "./sklearn_regression_model.pkl")
    try:
        # "Deploy your machine learning model" (dummy entry script), then its logs
        r = az.ok("model", "deploy", "-n", "myservice", "-m", "diabetes_sklearn:1", "--overwrite",
                  "--ic", "dummyinferenceconfig.json", "--dc", "deploymentconfig.json")  # fmt: skip
        assert "Healthy" in r.out and f":{port}/score" in r.out
        assert "This is init" in az.ok("service", "get-logs", "-n", "myservice").out
        # "Call into your model": the liveness request and a scoring request
        assert requests.get(f"http://localhost:{port}", timeout=30).status_code == 200
        body = {"query": "What color is the fox", "context": "The quick brown fox jumped over the lazy dog."}
        answer = requests.post(f"http://localhost:{port}/score", json=body, timeout=30)
        assert answer.json() == f"test is {body}"

        # "Deploy again and call your service" with the real entry script, same name and port
        az.ok("model", "deploy", "-n", "myservice", "-m", "diabetes_sklearn:1", "--overwrite",
              "--ic", "inferenceconfig.json", "--dc", "deploymentconfig.json")  # fmt: skip
        assert "model loaded" in az.ok("service", "get-logs", "-n", "myservice").out
        scored = requests.post(f"http://localhost:{port}/score", json={"data": rows}, timeout=30).json()
        assert scored == pytest.approx(sklearn_model.model.predict(sklearn_model.X[:2]).tolist())

        # "Re-deploy to cloud" (ACI: the docker target here), as a dry run: no Docker needed
        plan = az.json("model", "deploy", "-n", "myaciservice", "-m", "diabetes_sklearn:1", "--overwrite",
                       "--ic", "inferenceconfig.json", "--dc", "re-deploymentconfig.json", "--dry-run")  # fmt: skip
        assert plan["computeType"] == "aci" and plan["deploymentConfig"]["auth_enabled"] is True
        assert plan["deploymentConfig"]["cpu_cores"] == 0.5
        assert [s["name"] for s in az.json("service", "list")] == ["myservice"]  # a dry run starts nothing

        # what the service commands answer while it runs
        shown = az.json("service", "show", "-n", "myservice")
        assert shown["state"] == "Healthy" and shown["models"] == ["diabetes_sklearn:1"]
        assert az.ok("service", "show", "-n", "myservice", "--query", "scoringUri", "-o", "tsv").out == \
            f"http://127.0.0.1:{port}/score\n"  # fmt: skip
        assert az.ok("service", "list", "--query", "[].name", "-o", "tsv").out == "myservice\n"
        assert az.json("service", "list", "-c", "local", "--model-name", "diabetes_sklearn")[0]["name"] == "myservice"
        assert az.json("service", "list", "-c", "docker") == []
    finally:
        # "Delete resources": the model id as the tutorial reads it (os.popen of the az line),
        # here the installed console script in a real process
        exe = shutil.which("mlmanage", path=str(Path(sys.executable).parent))
        assert exe, "the mlmanage console script is not installed next to this Python"
        stream = subprocess.run(
            f'{exe} model list --model-name=diabetes_sklearn --latest --query "[0].id" -o tsv',
            shell=True, capture_output=True, text=True, cwd=tutorial, timeout=120,
            env=dict(os.environ, MLMANAGE_WORKSPACE=str(az.ws)),
        )  # fmt: skip
        assert stream.returncode == 0, stream.stderr
        model_id = stream.stdout[0:-1]
        az.ok("service", "delete", "-n", "myservice")
    assert model_id == "diabetes_sklearn:1"
    assert "no service named 'myaciservice'" in az.error("service", "delete", "-n", "myaciservice")
    az.ok("model", "delete", f"--model-id={model_id}")
    assert az.json("model", "list") == [] and az.json("image", "list") == []


@pytest.mark.slow
def test_service_keys_update_and_remove_tag(az: Az, tutorial: Path, sklearn_model: Any) -> None:
    """``get-keys``, ``regen-key -k/-s``, ``update --ic --dc --add-tag/--remove-tag`` on a
    local service with key auth (Azure's how-to-authenticate-web-service and
    how-to-deploy-update-web-service CLI tabs)."""
    (tutorial / "authconfig.json").write_text(json.dumps({"computeType": "local", "authEnabled": True}))
    az.ok("model", "register", "-n", "diabetes_sklearn", "-p", "sklearn_regression_model.pkl")
    try:
        az.ok("model", "deploy", "-n", "keyed", "-m", "diabetes_sklearn:1", "--ic", "inferenceconfig.json",
              "--dc", "authconfig.json")  # fmt: skip
        keys = json.loads(az.ok("service", "get-keys", "-n", "keyed").out)  # az answers JSON by default
        assert set(keys) == {"primaryKey", "secondaryKey"} and all(keys.values())
        new = json.loads(az.ok("service", "regen-key", "-n", "keyed", "-k", "Secondary", "-s", "my-own-key-0123").out)
        assert new == {"primaryKey": keys["primaryKey"], "secondaryKey": "my-own-key-0123"}
        assert az.ok("service", "get-keys", "-n", "keyed", "--query", "secondaryKey", "-o", "tsv").out == "my-own-key-0123\n"
        uri = az.json("service", "show", "-n", "keyed")["scoringUri"]
        rows = {"data": sklearn_model.X[:1].tolist()}
        assert requests.post(uri, json=rows, headers={"Authorization": "Bearer my-own-key-0123"}, timeout=30).ok

        az.ok("model", "register", "-n", "diabetes_sklearn", "-p", "sklearn_regression_model.pkl")
        up = az.json("service", "update", "-n", "keyed", "-m", "diabetes_sklearn:2", "--ic", "inferenceconfig.json",
                     "--dc", "authconfig.json", "--add-tag", "stage=test", "--add-tag", "rev=2")  # fmt: skip
        assert up["models"] == ["diabetes_sklearn:2"] and up["tags"] == {"stage": "test", "rev": "2"}
        assert az.json("service", "update", "-n", "keyed", "--remove-tag", "stage")["tags"] == {"rev": "2"}
        assert "--remove-tag 'nope': the service has no such tag" in az.error("service", "update", "-n", "keyed",
                                                                             "--remove-tag", "nope")  # fmt: skip
        assert az.json("service", "list", "--tag", "rev=2")[0]["name"] == "keyed"
        assert az.json("service", "list", "--tag", "rev=3") == []
        assert az.json("service", "list", "--model-id", "diabetes_sklearn:1") == []
    finally:
        az("service", "delete", "-n", "keyed")


def test_output_formats_and_query(az: Az) -> None:
    """``-o json|tsv|table|yaml|none`` and ``--query`` as ``az`` prints them (knack's
    formatters), on ``model list``, ``model show`` and ``workspace show``."""
    az.ok("model", "register", "-n", "alpha", "-p", "sklearn_regression_model.pkl", "--tag", "area=qna",
          "-d", "first")  # fmt: skip
    az.ok("model", "register", "-n", "alpha", "-p", "sklearn_regression_model.pkl", "--tag", "area=qna")
    az.ok("model", "register", "-n", "beta", "-p", "sklearn_regression_model.pkl")

    listed = az.json("model", "list")
    assert [m["id"] for m in listed] == ["alpha:2", "alpha:1", "beta:1"]
    assert yaml.safe_load(az.ok("model", "list", "-o", "yaml").out) == listed
    assert az.ok("model", "list", "-o", "none").out == ""
    # a query building objects keeps its key order in tsv; a bare value prints as itself
    assert az.ok("model", "list", "--query", "[].{v: version, n: name}", "-o", "tsv").out == "2\talpha\n1\talpha\n1\tbeta\n"
    assert az.ok("model", "list", "--model-name", "alpha", "--latest", "--query", "[0].version", "-o", "tsv").out == "2\n"
    assert az.ok("model", "list", "--latest", "--query", "length(@)", "-o", "tsv").out == "2\n"
    # whole objects in tsv: values in sorted key order, a nested dict empty, a list its length
    one = az.json("model", "show", "--model-id", "alpha:1")
    tsv = az.ok("model", "show", "--model-id", "alpha:1", "-o", "tsv").out
    fields = tsv.rstrip("\n").split("\t")
    assert len(fields) == len(one) and fields[sorted(one).index("tags")] == ""
    assert fields[sorted(one).index("files")] == "1" and fields[sorted(one).index("id")] == "alpha:1"
    # table with a query: scalar columns, capitalised headers, id left out (az's auto table)
    table = az.ok("model", "list", "--query", "[?name=='alpha'].{name: name, version: version, id: id}", "-o", "table").out
    header, rule, *body = table.splitlines()
    assert header.split() == ["Name", "Version"] and set(rule) <= {"-", " "}
    assert [ln.split() for ln in body] == [["alpha", "2"], ["alpha", "1"]]
    # our own table without a query
    assert "alpha" in az.ok("model", "list").out
    # an answer of null prints nothing; an empty list prints []
    assert az.ok("model", "list", "--query", "[0].nosuchfield").out == ""
    assert az.json("model", "list", "--query", "[?name=='gamma']") == []
    # az's model show flags: --model-name with --version, or the latest
    assert az.json("model", "show", "--model-name", "alpha", "--version", "1")["description"] == "first"
    assert az.json("model", "show", "--model-name", "alpha")["version"] == 2
    assert az.json("model", "list", "--tag", "area=qna", "--query", "[].id") == ["alpha:2", "alpha:1"]


def test_workspace_name_and_azure_only_flags(az: Az, tmp_path: Path) -> None:
    """``-w/--workspace-name`` picks the local workspace of that name; ``-g`` and
    ``--subscription-id`` (the tutorial's ``-g <resource-group> -w <workspace-name>``) are
    accepted."""
    az.ok("workspace", "create", "-n", "myworkspace")
    az.ok("model", "register", "-n", "m", "-p", "sklearn_regression_model.pkl", "-g", "myresourcegroup",
          "-w", "myworkspace", "--subscription-id", "0000")  # fmt: skip
    assert az.json("model", "list", "-g", "myresourcegroup", "-w", "myworkspace", "--query", "[].id") == ["m:1"]
    assert az.json("workspace", "show", "--query", "name") == "myworkspace"
    line = az.error("model", "list", "-w", "otherworkspace")
    assert "'otherworkspace'" in line and "not" in line


def test_register_metadata_file_then_deploy_with_compute_target(az: Az, tutorial: Path) -> None:
    """``model register -t`` writes the model's JSON that ``model deploy -f`` reads;
    ``--ct`` names an attached AKS compute target (a kubeconfig context) whose namespace the
    Kubernetes manifests of ``--dry-run`` use."""
    from mlmanage_jupyter.core.compute import AksCompute, ComputeTarget
    from mlmanage_jupyter.core.workspace import Workspace

    reg = az.json("model", "register", "-n", "diabetes_sklearn", "-p", "sklearn_regression_model.pkl",
                  "-t", "model.json")  # fmt: skip
    assert json.loads((tutorial / "model.json").read_text())["modelId"] == reg["id"] == "diabetes_sklearn:1"
    kubeconfig = tutorial / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")
    ws = Workspace(az.ws)
    ComputeTarget.attach(ws, "akscomputetarget", AksCompute.attach_configuration(
        resource_group="rg", cluster_name="kind-ml", kubeconfig=kubeconfig, namespace="ml-prod"))  # fmt: skip
    (tutorial / "aksconfig.json").write_text(json.dumps({"computeType": "AKS", "numReplicas": 2}))
    r = az.ok("model", "deploy", "-n", "myservice", "-f", "model.json", "--ic", "inferenceconfig.json",
              "--dc", "aksconfig.json", "--ct", "akscomputetarget", "--dry-run")  # fmt: skip
    dep = next(d for d in yaml.safe_load_all(r.out) if d and d["kind"] == "Deployment")
    assert dep["metadata"]["namespace"] == "ml-prod" and dep["spec"]["replicas"] == 2
    assert dep["metadata"]["annotations"]["mlmanage.io/models"] == "diabetes_sklearn:1"
    assert az.json("service", "list") == [] and az.json("image", "list") == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["model", "list", "--query", "[?name=="], "--query '[?name==' is not a JMESPath expression"),
        (["model", "list", "--query", "abs(name)"], "--query 'abs(name)' failed"),
        (["model", "list", "-o", "xml"], "'xml' is not one of"),
        (["model", "deploy", "-n", "svc-a", "--ic", "inferenceconfig.json"], "give the models to deploy"),
        (["model", "deploy", "-n", "svc-a", "-f", "nosuch.json", "--ic", "inferenceconfig.json"], "nosuch.json"),
        (["model", "deploy", "-n", "svc-a", "-f", "bad-metadata.json", "--ic", "inferenceconfig.json"], 'has no "modelId"'),
        (["model", "deploy", "-n", "svc-a", "-m", "m:1", "--ic", "inferenceconfig.json", "--ct", "nosuch", "--dry-run"],
         "nosuch"),
        (["model", "delete", "--model-name", "m"], "give the version to delete"),
        (["model", "register", "-n", "m", "-p", "sklearn_regression_model.pkl", "-t", "no/such/dir/model.json"],
         "cannot write it"),
        (["service", "get-logs", "-n", "nosuch"], "no service named 'nosuch'"),
        (["service", "get-keys", "-n", "nosuch"], "no service named 'nosuch'"),
        (["service", "regen-key", "-n", "nosuch", "-k", "Tertiary"], "'Tertiary' is not one of"),
    ],
)
def test_bad_flags_are_one_error_line(az: Az, tutorial: Path, args: list[str], message: str) -> None:
    (tutorial / "bad-metadata.json").write_text(json.dumps({"name": "m"}))
    if "m:1" in args:
        az.ok("model", "register", "-n", "m", "-p", "sklearn_regression_model.pkl")
    line = az.error(*args)
    assert message in line, line


@pytest.mark.slow
def test_model_package_as_image_or_dockerfile_folder(az: Az, tutorial: Path) -> None:
    """``az ml model package``: an image of the models and entry script (nothing deployed),
    or with ``-p`` its Dockerfile and build context."""
    az.ok("model", "register", "-n", "diabetes_sklearn", "-p", "sklearn_regression_model.pkl")
    img = az.json("model", "package", "-m", "diabetes_sklearn:1", "--ic", "inferenceconfig.json",
                  "--in", "diabetes-image", "--il", "v1")  # fmt: skip
    assert img["id"] == "diabetes-image:1" and img["tags"] == {"label": "v1"}
    # no environment (the tutorial's pins python=3.6, whose wheels this machine has not): this Python's
    out = az.ok("model", "package", "-m", "diabetes_sklearn:1", "--es", "echo_score.py", "--sd", "source_dir",
                "-p", "pkg").out  # fmt: skip
    assert (tutorial / out.strip()).resolve() == (tutorial / "pkg").resolve()
    assert (tutorial / "pkg" / "Dockerfile").is_file() and (tutorial / "pkg" / "app" / "source_dir" / "echo_score.py").is_file()
    assert az.json("service", "list") == []


@pytest.mark.slow
def test_model_profile_as_the_reference_writes_it(az: Az, tutorial: Path, sklearn_model: Any) -> None:
    """``az ml model profile -n myprofile -m mymodel:1 --ic inferenceconfig.json -d "{...}"
    -t myprofileresult.json`` (Azure's v1 CLI reference), with one short load level."""
    az.ok("model", "register", "-n", "diabetes_sklearn", "-p", "sklearn_regression_model.pkl")
    body = json.dumps({"data": sklearn_model.X[:2].tolist()})
    prof = az.json("model", "profile", "-n", "myprofile", "-m", "diabetes_sklearn:1", "--ic", "inferenceconfig.json",
                   "-d", body, "-t", "myprofileresult.json", "--concurrency", "1", "--duration", "1")  # fmt: skip
    assert prof["name"] == "myprofile" and prof["totalQueries"] > 0 and prof["successRate"] == 1.0
    assert json.loads((tutorial / "myprofileresult.json").read_text())["name"] == "myprofile"
    assert az.json("service", "list") == [] and az.json("image", "list") == []  # profiling leaves nothing behind
    assert "give the requests to profile" in az.error("model", "profile", "-n", "p", "-m", "diabetes_sklearn:1",
                                                     "--ic", "inferenceconfig.json")  # fmt: skip


def test_model_update_as_the_reference_describes(az: Az) -> None:
    """``az ml model update`` ("Update a model in the workspace.", Azure's v1 CLI reference
    learn.microsoft.com/cli/azure/ml(v1)/model: ``az ml model update --model-id
    [--add-property] [--add-tag] [--description] [--remove-tag] ...``, each of
    ``--add-tag``/``--add-property``/``--remove-tag`` repeatable, ``--description`` replacing
    the current one). Properties stay write-once as ``Model.add_properties`` keeps them;
    every flag is checked before anything changes."""
    az.ok("model", "register", "-n", "m", "-p", "sklearn_regression_model.pkl", "--tag", "stage=dev",
          "--tag", "team=a", "-d", "first")  # fmt: skip
    out = az.json("model", "update", "--model-id", "m:1", "--add-tag", "stage=prod", "--add-tag", "rev=2",
                  "--remove-tag", "team", "--add-property", "origin=cli", "--description", "second")  # fmt: skip
    assert out["tags"] == {"stage": "prod", "rev": "2"} and out["properties"]["origin"] == "cli"
    assert out["description"] == "second"
    assert az.json("model", "show", "-i", "m:1", "--query", "[tags, description]") == [{"stage": "prod", "rev": "2"}, "second"]
    # the description alone; -n/-v pick the version as on model show
    assert az.json("model", "update", "-n", "m", "-v", "1", "--description", "third")["tags"] == {"stage": "prod", "rev": "2"}
    # bad input: one error line naming the flag, and the model unchanged
    assert "already has origin=cli; properties are write-once" in az.error("model", "update", "-i", "m:1",
                                                                            "--add-tag", "x=1", "--add-property", "origin=ui")
    assert "--remove-tag 'team': model m:1 has no such tag (tags: stage, rev)" in az.error(
        "model", "update", "-i", "m:1", "--remove-tag", "team", "--description", "lost?")
    assert "give one of them" in az.error("model", "update", "-i", "m:1", "--add-tag", "a=1", "--remove-tag", "a")
    assert "--add-tag 'novalue': write it as key=value" in az.error("model", "update", "-i", "m:1", "--add-tag", "novalue")
    assert "nothing to update" in az.error("model", "update", "-i", "m:1")
    assert az.json("model", "show", "-i", "m:1", "--query", "[tags, description]") == [{"stage": "prod", "rev": "2"}, "third"]
    # re-adding a property with its own value is allowed (write-once, not add-once)
    assert az.json("model", "update", "-i", "m:1", "--add-property", "origin=cli")["properties"]["origin"] == "cli"


def test_azure_core_output_sets_the_default_output(az: Az) -> None:
    """``AZURE_CORE_OUTPUT``: az's environment variable for its ``[core] output`` setting
    ("Environment variables ... AZURE_{section}_{name}", azure-cli's "Azure CLI configuration"
    page; its default is json). Unset, our default stays ``table``; set, it is every
    command's default; ``-o`` still wins; a bad value is one error naming the variable."""
    az.ok("model", "register", "-n", "m", "-p", "sklearn_regression_model.pkl", "-o", "none")
    table = az.ok("model", "list").out
    assert table.splitlines()[0].split()[:2] == ["name", "version"]  # ours: a table
    as_json = json.loads(az.ok("model", "list", env={"AZURE_CORE_OUTPUT": "json"}).out)
    assert [m["id"] for m in as_json] == ["m:1"]
    assert az.ok("model", "list", "--query", "[0].id", env={"AZURE_CORE_OUTPUT": "TSV"}).out == "m:1\n"
    assert az.ok("model", "list", "-o", "table", env={"AZURE_CORE_OUTPUT": "json"}).out == table
    assert az.ok("workspace", "show", env={"AZURE_CORE_OUTPUT": "none"}).out == ""
    assert az.ok("model", "list", env={"AZURE_CORE_OUTPUT": ""}).out == table  # empty counts as unset
    line = az.error("model", "list", env={"AZURE_CORE_OUTPUT": "xml"})
    assert line == "error: AZURE_CORE_OUTPUT='xml' is not an output format: use one of table, json, jsonc, tsv, yaml, yamlc, none"


def test_verbose_logs_to_stderr_and_v_stays_a_version(az: Az) -> None:
    """az's global ``--verbose`` ("Increase logging verbosity. Use --debug for full debug
    logs.", az's global parameters) and ``--debug`` log to stderr and leave stdout as it was;
    ``-v`` is not verbose here (az has no short form for it): it is the model/image version."""
    az.ok("model", "register", "-n", "m", "-p", "sklearn_regression_model.pkl", "-o", "none")
    az.ok("model", "register", "-n", "m", "-p", "sklearn_regression_model.pkl", "-o", "none")
    quiet = az.ok("model", "show", "-n", "m", "-v", "1", "-o", "json")
    loud = az.ok("model", "show", "-n", "m", "-v", "1", "-o", "json", "--verbose")
    assert json.loads(quiet.out)["version"] == 1 and loud.out == quiet.out
    assert quiet.err == "" and loud.err.startswith("INFO: workspace 'ws' at ")
    assert az.ok("model", "list", "--debug", "-o", "none").err.startswith("INFO: workspace")
    assert az.ok("model", "list", "-o", "none").err == ""  # nothing left switched on
    assert az.error("model", "list", "-v") == "error: No such option '-v'."
    assert az("--version").out.startswith("mlmanage, version ")


@pytest.mark.slow
def test_get_access_token_and_get_logs_init(az: Az, tutorial: Path, sklearn_model: Any) -> None:
    """``az ml service get-access-token -n <service-name>`` (azure-docs v1 "Consume a model
    deployed as a web service": "you can use the following command to get a token") answers
    ``accessToken``, ``refreshAfter``, ``expiryOn``, ``tokenType`` (SDK 1.0.85 release notes:
    "Renamed token to accessToken and refreshBy to refreshAfter. Added expiryOn and tokenType
    properties."); the token opens ``/score``. ``get-logs --init`` (Azure: the init
    container's logs) prints the service's own log, init() output included, after a note."""
    (tutorial / "tokenconfig.json").write_text(json.dumps({"computeType": "local", "tokenAuthEnabled": True}))
    az.ok("model", "register", "-n", "diabetes_sklearn", "-p", "sklearn_regression_model.pkl")
    try:
        az.ok("model", "deploy", "-n", "tokened", "-m", "diabetes_sklearn:1", "--ic", "inferenceconfig.json",
              "--dc", "tokenconfig.json")  # fmt: skip
        token = json.loads(az.ok("service", "get-access-token", "-n", "tokened").out)  # JSON by default, as az
        assert set(token) == {"accessToken", "refreshAfter", "expiryOn", "tokenType"} and token["tokenType"] == "Bearer"
        refresh, expiry = datetime.fromisoformat(token["refreshAfter"]), datetime.fromisoformat(token["expiryOn"])
        assert (expiry - refresh).total_seconds() == pytest.approx(1800, abs=2)  # valid 1 h, refresh after half
        uri = az.json("service", "show", "-n", "tokened")["scoringUri"]
        rows = {"data": sklearn_model.X[:1].tolist()}
        assert requests.post(uri, json=rows, timeout=30).status_code == 401
        headers = {"Authorization": f"Bearer {token['accessToken']}"}
        assert requests.post(uri, json=rows, headers=headers, timeout=30).json() == pytest.approx(
            sklearn_model.model.predict(sklearn_model.X[:1]).tolist())
        init = az.ok("service", "get-logs", "-n", "tokened", "--init")
        assert "model loaded" in init.out  # the entry script's init() printed it
        assert init.err.startswith("note: services here have no init container")
        assert az.ok("service", "get-logs", "-n", "tokened").err == ""
        assert "no service named 'nosuch'" in az.error("service", "get-access-token", "-n", "nosuch")
    finally:
        az("service", "delete", "-n", "tokened")
