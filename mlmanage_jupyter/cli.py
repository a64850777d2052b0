"""The ``mlmanage`` command: Azure ML v1 CLI's model-management verbs on a local workspace.

Verbs and flags are ``az ml model`` / ``az ml service``'s (azure-cli-ml, Azure's v1 CLI
reference and its deploy-local CLI tutorial), so ``az ml ...`` lines run with ``az ml``
replaced by ``mlmanage``::

    mlmanage [--workspace PATH] workspace create|show
    mlmanage model register -n NAME -p PATH [--tag k=v ...] [--property k=v ...] [-d DESCRIPTION]
    mlmanage model list [--model-name NAME] [--tag k[=v] ...] [--property k[=v] ...] [--latest]
    mlmanage model show|delete (--model-id NAME:VERSION | --model-name NAME [--version V])
    mlmanage model download --model-id NAME:VERSION -t TARGET_DIR [--overwrite]
    mlmanage model update --model-id NAME:VERSION [--add-tag k=v ...] [--remove-tag k ...]
                          [--add-property k=v ...] [--description TEXT]
    mlmanage model deploy -n NAME -m MODEL:VERSION [-m ...] --ic inferenceconfig.json
                          [--dc deploymentconfig.json] [--ct COMPUTE_TARGET] [--overwrite]
                          [--no-wait] [--dry-run]
    mlmanage model profile -n PROFILE -m MODEL:VERSION --ic F (-d JSON ... | --input-file F) [-t result.json]
    mlmanage model package -m MODEL:VERSION --ic F [--in IMAGE_NAME] [--il LABEL] [-p DOCKERFILE_DIR]
    mlmanage service list [-c COMPUTE_TYPE] [--model-name N] [--model-id N:V] [--tag k[=v]]
    mlmanage service show|delete|get-keys|get-access-token -n NAME
    mlmanage service get-logs -n NAME [-l NUM_LINES] [--init]
    mlmanage service regen-key -n NAME -k Primary|Secondary [-s KEY]
    mlmanage service update -n NAME [-m ...] [--ic F | --es SCRIPT [--sd DIR]] [--dc F] [--add-tag k=v]
    mlmanage service run -n NAME [-d JSON]
    mlmanage service fuzz -n NAME [--max-examples N] [--seed S] [--timeout S] [--sample-input JSON]
                          [--strict] [-o json|table]    (exit 1 when it finds a fault)
    mlmanage image list|show|export|delete
    mlmanage gc

Every command answering with data takes ``az``'s ``-o json|jsonc|table|tsv|yaml|yamlc|none``
and ``--query JMESPATH`` (:mod:`mlmanage_jupyter.cli_output`), and ``az``'s
``-w/--workspace-name NAME`` (the local workspace of that name, ``Workspace.get``);
``-g/--resource-group`` and ``--subscription-id`` are accepted and unused. Our own names
stay as aliases: ``service deploy`` (= ``model deploy``), ``service logs`` / ``keys``,
``-n/--name`` on ``model list|show``. ``az``'s global ``--verbose`` / ``--debug`` log to stderr.

Differences from ``az``: ``-o`` defaults to ``table`` (``az``: ``json``) unless
``$AZURE_CORE_OUTPUT`` (``az``'s variable for its default output) is set, which both honour;
``-v`` is never verbose (``az`` spells it ``--verbose``, no short form): it is the model or
image ``--version`` of ``model show|download|delete|update`` and ``image show|export|delete``,
and ``mlmanage --version`` prints ours; ``service get-logs --init`` prints the service's own
log (no init container exists here: the models are in the image).

The workspace is ``--workspace``, else ``$MLMANAGE_WORKSPACE``, else ``./.mlmanage``.
Build logs and deployment progress go to stderr; results to stdout. Any error prints one line
``error: ...`` on stderr and exits with 2.

The commands hold no logic: each parses its flags, calls one core function and returns its
answer, which :func:`az_options` prints.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import click

from mlmanage_jupyter import cli_output
from mlmanage_jupyter.cli_output import FORMATS, Answer, emit
from mlmanage_jupyter.core.entities.parsing import parse_filter, parse_kv, parse_model_ref
from mlmanage_jupyter.core.errors import MlManageError, ValidationError

EXIT_USAGE = 2

log = logging.getLogger(__name__)


# ------------------------------------------------------------------ shared parsing helpers
def _workspace(ctx: click.Context) -> Any:
    """The workspace: ``--workspace`` (or ``$MLMANAGE_WORKSPACE``, else ``./.mlmanage``);
    with ``-w/--workspace-name`` the local workspace of that name (it must match the folder
    when both are given)."""
    from mlmanage_jupyter.core.workspace import Workspace

    path, name = ctx.obj.get("workspace"), ctx.obj.get("workspace_name")
    if name and not path:
        ws = Workspace.get(name)
    else:
        ws = Workspace(path)
        if name and ws.name != name:
            raise ValidationError(f"the workspace at {ws.path} is named {ws.name!r}, not {name!r} (-w/--workspace-name)")
    log.info("workspace %r at %s", ws.name, ws.path)
    return ws


def _get_model(ws: Any, model_id: str | None, name: str | None, version: int | None) -> Any:
    from mlmanage_jupyter.core.model import Model

    if model_id:
        name, version = parse_model_ref(model_id)
    if not name:
        raise ValidationError("give the model as --model-id NAME:VERSION or --model-name NAME [--version VERSION]")
    return Model(ws, name, version)


def _progress(msg: str) -> None:
    click.echo(msg, err=True)


def az_options(default_output: str = "table") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a command ``az``'s per-command options and print what it returns.

    Adds ``-o/--output`` (:data:`~mlmanage_jupyter.cli_output.FORMATS`, default
    ``default_output``), ``--query`` (JMESPath), ``-w/--workspace-name`` (picks the workspace,
    see :func:`_workspace`), ``-g/--resource-group`` and ``--subscription-id`` (accepted,
    unused: a local workspace has neither). The command returns an
    :class:`~mlmanage_jupyter.cli_output.Answer`, plain JSON-able data, or None (nothing to print).
    Put it just above ``@click.pass_context`` (its options then list after the command's own)."""

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(f)
        def run(**kwargs: Any) -> None:
            output, query = kwargs.pop("output"), kwargs.pop("query")
            output = output or cli_output.default_output(default_output)
            workspace_name = kwargs.pop("workspace_name")
            kwargs.pop("resource_group")
            kwargs.pop("subscription_id")
            debug, verbose = kwargs.pop("debug"), kwargs.pop("verbose")
            level = logging.DEBUG if debug else logging.INFO if verbose else None
            if workspace_name:
                click.get_current_context().find_root().obj["workspace_name"] = workspace_name
            with _logging_to_stderr(level):
                answer = f(**kwargs)
            if answer is not None:
                emit(answer if isinstance(answer, Answer) else Answer(answer), output, query, lambda t: click.echo(t, nl=False))

        options = [
            click.option("-o", "--output", type=click.Choice(FORMATS, case_sensitive=False),
                         help=f"output format (az's; default: ${cli_output.OUTPUT_ENV}, else {default_output})"),
            click.option("--query", metavar="JMESPATH", help="JMESPath query on the JSON answer (https://jmespath.org)"),
            click.option("-w", "--workspace-name", help="the local workspace of this name (az's -w)"),
            click.option("-g", "--resource-group", hidden=True, help="accepted for az compatibility; unused"),
            click.option("--subscription-id", hidden=True, help="accepted for az compatibility; unused"),
            click.option("--verbose", is_flag=True, help="log what the command does to stderr (az's --verbose)"),
            click.option("--debug", is_flag=True, help="log everything, debug lines too, to stderr (az's --debug)"),
        ]  # fmt: skip
        for opt in reversed(options):
            run = opt(run)
        return run

    return decorate


