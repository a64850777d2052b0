"""No-code deployment (Azure ML v1: ``Model.deploy(ws, name, [model])`` with no inference
config, for a model registered with ``model_framework="ScikitLearn"`` or ``"Onnx"``; Azure's
"No-code model deployment" page). The entry script is a template shipped in
``core/no_code_templates/``, filled with the model's file name and written under
``<workspace>/no_code/<service>/`` with the templates' helper module; the environment lists
the packages that load and run the model (``onnxruntime`` for ONNX: an image gets it then).

A model registered with ``sample_input_dataset`` (and ``sample_output_dataset``) gets a
generated swagger: the first rows of the datasets are written as ``no_code_samples.json``
next to the script, which declares Azure's ``inference_schema`` types from them (column names,
types, example). Its ``resource_configuration`` becomes the deployment's size (see
:func:`apply_resource_configuration`)."""

from __future__ import annotations

import copy
import json
import warnings
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

from mlmanage_jupyter.core import registry
from mlmanage_jupyter.core.dataset import model_sample_dataset
from mlmanage_jupyter.core.entities.records import Framework, ModelRecord
from mlmanage_jupyter.core.environment import Environment, InferenceConfig
from mlmanage_jupyter.core.errors import ValidationError
from mlmanage_jupyter.core.resource_configuration import from_properties
from mlmanage_jupyter.core.targets.base import DeploymentConfig
from mlmanage_jupyter.core.workspace import Workspace

TEMPLATES = Path(__file__).parent / "no_code_templates"
SUPPORTED = (Framework.SCIKITLEARN, Framework.ONNX)
_PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".sav")
#: per framework: (template, model file suffixes, pip requirements besides the framework's own)
_KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    Framework.SCIKITLEARN: ("scikit_learn_score.py", _PICKLE_SUFFIXES),
    Framework.ONNX: ("onnx_score.py", (".onnx",)),
}
#: rows of the sample datasets kept as the swagger's example and the input types' basis
SAMPLE_ROWS = 5


def _model_file(ws: Workspace, rec: ModelRecord, suffixes: tuple[str, ...] = _PICKLE_SUFFIXES) -> str:
    """The path, below ``AZUREML_MODEL_DIR``, of the one model file (``suffixes``) of ``rec``."""
    if not rec.is_folder:
        if suffixes != _PICKLE_SUFFIXES and not rec.root_name.lower().endswith(suffixes):
            raise ValidationError(
                f"no-code deployment of {rec.model_framework} model {rec.id} needs a {'/'.join(suffixes)} file, "
                f"got {rec.root_name!r}: register the {'/'.join(suffixes)} file, or pass an InferenceConfig"
            )
        return rec.root_name
    cands = [f.path for f in registry.get_files(ws, rec) if f.path.lower().endswith(suffixes)]
    if len(cands) != 1:
        raise ValidationError(
            f"no-code deployment of model {rec.id} needs exactly one {'/'.join(suffixes)} file in its "
            f"folder, found {len(cands)}: pass an InferenceConfig(entry_script=...) to Model.deploy"
        )
    return f"{rec.root_name}/{cands[0]}"


def _frame_json(df: Any) -> dict[str, Any]:
    """``{"columns", "dtypes", "records"}`` of a DataFrame (what the templates' helper reads)."""
    return {
        "columns": [str(c) for c in df.columns],
        "dtypes": {str(c): str(t) for c, t in df.dtypes.items()},
        "records": json.loads(df.to_json(orient="records", date_format="iso")),
    }


def _write_samples(ws: Workspace, rec: ModelRecord, src: Path) -> bool:
    """Write ``no_code_samples.json`` from the model's sample datasets (first SAMPLE_ROWS
    rows); returns whether there was a sample input. The output sample alone is not used
    (the request shape comes from the input)."""
    target = src / "no_code_samples.json"
    sample_in = model_sample_dataset(ws, rec.properties, "input")
    if sample_in is None:
        target.unlink(missing_ok=True)
        return False
    sample_out = model_sample_dataset(ws, rec.properties, "output")
    spec = {
        "input": _frame_json(sample_in.take(SAMPLE_ROWS).to_pandas_dataframe()),
        "output": _frame_json(sample_out.take(SAMPLE_ROWS).to_pandas_dataframe()) if sample_out is not None else None,
    }
    target.write_text(json.dumps(spec, indent=1), encoding="utf-8")
    return True


