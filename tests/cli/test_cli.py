"""The ``mlmanage`` CLI as a real subprocess, with ``MLMANAGE_WORKSPACE`` in tmp_path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mlmanage_jupyter.core.environment import InferenceConfig
from mlmanage_jupyter.core.image import Image
from mlmanage_jupyter.core.model import Model
from mlmanage_jupyter.core.workspace import Workspace

SCORE = """
import json, joblib, numpy as np
from mlmanage_jupyter import Model

def init():
    global model
    model = joblib.load(Model.get_model_path("diabetes"))

def run(data):
    return model.predict(np.array(json.loads(data)["data"])).tolist()
"""


class Cli:
    def __init__(self, ws_path: Path, cwd: Path) -> None:
        self.ws_path = ws_path
        self.cwd = cwd

    def __call__(self, *args: str, input: str | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, MLMANAGE_WORKSPACE=str(self.ws_path))
        return subprocess.run(
            [sys.executable, "-m", "mlmanage_jupyter.cli", *args],
            capture_output=True, text=True, env=env, cwd=self.cwd, input=input, timeout=timeout,
        )  # fmt: skip

    def ok(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        r = self(*args, **kw)
        assert r.returncode == 0, f"mlmanage {' '.join(args)} -> {r.returncode}\n{r.stdout}\n{r.stderr}"
        return r

    def json(self, *args: str, **kw: Any) -> Any:
        return json.loads(self.ok(*args, "-o", "json", **kw).stdout)

    def error(self, *args: str) -> str:
        """Run a command that must fail: exit 2 and one ``error: ...`` line on stderr."""
        r = self(*args)
        assert r.returncode == 2, f"expected exit 2, got {r.returncode}\n{r.stdout}\n{r.stderr}"
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
        return lines[0]


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "ws", tmp_path)


def test_installed_entry_point_and_help(cli: Cli) -> None:
    exe = Path(sys.executable).with_name("mlmanage")
    if not exe.exists():
        pytest.skip("the mlmanage console script is not installed in this environment")
    r = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0
    for group in ("model", "service", "image", "workspace"):
        assert group in r.stdout


def test_workspace_create_and_show(cli: Cli, tmp_path: Path) -> None:
    other = tmp_path / "team-ws"
    created = cli.json("--workspace", str(other), "workspace", "create", "-n", "team")
    assert created["name"] == "team" and created["path"] == str(other.resolve())
    assert (other / "config.json").is_file()
    assert cli.json("--workspace", str(other), "workspace", "show")["name"] == "team"
    assert cli.json("workspace", "show")["path"] == str(cli.ws_path.resolve())  # from MLMANAGE_WORKSPACE
    assert "already exists" in cli.error("--workspace", str(other), "workspace", "create", "--no-exist-ok")


def test_register_versions_list_filters_show(cli: Cli, sklearn_model: Any, tmp_path: Path) -> None:
    m1 = cli.json("model", "register", "-n", "diabetes", "-p", str(sklearn_model.path), "--tag", "stage=dev",
                  "--property", "data=diabetes", "--description", "first one", "--model-framework", "ScikitLearn")  # fmt: skip
    assert (m1["id"], m1["tags"], m1["properties"]) == ("diabetes:1", {"stage": "dev"}, {"data": "diabetes"})
    assert m1["description"] == "first one" and m1["modelFramework"] == "ScikitLearn"
    folder = tmp_path / "bundle"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("a")
    (folder / "sub" / "b.bin").write_bytes(os.urandom(2048))
    m2 = cli.json("model", "register", "-n", "diabetes", "-p", str(folder), "--tag", "stage=prod")
    assert m2["version"] == 2 and m2["isFolder"] and m2["fileCount"] == 2

    assert [m["id"] for m in cli.json("model", "list")] == ["diabetes:2", "diabetes:1"]
    assert [m["id"] for m in cli.json("model", "list", "--latest")] == ["diabetes:2"]
    assert [m["id"] for m in cli.json("model", "list", "--tag", "stage=dev")] == ["diabetes:1"]
    assert [m["id"] for m in cli.json("model", "list", "--property", "data")] == ["diabetes:1"]
    assert cli.json("model", "list", "-n", "other") == []
    table = cli.ok("model", "list").stdout
    assert "diabetes" in table and "stage=prod" in table

    shown = cli.json("model", "show", "-n", "diabetes")  # latest
    assert shown["version"] == 2 and sorted(f["path"] for f in shown["files"]) == ["a.txt", "sub/b.bin"]
    assert cli.json("model", "show", "-i", "diabetes:1")["version"] == 1
    assert cli.json("model", "show", "-n", "diabetes", "-v", "1")["version"] == 1


def test_download_round_trip_is_byte_identical(cli: Cli, sklearn_model: Any, tmp_path: Path) -> None:
    folder = tmp_path / "bundle"
    (folder / "sub").mkdir(parents=True)
    files = {"a.txt": b"hello", "sub/b.bin": os.urandom(100_000)}
    for rel, data in files.items():
        (folder / rel).write_bytes(data)
    cli.ok("model", "register", "-n", "bundle", "-p", str(folder))
    cli.ok("model", "register", "-n", "single", "-p", str(sklearn_model.path))

    out = tmp_path / "out"
    got = Path(cli.ok("model", "download", "-n", "bundle", "-t", str(out)).stdout.strip())
    assert got == out / "bundle"
    for rel, data in files.items():
        assert (got / rel).read_bytes() == data
    single = Path(cli.ok("model", "download", "-i", "single:1", "-t", str(out)).stdout.strip())
    assert single.read_bytes() == sklearn_model.path.read_bytes()

    assert "already exists" in cli.error("model", "download", "-n", "bundle", "-t", str(out))
    cli.ok("model", "download", "-n", "bundle", "-t", str(out), "--overwrite")


def test_delete_takes_unused_images_along(cli: Cli, sklearn_model: Any, tmp_path: Path) -> None:
    cli.ok("model", "register", "-n", "diabetes", "-p", str(sklearn_model.path))
    cli.ok("model", "register", "-n", "diabetes", "-p", str(sklearn_model.path))
    script = tmp_path / "score.py"
    script.write_text(SCORE)
    ws = Workspace(cli.ws_path)
    Image.create(ws, "diabetes-img", [Model(ws, "diabetes", 2)], InferenceConfig(entry_script=str(script)))
    ws.engine.dispose()

    assert "give the version to delete" in cli.error("model", "delete", "-n", "diabetes")
    assert cli.ok("model", "delete", "-i", "diabetes:1").stdout.strip() == "deleted model diabetes:1"
    assert [m["id"] for m in cli.json("model", "list")] == ["diabetes:2"]

    images = cli.json("image", "list")
    assert [i["id"] for i in images] == ["diabetes-img:1"] and images[0]["models"] == ["diabetes:2"]
    assert cli.json("image", "show", "-i", "diabetes-img:1")["entryScript"] == "score.py"
    exported = Path(cli.ok("image", "export", "-n", "diabetes-img", "-p", str(tmp_path / "ctx")).stdout.strip())
    assert json.loads((exported / "image.json").read_text())["models"][0]["name"] == "diabetes"
    assert (exported / "azureml-models" / "diabetes" / "2" / sklearn_model.path.name).read_bytes() == sklearn_model.path.read_bytes()
    # no service uses diabetes:2 (refusal while one does: test_deploy_run_update_keys_logs_delete_local
    # and tests/core/test_services.py): its image goes with it (issue 12, Azure's cleanup)
    cli.ok("model", "delete", "-n", "diabetes", "-v", "2")
    assert cli.json("model", "list") == [] and cli.json("image", "list") == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["model", "register", "-n", "diabetes", "-p", "/no/such/file"], "model_path does not exist"),
        (["model", "register", "-n", "a/b", "-p", "{model}"], "invalid model name 'a/b'"),
        (["model", "register", "-n", "..", "-p", "{model}"], "invalid model name '..'"),
        (["model", "register", "-n", "bad\x01name", "-p", "{model}"], "control characters"),
        (["model", "register", "-n", "m", "-p", "{model}", "--tag", "novalue"], "--tag 'novalue': write it as key=value"),
        (["model", "register", "-n", "m", "-p", "{empty}"], "is empty: nothing to register"),
        (["model", "register", "-p", "{model}"], "Missing option '-n' / '--name'"),
        (["model", "show", "-n", "nosuch"], "no model named 'nosuch'"),
        (["model", "show", "-i", "diabetes:abc"], "must be a positive integer"),
        (["model", "show"], "give the model as --model-id NAME:VERSION"),
        (["model", "list", "-o", "xml"], "'xml' is not one of"),
        (["model", "frobnicate"], "No such command 'frobnicate'"),
        (["service", "show", "-n", "nosuch"], "no service named 'nosuch'"),
        (["service", "deploy", "-n", "svc-a", "-m", "nosuch:1", "--entry-script", "{score}"], "no model named 'nosuch'"),
        (["service", "deploy", "-n", "svc-a", "-m", "m:1"], "give the entry script"),
        (["service", "deploy", "-n", "svc-a", "-m", "m:1", "--ic", "/no/ic.json"], "inference config file not found"),
        (["service", "deploy", "-n", "svc-a", "-m", "m:1", "--entry-script", "{score}", "--dc", "{baddc}"], "unknown computeType 'Mars'"),
        (["image", "show", "-i", "nosuch:1"], "no image nosuch:1"),
    ],
)
def test_bad_input_is_one_error_line_exit_2(cli: Cli, sklearn_model: Any, tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "score.py").write_text(SCORE)
    (tmp_path / "dc.json").write_text('{"computeType": "Mars"}')
    subst = {"{model}": str(sklearn_model.path), "{empty}": str(tmp_path / "empty"), "{score}": str(tmp_path / "score.py"),
             "{baddc}": str(tmp_path / "dc.json")}  # fmt: skip
    if "m:1" in args:
        cli.ok("model", "register", "-n", "m", "-p", str(sklearn_model.path))
    line = cli.error(*[subst.get(a, a) for a in args])
    assert message in line, line


def test_deploy_dry_run_kubernetes_from_azure_files(cli: Cli, sklearn_model: Any, tmp_path: Path) -> None:
    import yaml

    cli.ok("model", "register", "-n", "diabetes", "-p", str(sklearn_model.path))
    (tmp_path / "score.py").write_text(SCORE)
    (tmp_path / "inferenceconfig.json").write_text(json.dumps({"entryScript": "score.py", "runtime": "python"}))
    (tmp_path / "deploymentconfig.json").write_text(json.dumps(
        {"computeType": "AKS", "numReplicas": 2, "containerResourceRequirements": {"cpu": 0.25, "memoryInGB": 1}}
    ))  # fmt: skip
    r = cli.ok("service", "deploy", "-n", "svc-k", "-m", "diabetes:1", "--ic", str(tmp_path / "inferenceconfig.json"),
               "--dc", str(tmp_path / "deploymentconfig.json"), "--dry-run")  # fmt: skip
    docs = [d for d in yaml.safe_load_all(r.stdout) if d]
    dep = next(d for d in docs if d["kind"] == "Deployment")
    assert dep["metadata"]["name"] == "svc-k" and dep["spec"]["replicas"] == 2
    assert cli.json("service", "list") == []
    assert cli.json("image", "list") == []  # a dry run writes nothing to the workspace


@pytest.mark.slow
def test_deploy_run_update_keys_logs_delete_local(cli: Cli, sklearn_model: Any, tmp_path: Path) -> None:
    cli.ok("model", "register", "-n", "diabetes", "-p", str(sklearn_model.path))
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "score.py").write_text(SCORE)
    (tmp_path / "app" / "score2.py").write_text(SCORE.replace(".tolist()", " * 2).tolist()").replace("model.predict(", "(model.predict("))
    (tmp_path / "inferenceconfig.json").write_text(json.dumps({"entryScript": "score.py", "sourceDirectory": "app"}))
    (tmp_path / "deploymentconfig.json").write_text(json.dumps({"computeType": "local", "authEnabled": True}))
    rows = sklearn_model.X[:2].tolist()
    expected = sklearn_model.model.predict(sklearn_model.X[:2])

    r = cli("service", "deploy", "-n", "svc-cli", "-m", "diabetes:1", "--ic", str(tmp_path / "inferenceconfig.json"),
            "--dc", str(tmp_path / "deploymentconfig.json"), "-o", "json")  # fmt: skip
    try:
        assert r.returncode == 0, r.stderr
        svc = json.loads(r.stdout)
        assert svc["state"] == "Healthy" and svc["authEnabled"] and svc["models"] == ["diabetes:1"]
        assert "starting svc-cli" in r.stderr  # progress goes to stderr

        out = json.loads(cli.ok("service", "run", "-n", "svc-cli", "-d", json.dumps({"data": rows})).stdout)
        assert out == pytest.approx(expected.tolist())
        out = json.loads(cli.ok("service", "run", "-n", "svc-cli", input=json.dumps({"data": rows})).stdout)
        assert len(out) == 2
        assert "answered 500" in cli.error("service", "run", "-n", "svc-cli", "-d", '{"nodata": 1}')

        keys = json.loads(cli.ok("service", "keys", "-n", "svc-cli").stdout)
        new = json.loads(cli.ok("service", "regen-key", "-n", "svc-cli", "-k", "Primary").stdout)
        assert new["primaryKey"] != keys["primaryKey"] and new["secondaryKey"] == keys["secondaryKey"]
        assert len(cli.ok("service", "run", "-n", "svc-cli", "-d", json.dumps({"data": rows})).stdout) > 2

        listed = cli.json("service", "list")
        assert [(s["name"], s["state"]) for s in listed] == [("svc-cli", "Healthy")]
        assert "svc-cli" in cli.ok("service", "list").stdout

        cli.ok("model", "register", "-n", "diabetes", "-p", str(sklearn_model.path))
        up = cli.json("service", "update", "-n", "svc-cli", "-m", "diabetes:2", "--entry-script", "score2.py",
                      "--source-directory", str(tmp_path / "app"), "--add-tag", "rev=2")  # fmt: skip
        assert up["models"] == ["diabetes:2"] and up["scoringUri"] == svc["scoringUri"] and up["tags"] == {"rev": "2"}
        deadline = time.monotonic() + 10  # the old generation may answer a last request (see magics test)
        while json.loads(cli.ok("service", "run", "-n", "svc-cli", "-d", json.dumps({"data": rows})).stdout) != \
                pytest.approx((expected * 2).tolist()):
            assert time.monotonic() < deadline, "still answering with version 1 after service update"
        assert "used by" in cli.error("model", "delete", "-i", "diabetes:2")
        assert cli.ok("service", "logs", "-n", "svc-cli", "--tail", "50").stdout.strip()
        assert "already exists" in cli.error("service", "deploy", "-n", "svc-cli", "-m", "diabetes:1",
                                             "--ic", str(tmp_path / "inferenceconfig.json"))  # fmt: skip
    finally:
        cli("service", "delete", "-n", "svc-cli")
    assert cli.json("service", "list") == []
    assert "no service named 'svc-cli'" in cli.error("service", "delete", "-n", "svc-cli")