@contextlib.contextmanager
def _logging_to_stderr(level: int | None) -> Iterator[None]:
    """With ``level`` (``--verbose``: INFO, ``--debug``: DEBUG), the ``mlmanage_jupyter``
    loggers write ``LEVEL: message`` lines to stderr while the command runs (results stay
    alone on stdout, as ``az`` keeps them); without, nothing changes."""
    if level is None:
        yield
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    root = logging.getLogger("mlmanage_jupyter")
    before = root.level
    root.addHandler(handler)
    root.setLevel(level)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(before)


def _alias(group: click.Group, command: click.Command, name: str) -> None:
    """Register ``command`` again as ``name`` in ``group``, hidden from ``--help``."""
    alias = copy.copy(command)
    alias.hidden = True
    group.add_command(alias, name)


# ------------------------------------------------------------------ root
@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--workspace",
    "-w",
    "workspace",
    envvar="MLMANAGE_WORKSPACE",
    type=click.Path(file_okay=False),
    help="workspace folder (default $MLMANAGE_WORKSPACE, else ./.mlmanage)",
)
@click.version_option(package_name="mlmanage-jupyter")
@click.pass_context
def cli(ctx: click.Context, workspace: str | None) -> None:
    """Register models, build images and deploy web services (Azure ML v1's loop, locally)."""
    ctx.ensure_object(dict)
    ctx.obj["workspace"] = workspace


# ------------------------------------------------------------------ workspace
@cli.group("workspace")
def workspace_group() -> None:
    """Create or show the workspace."""


@workspace_group.command("create")
@click.option("-n", "--name", "--workspace-name", "name", help="workspace name (default: the parent folder's)")
@click.option("--metadata-url", help="SQLAlchemy URL of the metadata store (default: SQLite in the folder)")
@click.option("--exist-ok/--no-exist-ok", default=True, show_default=True)
@click.option("-o", "--output", type=click.Choice(FORMATS, case_sensitive=False),
              help=f"output format (default: ${cli_output.OUTPUT_ENV}, else table)")
@click.option("--query", metavar="JMESPATH", help="JMESPath query on the JSON answer")
@click.pass_context
def workspace_create(
    ctx: click.Context, name: str | None, metadata_url: str | None, exist_ok: bool, output: str | None, query: str | None
) -> None:
    """Create the workspace folder (``--workspace``) with its config.json."""
    from mlmanage_jupyter.core.workspace import Workspace

    output = output or cli_output.default_output("table")
    ws = Workspace.create(ctx.obj.get("workspace"), name=name, metadata_url=metadata_url, exist_ok=exist_ok)
    emit(Answer(ws.get_details()), output, query, lambda t: click.echo(t, nl=False))


