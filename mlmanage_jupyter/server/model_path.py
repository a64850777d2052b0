"""Where a deployed model's files are, inside a deployment (process, container, pod).

Azure ML v1's layout (MicrosoftDocs azure-docs ``articles/machine-learning/v1/
how-to-deploy-advanced-entry-script.md``, "Load registered models"):

* one model: ``AZUREML_MODEL_DIR`` is the folder holding that model's files under their
  registered names (``.../azureml-models/<name>/<version>``);
* several models: ``AZUREML_MODEL_DIR`` is the root, each model under ``<name>/<version>/``.

``Model.get_model_path(name)`` answers the path of the model's file when the model is one
file, else the folder holding its files. This module resolves it from the environment only
(no database, stdlib only): the scoring engine's ``azureml.core.model.Model`` and the core's
``Model.get_model_path`` both use :func:`model_path_in_deployment`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from mlmanage_jupyter.server.config import MODEL_DIR_VARS, MODELS_VAR


class ModelPathError(LookupError):
    """The model is not in this deployment (the message names the models that are)."""


def deployment_model_dir(env: Mapping[str, str] | None = None) -> str | None:
    """The model folder of this deployment (``AZUREML_MODEL_DIR``/``MLMANAGE_MODEL_DIR``), or None
    outside a deployment."""
    env = os.environ if env is None else env
    return next((env[v] for v in MODEL_DIR_VARS if env.get(v)), None)


def deployed_models(env: Mapping[str, str] | None = None) -> list[tuple[str, int]]:
    """``[(name, version)]`` from ``MLMANAGE_MODELS`` (empty when unset)."""
    env = os.environ if env is None else env
    out = []
    for item in (env.get(MODELS_VAR) or "").split(","):
        name, _, version = item.strip().partition(":")
        if name:
            out.append((name, int(version) if version.isdigit() else 0))
    return out


def _single_entry(d: Path) -> Path:
    """The only visible entry of ``d`` (a one-file or one-folder model), else ``d`` itself."""
    entries = [p for p in d.iterdir() if not p.name.startswith(".")]
    return entries[0] if len(entries) == 1 else d


def model_path_in_deployment(
    model_name: str,
    version: int | None = None,
    model_dir: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> str:
    """Path of ``model_name``'s file (one-file model) or folder inside this deployment.

    Args:
        model_name: the registered name.
        version: a version (int); None means the one deployed (the highest present).
        model_dir: the model folder; default :func:`deployment_model_dir`.
        env: environment to read (default ``os.environ``).

    Raises:
        ModelPathError: not in a deployment, or the model/version is not deployed here; the
            message lists what is deployed.
    """
    env = os.environ if env is None else env
    root_s = model_dir if model_dir is not None else deployment_model_dir(env)
    if not root_s:
        raise ModelPathError(
            f"cannot find model {model_name!r}: AZUREML_MODEL_DIR is not set (not inside a deployment); "
            "outside a service use mlmanage_jupyter.Model.get_model_path with a workspace"
        )
    root = Path(root_s)
    deployed = deployed_models(env)
    names = sorted({n for n, _ in deployed})
    multi = root / model_name
    if multi.is_dir() and any(p.name.isdigit() for p in multi.iterdir()) and (len(deployed) != 1 or not names):
        versions = sorted(int(p.name) for p in multi.iterdir() if p.name.isdigit())
        v = int(version) if version is not None else versions[-1]
        vdir = multi / str(v)
        if not vdir.is_dir():
            raise ModelPathError(f"model {model_name} version {v} is not in this deployment; versions here: {versions}")
        return str(_single_entry(vdir))
    if names and model_name not in names:
        raise ModelPathError(f"model {model_name!r} is not deployed with this service; deployed: {', '.join(names)}")
    if len(deployed) > 1:
        raise ModelPathError(f"model {model_name!r} has no folder {multi}/<version> in this deployment")
    if version is not None and deployed and deployed[0][1] and int(version) != deployed[0][1]:
        raise ModelPathError(
            f"model {model_name} version {version} is not in this deployment; deployed: {model_name}:{deployed[0][1]}"
        )
    if not root.is_dir():
        raise ModelPathError(f"model directory {root} (AZUREML_MODEL_DIR) does not exist")
    return str(_single_entry(root))
