"""The magics in a real IPython shell: parse, call the core, return what they show.

Each test runs magics with ``run_line_magic`` / ``run_cell_magic`` against a fresh
workspace in tmp_path and asserts on the workspace's state and the returned objects.
Deploy tests run a real local scoring service (a child process on 127.0.0.1).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from mlmanage_jupyter.core.image import Image
from mlmanage_jupyter.core.model import Model
from mlmanage_jupyter.core.webservice import Webservice

SCORE = """
import json, joblib, numpy as np
from mlmanage_jupyter import Model

def init():
    global model
    model = joblib.load(Model.get_model_path("diabetes"))

def run(data):
    return model.predict(np.array(json.loads(data)["data"])).tolist()
"""

SCORE_DOUBLE = SCORE.replace(".tolist()", " * 2).tolist()").replace("model.predict(", "(model.predict(")


@pytest.fixture(scope="module")
def _shell() -> InteractiveShell:
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "mlmanage_jupyter")
    return shell


@pytest.fixture
def shell(_shell: InteractiveShell, workspace: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[InteractiveShell]:
    """The shell with the magics loaded; the default workspace is the test's ``workspace``."""
    magics = _shell.magics_manager.registry["MlManageMagics"]
    magics._ws = None
    monkeypatch.setenv("MLMANAGE_WORKSPACE", str(workspace.path))
    yield _shell
    magics._ws = None
    for var in ("reg", "rows", "sample"):
        _shell.user_ns.pop(var, None)


def line(shell: InteractiveShell, magic: str, args: str = "") -> Any:
    return shell.run_line_magic(magic, args)


@pytest.fixture
def registered(shell: InteractiveShell, sklearn_model: Any) -> Model:
    return line(shell, "register_model", f"diabetes {sklearn_model.path}")


# ------------------------------------------------------------------------------ loading
def test_load_ext_registers_every_magic(shell: InteractiveShell) -> None:
    lines = shell.magics_manager.magics["line"]
    for name in ("mlmanage_workspace", "register_model", "models", "deploy", "services", "update", "logs",
                 "test_endpoint", "profile", "undeploy", "monitor", "mlmanage"):  # fmt: skip
        assert name in lines, name
    assert "score_script" in shell.magics_manager.magics["cell"]


# ------------------------------------------------------------------------------ registry
def test_register_file_versions_tags_and_listing(shell: InteractiveShell, workspace: Any, sklearn_model: Any) -> None:
    m1 = line(shell, "register_model", f"diabetes {sklearn_model.path} --tag stage=dev --tag team=ml "
                                       f"--property data=diabetes --description 'first try' --framework ScikitLearn")  # fmt: skip
    m2 = line(shell, "register_model", f"diabetes {sklearn_model.path} --tag stage=prod")
    assert (m1.version, m2.version) == (1, 2)
    assert m1.tags == {"stage": "dev", "team": "ml"}
    assert m1.properties == {"data": "diabetes"}
    assert m1.description == "first try"  # quotes removed, spaces kept
    assert m1.model_framework == "ScikitLearn"
    assert [m.id for m in Model.list(workspace)] == ["diabetes:2", "diabetes:1"]

    df = line(shell, "models")
    assert list(df["version"]) == [2, 1]
    assert list(line(shell, "models", "--latest")["version"]) == [2]
    assert list(line(shell, "models", "--tag stage=dev")["version"]) == [1]
    assert list(line(shell, "models", "--tag team")["version"]) == [1]
    assert list(line(shell, "models", "--property data=diabetes")["version"]) == [1]
    assert len(line(shell, "models", "other")) == 0
    # the model's files are there, byte for byte
    path = Model.get_model_path("diabetes", 1, _workspace=workspace)
    assert Path(path).read_bytes() == sklearn_model.path.read_bytes()