@workspace_group.command("show")
@az_options()
@click.pass_context
def workspace_show(ctx: click.Context) -> Any:
    """Show the workspace's name, folder and stores."""
    return _workspace(ctx).get_details()


# ------------------------------------------------------------------ model
@cli.group("model")
def model_group() -> None:
    """Register, list, show, download, deploy and delete models (``az ml model``)."""


_MODEL_COLUMNS = ["name", "version", "framework", "tags", "files", "size_bytes", "created_time"]


def _model_row(m: Any) -> dict[str, Any]:
    return {
        "name": m.name,
        "version": m.version,
        "framework": m.model_framework or "",
        "tags": ",".join(f"{k}={v}" for k, v in m.tags.items()),
        "files": m.file_count,
        "size_bytes": m.size,
        "created_time": m.created_time,
    }


@model_group.command("register")
@click.option("-n", "--name", required=True, help="model name")
@click.option("-p", "--model-path", "--asset-path", "asset_path", required=True, help="a file or a folder")
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="a tag (repeatable)")
@click.option("--property", "properties", multiple=True, metavar="KEY=VALUE", help="a property (repeatable)")
@click.option("-d", "--description")
@click.option("--model-framework", "framework", help="e.g. ScikitLearn, Onnx, TensorFlow, PyTorch")
@click.option("--model-framework-version", "framework_version")
@click.option("-t", "--output-metadata-file", type=click.Path(dir_okay=False),
              help="also write the new model's JSON here (for model deploy -f)")  # fmt: skip
@az_options()
@click.pass_context
def model_register(
    ctx: click.Context,
    name: str,
    asset_path: str,
    tags: tuple[str, ...],
    properties: tuple[str, ...],
    description: str | None,
    framework: str | None,
    framework_version: str | None,
    output_metadata_file: str | None,
) -> Any:
    """Register a file or folder as the next version of NAME."""
    from mlmanage_jupyter.core.model import Model

    m = Model.register(
        _workspace(ctx),
        asset_path,
        name,
        tags=parse_kv(tags, "tag"),
        properties=parse_kv(properties, "property"),
        description=description,
        model_framework=framework,
        model_framework_version=framework_version,
    )
    data = m.serialize()
    _write_metadata(output_metadata_file, {"modelId": m.id, **data})
    return data


@model_group.command("list")
@click.option("-n", "--model-name", "--name", "name", help="only this model name")
@click.option("--tag", "tags", multiple=True, metavar="KEY[=VALUE]", help="has this tag (repeatable)")
@click.option("--property", "properties", multiple=True, metavar="KEY[=VALUE]", help="has this property")
@click.option("-l", "--latest", is_flag=True, help="only the latest version of each name")
@az_options()
@click.pass_context
def model_list(ctx: click.Context, name: str | None, tags: tuple[str, ...], properties: tuple[str, ...], latest: bool) -> Any:
    """List models, by name then version descending."""
    from mlmanage_jupyter.core.model import Model

    models = Model.list(_workspace(ctx), name=name, tags=parse_filter(tags), properties=parse_filter(properties), latest=latest)
    return Answer([m.serialize() for m in models], rows=[_model_row(m) for m in models], columns=_MODEL_COLUMNS)


model_ref_options = [
    click.option("-i", "--model-id", help="NAME:VERSION"),
    click.option("-n", "--model-name", "--name", "name", help="model name"),
    click.option("-v", "--version", type=int, help="model version (default: the latest)"),
]


def _with_model_ref(f: Any) -> Any:
    for opt in reversed(model_ref_options):
        f = opt(f)
    return f


@model_group.command("show")
@_with_model_ref
@az_options()
@click.pass_context
def model_show(ctx: click.Context, model_id: str | None, name: str | None, version: int | None) -> Any:
    """Show one model version (the latest without --version), with its files."""
    m = _get_model(_workspace(ctx), model_id, name, version)
    data = m.serialize()
    data["files"] = m.get_files()
    return data


@model_group.command("download")
@_with_model_ref
@click.option("-t", "--target-dir", required=True, type=click.Path(file_okay=False), help="folder to copy the model to")
@click.option("--overwrite", is_flag=True, help="replace files that exist")
@az_options()
@click.pass_context
def model_download(
    ctx: click.Context, model_id: str | None, name: str | None, version: int | None, target_dir: str, overwrite: bool
) -> Any:
    """Copy a model's files (sha256-checked) to TARGET_DIR; prints the path."""
    m = _get_model(_workspace(ctx), model_id, name, version)
    path = str(m.download(target_dir, exist_ok=overwrite))
    return Answer(path, text=path)


@model_group.command("delete")
@_with_model_ref
@az_options()
@click.pass_context
def model_delete(ctx: click.Context, model_id: str | None, name: str | None, version: int | None) -> Any:
    """Delete one model version (refused while a service uses it; its unused images go with it)."""
    if not model_id and version is None:
        raise ValidationError("give the version to delete: --model-id NAME:VERSION or --model-name NAME --version VERSION")
    m = _get_model(_workspace(ctx), model_id, name, version)
    m.delete()
    return Answer(None, text=f"deleted model {m.id}")


