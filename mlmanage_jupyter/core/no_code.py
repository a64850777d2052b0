"""No-code deployment (Azure ML v1: ``Model.deploy(ws, name, [model])`` with no inference
config, for a model registered with ``model_framework="ScikitLearn"``; Azure's "Deploy
no-code" docs). The entry script is a template shipped in ``core/no_code_templates/``, filled
with the model's file name and written under ``<workspace>/no_code/<service>/``; the
environment lists the packages that load and run the model.

ONNX no-code deployment is not supported yet (Azure's ``Onnx`` framework): such a model needs
an InferenceConfig here."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mlmanage_jupyter.core import registry
from mlmanage_jupyter.core.entities.records import Framework, ModelRecord
from mlmanage_jupyter.core.environment import Environment, InferenceConfig
from mlmanage_jupyter.core.errors import ValidationError
from mlmanage_jupyter.core.workspace import Workspace

TEMPLATES = Path(__file__).parent / "no_code_templates"
SUPPORTED = (Framework.SCIKITLEARN,)
_PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".sav")


def _model_file(ws: Workspace, rec: ModelRecord) -> str:
    """The path, below ``AZUREML_MODEL_DIR``, of the one pickle/joblib file of ``rec``."""
    if not rec.is_folder:
        return rec.root_name
    cands = [f.path for f in registry.get_files(ws, rec) if f.path.lower().endswith(_PICKLE_SUFFIXES)]
    if len(cands) != 1:
        raise ValidationError(
            f"no-code deployment of model {rec.id} needs exactly one {'/'.join(_PICKLE_SUFFIXES)} file in its "
            f"folder, found {len(cands)}: pass an InferenceConfig(entry_script=...) to Model.deploy"
        )
    return f"{rec.root_name}/{cands[0]}"


def inference_config(ws: Workspace, service_name: str, models: Sequence[ModelRecord]) -> InferenceConfig:
    """The generated :class:`InferenceConfig` of a no-code deployment of ``models`` (exactly
    one, framework ``ScikitLearn``): entry script from ``no_code_templates/scikit_learn_score.py``
    (``run`` answers ``predict`` on ``{"data": [[...]]}`` with a list), environment
    ``scikit-learn``/``joblib``/``numpy`` (pinned to ``model_framework_version`` when given).

    Raises ValidationError naming what to add (an InferenceConfig) for several models, no
    framework, or another framework."""
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
            "to Model.deploy (or register the model with model_framework=Model.Framework.SCIKITLEARN)"
        )
    script = (TEMPLATES / "scikit_learn_score.py").read_text(encoding="utf-8")
    script = script.replace("__MODEL_NAME__", rec.name).replace("__MODEL_FILE__", _model_file(ws, rec))
    src = ws.path / "no_code" / service_name
    src.mkdir(parents=True, exist_ok=True)
    (src / "score.py").write_text(script, encoding="utf-8")
    env = Environment(f"no-code-{rec.name}")
    sk = "scikit-learn" + (f"=={rec.model_framework_version}" if rec.model_framework_version else "")
    env.pip_requirements = [sk, "joblib", "numpy"]
    return InferenceConfig(entry_script="score.py", source_directory=str(src), environment=env)