def test_register_folder_and_object(shell: InteractiveShell, workspace: Any, tmp_path: Path, sklearn_model: Any) -> None:
    folder = tmp_path / "bundle"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("a")
    (folder / "sub" / "b.bin").write_bytes(b"\0\1\2")
    m = line(shell, "register_model", f"bundle {folder}")
    assert m.is_folder and m.file_count == 2
    assert sorted(f["path"] for f in m.get_files()) == ["a.txt", "sub/b.bin"]

    shell.user_ns["reg"] = sklearn_model.model
    obj = line(shell, "register_model", "fitted --object reg --tag k=v")
    assert obj.model_framework == "ScikitLearn"
    assert obj.tags == {"k": "v"}
    assert Model(workspace, "fitted", 1).properties["serializer"] == "joblib"
    assert [f["path"] for f in obj.get_files()] == ["reg.pkl"]  # named after the variable
    named = line(shell, "register_model", "fitted2 --object reg --file-name est.joblib")
    assert [f["path"] for f in named.get_files()] == ["est.joblib"]
    with pytest.raises(UsageError, match="--file-name is for --object"):
        line(shell, "register_model", f"bundle2 {folder} --file-name x.pkl")


def test_register_object_keeps_the_previous_versions_file_name(
    shell: InteractiveShell, workspace: Any, sklearn_model: Any
) -> None:
    """v1 registered as a file, v2 from a variable: the entry script's path still fits."""
    v1 = line(shell, "register_model", f"diabetes {sklearn_model.path}")
    shell.user_ns["reg"] = sklearn_model.model
    v2 = line(shell, "register_model", "diabetes --object reg")
    assert v2.version == 2
    assert [f["path"] for f in v2.get_files()] == [f["path"] for f in v1.get_files()] == [Path(sklearn_model.path).name]
    import joblib

    assert type(joblib.load(Model.get_model_path("diabetes", 2, _workspace=workspace))).__name__ == "LinearRegression"


def test_mlmanage_lists_every_magic_on_one_line(shell: InteractiveShell) -> None:
    text = line(shell, "mlmanage")
    rows = [r for r in str(text).splitlines() if r.startswith("%")]
    names = [r.split()[0] for r in rows]
    for name in ("%register_model", "%models", "%deploy", "%services", "%update", "%logs", "%test_endpoint",
                 "%profile", "%undeploy", "%mlmanage_workspace", "%mlmanage", "%%score_script"):  # fmt: skip
        assert name in names, name
    assert all(len(r.split(None, 1)) == 2 and "::" not in r for r in rows)  # a description each, not the usage


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ("diabetes /no/such/file.pkl", "model_path does not exist"),
        ("a/b {model}", "invalid model name 'a/b'"),
        ("a..b {model}", "invalid model name 'a..b'"),
        ("diabetes {model} --tag noequals", "--tag 'noequals': write it as key=value"),
        ("diabetes", "give the model's PATH"),
        ("diabetes {model} --object reg", "either PATH or --object"),
        ("diabetes --object nosuchvar", "no variable named 'nosuchvar'"),
        ("", "the following arguments are required: name"),
        ("diabetes {model} --bogus", "unrecognized arguments: --bogus"),
        ("diabetes {model} --description 'unclosed", "cannot parse"),
    ],
)
def test_register_bad_input_is_one_usage_error(
    shell: InteractiveShell, workspace: Any, sklearn_model: Any, args: str, message: str
) -> None:
    with pytest.raises(UsageError, match=None) as e:
        line(shell, "register_model", args.format(model=sklearn_model.path))
    assert message in str(e.value)
    assert Model.list(workspace) == []  # nothing registered


def test_register_empty_folder_and_control_characters(shell: InteractiveShell, workspace: Any, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="is empty: nothing to register"):
        line(shell, "register_model", f"m {tmp_path / 'empty'}")
    shell.user_ns["reg"] = {"a": 1}
    with pytest.raises(UsageError, match="control characters"):
        line(shell, "register_model", "'bad\tname' --object reg")


def test_models_bad_filter(shell: InteractiveShell) -> None:
    with pytest.raises(UsageError, match="filter '=x'"):
        line(shell, "models", "--tag =x")


def test_mlmanage_workspace_switches(shell: InteractiveShell, tmp_path: Path, sklearn_model: Any) -> None:
    other = tmp_path / "other-ws"
    ws = line(shell, "mlmanage_workspace", str(other))
    assert ws.path == other.resolve()
    line(shell, "register_model", f"diabetes {sklearn_model.path}")
    assert [m.id for m in Model.list(other)] == ["diabetes:1"]
    assert line(shell, "mlmanage_workspace").path == other.resolve()