@model_group.command("update")
@_with_model_ref
@click.option("--add-tag", "add_tags", multiple=True, metavar="KEY=VALUE", help="add or overwrite a tag (repeatable)")
@click.option("--remove-tag", "remove_tags", multiple=True, metavar="KEY", help="remove a tag (repeatable)")
@click.option("--add-property", "add_properties", multiple=True, metavar="KEY=VALUE",
              help="add a property (repeatable; properties are write-once)")
@click.option("--description", help="replaces the current description")
@az_options()
@click.pass_context
def model_update(
    ctx: click.Context,
    model_id: str | None,
    name: str | None,
    version: int | None,
    add_tags: tuple[str, ...],
    remove_tags: tuple[str, ...],
    add_properties: tuple[str, ...],
    description: str | None,
) -> Any:
    """Add/remove tags, add properties or replace the description of one model version
    (``az ml model update``; ``Model.update`` / ``add_properties``). Every flag is checked
    before anything changes: a tag both added and removed, a missing tag to remove, or a
    property that already has another value is an error and the model stays as it was."""
    m = _get_model(_workspace(ctx), model_id, name, version)
    tags, props = parse_kv(add_tags, "add-tag"), parse_kv(add_properties, "add-property")
    if not (tags or remove_tags or props or description is not None):
        raise ValidationError("nothing to update: give --add-tag, --remove-tag, --add-property and/or --description")
    both = sorted(set(tags) & set(remove_tags))
    if both:
        raise ValidationError(f"--add-tag and --remove-tag both name {both[0]!r}: give one of them")
    missing = [k for k in remove_tags if k not in m.tags]
    if missing:
        raise ValidationError(f"--remove-tag {missing[0]!r}: model {m.id} has no such tag (tags: {', '.join(m.tags) or 'none'})")
    taken = sorted(k for k, v in props.items() if k in m.properties and m.properties[k] != v)
    if taken:
        k = taken[0]
        raise ValidationError(f"--add-property {k}: model {m.id} already has {k}={m.properties[k]}; properties are write-once")
    new_tags = {k: v for k, v in {**m.tags, **tags}.items() if k not in remove_tags}
    m.update(description=description, tags=new_tags if (tags or remove_tags) else None)
    if props:
        m.add_properties(props)
    return m.serialize()


# ------------------------------------------------------------------ service
@cli.group("service")
def service_group() -> None:
    """Deploy, call, update and delete web services."""


def _get_service(ctx: click.Context, name: str) -> Any:
    from mlmanage_jupyter.core.webservice import Webservice

    return Webservice(_workspace(ctx), name)


def _inference_config(ic: str | None, entry_script: str | None, source_directory: str | None) -> Any:
    from mlmanage_jupyter.core.environment import InferenceConfig

    if ic:
        if entry_script:
            raise ValidationError("give either --ic or --entry-script, not both")
        return InferenceConfig.from_json(ic)
    if not entry_script:
        raise ValidationError("give the entry script: --ic inferenceconfig.json or --entry-script score.py")
    return InferenceConfig(entry_script=entry_script, source_directory=source_directory)


def _model_ids(models: Sequence[str], metadata_file: str | None) -> list[str]:
    """``-m`` values, then the ``modelId`` of ``-f/--model-metadata-file`` (what
    ``model register -t`` writes)."""
    ids = list(models)
    if metadata_file:
        from mlmanage_jupyter.core.fsutil import read_json_object

        d, _ = read_json_object(metadata_file, "model metadata file")
        model_id = d.get("modelId") or d.get("id")
        if not isinstance(model_id, str):
            raise ValidationError(f"model metadata file {metadata_file} has no \"modelId\" (write it with model register -t)")
        ids.append(model_id)
    if not ids:
        raise ValidationError("give the models to deploy: -m NAME:VERSION (repeatable) or -f model-metadata.json")
    return ids


@model_group.command("deploy")
@click.option("-n", "--name", required=True, help="service name")
@click.option("-m", "--model", "models", multiple=True, metavar="NAME[:VERSION]", help="a model (repeatable)")
@click.option("-f", "--model-metadata-file", type=click.Path(dir_okay=False), help="a model's JSON (model register -t)")
@click.option("--ic", "--inference-config-file", "ic", type=click.Path(dir_okay=False), help="inferenceconfig.json")
@click.option("--dc", "--deploy-config-file", "dc", type=click.Path(dir_okay=False), help="deploymentconfig.json")
@click.option("--ct", "--compute-target", "compute_target", help="an attached compute target (AKS: a kubeconfig context)")
@click.option("--es", "--entry-script", "entry_script", help="score.py (instead of --ic)")
@click.option("--sd", "--source-directory", "source_directory", help="folder shipped with the entry script")
@click.option("--overwrite", is_flag=True, help="replace a service of that name")
@click.option("--no-wait", is_flag=True, help="return once the service is starting (state Transitioning)")
@click.option("--dry-run", is_flag=True, help="print what would be deployed (Kubernetes: the manifests) and stop")
@click.option("--timeout", type=float, default=600, show_default=True, help="seconds to wait for Healthy")
@az_options()
@click.pass_context
def model_deploy(
    ctx: click.Context,
    name: str,
    models: tuple[str, ...],
    model_metadata_file: str | None,
    ic: str | None,
    dc: str | None,
    compute_target: str | None,
    entry_script: str | None,
    source_directory: str | None,
    overwrite: bool,
    no_wait: bool,
    dry_run: bool,
    timeout: float,
) -> Any:
    """Build an image from the models and entry script and deploy it (``az ml model deploy``).

    ``"computeType"`` in the deployment config picks the target: local (default), docker,
    ACI, AKS/kubernetes.
    """
    from mlmanage_jupyter.core.compute import ComputeTarget, apply_deployment_target
    from mlmanage_jupyter.core.deployment import dry_run_text
    from mlmanage_jupyter.core.errors import DeploymentFailedError
    from mlmanage_jupyter.core.model import Model
    from mlmanage_jupyter.core.targets.base import LocalDeploymentConfig, config_from_json
    from mlmanage_jupyter.core.webservice import deploy

    ws = _workspace(ctx)
    inference_config = _inference_config(ic, entry_script, source_directory)
    cfg = config_from_json(dc) if dc else LocalDeploymentConfig()
    target = ComputeTarget(ws, compute_target) if compute_target else None
    model_objs = [Model(ws, *parse_model_ref(m)) for m in _model_ids(models, model_metadata_file)]
    if dry_run:
        text = dry_run_text(ws, name, [m.record for m in model_objs], inference_config, apply_deployment_target(cfg, target))
        try:  # the image and config as JSON (-o/--query work on it); Kubernetes: YAML manifests, kept as text
            data = json.loads(text)
        except ValueError:
            data = text
        return Answer(data, text=text)
    svc = deploy(ws, name, model_objs, inference_config, cfg, target, overwrite=overwrite, progress=_progress)
    if not no_wait:
        try:
            svc.wait_for_deployment(timeout_sec=timeout)
        except DeploymentFailedError as e:
            if e.logs:
                click.echo(e.logs[-4000:], err=True)
            raise
    return svc.serialize()


