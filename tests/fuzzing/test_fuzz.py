"""``Webservice.fuzz()`` against real local services: a planted bug in an ``inference_schema``
entry script is found and reported with a minimal example; the tutorial diabetes service is
fuzzed as CI runs it; services without a schema and with key auth; bad arguments."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from infra.diabetes import score_script  # noqa: E402

from mlmanage_jupyter import InferenceConfig, LocalWebservice, Model  # noqa: E402
from mlmanage_jupyter.core.errors import ValidationError  # noqa: E402
from mlmanage_jupyter.core.fuzzing import COLUMNS, contract_of, protocol_cases  # noqa: E402
from mlmanage_jupyter.core.webservice import Webservice, deploy  # noqa: E402

# The planted bug: run() is right for every list of numbers except one holding a negative
# value (math.sqrt raises ValueError there: a 500 for a valid request).
PLANTED = """
import math
from inference_schema.schema_decorators import input_schema, output_schema
from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType

def init():
    pass

@input_schema("values", StandardPythonParameterType([1.0, 4.0, 9.0]))
@output_schema(StandardPythonParameterType([1.0, 2.0, 3.0]))
def run(values):
    return [math.sqrt(v) for v in values]
"""

# The same contract without the bug: negative values are refused with a clear 400.
FIXED = PLANTED.replace(
    "    return [math.sqrt(v) for v in values]",
    "    if not isinstance(values, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):\n"
    "        from azureml.contrib.services.aml_response import AMLResponse\n"
    "        return AMLResponse(json.dumps({'error': {'code': 'BadRequest', 'message': 'values: a list of numbers'}}), 400)\n"
    "    return [math.sqrt(abs(v)) for v in values]",
).replace("import math", "import json, math")

# No schema at all: run() reads {"x": [numbers]} and answers their sum; anything else a 400.
UNDECORATED = """
import json
from azureml.contrib.services.aml_response import AMLResponse

def init():
    pass

def run(raw):
    try:
        data = json.loads(raw)
        xs = data["x"]
        return {"sum": float(sum(float(v) for v in xs))}
    except (ValueError, TypeError, KeyError) as e:
        return AMLResponse(json.dumps({"error": {"code": "BadRequest", "message": str(e)}}), 400)