def inference_config(ws: Workspace, service_name: str, models: Sequence[ModelRecord]) -> InferenceConfig:
    """The generated :class:`InferenceConfig` of a no-code deployment of ``models`` (exactly
    one, framework ``ScikitLearn`` or ``Onnx``).

    ``ScikitLearn``: entry script from ``no_code_templates/scikit_learn_score.py`` (``run``
    answers ``predict_proba`` or ``predict`` on ``{"data": [[...]]}`` with a list),
    environment ``scikit-learn`` (pinned to ``model_framework_version`` when given),
    ``joblib``, ``numpy``. ``Onnx``: ``no_code_templates/onnx_score.py`` (an onnxruntime
    session opened when the script is imported; inputs by name, answer ``{output name: value}``,
    both in the swagger from the model's ``get_inputs()``/``get_outputs()``), environment
    ``onnxruntime``, ``numpy``. With a sample input dataset, ``pandas`` too and the generated swagger.

    Raises ValidationError naming what to add (an InferenceConfig) for several models, no
    framework, another framework, or a model without its one model file."""
    if len(models) != 1:
        raise ValidationError(
            f"no-code deployment takes exactly one model, got {len(models)}: pass "
            "inference_config=InferenceConfig(entry_script=...) to deploy several models"
        )
    rec = models[0]
    if rec.model_framework not in SUPPORTED:
        raise ValidationError(
            f"model {rec.id} has model_framework {rec.model_framework!r}: no-code deployment supports "
            f"{', '.join(SUPPORTED)}; pass inference_config=InferenceConfig(entry_script=..., environment=...) "
            "to Model.deploy (or register a pickle with model_framework=Model.Framework.SCIKITLEARN, an .onnx file with Model.Framework.ONNX)"
        )
    template, suffixes = _KINDS[rec.model_framework]
    script = (TEMPLATES / template).read_text(encoding="utf-8")
    script = script.replace("__MODEL_NAME__", rec.name).replace("__MODEL_FILE__", _model_file(ws, rec, suffixes))
    src = ws.path / "no_code" / service_name
    src.mkdir(parents=True, exist_ok=True)
    (src / "score.py").write_text(script, encoding="utf-8")
    (src / "_no_code_samples.py").write_text((TEMPLATES / "_no_code_samples.py").read_text(encoding="utf-8"), encoding="utf-8")
    with_samples = _write_samples(ws, rec, src)
    env = Environment(f"no-code-{rec.name}")
    if rec.model_framework == Framework.ONNX:
        # model_framework_version is the ONNX (opset) version, not onnxruntime's: not a pin
        env.pip_requirements = ["onnxruntime", "numpy"]
    else:
        sk = "scikit-learn" + (f"=={rec.model_framework_version}" if rec.model_framework_version else "")
        env.pip_requirements = [sk, "joblib", "numpy"]
    if with_samples:
        env.pip_requirements.append("pandas")
    return InferenceConfig(entry_script="score.py", source_directory=str(src), environment=env)


def apply_resource_configuration(cfg: DeploymentConfig, models: Sequence[ModelRecord], given: bool) -> DeploymentConfig:
    """The deployment size of a no-code deployment from the model's ``resource_configuration``
    (Azure: the size used when the deployment configuration gives none).

    ``cpu`` -> ``cpu_cores``, ``memory_in_gb`` -> ``memory_gb`` of a Docker, ACI or Kubernetes
    configuration whose value is still the target's default (``None`` for Docker, Azure's 0.1
    cores / 0.5 GiB for ACI and AKS): a size the user set otherwise wins. The local target has
    no resource limits: there it warns once (``given``: whether the user passed the
    configuration) and deploys unchanged. Returns the configuration to deploy with (a copy when changed)."""
    rc = from_properties(models[0].properties) if len(models) == 1 else None
    if rc is None or (rc.cpu is None and rc.memory_in_gb is None):
        return cfg
    cfg = copy.copy(cfg)  # the caller's configuration object stays as given
    defaults = {f.name: f.default for f in fields(cfg)}  # type: ignore[arg-type]
    if "cpu_cores" not in defaults:
        warnings.warn(
            f"model {models[0].id} has resource_configuration {rc!r}, which the {cfg.compute_type} target can't apply "
            f"(no resource limits there){'' if given else ' (no deployment_config given: the local target is the default)'}; "
            "deploy with AciWebservice/DockerWebservice/AksWebservice.deploy_configuration() to use it as the size",
            UserWarning,
            stacklevel=4,
        )
        return cfg
    for rc_value, attr in ((rc.cpu, "cpu_cores"), (rc.memory_in_gb, "memory_gb")):
        if rc_value is not None and getattr(cfg, attr) == defaults[attr]:
            setattr(cfg, attr, float(rc_value))
    cfg.validate()
    return cfg