def _write_metadata(path: str | None, data: Any) -> None:
    """``-t/--output-metadata-file``: ``data`` as JSON at ``path`` (nothing without one)."""
    if not path:
        return
    try:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, default=str)
    except OSError as e:
        raise ValidationError(f"-t {path}: cannot write it ({e.strerror})") from None


@model_group.command("profile")
@click.option("-n", "--name", required=True, help="profile name")
@click.option("-m", "--model", "models", multiple=True, metavar="NAME[:VERSION]", help="a model (repeatable)")
@click.option("-f", "--model-metadata-file", type=click.Path(dir_okay=False), help="a model's JSON (model register -t)")
@click.option("--ic", "--inference-config-file", "ic", type=click.Path(dir_okay=False), help="inferenceconfig.json")
@click.option("--es", "--entry-script", "entry_script", help="score.py (instead of --ic)")
@click.option("--sd", "--source-directory", "source_directory", help="folder shipped with the entry script")
@click.option("-d", "--input-data", "input_data", multiple=True, metavar="JSON", help="one request body (repeatable)")
@click.option("--input-file", type=click.Path(dir_okay=False, exists=True), help="request bodies: a .json list or .jsonl")
@click.option("--cc", "--cpu-cores", "cpu", type=float, help="recorded with the profile (the local target has no limit)")
@click.option("--gb", "--memory-gb", "memory_gb", type=float, help="recorded with the profile")
@click.option("--description")
@click.option("--concurrency", "concurrency", multiple=True, type=int, help="client threads per level (repeatable; default 1 2 4 8)")
@click.option("--duration", type=float, default=5.0, show_default=True, help="seconds per level")
@click.option("-t", "--output-metadata-file", type=click.Path(dir_okay=False), help="also write the profile's JSON here")
@az_options()
@click.pass_context
def model_profile(
    ctx: click.Context,
    name: str,
    models: tuple[str, ...],
    model_metadata_file: str | None,
    ic: str | None,
    entry_script: str | None,
    source_directory: str | None,
    input_data: tuple[str, ...],
    input_file: str | None,
    cpu: float | None,
    memory_gb: float | None,
    description: str | None,
    concurrency: tuple[int, ...],
    duration: float,
    output_metadata_file: str | None,
) -> Any:
    """Load-test the models on a temporary local service and print the profile
    (``az ml model profile``; ``Model.profile``). The service is deleted afterwards."""
    from mlmanage_jupyter.core.model import Model

    if bool(input_data) == bool(input_file):
        raise ValidationError("give the requests to profile with: -d JSON (repeatable) or --input-file requests.json")
    ws = _workspace(ctx)
    model_objs = [Model(ws, *parse_model_ref(m)) for m in _model_ids(models, model_metadata_file)]
    extra: dict[str, Any] = {"duration_s": duration, "show_output": False}
    if concurrency:
        extra["concurrency"] = concurrency
    prof = Model.profile(ws, name, model_objs, _inference_config(ic, entry_script, source_directory),
                         list(input_data) or input_file, cpu, memory_gb, description, **extra)  # fmt: skip
    data = prof.serialize()
    _write_metadata(output_metadata_file, data)
    return data