"""


@pytest.fixture
def serve(workspace: Any, tmp_path: Path) -> Iterator[Callable[..., Webservice]]:
    """``serve(name, script_source, **local_config) -> Webservice`` (Healthy); deleted after."""
    (tmp_path / "m.txt").write_text("unused")
    model = Model.register(workspace, tmp_path / "m.txt", "fuzzmodel")
    started: list[Webservice] = []

    def _serve(name: str, source: str, **cfg: Any) -> Webservice:
        script = tmp_path / f"{name}.py"
        script.write_text(source)
        svc = deploy(workspace, name, [model], InferenceConfig(entry_script=str(script)),
                     LocalWebservice.deploy_configuration(**cfg))
        started.append(svc)
        svc.wait_for_deployment(timeout_sec=120)
        return svc

    yield _serve
    for s in started:
        s.delete()


def test_fuzz_finds_the_planted_bug_with_a_minimal_example(serve: Callable[..., Webservice]) -> None:
    svc = serve("fuzz-planted", PLANTED)
    report = svc.fuzz(max_examples=60, seed=1, timeout_s=90)
    assert not report.ok
    df = report.findings
    assert list(df.columns) == COLUMNS
    bug = df[(df.kind == "5xx") & (df.case == "valid")]
    assert len(bug) == 1, df.to_string()
    row = bug.iloc[0]
    assert row.status == 500 and "ValueError" in row.response
    assert "math domain error" in svc.get_logs()  # the traceback: in the logs (older engines also sent it)
    # shrunk to the smallest body that still fails: one negative number
    minimal = json.loads(row.minimal_example)
    assert set(minimal) == {"values"} and len(minimal["values"]) == 1 and minimal["values"][0] < 0
    assert svc.call(minimal).status_code == 500  # it really reproduces
    assert "NOT OK" in report.summary() and "5xx" in report.summary()
    html = report._repr_html_()
    assert "ValueError" in html and "NOT OK" in html
    print(report)
    assert report.by_case["valid"] >= 20 and report.by_case["protocol"] >= 10
    assert report.schema_source == "swagger"


def test_fuzz_of_the_fixed_script_reports_no_fault_of_the_script(serve: Callable[..., Webservice]) -> None:
    svc = serve("fuzz-fixed", FIXED)
    report = svc.fuzz(max_examples=60, seed=1, timeout_s=90)
    print(report)
    df = report.findings
    assert df[df.case == "valid"].empty, str(report)  # every valid request answered 200, output as promised
    assert not df.response.str.contains("ValueError").any()  # the planted fault is gone
    assert report.statuses.get(200, 0) >= 20
    assert report.requests >= sum(report.by_case.values())  # plus re-sends of bodies that dropped a connection
    # what remains can only be the engine's own answers to hostile bodies (issue 16): each
    # one named with a body that reproduces it
    for f in report.finding_list:
        assert f.case == "invalid" or f.case.startswith("protocol:"), f
    assert report.ok == df.empty


def test_fuzz_without_a_schema_uses_the_sample_input(serve: Callable[..., Webservice]) -> None:
    svc = serve("fuzz-noschema", UNDECORATED, auth_enabled=True)
    report = svc.fuzz(max_examples=40, seed=2, timeout_s=60, sample_input={"x": [1.5, 2.0]})
    assert report.schema_source == "sample"
    assert 401 not in report.statuses  # the key was sent
    assert report.statuses.get(200, 0) >= 15
    # the script answers every body by the contract; only the engine's own answers to
    # hostile bodies (issue 16) may remain
    assert all(f.case.startswith("protocol:") for f in report.finding_list), str(report)
    generic = svc.fuzz(max_examples=20, seed=2, timeout_s=60)
    assert generic.schema_source == "generic"
    # any JSON object is "valid" then: those the script refuses with a JSON 400 are warnings
    assert all(f.case.startswith("protocol:") or f.severity == "warning" for f in generic.finding_list), str(generic)
    assert (generic.findings.kind == "rejected_valid").any()


def _quickstart_script() -> str:
    """The entry script of notebooks/01-quickstart.ipynb (its ``%%score_script`` cell)."""
    nb = json.loads((Path(__file__).resolve().parents[2] / "notebooks" / "01-quickstart.ipynb").read_text())
    for cell in nb["cells"]:
        src = "".join(cell["source"])
        if cell["cell_type"] == "code" and src.startswith("%%score_script"):
            return src.split("\n", 1)[1]
    raise AssertionError("no %%score_script cell in the quickstart notebook")


@pytest.mark.parametrize("tutorial", ["infra-diabetes", "quickstart"])
def test_fuzz_on_the_tutorial_diabetes_service(workspace: Any, sklearn_model: Any, tmp_path: Path, tutorial: str) -> None:
    """The diabetes entry scripts of the tutorials (tests/infra/diabetes.py, the quickstart
    notebook's), as CI runs them. What the report says depends on how the engine answers
    client faults (issue 16): it must name each fault precisely, with a body that reproduces it."""
    model = Model.register(workspace, sklearn_model.path, "diabetes")
    script = score_script("fuzz") if tutorial == "infra-diabetes" else _quickstart_script()
    (tmp_path / "score.py").write_text(script)
    svc = deploy(workspace, "fuzz-diabetes", [model], InferenceConfig(entry_script=str(tmp_path / "score.py")),
                 LocalWebservice.deploy_configuration())
    try:
        svc.wait_for_deployment(timeout_sec=120)
        report = svc.fuzz(max_examples=60, seed=3, timeout_s=120)
        print(report)
        assert report.schema_source == "swagger"
        assert report.by_case["valid"] >= 5 and report.by_case["invalid"] >= 20
        assert report.statuses.get(200, 0) >= 1  # the example itself is served
        assert report.stopped_early is None, report.summary()
        assert not (report.findings.kind == "crash").any()  # the service never dropped a connection
        for f in report.finding_list:
            assert f.kind in {"5xx", "timeout", "schema", "non_json_error", "rejected_valid"}
            if f.kind in ("5xx", "rejected_valid") and f.case in ("valid", "invalid"):
                assert svc.call(f.minimal_example).status_code == f.status, f
        assert report.ok == (not (report.findings.severity == "error").any())
    finally:
        svc.delete()


def test_contract_from_swagger_sample_or_nothing() -> None:
    from mlmanage_jupyter.server.entry import openapi_document

    doc = openapi_document("s", {"type": "object", "properties": {"a": {"type": "integer", "format": "int64"}},
                                 "example": {"a": 1}}, {"type": "array", "items": {"type": "number", "format": "double"}})
    c = contract_of(doc)
    assert c.source == "swagger" and c.example == {"a": 1}
    assert c.input_schema == {"type": "object", "properties": {"a": {"type": "integer"}}}
    assert c.output_schema == {"type": "array", "items": {"type": "number"}}
    generic = openapi_document("s", {"type": "object", "example": {}}, {"type": "object", "example": {}})
    assert contract_of(generic).source == "generic"
    s = contract_of(generic, sample_input={"x": [1.0]})
    assert s.source == "sample" and s.input_schema["properties"]["x"]["type"] == "array"
    names = [n for n, _, _ in protocol_cases({"x": [1.0]})]
    assert {"empty body", "5000-digit integer", "deep nesting", "text/plain content type"} <= set(names)
    body = dict((n, b) for n, b, _ in protocol_cases({"x": [1.0]}))["5000-digit integer"]
    assert body == b'{"x": [' + b"9" * 5000 + b"]}"


def test_fuzz_rejects_bad_arguments(serve: Callable[..., Webservice]) -> None:
    svc = serve("fuzz-args", FIXED)
    with pytest.raises(ValidationError, match="max_examples must be an integer >= 0"):
        svc.fuzz(max_examples=-1)
    with pytest.raises(ValidationError, match="timeout_s must be a number of seconds > 0"):
        svc.fuzz(timeout_s=0)
    with pytest.raises(ValidationError, match="seed must be an integer"):
        svc.fuzz(seed="x")  # type: ignore[arg-type]


@pytest.mark.slow
def test_deploy_magic_fuzz_then_cli_verb(workspace: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``%deploy ... --fuzz N`` deploys, then displays the FuzzReport; ``mlmanage service fuzz``
    prints it and exits 1 on a fault (2 on bad input)."""
    import os
    import subprocess

    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    monkeypatch.setenv("MLMANAGE_WORKSPACE", str(workspace.path))
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "mlmanage_jupyter")
    shell.magics_manager.registry["MlManageMagics"]._ws = None
    (tmp_path / "m.txt").write_text("unused")
    Model.register(workspace, tmp_path / "m.txt", "fuzzmodel")
    script = tmp_path / "planted.py"
    script.write_text(PLANTED)
    with capture_output() as cap:
        svc = shell.run_line_magic("deploy", f"fuzz-magic --model fuzzmodel --script {script} --fuzz 30")
    try:
        assert isinstance(svc, Webservice) and svc.state == "Healthy"
        html = "".join(o.data.get("text/html", "") for o in cap.outputs)
        assert "fuzz fuzz-magic: NOT OK" in html and "ValueError" in html

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            env = dict(os.environ, MLMANAGE_WORKSPACE=str(workspace.path))
            return subprocess.run([sys.executable, "-m", "mlmanage_jupyter.cli", "service", "fuzz", *args],
                                  capture_output=True, text=True, env=env, timeout=300)

        r = cli("-n", "fuzz-magic", "--max-examples", "30", "--seed", "4", "-o", "json")
        assert r.returncode == 1, r.stdout + r.stderr
        out = json.loads(r.stdout)
        assert out["ok"] is False and out["seed"] == 4
        bug = [f for f in out["findings"] if f["case"] == "valid" and f["kind"] == "5xx"]
        assert len(bug) == 1 and "ValueError" in bug[0]["response"]
        assert json.loads(bug[0]["minimal_example"])["values"][0] < 0
        table = cli("-n", "fuzz-magic", "--max-examples", "10")
        assert table.returncode == 1 and table.stdout.startswith("fuzz fuzz-magic: NOT OK")
        assert "minimal example (5xx 500, valid)" in table.stdout
        bad = cli("-n", "fuzz-magic", "--sample-input", "{nope")
        assert bad.returncode == 2 and bad.stderr.startswith("error: --sample-input is not valid JSON")
        missing = cli("-n", "no-such-svc")
        assert missing.returncode == 2 and "no-such-svc" in missing.stderr
    finally:
        svc.delete()


