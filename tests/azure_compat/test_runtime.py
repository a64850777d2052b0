"""The engine's ``azureml`` runtime without a service: model paths in Azure's two layouts, the
import shim never shadowing a real install, AMLRequest/AMLResponse as Werkzeug objects."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mlmanage_jupyter.server.azure_runtime import AMLResponse, build_request
from mlmanage_jupyter.server.model_path import ModelPathError, model_path_in_deployment


def _tree(root: Path, files: list[str]) -> Path:
    for rel in files:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("" if rel.endswith(".py") else rel)
    return root


def test_one_model_layout(tmp_path: Path) -> None:
    # one model: AZUREML_MODEL_DIR is the version folder holding the registered file or folder
    d = _tree(tmp_path / "azureml-models" / "m" / "3", ["model.pkl"])
    env = {"AZUREML_MODEL_DIR": str(d), "MLMANAGE_MODELS": "m:3"}
    assert model_path_in_deployment("m", env=env) == str(d / "model.pkl")
    assert model_path_in_deployment("m", 3, env=env) == str(d / "model.pkl")
    with pytest.raises(ModelPathError, match="version 2 is not in this deployment; deployed: m:3"):
        model_path_in_deployment("m", 2, env=env)
    with pytest.raises(ModelPathError, match="'other' is not deployed with this service; deployed: m"):
        model_path_in_deployment("other", env=env)
    # a registered folder with several files: the version folder itself
    f = _tree(tmp_path / "f" / "1", ["a.txt", "b.txt"])
    assert model_path_in_deployment("f", env={"AZUREML_MODEL_DIR": str(f), "MLMANAGE_MODELS": "f:1"}) == str(f)
    # a one-model folder named like the model with digit folders inside stays one model
    odd = _tree(tmp_path / "odd" / "1", ["odd/1/w.bin"])
    assert model_path_in_deployment("odd", env={"AZUREML_MODEL_DIR": str(odd), "MLMANAGE_MODELS": "odd:1"}) == str(odd / "odd")


def test_several_models_layout(tmp_path: Path) -> None:
    root = _tree(tmp_path / "azureml-models", ["a/1/a.pkl", "b/2/x.bin", "b/2/y.bin"])
    env = {"AZUREML_MODEL_DIR": str(root), "MLMANAGE_MODELS": "a:1,b:2"}
    assert model_path_in_deployment("a", env=env) == str(root / "a" / "1" / "a.pkl")
    assert model_path_in_deployment("b", 2, env=env) == str(root / "b" / "2")
    with pytest.raises(ModelPathError, match=r"model b version 1 is not in this deployment; versions here: \[2\]"):
        model_path_in_deployment("b", 1, env=env)
    with pytest.raises(ModelPathError, match="'c' is not deployed with this service; deployed: a, b"):
        model_path_in_deployment("c", env=env)
    # without MLMANAGE_MODELS (a container started by hand): the folders decide
    assert model_path_in_deployment("b", env={"AZUREML_MODEL_DIR": str(root)}) == str(root / "b" / "2")


def test_outside_a_deployment_is_a_clear_error() -> None:
    with pytest.raises(ModelPathError, match="AZUREML_MODEL_DIR is not set"):
        model_path_in_deployment("m", env={})


def _python(code: str, path: list[Path]) -> dict:
    env_path = ":".join(str(p) for p in path)
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_shim_serves_azureml_only_when_no_real_install_does(tmp_path: Path) -> None:
    probe = """
        import json
        from mlmanage_jupyter.server.azure_runtime import install_azureml_shim
        install_azureml_shim()
        import azureml.core.model, azureml.monitoring
        print(json.dumps({"model": azureml.core.model.__file__, "monitoring": azureml.monitoring.__file__,
                          "shim": getattr(azureml, "MLMANAGE_SHIM", False)}))
    """
    repo = Path(__file__).resolve().parents[2]
    # nothing installed: every module from the shim
    out = _python(probe, [repo])
    assert out["shim"] is True and "azureml_shim" in out["model"] and "azureml_shim" in out["monitoring"]
    # a real regular package azureml with azureml.core.model: the real one wins for it,
    # the shim still fills the modules the real install lacks
    real = tmp_path / "site"
    _tree(real, ["azureml/__init__.py", "azureml/core/__init__.py", "azureml/core/model.py"])
    out = _python(probe, [repo, real])
    assert out["model"] == str(real / "azureml" / "core" / "model.py") and out["shim"] is False
    assert "azureml_shim" in out["monitoring"]
    # a namespace-package install (pkgutil-less, no azureml/__init__.py) with only monitoring
    ns = tmp_path / "ns"
    _tree(ns, ["azureml/monitoring/__init__.py"])
    out = _python(probe, [repo, ns])
    assert out["monitoring"] == str(ns / "azureml" / "monitoring" / "__init__.py")
    assert "azureml_shim" in out["model"]


def test_aml_request_is_a_werkzeug_request_with_multipart_args_and_raw_body() -> None:
    boundary = "XyZ"
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n"
        "Content-Type: image/png\r\n\r\n"
    ).encode() + b"\x89PNG\x00\xff" + f"\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"k\"\r\n\r\nv\r\n--{boundary}--\r\n".encode()
    req = build_request(
        "POST", "/score", b"a=1&a=2&b=x%20y",
        [("content-type", f"multipart/form-data; boundary={boundary}"), ("x-custom", "1"), ("x-custom", "2")],
        body,
    )
    assert req.method == "POST" and req.full_path == "/score?a=1&a=2&b=x%20y"
    assert req.args.getlist("a") == ["1", "2"] and req.args["b"] == "x y"
    assert req.files["image"].read() == b"\x89PNG\x00\xff" and req.form["k"] == "v"
    assert req.headers["X-Custom"] == "1,2"
    raw = build_request("POST", "/score", b"", [("content-type", "application/octet-stream")], bytes(range(256)))
    assert raw.get_data() == bytes(range(256))


def test_aml_response_as_azure_documents_it() -> None:
    r = AMLResponse("hi", 201, {"Allow": "OPTIONS, GET", "Content-Type": "text/csv"})
    assert r.status_code == 201 and r.get_data() == b"hi"
    assert r.headers.getlist("Allow") == ["OPTIONS", "GET"] and r.headers.getlist("Content-Type") == ["text/csv"]
    j = AMLResponse({"a": 1}, 200, json_str=True)
    assert j.mimetype == "application/json" and json.loads(j.get_data()) == {"a": 1}
    empty = AMLResponse(None, 204)
    assert json.loads(empty.get_data()) == {}


def test_image_source_directory_layout_round_trips(workspace, tmp_path: Path) -> None:
    """An image keeps Azure's layout (app/<source dir>/) and the inference config an update
    rebuilds from it gives the same image back (with or without a source directory)."""
    from mlmanage_jupyter import Image, InferenceConfig, Model
    from mlmanage_jupyter.core.images import inference_config_of

    f = tmp_path / "m.pkl"
    f.write_bytes(b"m")
    model = Model.register(workspace, str(f), "m")
    script = "def init():\n    pass\n\ndef run(data):\n    return data\n"
    src = _tree(tmp_path / "proj", ["sub/extra.json"])
    (src / "sub" / "score.py").write_text(script)
    img = Image.create(workspace, "withsrc", [model], InferenceConfig(entry_script="sub/score.py", source_directory=str(src)))
    assert (img.entry_script, img.spec["source_directory"]) == ("proj/sub/score.py", "proj")
    assert (img.context_path / "app" / "proj" / "sub" / "extra.json").is_file()
    assert Image.create(workspace, "withsrc", [model], inference_config_of(img.record)).id == img.id

    lone = tmp_path / "lone" / "score.py"
    lone.parent.mkdir()
    lone.write_text(script)
    img = Image.create(workspace, "alone", [model], InferenceConfig(entry_script=str(lone)))
    assert (img.entry_script, img.spec["source_directory"]) == ("score.py", None)
    assert Image.create(workspace, "alone", [model], inference_config_of(img.record)).id == img.id