@model_group.command("package")
@click.option("-m", "--model", "models", multiple=True, metavar="NAME[:VERSION]", help="a model (repeatable)")
@click.option("-f", "--model-metadata-file", type=click.Path(dir_okay=False), help="a model's JSON (model register -t)")
@click.option("--ic", "--inference-config-file", "ic", type=click.Path(dir_okay=False), help="inferenceconfig.json")
@click.option("--es", "--entry-script", "entry_script", help="score.py (instead of --ic)")
@click.option("--sd", "--source-directory", "source_directory", help="folder shipped with the entry script")
@click.option("--in", "--image-name", "image_name", help="image name (default: the first model's)")
@click.option("--il", "--image-label", "image_label", help="a label kept as the image's tag 'label'")
@click.option("-p", "--output-path", type=click.Path(), help="write the Dockerfile and build context to this new folder")
@click.option("--no-wait", is_flag=True, hidden=True, help="accepted; packaging here does not build anything")
@az_options()
@click.pass_context
def model_package(
    ctx: click.Context,
    models: tuple[str, ...],
    model_metadata_file: str | None,
    ic: str | None,
    entry_script: str | None,
    source_directory: str | None,
    image_name: str | None,
    image_label: str | None,
    output_path: str | None,
    no_wait: bool,
) -> Any:
    """Package models and an entry script as an image without deploying it
    (``az ml model package``; ``Model.package``); with -p, its Dockerfile and build context."""
    from mlmanage_jupyter.core.model import Model

    ws = _workspace(ctx)
    model_objs = [Model(ws, *parse_model_ref(m)) for m in _model_ids(models, model_metadata_file)]
    package = Model.package(ws, model_objs, _inference_config(ic, entry_script, source_directory),
                            generate_dockerfile=bool(output_path), image_name=image_name, image_label=image_label)  # fmt: skip
    if output_path:
        path = str(package.save(output_path))
        return Answer({"path": path, "image": package.image.serialize()}, text=path)
    return package.image.serialize()


_SERVICE_COLUMNS = ["name", "compute_type", "state", "models", "scoring_uri"]


@service_group.command("list")
@click.option("-c", "--compute-type", help="local, docker, aci or kubernetes (AKS)")
@click.option("--model-name", help="only services serving this model")
@click.option("--model-id", help="only services serving this NAME:VERSION")
@click.option("--image-name", help="only services running this image")
@click.option("--tag", "tags", multiple=True, metavar="KEY[=VALUE]", help="has this tag (repeatable)")
@click.option("--property", "properties", multiple=True, metavar="KEY[=VALUE]", help="has this property")
@az_options()
@click.pass_context
def service_list(
    ctx: click.Context,
    compute_type: str | None,
    model_name: str | None,
    model_id: str | None,
    image_name: str | None,
    tags: tuple[str, ...],
    properties: tuple[str, ...],
) -> Any:
    """List services with their live state."""
    from mlmanage_jupyter.core.webservice import Webservice

    services = Webservice.list(_workspace(ctx), compute_type=compute_type, model_name=model_name, model_id=model_id,
                               image_name=image_name, tags=parse_filter(tags), properties=parse_filter(properties))  # fmt: skip
    df = services.to_dataframe()
    rows = df[_SERVICE_COLUMNS].to_dict("records") if len(df) else []
    return Answer([s.serialize() for s in services], rows=rows, columns=_SERVICE_COLUMNS)


@service_group.command("show")
@click.option("-n", "--name", required=True)
@az_options()
@click.pass_context
def service_show(ctx: click.Context, name: str) -> Any:
    """Show a service with its live state and URIs."""
    svc = _get_service(ctx, name)
    svc.update_state()
    return svc.serialize()


#: what ``service get-logs --init`` says on stderr before the logs
INIT_LOGS_NOTE = (
    "note: services here have no init container (Azure's downloads the models at start; ours has them "
    "in the image), so --init prints the service's own log, which holds init()'s output and traceback"
)


@service_group.command("get-logs")
@click.option("-n", "--name", required=True)
@click.option("-l", "--num_lines", "--num-lines", "--tail", "tail", type=int, default=5000, show_default=True,
              help="how many of the last lines")  # fmt: skip
@click.option("-i", "--init", "init", is_flag=True,
              help="az's init-container logs: there is none here, so the service's log (with init()'s output)")
@az_options()
@click.pass_context
def service_get_logs(ctx: click.Context, name: str, tail: int, init: bool) -> Any:
    """Print the last lines the service wrote (``az ml service get-logs``; ``-o json``
    prints them as one JSON string, as ``az`` does). ``--init``: Azure's ACI/AKS services
    have an init container that fetches the models before the scoring container starts;
    ours have the models in the image, so there is no such container and ``--init`` prints
    the same log (the engine's start, the entry script's ``init()`` output and its
    traceback when it fails) after a note on stderr saying so."""
    if init:
        click.echo(INIT_LOGS_NOTE, err=True)
    logs = _get_service(ctx, name).get_logs(num_lines=tail)
    return Answer(logs, text=logs)


@service_group.command("run")
@click.option("-n", "--name", required=True)
@click.option("-d", "--input-data", help="JSON body; '-' or absent reads stdin")
@az_options(default_output="json")
@click.pass_context
def service_run(ctx: click.Context, name: str, input_data: str | None) -> Any:
    """POST input data to the service's scoring_uri and print the JSON answer."""
    if input_data is None or input_data == "-":
        input_data = sys.stdin.read()
    return Answer(_get_service(ctx, name).run(input_data))


@service_group.command("fuzz")
@click.option("-n", "--name", required=True)
@click.option("--max-examples", type=click.IntRange(min=0), default=200, show_default=True,
              help="generated requests (half valid, half invalid), plus the protocol cases")
