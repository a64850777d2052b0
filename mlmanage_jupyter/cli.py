"""The ``mlmanage`` command: Azure ML v1 CLI's model-management verbs on a local workspace.

Flag names follow ``az ml model`` / ``az ml service`` where they exist::

    mlmanage [--workspace PATH] workspace create|show
    mlmanage model register -n NAME -p PATH [--tag k=v ...] [--property k=v ...] [--description D]
    mlmanage model list [-n NAME] [--tag k[=v] ...] [--property k[=v] ...] [--latest] [-o json|table]
    mlmanage model show|delete (-i NAME:VERSION | -n NAME [-v VERSION])
    mlmanage model download (-i ID | -n NAME [-v V]) -t TARGET_DIR [--overwrite]
    mlmanage service deploy -n NAME -m MODEL:VERSION [-m ...] --ic inferenceconfig.json
                            [--dc deploymentconfig.json] [--overwrite] [--dry-run]
    mlmanage service list|show|logs|run|update|delete|regen-key|keys
    mlmanage image list|show|export|delete
    mlmanage gc [-o json]

The workspace is ``--workspace``, else ``$MLMANAGE_WORKSPACE``, else ``./.mlmanage``.
Build logs and deployment progress go to stderr; results to stdout (``-o json`` is
machine-readable). Any error prints one line ``error: ...`` on stderr and exits with 2.

The commands hold no logic: each parses its flags, calls one core function and prints.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import click

from mlmanage_jupyter.core.entities.parsing import parse_filter, parse_kv, parse_model_ref
from mlmanage_jupyter.core.errors import MlManageError, ValidationError

EXIT_USAGE = 2


# ------------------------------------------------------------------ shared parsing helpers
def _workspace(ctx: click.Context) -> Any:
    from mlmanage_jupyter.core.workspace import Workspace

    return Workspace(ctx.obj.get("workspace"))


def _get_model(ws: Any, model_id: str | None, name: str | None, version: int | None) -> Any:
    from mlmanage_jupyter.core.model import Model

    if model_id:
        name, version = parse_model_ref(model_id)
    if not name:
        raise ValidationError("give the model as -i NAME:VERSION or -n NAME [-v VERSION]")
    return Model(ws, name, version)


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def _echo_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    import pandas as pd

    if not rows:
        click.echo("(none)")
        return
    df = pd.DataFrame(rows, columns=list(columns))
    with pd.option_context("display.max_colwidth", 60, "display.width", 200):
        click.echo(df.to_string(index=False))


def _echo_object(data: dict[str, Any], output: str) -> None:
    if output == "json":
        _echo_json(data)
        return
    width = max((len(k) for k in data), default=0)
    for k, v in data.items():
        if isinstance(v, (dict, list)):
            v = json.dumps(v)
        click.echo(f"{k.ljust(width)}  {v}")


def _progress(msg: str) -> None:
    click.echo(msg, err=True)


output_option = click.option(
    "-o", "--output", type=click.Choice(["json", "table"]), default="table", show_default=True, help="output format"
)


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
@output_option
@click.pass_context
def workspace_create(ctx: click.Context, name: str | None, metadata_url: str | None, exist_ok: bool, output: str) -> None:
    """Create the workspace folder (``--workspace``) with its config.json."""
    from mlmanage_jupyter.core.workspace import Workspace

    ws = Workspace.create(ctx.obj.get("workspace"), name=name, metadata_url=metadata_url, exist_ok=exist_ok)
    _echo_object(ws.get_details(), output)


@workspace_group.command("show")
@output_option
@click.pass_context
def workspace_show(ctx: click.Context, output: str) -> None:
    """Show the workspace's name, folder and stores."""
    _echo_object(_workspace(ctx).get_details(), output)