# ------------------------------------------------------------------------------ entry scripts
def test_score_script_saves_and_checks(shell: InteractiveShell, workspace: Any) -> None:
    path = shell.run_cell_magic("score_script", "myscore", SCORE)
    assert path == workspace.path / "scripts" / "myscore.py"
    assert path.read_text() == SCORE

    with pytest.raises(UsageError, match=r"must define run\(\)"):
        shell.run_cell_magic("score_script", "norun", "def init():\n    pass\n")
    assert (workspace.path / "scripts" / "norun.py").is_file()  # kept, so nothing typed is lost
    with pytest.raises(UsageError, match="syntax error at line 2"):
        shell.run_cell_magic("score_script", "broken", "def init():\ndef run(x): pass\n")
    with pytest.raises(UsageError, match="script name 'a-b'"):
        shell.run_cell_magic("score_script", "a-b", SCORE)


def test_score_script_test_runs_init_and_run_in_a_subprocess(
    shell: InteractiveShell, registered: Model, sklearn_model: Any
) -> None:
    rows = sklearn_model.X[:2].tolist()
    out = shell.run_cell_magic(
        "score_script", f"myscore --model diabetes:1 --test '{json.dumps({'data': rows})}'", SCORE
    )
    assert out == pytest.approx(sklearn_model.model.predict(sklearn_model.X[:2]).tolist())

    shell.user_ns["sample"] = {"data": rows}  # a notebook variable works too
    out = shell.run_cell_magic("score_script", "myscore --model diabetes --test sample", SCORE)
    assert len(out) == 2

    with pytest.raises(UsageError) as e:  # run() raising: the traceback is shown
        shell.run_cell_magic("score_script", "myscore --model diabetes --test '{\"nodata\": 1}'", SCORE)
    assert "KeyError: 'data'" in str(e.value) and "Traceback" in str(e.value)
    with pytest.raises(UsageError, match="neither valid JSON"):
        shell.run_cell_magic("score_script", "myscore --test not-json", SCORE)
    with pytest.raises(UsageError, match="has no version 7; versions: 1"):
        shell.run_cell_magic("score_script", "myscore --model diabetes:7 --test '{}'", SCORE)


# ------------------------------------------------------------------------------ deploy: validation
@pytest.mark.parametrize(
    ("args", "message"),
    [
        ("svc-a --script myscore", "give at least one --model"),
        ("svc-a --model diabetes", "give the entry script"),
        ("svc-a --model diabetes:9 --script myscore", "has no version 9; versions: 1"),
        ("svc-a --model diabetes:x --script myscore", "must be a positive integer"),
        ("svc-a --model diabetes --script nosuch", "entry script 'nosuch' not found"),
        ("Bad_Name --model diabetes --script myscore", "invalid service name 'Bad_Name'"),
        ("svc-a --model diabetes --script myscore --cpu 1", "--cpu do(es) not apply to --target local"),
        ("svc-a --model diabetes --script myscore --target kubernetes --port 80", "--port do(es) not apply"),
        ("svc-a --model diabetes --script myscore --target nowhere", "invalid choice: 'nowhere'"),
        ("svc-a --model diabetes --script myscore --port 70000", "port must be an integer from 1 to 65535"),
        ("svc-a --model diabetes --ic /no/ic.json", "inference config file not found"),
    ],
)
def test_deploy_bad_input_is_one_usage_error(
    shell: InteractiveShell, workspace: Any, registered: Model, args: str, message: str
) -> None:
    shell.run_cell_magic("score_script", "myscore", SCORE)
    with pytest.raises(UsageError) as e:
        line(shell, "deploy", args)
    assert message in str(e.value)
    assert Webservice.list(workspace) == []


def test_deploy_dry_run_kubernetes_prints_manifests(shell: InteractiveShell, workspace: Any, registered: Model) -> None:
    shell.run_cell_magic("score_script", "myscore", SCORE)
    text = line(shell, "deploy", "svc-k --model diabetes --script myscore --target kubernetes --replicas 3 --cpu 0.5 --auth --dry-run")
    import yaml

    docs = [d for d in yaml.safe_load_all(text) if d]
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "Service", "Secret"} <= kinds
    dep = next(d for d in docs if d["kind"] == "Deployment")
    assert dep["spec"]["replicas"] == 3
    assert dep["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"] in ("500m", "0.5")
    assert Webservice.list(workspace) == []  # nothing deployed