# Three planted faults, each on its own kind of valid input: a zero hangs past the scoring
# timeout (504), a value above 1e6 kills the worker process (dropped connection), a negative
# value raises (500).
PLANTED_THREE = """
import math, os, time
from inference_schema.schema_decorators import input_schema, output_schema
from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType

def init():
    pass

@input_schema("values", StandardPythonParameterType([1.0, 4.0, 9.0]))
@output_schema(StandardPythonParameterType([1.0, 2.0, 3.0]))
def run(values):
    if any(v == 0 for v in values):
        time.sleep(1.5)
    if any(v > 1e6 for v in values):
        os._exit(3)
    return [math.sqrt(v) for v in values]
"""


@pytest.mark.slow
def test_fuzz_tells_a_timeout_a_crash_and_a_5xx_apart(serve: Callable[..., Webservice]) -> None:
    svc = serve("fuzz-three", PLANTED_THREE, workers=2, scoring_timeout_ms=500)
    report = svc.fuzz(max_examples=80, seed=5, timeout_s=150)
    print(report)
    valid = {f.kind: f for f in report.finding_list if f.case == "valid"}
    assert {"5xx", "timeout", "crash"} <= set(valid), str(report)
    assert valid["timeout"].status == 504
    assert 0 in json.loads(valid["timeout"].minimal_example)["values"]
    assert valid["crash"].status is None and "connection" in valid["crash"].response
    assert max(json.loads(valid["crash"].minimal_example)["values"]) > 1e6
    assert min(json.loads(valid["5xx"].minimal_example)["values"]) < 0
    assert report.stopped_early in (None, "timeout_s reached")
    # the supervisor replaces the workers the fuzzer killed: the service serves again
    # (its state may say Unhealthy meanwhile: the crashes are in its status)
    print(svc.state, svc.error)
    assert svc.call({"values": [4.0]}, timeout=30).body == [2.0]