# ------------------------------------------------------------------ model
@cli.group("model")
def model_group() -> None:
    """Register, list, show, download and delete models."""


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
@click.option("-p", "--asset-path", "--model-path", "asset_path", required=True, help="a file or a folder")
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="a tag (repeatable)")
@click.option("--property", "properties", multiple=True, metavar="KEY=VALUE", help="a property (repeatable)")
@click.option("-d", "--description")
@click.option("--model-framework", "framework", help="e.g. ScikitLearn, Onnx, TensorFlow, PyTorch")
@click.option("--model-framework-version", "framework_version")
@output_option
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
    output: str,
) -> None:
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
    _echo_object(m.serialize(), output)


@model_group.command("list")
@click.option("-n", "--name", help="only this model name")
@click.option("--tag", "tags", multiple=True, metavar="KEY[=VALUE]", help="has this tag (repeatable)")
@click.option("--property", "properties", multiple=True, metavar="KEY[=VALUE]", help="has this property")
@click.option("-l", "--latest", is_flag=True, help="only the latest version of each name")
@output_option
@click.pass_context
def model_list(
    ctx: click.Context, name: str | None, tags: tuple[str, ...], properties: tuple[str, ...], latest: bool, output: str
) -> None:
    """List models, by name then version descending."""
    from mlmanage_jupyter.core.model import Model

    models = Model.list(_workspace(ctx), name=name, tags=parse_filter(tags), properties=parse_filter(properties), latest=latest)
    if output == "json":
        _echo_json([m.serialize() for m in models])
    else:
        _echo_table([_model_row(m) for m in models], _MODEL_COLUMNS)


model_ref_options = [
    click.option("-i", "--model-id", help="NAME:VERSION"),
    click.option("-n", "--name", help="model name"),
    click.option("-v", "--version", type=int, help="model version (default: the latest)"),
]


def _with_model_ref(f: Any) -> Any:
    for opt in reversed(model_ref_options):
        f = opt(f)
    return f


@model_group.command("show")
@_with_model_ref
@output_option
@click.pass_context
def model_show(ctx: click.Context, model_id: str | None, name: str | None, version: int | None, output: str) -> None:
    """Show one model version (the latest without -v), with its files."""
    m = _get_model(_workspace(ctx), model_id, name, version)
    data = m.serialize()
    data["files"] = m.get_files()
    _echo_object(data, output)


@model_group.command("download")
@_with_model_ref
@click.option("-t", "--target-dir", required=True, type=click.Path(file_okay=False), help="folder to copy the model to")
@click.option("--overwrite", is_flag=True, help="replace files that exist")
@click.pass_context
def model_download(
    ctx: click.Context, model_id: str | None, name: str | None, version: int | None, target_dir: str, overwrite: bool
) -> None:
    """Copy a model's files (sha256-checked) to TARGET_DIR; prints the path."""
    m = _get_model(_workspace(ctx), model_id, name, version)
    click.echo(m.download(target_dir, exist_ok=overwrite))


@model_group.command("delete")
@_with_model_ref
@click.pass_context
def model_delete(ctx: click.Context, model_id: str | None, name: str | None, version: int | None) -> None:
    """Delete one model version (refused while an image or service uses it)."""
    if not model_id and version is None:
        raise ValidationError("give the version to delete: -i NAME:VERSION or -n NAME -v VERSION")
    m = _get_model(_workspace(ctx), model_id, name, version)
    m.delete()
    click.echo(f"deleted model {m.id}")


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