@click.option("--seed", type=int, help="Hypothesis seed: the same seed sends the same requests")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0, min_open=True), default=120.0, show_default=True,
              help="budget for the whole run, seconds")
@click.option("--request-timeout", "request_timeout_s", type=click.FloatRange(min=0, min_open=True), default=30.0,
              show_default=True, help="per request, seconds")
@click.option("--sample-input", help="a valid JSON body, for a service whose swagger has no input schema")
@click.option("--strict", is_flag=True, help="a 4xx to a schema-valid request is a fault too")
@click.option("-o", "--output", type=click.Choice(["json", "table"]), default="table", show_default=True)
@click.pass_context
def service_fuzz(
    ctx: click.Context,
    name: str,
    max_examples: int,
    seed: int | None,
    timeout_s: float,
    request_timeout_s: float,
    sample_input: str | None,
    strict: bool,
    output: str,
) -> None:
    """Fuzz the service's /score from its swagger; print the report (exit 1 on any fault)."""
    sample = None
    if sample_input is not None:
        try:
            sample = json.loads(sample_input)
        except ValueError as e:
            raise ValidationError(f"--sample-input is not valid JSON: {e}") from None
    report = _get_service(ctx, name).fuzz(
        max_examples=max_examples, seed=seed, timeout_s=timeout_s,
        request_timeout_s=request_timeout_s, sample_input=sample, strict=strict,
    )  # fmt: skip
    if output == "json":
        click.echo(json.dumps(report.to_dict(), indent=2, default=str))
    else:
        click.echo(str(report))
    if not report.ok:
        ctx.exit(1)


@service_group.command("update")
@click.option("-n", "--name", required=True)
@click.option("-m", "--model", "models", multiple=True, metavar="NAME[:VERSION]", help="new model list (repeatable)")
@click.option("--ic", "--inference-config-file", "ic", type=click.Path(dir_okay=False))
@click.option("--es", "--entry-script", "entry_script")
@click.option("--sd", "--source-directory", "source_directory")
@click.option("--dc", "--deploy-config-file", "dc", type=click.Path(dir_okay=False))
@click.option("--add-tag", "add_tags", multiple=True, metavar="KEY=VALUE")
@click.option("--remove-tag", "remove_tags", multiple=True, metavar="KEY")
@click.option("-d", "--description")
@az_options()
@click.pass_context
def service_update(
    ctx: click.Context,
    name: str,
    models: tuple[str, ...],
    ic: str | None,
    entry_script: str | None,
    source_directory: str | None,
    dc: str | None,
    add_tags: tuple[str, ...],
    remove_tags: tuple[str, ...],
    description: str | None,
) -> Any:
    """Rolling update to new models, a new entry script and/or a new deployment config."""
    from mlmanage_jupyter.core.model import Model
    from mlmanage_jupyter.core.targets.base import config_from_json

    svc = _get_service(ctx, name)
    model_objs = [Model(svc.workspace, *parse_model_ref(m)) for m in models] or None
    ic_obj = _inference_config(ic, entry_script, source_directory) if (ic or entry_script) else None
    tags = None
    if add_tags or remove_tags:
        missing = [k for k in remove_tags if k not in svc.tags]
        if missing:
            raise ValidationError(f"--remove-tag {missing[0]!r}: the service has no such tag (tags: {', '.join(svc.tags) or 'none'})")
        tags = {k: v for k, v in {**svc.tags, **parse_kv(add_tags, "add-tag")}.items() if k not in remove_tags}
    svc.update(
        models=model_objs,
        inference_config=ic_obj,
        deployment_config=config_from_json(dc) if dc else None,
        tags=tags,
        description=description,
        progress=_progress,
    )
    return svc.serialize()


@service_group.command("delete")
@click.option("-n", "--name", required=True)
@az_options()
@click.pass_context
def service_delete(ctx: click.Context, name: str) -> Any:
    """Stop a service and forget it (with the images only it used)."""
    _get_service(ctx, name).delete()
    return Answer(None, text=f"deleted service {name}")


@service_group.command("get-keys")
@click.option("-n", "--name", required=True)
@az_options(default_output="json")
@click.pass_context
def service_get_keys(ctx: click.Context, name: str) -> Any:
    """The primary and secondary keys (``az ml service get-keys``)."""
    primary, secondary = _get_service(ctx, name).get_keys()
    return {"primaryKey": primary, "secondaryKey": secondary}


@service_group.command("get-access-token")
@click.option("-n", "--name", required=True)
@az_options(default_output="json")
@click.pass_context
def service_get_access_token(ctx: click.Context, name: str) -> Any:
    """A bearer token of a token-auth service (``token_auth_enabled=True``): ``accessToken``,
    ``refreshAfter``, ``expiryOn`` (ISO-8601 UTC; valid 1 hour) and ``tokenType``, the keys
    of ``az ml service get-access-token`` (``Webservice.get_access_token``). Send it as
    ``Authorization: Bearer <accessToken>``; fails for a service without token auth."""
    return _get_service(ctx, name).get_access_token().to_dict()