def test_deploy_dry_run_local_and_deploymentconfig_json(
    shell: InteractiveShell, workspace: Any, registered: Model, tmp_path: Path
) -> None:
    shell.run_cell_magic("score_script", "myscore", SCORE)
    dc = tmp_path / "deploymentconfig.json"
    dc.write_text(json.dumps({"computeType": "ACI", "containerResourceRequirements": {"cpu": 0.5, "memoryInGB": 1}}))
    out = json.loads(line(shell, "deploy", f"svc-a --model diabetes --script myscore --dc {dc} --dry-run"))
    assert out["computeType"] == "aci"
    assert out["deploymentConfig"]["cpu_cores"] == 0.5 and out["deploymentConfig"]["memory_gb"] == 1.0
    assert out["image"]["models"] == ["diabetes:1"]
    from mlmanage_jupyter.core.image import Image

    assert Image.list(workspace) == []  # a dry run writes nothing to the workspace
    with pytest.raises(UsageError, match="--dc sets the target"):
        line(shell, "deploy", f"svc-a --model diabetes --script myscore --dc {dc} --port 5000")


def test_widget_flags(shell: InteractiveShell, registered: Model) -> None:
    """--browse / --form / --follow / no JSON open the widgets (or say they are missing)."""
    try:
        import mlmanage_jupyter.widgets as widgets

        have = hasattr(widgets, "RegistryBrowser")
    except ImportError:
        have = False
    if not have:
        with pytest.raises(UsageError, match="RegistryBrowser"):
            line(shell, "models", "--browse")
        pytest.skip("mlmanage_jupyter.widgets.RegistryBrowser is not there yet")
    browser = line(shell, "models", "--browse")
    form = line(shell, "deploy", "--form")
    try:
        assert type(browser).__name__ == "RegistryBrowser"
        assert [m.id for m in browser.model_list] == ["diabetes:1"]
        assert type(form).__name__ == "DeploymentForm"
    finally:
        browser.close()
        form.close()