@service_group.command("deploy")
@click.option("-n", "--name", required=True, help="service name")
@click.option("-m", "--model", "models", multiple=True, required=True, metavar="NAME[:VERSION]", help="repeatable")
@click.option("--ic", "--inference-config-file", "ic", type=click.Path(dir_okay=False), help="inferenceconfig.json")
@click.option("--dc", "--deploy-config-file", "dc", type=click.Path(dir_okay=False), help="deploymentconfig.json")
@click.option("--entry-script", help="score.py (instead of --ic)")
@click.option("--source-directory", help="folder shipped with the entry script")
@click.option("--overwrite", is_flag=True, help="replace a service of that name")
@click.option("--dry-run", is_flag=True, help="print what would be deployed (Kubernetes: the manifests) and stop")
@click.option("--timeout", type=float, default=600, show_default=True, help="seconds to wait for Healthy")
@output_option
@click.pass_context
def service_deploy(
    ctx: click.Context,
    name: str,
    models: tuple[str, ...],
    ic: str | None,
    dc: str | None,
    entry_script: str | None,
    source_directory: str | None,
    overwrite: bool,
    dry_run: bool,
    timeout: float,
    output: str,
) -> None:
    """Build an image from the models and entry script and deploy it (``az ml model deploy``).

    ``"computeType"`` in the deployment config picks the target: local (default), docker,
    ACI, AKS/kubernetes.
    """
    from mlmanage_jupyter.core.deployment import dry_run_text
    from mlmanage_jupyter.core.errors import DeploymentFailedError
    from mlmanage_jupyter.core.model import Model
    from mlmanage_jupyter.core.targets.base import LocalDeploymentConfig, config_from_json
    from mlmanage_jupyter.core.webservice import deploy

    ws = _workspace(ctx)
    inference_config = _inference_config(ic, entry_script, source_directory)
    cfg = config_from_json(dc) if dc else LocalDeploymentConfig()
    model_objs = [Model(ws, *parse_model_ref(m)) for m in models]
    if dry_run:
        click.echo(dry_run_text(ws, name, [m.record for m in model_objs], inference_config, cfg))
        return
    svc = deploy(ws, name, model_objs, inference_config, cfg, overwrite=overwrite, progress=_progress)
    try:
        svc.wait_for_deployment(timeout_sec=timeout)
    except DeploymentFailedError as e:
        if e.logs:
            click.echo(e.logs[-4000:], err=True)
        raise
    _echo_object(svc.serialize(), output)


_SERVICE_COLUMNS = ["name", "compute_type", "state", "models", "scoring_uri"]


@service_group.command("list")
@click.option("--compute-type", help="local, docker, aci or kubernetes")
@click.option("--model-name", help="only services serving this model")
@output_option
@click.pass_context
def service_list(ctx: click.Context, compute_type: str | None, model_name: str | None, output: str) -> None:
    """List services with their live state."""
    from mlmanage_jupyter.core.webservice import Webservice

    services = Webservice.list(_workspace(ctx), compute_type=compute_type, model_name=model_name)
    if output == "json":
        _echo_json([s.serialize() for s in services])
    else:
        df = services.to_dataframe()
        _echo_table(df[_SERVICE_COLUMNS].to_dict("records") if len(df) else [], _SERVICE_COLUMNS)


@service_group.command("show")
@click.option("-n", "--name", required=True)
@output_option
@click.pass_context
def service_show(ctx: click.Context, name: str, output: str) -> None:
    """Show a service with its live state and URIs."""
    svc = _get_service(ctx, name)
    svc.update_state()
    _echo_object(svc.serialize(), output)


@service_group.command("logs")
@click.option("-n", "--name", required=True)
@click.option("-l", "--tail", "--num-lines", "tail", type=int, default=5000, show_default=True)
@click.pass_context
def service_logs(ctx: click.Context, name: str, tail: int) -> None:
    """Print the last lines the service wrote (``az ml service get-logs``)."""
    click.echo(_get_service(ctx, name).get_logs(num_lines=tail), nl=False)


@service_group.command("run")
@click.option("-n", "--name", required=True)
@click.option("-d", "--input-data", help="JSON body; '-' or absent reads stdin")
@click.pass_context
def service_run(ctx: click.Context, name: str, input_data: str | None) -> None:
    """POST input data to the service's scoring_uri and print the JSON answer."""
    if input_data is None or input_data == "-":
        input_data = sys.stdin.read()
    result = _get_service(ctx, name).run(input_data)
    _echo_json(result)


