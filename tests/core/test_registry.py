"""The model registry through the Python API: Azure ML v1 semantics, bad input, crash safety."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mlmanage_jupyter.core.environment import InferenceConfig
from mlmanage_jupyter.core.errors import (
    ArtifactCorruptError,
    ModelNotFoundError,
    ValidationError,
)
from mlmanage_jupyter.core.image import Image
from mlmanage_jupyter.core.model import Model, collect_garbage
from mlmanage_jupyter.core.store import metadata as md
from mlmanage_jupyter.core.workspace import Workspace


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    p = tmp_path / "model.pkl"
    p.write_bytes(os.urandom(4096))
    return p


@pytest.fixture
def model_folder(tmp_path: Path) -> Path:
    d = tmp_path / "saved_model"
    (d / "variables").mkdir(parents=True)
    (d / "saved_model.pb").write_bytes(b"pb" * 100)
    (d / "variables" / "variables.data").write_bytes(os.urandom(10_000))
    (d / "variables" / "variables.index").write_bytes(b"index")
    return d


def _counts(ws: Workspace) -> tuple[int, int]:
    with ws.read() as c:
        return (
            c.execute(select(func.count()).select_from(md.models)).scalar(),
            c.execute(select(func.count()).select_from(md.model_files)).scalar(),
        )


# ---------------------------------------------------------------- register / versions
def test_register_file_versions_increment(ws: Workspace, model_file: Path) -> None:
    versions = [Model.register(ws, model_file, "diabetes").version for _ in range(3)]
    assert versions == [1, 2, 3]
    m = Model(ws, "diabetes")
    assert (m.version, m.id, m.root_name, m.is_folder, m.file_count) == (3, "diabetes:3", "model.pkl", False, 1)
    assert m.size == 4096
    assert Model(ws, "diabetes", version=1).version == 1
    assert Model(ws, id="diabetes:2").version == 2


def test_register_folder_keeps_layout(ws: Workspace, model_folder: Path, tmp_path: Path) -> None:
    m = Model.register(ws, model_folder, "tf", model_framework=Model.Framework.TENSORFLOW, model_framework_version="2.15")
    assert m.is_folder and m.file_count == 3
    assert sorted(f["path"] for f in m.get_files()) == [
        "saved_model.pb",
        "variables/variables.data",
        "variables/variables.index",
    ]
    out = Path(m.download(tmp_path / "dl"))
    assert out == tmp_path / "dl" / "saved_model"
    for rel in ("saved_model.pb", "variables/variables.data", "variables/variables.index"):
        assert (out / rel).read_bytes() == (model_folder / rel).read_bytes()


def test_download_round_trip_byte_identical_and_exist_ok(ws: Workspace, model_file: Path, tmp_path: Path) -> None:
    m = Model.register(ws, model_file, "m")
    p = Path(m.download(tmp_path / "out"))
    assert p.read_bytes() == model_file.read_bytes()
    with pytest.raises(ValidationError, match="already exists"):
        m.download(tmp_path / "out")
    assert Path(m.download(tmp_path / "out", exist_ok=True)).read_bytes() == model_file.read_bytes()


def test_tags_properties_filters_and_latest(ws: Workspace, model_file: Path) -> None:
    Model.register(ws, model_file, "a", tags={"stage": "dev", "team": "x"}, properties={"auc": "0.8"})
    Model.register(ws, model_file, "a", tags={"stage": "prod"})
    Model.register(ws, model_file, "b", tags={"stage": "dev"})
    ids = lambda ms: sorted(m.id for m in ms)  # noqa: E731
    assert ids(Model.list(ws)) == ["a:1", "a:2", "b:1"]
    assert ids(Model.list(ws, name="a")) == ["a:1", "a:2"]
    assert ids(Model.list(ws, tags=["team"])) == ["a:1"]
    assert ids(Model.list(ws, tags=[["stage", "dev"]])) == ["a:1", "b:1"]
    assert ids(Model.list(ws, properties=[["auc", "0.8"]])) == ["a:1"]
    assert ids(Model.list(ws, latest=True)) == ["a:2", "b:1"]
    # latest among the filtered versions (Azure applies filters first)
    assert ids(Model.list(ws, tags=[["stage", "dev"]], latest=True)) == ["a:1", "b:1"]
    df = Model.list(ws).to_dataframe()
    assert list(df.columns)[:4] == ["name", "version", "tags", "properties"]
    assert len(df) == 3 and set(df["sha256"].str.len()) == {64}
    assert "<table" in Model.list(ws)._repr_html_()
    assert "a:2" in Model(ws, "a")._repr_html_()


def test_add_remove_tags_and_write_once_properties(ws: Workspace, model_file: Path) -> None:
    m = Model.register(ws, model_file, "m", tags={"k": "v"}, properties={"p": "1"})
    m.add_tags({"k2": "v2"})
    m.remove_tags(["k"])
    m.add_properties({"q": "2"})
    m.add_properties({"p": "1"})  # same value again is fine
    with pytest.raises(ValidationError, match="can't be changed"):
        m.add_properties({"p": "9"})
    again = Model(ws, "m")
    assert again.tags == {"k2": "v2"}
    assert again.properties == {"p": "1", "q": "2"}


def test_get_model_path_from_workspace_and_deployment_layouts(ws: Workspace, model_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Model.register(ws, model_file, "m")
    Model.register(ws, model_file, "m")
    p = Path(Model.get_model_path("m", _workspace=ws))
    assert p.name == "model.pkl" and p.read_bytes() == model_file.read_bytes()
    assert "/m/2/" in str(p)
    assert "/m/1/" in Model.get_model_path("m", version=1, _workspace=ws)
    # inside a deployment, one model: the variable is the folder holding its files
    single = tmp_path / "single" / "m" / "2"
    single.mkdir(parents=True)
    (single / "model.pkl").write_bytes(b"x")
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(single))
    monkeypatch.setenv("MLMANAGE_MODELS", "m:2")
    assert Model.get_model_path("m") == str(single / "model.pkl")
    with pytest.raises(ModelNotFoundError, match="not deployed"):
        Model.get_model_path("other")
    # several models: the root, with <name>/<version>/ below
    root = tmp_path / "multi"
    for name, v in (("m", 1), ("m", 3), ("n", 1)):
        (root / name / str(v)).mkdir(parents=True)
        (root / name / str(v) / "model.pkl").write_bytes(b"y")
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(root))
    monkeypatch.setenv("MLMANAGE_MODELS", "m:3,n:1")
    assert Model.get_model_path("m") == str(root / "m" / "3" / "model.pkl")
    assert Model.get_model_path("m", version=1) == str(root / "m" / "1" / "model.pkl")
    assert Model.get_model_path("n") == str(root / "n" / "1" / "model.pkl")


def test_register_object_sklearn(ws: Workspace, tmp_path: Path) -> None:
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import LinearRegression

    X, y = load_diabetes(return_X_y=True)
    est = LinearRegression().fit(X, y)
    m = Model.register_object(ws, est, "diabetes", tags={"src": "notebook"})
    assert m.model_framework == "ScikitLearn" and m.root_name == "model.joblib"
    assert m.properties["serializer"] == "joblib"
    import joblib

    loaded = joblib.load(Model.get_model_path("diabetes", _workspace=ws))
    assert (loaded.predict(X[:5]) == est.predict(X[:5])).all()
    with pytest.raises(ValidationError, match="unknown serializer"):
        Model.register_object(ws, est, "diabetes", serializer="yaml")


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "name",
    ["../evil", "a/b", "a..b", "..", "bad\x00name", "tab\tname", "", "-lead", "x" * 256, "a\\b"],
)
def test_bad_names_rejected_registry_intact(ws: Workspace, model_file: Path, name: str) -> None:
    Model.register(ws, model_file, "good")
    before = _counts(ws)
    with pytest.raises(ValidationError, match="model name"):
        Model.register(ws, model_file, name)
    assert _counts(ws) == before
    assert not (ws.path / "models" / "evil").exists()


def test_bad_paths_and_tags(ws: Workspace, model_file: Path, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="does not exist"):
        Model.register(ws, tmp_path / "nope.pkl", "m")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValidationError, match="empty"):
        Model.register(ws, empty, "m")
    with pytest.raises(ValidationError, match="strings"):
        Model.register(ws, model_file, "m", tags={"n": 1})  # type: ignore[dict-item]
    with pytest.raises(ValidationError, match="dict"):
        Model.register(ws, model_file, "m", tags=["a"])  # type: ignore[arg-type]
    assert _counts(ws) == (0, 0)


def test_missing_version_and_name(ws: Workspace, model_file: Path) -> None:
    Model.register(ws, model_file, "m")
    with pytest.raises(ModelNotFoundError, match="no version 7; versions: 1"):
        Model(ws, "m", version=7)
    with pytest.raises(ModelNotFoundError, match="no model named 'zzz'"):
        Model(ws, "zzz")


def test_corrupt_artifact_detected_on_download(ws: Workspace, model_file: Path, tmp_path: Path) -> None:
    m = Model.register(ws, model_file, "m")
    obj = ws.artifacts.object_path(m.sha256)  # type: ignore[attr-defined]
    os.chmod(obj, 0o644)
    data = bytearray(obj.read_bytes())
    data[100] ^= 0xFF
    obj.write_bytes(bytes(data))
    with pytest.raises(ArtifactCorruptError, match="corrupt"):
        m.download(tmp_path / "dl")
    assert not (tmp_path / "dl" / "model.pkl").exists()
    assert not any(p.name.startswith(".partial") for p in (tmp_path / "dl").iterdir())


def test_delete_takes_its_unused_images_along(ws: Workspace, model_file: Path, tmp_path: Path) -> None:
    m = Model.register(ws, model_file, "m")
    script = tmp_path / "score.py"
    script.write_text("def init():\n    pass\n\ndef run(data):\n    return data\n")
    img = Image.create(ws, "img", [m], InferenceConfig(entry_script=str(script)))
    m.delete()  # refused only while a service uses it (tests/core/test_services.py); its images go too
    assert list(Image.list(ws)) == [] and not img.context_path.exists()
    with pytest.raises(ModelNotFoundError):
        Model(ws, "m")
    assert collect_garbage(ws)["objects_deleted"] == 1


# ---------------------------------------------------------------- crash safety / concurrency
_REGISTER = textwrap.dedent(
    """
    import sys
    from mlmanage_jupyter.core.model import Model
    from mlmanage_jupyter.core.workspace import Workspace
    m = Model.register(Workspace(sys.argv[1]), sys.argv[2], sys.argv[3])
    print(m.version)
    """
)


@pytest.mark.parametrize("point", ["after_artifacts", "before_commit"])
def test_registration_killed_midway_leaves_nothing(ws: Workspace, model_folder: Path, point: str) -> None:
    Model.register(ws, model_folder, "m")
    before = _counts(ws)
    env = {**os.environ, "MLMANAGE_TEST_CRASH_AT": point}
    r = subprocess.run([sys.executable, "-c", _REGISTER, str(ws.path), str(model_folder), "m"], env=env, capture_output=True)
    assert r.returncode == 137, r.stderr.decode()
    assert _counts(ws) == before
    # the next registration takes the next version, as if nothing happened
    assert Model.register(ws, model_folder, "m").version == 2
    assert [m.version for m in Model.list(ws, name="m")] == [2, 1]


def test_eight_processes_get_consecutive_versions(ws: Workspace, model_file: Path) -> None:
    procs = [
        subprocess.Popen([sys.executable, "-c", _REGISTER, str(ws.path), str(model_file), "same"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(8)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1].decode()[-500:] for o in outs]
    versions = sorted(int(o[0]) for o in outs)
    assert versions == list(range(1, 9))
    assert _counts(ws) == (8, 8)