@service_group.command("regen-key")
@click.option("-n", "--name", required=True)
@click.option("-k", "--key", type=click.Choice(["Primary", "Secondary"], case_sensitive=False), required=True)
@click.option("-s", "--set-key", help="use this value instead of a random one")
@az_options(default_output="json")
@click.pass_context
def service_regen_key(ctx: click.Context, name: str, key: str, set_key: str | None) -> Any:
    """Regenerate a key; answers with both keys."""
    svc = _get_service(ctx, name)
    svc.regen_key(key, set_key=set_key)
    primary, secondary = svc.get_keys()
    return {"primaryKey": primary, "secondaryKey": secondary}


# our earlier names, kept working
_alias(service_group, model_deploy, "deploy")
_alias(service_group, service_get_logs, "logs")
_alias(service_group, service_get_keys, "keys")


# ------------------------------------------------------------------ image
@cli.group("image")
def image_group() -> None:
    """List, show, export and delete images (build contexts)."""


def _get_image(ctx: click.Context, image_id: str | None, name: str | None, version: int | None) -> Any:
    from mlmanage_jupyter.core.image import Image

    if image_id:
        name, version = parse_model_ref(image_id)
    if not name:
        raise ValidationError("give the image as -i NAME:VERSION or -n NAME [-v VERSION]")
    return Image(_workspace(ctx), name, version=version)


image_ref_options = [
    click.option("-i", "--image-id", help="NAME:VERSION"),
    click.option("-n", "--name", help="image name"),
    click.option("-v", "--version", type=int, help="image version (default: the latest)"),
]


def _with_image_ref(f: Any) -> Any:
    for opt in reversed(image_ref_options):
        f = opt(f)
    return f


_IMAGE_COLUMNS = ["name", "version", "models", "entry_script", "content_hash", "docker_image", "created_time"]


@image_group.command("list")
@click.option("-n", "--name")
@az_options()
@click.pass_context
def image_list(ctx: click.Context, name: str | None) -> Any:
    """List images, by name then version descending."""
    from mlmanage_jupyter.core.image import Image

    images = Image.list(_workspace(ctx), name=name)
    rows = [
        {
            "name": i.name,
            "version": i.version,
            "models": ",".join(i.model_ids),
            "entry_script": i.entry_script,
            "content_hash": i.content_hash[:12],
            "docker_image": i.docker_image or "",
            "created_time": i.created_time,
        }
        for i in images
    ]
    return Answer([i.serialize() for i in images], rows=rows, columns=_IMAGE_COLUMNS)


@image_group.command("show")
@_with_image_ref
@az_options()
@click.pass_context
def image_show(ctx: click.Context, image_id: str | None, name: str | None, version: int | None) -> Any:
    """Show one image version."""
    return _get_image(ctx, image_id, name, version).serialize()


@image_group.command("export")
@_with_image_ref
@click.option("-p", "--path", required=True, type=click.Path(), help="a new folder, or with --docker a .tar file")
@click.option("--docker", "as_docker", is_flag=True, help="build the Docker image and save it as a tarball")
@click.pass_context
def image_export(
    ctx: click.Context, image_id: str | None, name: str | None, version: int | None, path: str, as_docker: bool
) -> None:
    """Export the build context (with a Dockerfile), or with --docker a ``docker save`` tarball."""
    image = _get_image(ctx, image_id, name, version)
    if as_docker:
        from mlmanage_jupyter.core.images import build_cache_dir, image_spec
        from mlmanage_jupyter.core.targets.docker_build import export_tarball

        click.echo(export_tarball(image_spec(image), path, cache_dir=build_cache_dir(image.workspace)))
    else:
        click.echo(image.save(path))


@image_group.command("delete")
@_with_image_ref
@click.pass_context
def image_delete(ctx: click.Context, image_id: str | None, name: str | None, version: int | None) -> None:
    """Delete an image version (refused while a service runs it)."""
    if not image_id and version is None:
        raise ValidationError("give the version to delete: -i NAME:VERSION or -n NAME -v VERSION")
    image = _get_image(ctx, image_id, name, version)
    image.delete()
    click.echo(f"deleted image {image.id}")


# ------------------------------------------------------------------ garbage collection
@cli.command("gc")
@az_options()
@click.pass_context
def gc(ctx: click.Context) -> Any:
    """Reclaim what nothing references: model artifacts of deleted versions, image build
    contexts no image records, temporary files of killed registrations and builds (those of a
    process still running are kept; run while nothing registers)."""
    from mlmanage_jupyter.core.model import collect_garbage

    out = collect_garbage(_workspace(ctx))
    return Answer(out, text=", ".join(f"{k}: {v}" for k, v in out.items()))


# ------------------------------------------------------------------ entry point
def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns (and, as a script, exits with) 0 on success, 2 on any error."""
    try:
        rv = cli.main(args=list(argv) if argv is not None else None, prog_name="mlmanage", standalone_mode=False)
    except click.exceptions.Exit as e:  # --help, --version
        return int(e.exit_code or 0)
    except click.exceptions.Abort:
        click.echo("error: aborted", err=True)
        return EXIT_USAGE
    except click.ClickException as e:
        click.echo(f"error: {_one_line(e.format_message())}", err=True)
        return EXIT_USAGE
    except MlManageError as e:
        click.echo(f"error: {_one_line(str(e))}", err=True)
        return EXIT_USAGE
    return int(rv) if isinstance(rv, int) else 0


def _one_line(msg: str) -> str:
    return " ".join(msg.split())


if __name__ == "__main__":
    sys.exit(main())