@service_group.command("update")
@click.option("-n", "--name", required=True)
@click.option("-m", "--model", "models", multiple=True, metavar="NAME[:VERSION]", help="new model list (repeatable)")
@click.option("--ic", "--inference-config-file", "ic", type=click.Path(dir_okay=False))
@click.option("--entry-script")
@click.option("--source-directory")
@click.option("--dc", "--deploy-config-file", "dc", type=click.Path(dir_okay=False))
@click.option("--add-tag", "add_tags", multiple=True, metavar="KEY=VALUE")
@click.option("-d", "--description")
@output_option
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
    description: str | None,
    output: str,
) -> None:
    """Rolling update to new models and/or a new entry script."""
    from mlmanage_jupyter.core.model import Model
    from mlmanage_jupyter.core.targets.base import config_from_json

    svc = _get_service(ctx, name)
    model_objs = [Model(svc.workspace, *parse_model_ref(m)) for m in models] or None
    ic_obj = _inference_config(ic, entry_script, source_directory) if (ic or entry_script) else None
    tags = {**svc.tags, **parse_kv(add_tags, "add-tag")} if add_tags else None
    svc.update(
        models=model_objs,
        inference_config=ic_obj,
        deployment_config=config_from_json(dc) if dc else None,
        tags=tags,
        description=description,
        progress=_progress,
    )
    _echo_object(svc.serialize(), output)


@service_group.command("delete")
@click.option("-n", "--name", required=True)
@click.pass_context
def service_delete(ctx: click.Context, name: str) -> None:
    """Stop a service and forget it."""
    _get_service(ctx, name).delete()
    click.echo(f"deleted service {name}")


@service_group.command("keys")
@click.option("-n", "--name", required=True)
@click.pass_context
def service_keys(ctx: click.Context, name: str) -> None:
    """Print the primary and secondary keys as JSON (``az ml service get-keys``)."""
    primary, secondary = _get_service(ctx, name).get_keys()
    _echo_json({"primaryKey": primary, "secondaryKey": secondary})


@service_group.command("regen-key")
@click.option("-n", "--name", required=True)
@click.option("-k", "--key", type=click.Choice(["Primary", "Secondary"], case_sensitive=False), required=True)
@click.option("--set-key", help="use this value instead of a random one")
@click.pass_context
def service_regen_key(ctx: click.Context, name: str, key: str, set_key: str | None) -> None:
    """Regenerate a key; prints both keys as JSON."""
    svc = _get_service(ctx, name)
    svc.regen_key(key, set_key=set_key)
    primary, secondary = svc.get_keys()
    _echo_json({"primaryKey": primary, "secondaryKey": secondary})


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
    return Image(_workspace(ctx), name, version)


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
@output_option
@click.pass_context
def image_list(ctx: click.Context, name: str | None, output: str) -> None:
    """List images, by name then version descending."""
    from mlmanage_jupyter.core.image import Image

    images = Image.list(_workspace(ctx), name=name)
    if output == "json":
        _echo_json([i.serialize() for i in images])
    else:
        _echo_table(
            [
                {
                    "name": i.name,
                    "version": i.version,
                    "models": ",".join(i.models),
                    "entry_script": i.entry_script,
                    "content_hash": i.content_hash[:12],
                    "docker_image": i.docker_image or "",
                    "created_time": i.created_time,
                }
                for i in images
            ],
            _IMAGE_COLUMNS,
        )


@image_group.command("show")
@_with_image_ref
@output_option
@click.pass_context
def image_show(ctx: click.Context, image_id: str | None, name: str | None, version: int | None, output: str) -> None:
    """Show one image version."""
    _echo_object(_get_image(ctx, image_id, name, version).serialize(), output)


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
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table")
@click.pass_context
def gc(ctx: click.Context, output: str) -> None:
    """Reclaim what nothing references: model artifacts of deleted versions, image build
    contexts no image records, temporary files of killed registrations and builds (those of a
    process still running are kept; run while nothing registers)."""
    from mlmanage_jupyter.core.model import collect_garbage

    out = collect_garbage(_workspace(ctx))
    if output == "json":
        _echo_json(out)
    else:
        click.echo(", ".join(f"{k}: {v}" for k, v in out.items()))


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