# ------------------------------------------------------------------------------ the loop on the local target
@pytest.mark.slow
def test_deploy_call_update_logs_undeploy_local(
    shell: InteractiveShell, workspace: Any, registered: Model, sklearn_model: Any
) -> None:
    shell.run_cell_magic("score_script", "myscore", SCORE)
    shell.run_cell_magic("score_script", "double", SCORE_DOUBLE)
    svc = line(shell, "deploy", "svc-magic --model diabetes:1 --script myscore")
    try:
        assert isinstance(svc, Webservice)
        assert svc.state == "Healthy"
        assert svc.scoring_uri.startswith("http://127.0.0.1:")
        assert "Healthy" in svc._repr_html_()
        rows = sklearn_model.X[:3].tolist()
        expected = sklearn_model.model.predict(sklearn_model.X[:3])

        res = line(shell, "test_endpoint", f"svc-magic {json.dumps({'data': rows})}")
        assert res.status == 200 and res.ok
        assert res.response == pytest.approx(expected.tolist())
        assert res.latency_ms > 0
        # the README's form: the JSON in shell quotes
        quoted = line(shell, "test_endpoint", f"svc-magic '{json.dumps({'data': rows})}'")
        assert quoted.status == 200 and quoted.response == pytest.approx(expected.tolist())
        # the answer prints as one JSON document (a list of numbers on one line)
        body = repr(quoted).splitlines()[1:]
        assert len(body) == 1 and json.loads(body[0]) == pytest.approx(expected.tolist())
        bad = line(shell, "test_endpoint", 'svc-magic {"nodata": 1}')
        assert bad.status == 500 and "KeyError" in str(bad.response)

        # a second model version served by the new script, on the same scoring_uri
        line(shell, "register_model", f"diabetes {sklearn_model.path}")
        with pytest.raises(UsageError, match="already exists"):
            line(shell, "deploy", "svc-magic --model diabetes:1 --script myscore")
        updated = line(shell, "update", "svc-magic --model diabetes:2 --script double")
        assert updated.models == ["diabetes:2"]
        assert updated.scoring_uri == svc.scoring_uri
        # the old generation may answer a last request right after update() returns (reported to
        # the local target's owner); within a bounded time every answer comes from version 2
        deadline = time.monotonic() + 10
        while updated.run(json.dumps({"data": rows})) != pytest.approx((expected * 2).tolist()):
            assert time.monotonic() < deadline, "the service still answers with version 1 after %update"
            time.sleep(0.1)
        for _ in range(5):
            assert updated.run(json.dumps({"data": rows})) == pytest.approx((expected * 2).tolist())

        df = line(shell, "services")
        assert list(df["name"]) == ["svc-magic"] and list(df["state"]) == ["Healthy"]
        assert list(df["models"]) == ["diabetes:2"]

        # the model in use can't be deleted
        from mlmanage_jupyter.core.errors import InUseError

        with pytest.raises(InUseError, match="service svc-magic"):
            Model(workspace, "diabetes", 2).delete()
        line(shell, "logs", "svc-magic --tail 5")  # prints, no error
        live = line(shell, "logs", "svc-magic --follow")
        console = line(shell, "test_endpoint", "svc-magic")
        monitor = line(shell, "monitor", "svc-magic --refresh 0 --window 5")
        try:
            assert type(live).__name__ == "LiveLogs" and live.service.name == "svc-magic"
            assert type(console).__name__ == "EndpointConsole"
            assert type(monitor).__name__ == "MonitorPanel" and monitor.window_min == 5 and not monitor.live.value
        finally:
            live.close()
            console.close()
            monitor.close()
        with pytest.raises(UsageError, match="--window needs a positive"):
            line(shell, "monitor", "svc-magic --window 0")

        shell.user_ns["rows"] = [{"data": rows}]
        prof = line(shell, "profile", "svc-magic --samples rows --concurrency 1,2 --duration 0.5")
        assert [lv.concurrency for lv in prof.levels] == [1, 2]
        assert prof.requests_sent > 0
        with pytest.raises(UsageError, match="give integers"):
            line(shell, "profile", "svc-magic --samples rows --concurrency one")
        with pytest.raises(UsageError, match="no variable named 'nope'"):
            line(shell, "profile", "svc-magic --samples nope")
    finally:
        line(shell, "undeploy", "svc-magic")
    assert Webservice.list(workspace) == []
    with pytest.raises(UsageError, match="no service named 'svc-magic'"):
        line(shell, "undeploy", "svc-magic")
    assert Image.list(workspace) == []  # the images made for the service went with it (issue 12)


@pytest.mark.slow
def test_deploy_failing_init_shows_the_log(shell: InteractiveShell, workspace: Any, registered: Model) -> None:
    shell.run_cell_magic("score_script", "boom", "def init():\n    raise RuntimeError('no model here')\n\ndef run(d):\n    return d\n")
    try:
        with pytest.raises(UsageError) as e:
            line(shell, "deploy", "svc-boom --model diabetes --script boom")
        text = str(e.value)
        assert "RuntimeError: no model here" in text.splitlines()[0]  # the headline names it
        assert text.count("Traceback (most recent call last)") == 1  # once, not once per process
    finally:
        for s in Webservice.list(workspace, refresh=False):
            s.delete()


def test_progress_follows_build_stages_on_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    """Outside a notebook front-end every line goes to stdout (never stderr); the stage is the
    Docker build's current step."""
    from mlmanage_jupyter.magics import Progress

    p = Progress("deploying x")
    p("building image x from m:1")
    p("Step 2/7 : COPY wheels/ /wheels/")
    p(" ---> Running in 0123")
    p.done("x is Healthy")
    out, err = capsys.readouterr()
    assert err == "" and "Step 2/7" in out and out.strip().endswith("x is Healthy")
    assert p.step == (2, 7) and p.stage == "COPY wheels/ /wheels/" and len(p.lines) == 3
    assert "step 2/7" in p._html() and "<progress value='2' max='7'" in p._html()
