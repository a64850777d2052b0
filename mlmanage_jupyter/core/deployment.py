"""Deployments: deploy, update, delete, state, logs, keys of web services, and ``--dry-run``.

A service row in the metadata store records the target (``compute_type``), the image it
runs, the models it serves, its configuration, its keys and what the target needs to find
it again (``runtime``: pid and port, container id, namespace). So a service is found again
from a new kernel or process: services outlive the kernel that started them, and a service
whose process or container is gone reports ``Unhealthy`` with a message saying so.

Functions here take a Workspace and records (``ServiceRecord``, ``ModelRecord``) and talk
to the targets through ONE request builder, :func:`_deploy_request`; ``core/webservice.py``
wraps them in Azure's ``Webservice`` classes.
"""

from __future__ import annotations

import datetime
import json
import secrets
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from mlmanage_jupyter.core import cleanup, images, no_code, registry, telemetry
from mlmanage_jupyter.core.entities.names import match_filter, parse_filter, split_id, validate_service_name
from mlmanage_jupyter.core.entities.records import ImageRecord, ModelRecord, ServiceRecord
from mlmanage_jupyter.core.environment import InferenceConfig, warn_python_mismatch
from mlmanage_jupyter.core.errors import (
    DeploymentFailedError,
    ServiceNotFoundError,
    ValidationError,
    WebserviceException,
)
from mlmanage_jupyter.core.fsutil import write_json_atomic
from mlmanage_jupyter.core.store import services as service_store
from mlmanage_jupyter.core.targets import base
from mlmanage_jupyter.core.targets.base import (
    DeploymentConfig,
    DeployRequest,
    DeployResult,
    LocalDeploymentConfig,
    get_target,
    workspace_id,
)
from mlmanage_jupyter.core.workspace import Workspace
from mlmanage_jupyter.server.auth import TOKEN_LIFETIME_S, TOKEN_SECRET_FIELD, issue_token
from mlmanage_jupyter.server.config import ConfigError, tuning_env

ProgressFn = Callable[[str], None]


def print_progress(msg: str) -> None:
    """Progress to stderr (``show_output=True``)."""
    print(msg, file=sys.stderr, flush=True)


def progress_fn(progress: ProgressFn | None, show_output: bool) -> ProgressFn:
    return progress or (print_progress if show_output else base._no_progress)


def new_keys() -> dict[str, str]:
    """A fresh ``{"primaryKey", "secondaryKey"}`` pair (URL-safe, 24 random bytes each)."""
    return {"primaryKey": secrets.token_urlsafe(24), "secondaryKey": secrets.token_urlsafe(24)}


def _new_secrets(cfg: DeploymentConfig) -> dict[str, str]:
    """The secrets a new service of ``cfg`` keeps in the key store (``store/keys.py``): its
    keys (``auth_enabled``) or its token-signing secret (``token_auth_enabled``, field
    ``tokenSecret``; 32 random bytes), so every workspace folder of a shared database can
    ``get_keys()`` / ``get_token()``."""
    out = new_keys() if cfg.auth_enabled else {}
    if cfg.token_auth_enabled:
        out[TOKEN_SECRET_FIELD] = secrets.token_urlsafe(32)
    return out


def _token_secret_file(ws: Workspace, name: str) -> Path:
    return ws.path / "services" / name / "token.json"


def _token_secret(ws: Workspace, name: str, *, new: bool = False) -> str:
    """The token-signing secret of a service without one in the key store (deployed before
    secrets moved there, or updated to ``token_auth_enabled``): kept in this folder's
    ``services/<name>/token.json`` (mode 0600), never in the metadata DB; ``new=True``
    replaces it."""
    path = _token_secret_file(ws, name)
    if not new and path.is_file():
        secret = json.loads(path.read_text()).get(TOKEN_SECRET_FIELD)
        if secret:
            return str(secret)
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(32)
    write_json_atomic(path, {TOKEN_SECRET_FIELD: secret}, mode=0o600)
    return secret


def get_token(
    ws: Workspace, service: ServiceRecord, lifetime_s: float = TOKEN_LIFETIME_S, now: float | None = None
) -> tuple[str, datetime.datetime]:
    """``(token, refresh_after)`` (Azure's ``Webservice.get_token()``): a token valid for
    ``lifetime_s`` seconds from ``now`` (Unix epoch s, default the current time) and the
    UTC datetime half-way through its life. Raises WebserviceException when token auth is off."""
    if not service.config.get("token_auth_enabled"):
        raise WebserviceException(
            f"service {service.name} has token authentication disabled: deploy with "
            "token_auth_enabled=True (or use get_keys() with auth_enabled=True)"
        )
    issued = time.time() if now is None else now
    secret = service.keys.get(TOKEN_SECRET_FIELD) or _token_secret(ws, service.name)
    token = issue_token(service.name, secret, issued + lifetime_s)
    refresh_after = datetime.datetime.fromtimestamp(issued + lifetime_s / 2, tz=datetime.timezone.utc)
    return token, refresh_after


def config_of(service: ServiceRecord) -> DeploymentConfig:
    """The service's deployment configuration as its dataclass."""
    return DeploymentConfig.from_dict(dict(service.config))


def get(ws: Workspace, name: str) -> ServiceRecord:
    """The recorded service ``name``; raises ServiceNotFoundError."""
    return service_store.get(ws, name)


def model_records(ws: Workspace, models: Sequence[ModelRecord | str]) -> list[ModelRecord]:
    """Records for ``models`` given as records or ``"name[:version]"`` strings."""
    return [m if isinstance(m, ModelRecord) else registry.get(ws, *split_id("Model", None, None, str(m))) for m in models]


def _deploy_request(
    ws: Workspace, name: str, image: ImageRecord, cfg: DeploymentConfig, keys: dict[str, str], progress: ProgressFn
) -> DeployRequest:
    """THE place that turns what orchestration knows into the plain data a target takes: the
    engine's tuning knobs set in this process's environment (``server.config.TUNING_VARS``)
    apply to the service; data collection goes to the workspace's artifact store when
    ``cfg.collect_model_data``. Raises ValidationError for a bad knob value."""
    if cfg.token_auth_enabled and not keys.get(TOKEN_SECRET_FIELD):  # the engine reads it from its keys file
        keys = {**keys, TOKEN_SECRET_FIELD: _token_secret(ws, name)}
    req = DeployRequest(
        name=name,
        image=images.image_spec(image, ws),
        config=cfg,
        service_dir=ws.path / "services" / name,
        cache_dir=images.build_cache_dir(ws),
        workspace_id=workspace_id(ws.path),
        keys=dict(keys),
        progress=progress,
    )
    try:
        req.settings = req.engine.update_from_env(tuning_env())
    except ConfigError as e:
        raise ValidationError(str(e)) from None
    if cfg.collect_model_data:
        req.settings = req.engine.update_from_env(telemetry.data_collection_env(ws))
    return req


def _record_docker_image(ws: Workspace, image: ImageRecord, res: DeployResult) -> None:
    """Record the Docker image a target built (targets never write to the workspace)."""
    if res.docker_image and res.docker_image != image.docker_image:
        images.set_docker_image(ws, image, res.docker_image)


def _check_config(cfg: Any) -> DeploymentConfig:
    cfg = cfg or LocalDeploymentConfig()
    if not isinstance(cfg, DeploymentConfig):
        raise ValidationError(f"deployment_config must come from *.deploy_configuration(...), got {type(cfg).__name__}")
    cfg.validate()
    return cfg


def deploy(
    ws: Workspace,
    name: str,
    models: Sequence[ModelRecord | str],
    inference_config: InferenceConfig | None,
    deployment_config: DeploymentConfig | None = None,
    overwrite: bool = False,
    *,
    image: ImageRecord | None = None,
    progress: ProgressFn = base._no_progress,
) -> ServiceRecord:
    """Build an image and start it as service ``name`` (Azure ML v1's ``Model.deploy``).

    Returns at once with the service Transitioning (see :func:`wait_for_deployment`).
    ``deployment_config`` defaults to a local one. ``overwrite=True`` replaces an existing
    service of that name: the new image is built and checked (configuration, port, target
    reachable) before the old service stops, and if the new one then fails to start the old one
    is started again (:func:`_replace`); the record, keys and images of the old one go only once
    the new one has started. ``image``: run this recorded image instead of
    building one (Azure's ``Webservice.deploy_from_image``); ``models`` and
    ``inference_config`` are then the image's. Such an image is not the service's: deleting
    the service keeps it.

    Raises ValidationError (bad name, config or script, port in use), WebserviceException (name
    taken), and whatever the target raises when it can't start (nothing is recorded then;
    DeploymentFailedError saying what runs now when it was replacing a service).
    """
    validate_service_name(name)
    cfg = _check_config(deployment_config)
    if image is not None:
        if not (image.context_path / "image.json").is_file():
            raise ValidationError(f"image {image.id} has lost its build context {image.context_path}; create it again")
        models, inference_config = image.models, images.inference_config_of(image)
    recs = model_records(ws, models)
    if inference_config is None:  # Azure's no-code deployment (ScikitLearn/Onnx models); else a ValidationError
        inference_config = no_code.inference_config(ws, name, recs)
        cfg = no_code.apply_resource_configuration(cfg, recs, given=deployment_config is not None)
    if cfg.compute_type == "local":  # the local target runs this interpreter
        warn_python_mismatch(inference_config.environment, f"{sys.version_info.major}.{sys.version_info.minor}",
                                     f"local target ({sys.executable})")
    old = service_store.get(ws, name) if service_store.exists(ws, name) else None
    if old is not None and not overwrite:
        raise WebserviceException(f"service {name!r} already exists: use service.update(...) or deploy(..., overwrite=True)")
    target = get_target(cfg.compute_type)
    had = {i.pk for i in images.list_images(ws, name=name)}
    if image is not None:
        img = image
    else:
        progress(f"building image {name} from {', '.join(m.id for m in recs)}")
        img = images.create_image(ws, name, recs, inference_config)
    keys = _new_secrets(cfg)
    if old is not None:  # a version create_image found (same content) is not this deploy's to drop
        return _replace(ws, old, img, cfg, keys, recs, progress, built=img.pk not in had)
    req = _deploy_request(ws, name, img, cfg, keys, progress)
    service_store.insert_service(
        ws, name=name, compute_type=cfg.compute_type, state=base.TRANSITIONING, image_pk=img.pk,
        config=cfg.to_dict(), keys=keys, models=recs,
    )  # fmt: skip
    try:
        progress(f"starting {name} on the {cfg.compute_type} target")
        res = target.deploy(req)
    except BaseException:
        service_store.delete_service(ws, name, event=False)
        raise
    _record_docker_image(ws, img, res)
    service_store.set_deployed(
        ws, name, runtime=res.runtime, scoring_uri=res.scoring_uri, swagger_uri=res.swagger_uri,
        compute_type=cfg.compute_type, image=img.id, models=[m.id for m in recs],
    )  # fmt: skip
    return service_store.get(ws, name)


def _replace(
    ws: Workspace,
    old: ServiceRecord,
    img: ImageRecord,
    cfg: DeploymentConfig,
    keys: dict[str, str],
    recs: Sequence[ModelRecord],
    progress: ProgressFn,
    built: bool,
) -> ServiceRecord:
    """``deploy(..., overwrite=True)`` of an existing service ``old``: every check that can fail
    before anything runs (config, image built, port free or ``old``'s own) happens before
    ``old`` is stopped; its record, image and keys stay until the new one has started. When the
    new one then fails to start, ``old`` is started again from its image, configuration and keys
    (same port) and DeploymentFailedError says so; when that fails too, the record says Failed
    with both reasons and the error names what to do. Returns the new service's record."""
    name = old.name
    target = get_target(cfg.compute_type)
    old_cfg = config_of(old)
    running = refresh_state(ws, old) in (base.HEALTHY, base.TRANSITIONING, base.UNHEALTHY)
    released = (int(old.runtime.get("port") or 0) or None) if running else None
    try:
        req = _deploy_request(ws, name, img, cfg, keys, progress)
        target.preflight(req, released_port=released)
    except BaseException:
        _drop_unused(ws, img, built)
        raise
    progress(f"replacing existing service {name}: stopping it")
    try:
        get_target(old.compute_type).delete(name, old.runtime)
    except Exception as e:
        _drop_unused(ws, img, built)
        state = refresh_state(ws, old)
        raise DeploymentFailedError(
            f"could not stop service {name!r} to replace it ({e}); nothing new was started and its record is "
            f"kept (it is {state} now): fix that, then deploy again"
        ) from e
    service_store.set_state(ws, name, base.TRANSITIONING, f"being replaced by image {img.id}")
    try:
        progress(f"starting {name} on the {cfg.compute_type} target")
        res = target.deploy(req)
    except Exception as e:
        err = _restore(ws, old, old_cfg, img, e, progress)
        _drop_unused(ws, img, built)
        raise err from e
    _record_docker_image(ws, img, res)
    service_store.replace_service(
        ws, name, compute_type=cfg.compute_type, image_pk=img.pk, config=cfg.to_dict(), keys=keys, served=recs,
        runtime=res.runtime, scoring_uri=res.scoring_uri, swagger_uri=res.swagger_uri,
        image=img.id, models=[m.id for m in recs], replaced=True,
    )  # fmt: skip
    cleanup.delete_service_images(ws, name, old.image_pk)
    return service_store.get(ws, name)


def _drop_unused(ws: Workspace, img: ImageRecord, built: bool) -> None:
    """Delete the image version a failed replacement made (``built``: new in this deploy),
    unless a service runs it."""
    if built and not images.services_of(ws, img):
        cleanup.delete_image_version(ws, img)


def _restore(
    ws: Workspace, old: ServiceRecord, old_cfg: DeploymentConfig, new_img: ImageRecord, why: Exception, progress: ProgressFn
) -> DeploymentFailedError:
    """Start ``old`` again after its replacement failed to start (``why``); returns the error
    to raise, saying what state things are in."""
    name = old.name
    old_img = images.get_by_pk(ws, old.image_pk) if old.image_pk else None
    if getattr(old_cfg, "port", "n/a") is None and old.runtime.get("port"):
        old_cfg.port = int(old.runtime["port"])  # type: ignore[attr-defined]  # the same scoring_uri
    try:
        if old_img is None:
            raise WebserviceException(f"its image (id {old.image_pk}) is gone")
        progress(f"the new {name} did not start ({why}); starting the previous one again")
        res = get_target(old.compute_type).deploy(_deploy_request(ws, name, old_img, old_cfg, dict(old.keys), progress))
    except Exception as e:  # noqa: BLE001 - reported with the first failure
        msg = (
            f"service {name!r} is stopped: the new version (image {new_img.id}) failed to start ({why}), and starting "
            f"the previous version again failed too ({e}). Its record, configuration and keys are kept: "
            f"service.update() starts it again, or deploy(..., overwrite=True) once the cause is fixed"
        )
        service_store.set_state(ws, name, base.FAILED, msg)
        return DeploymentFailedError(msg)
    service_store.set_restored(ws, name, runtime=res.runtime, scoring_uri=res.scoring_uri, swagger_uri=res.swagger_uri,
                               failed_image=new_img.id)  # fmt: skip
    where = f" at {res.scoring_uri}" if res.scoring_uri else ""
    return DeploymentFailedError(
        f"the new version of service {name!r} (image {new_img.id}) failed to start: {why}. The previous version "
        f"(image {old_img.id}) was started again{where} with its configuration and keys (Transitioning: "
        "wait_for_deployment() tells when it is Healthy); nothing else changed"
    )


def update(
    ws: Workspace,
    service: ServiceRecord,
    models: Sequence[ModelRecord | str] | None = None,
    inference_config: InferenceConfig | None = None,
    deployment_config: DeploymentConfig | None = None,
    *,
    tags: dict[str, str] | None = None,
    description: str | None = None,
    progress: ProgressFn = base._no_progress,
) -> ServiceRecord:
    """Roll out new models and/or a new entry script (rolling update: the new version is
    Healthy before the old stops, on the same scoring_uri; no request fails). Returns the
    service as recorded afterwards.

    Raises DeploymentFailedError when the new version fails; the old one keeps serving
    and the service record is unchanged.
    """
    img = images.get_by_pk(ws, service.image_pk)
    if img is None:
        raise WebserviceException(f"service {service.name} has no image to update from")
    recs = model_records(ws, service.models if models is None else models)
    if inference_config is None:
        inference_config = images.inference_config_of(img)
    current = config_of(service)
    cfg = deployment_config or current
    if cfg.compute_type != current.compute_type:
        raise ValidationError(f"can't move service {service.name} from {current.compute_type} to {cfg.compute_type}; deploy a new one")
    if tags is not None:
        cfg.tags = tags
    if description is not None:
        cfg.description = description
    cfg.validate()
    progress(f"building image for {service.name} ({', '.join(m.id for m in recs)})")
    new_img = images.create_image(ws, img.name, recs, inference_config)
    req = _deploy_request(ws, service.name, new_img, cfg, service.keys, progress)
    try:
        res = get_target(service.compute_type).update(req, service.runtime)
    except DeploymentFailedError:
        service_store.log_event(ws, "service.update_failed", service.name, image=new_img.id)
        raise
    _record_docker_image(ws, new_img, res)
    service_store.set_updated(
        ws, service.name, image_pk=new_img.pk, config=cfg.to_dict(), runtime=res.runtime,
        scoring_uri=res.scoring_uri, swagger_uri=res.swagger_uri, served=recs,
        image=new_img.id, models=[m.id for m in recs],
    )  # fmt: skip
    progress(f"{service.name} updated to {', '.join(m.id for m in recs)}")
    return service_store.get(ws, service.name)


def delete(ws: Workspace, service: ServiceRecord) -> None:
    """Stop the service and remove what its target created; then forget it (also when the
    target fails), and delete the images made for it that no other service runs (their
    Docker images too: ``core/cleanup.py``)."""
    try:
        get_target(service.compute_type).delete(service.name, service.runtime)
    finally:
        service_store.delete_service(ws, service.name)
    cleanup.delete_service_images(ws, service.name, service.image_pk)


def refresh_state(ws: Workspace, service: ServiceRecord) -> str:
    """Read the live state from the target into ``service`` (and the store when it
    changed); an unreachable target makes it Unhealthy with the reason. Returns the state."""
    try:
        st = get_target(service.compute_type).status(service.name, service.runtime)
    except Exception as e:  # the target itself is unreachable (engine stopped, cluster gone)
        st = base.TargetStatus(base.UNHEALTHY, f"cannot reach the {service.compute_type} target: {e}")
    if st.state != service.state or st.error != service.error:
        service.state, service.error = st.state, st.error
        service_store.set_state(ws, service.name, st.state, st.error)
    return service.state


def logs(service: ServiceRecord, num_lines: int = 5000) -> str:
    """The last ``num_lines`` lines the service printed, or a line saying why there are none."""
    try:
        return get_target(service.compute_type).logs(service.name, service.runtime, tail=num_lines)
    except Exception as e:
        return f"(logs unavailable: {e})"


def stream_logs(service: ServiceRecord, stop: Callable[[], bool]) -> Iterator[str]:
    """Log lines as the service writes them, until ``stop()`` returns True."""
    return get_target(service.compute_type).stream_logs(service.name, service.runtime, stop=stop)


def wait_for_deployment(ws: Workspace, service: ServiceRecord, show_output: bool = False, timeout_sec: float = 600) -> None:
    """Wait until the service is Healthy (polls every 0.2 s).

    With ``show_output`` prints the state as it changes and, on failure, the logs. Raises
    DeploymentFailedError (with ``.logs``) when it becomes Failed or the timeout (seconds)
    passes.
    """
    deadline = time.monotonic() + timeout_sec
    last = None
    while True:
        st = refresh_state(ws, service)
        if show_output and st != last:
            print(f"{service.name}: {st}" + (f" — {service.error}" if service.error and st != base.HEALTHY else ""), flush=True)
            last = st
        if st == base.HEALTHY:
            return
        if st == base.FAILED or time.monotonic() > deadline:
            text = logs(service)
            if show_output and text:
                print(text[-8000:], flush=True)
            why = service.error or ("timed out" if st != base.FAILED else "failed")
            raise DeploymentFailedError(f"service {service.name} is {st}: {why}", logs=text)
        time.sleep(0.2)


def get_keys(service: ServiceRecord) -> tuple[str, str]:
    """``(primary_key, secondary_key)``. Raises WebserviceException when auth is off."""
    if not service.auth_enabled:
        raise WebserviceException(f"service {service.name} has auth disabled: no keys (deploy with auth_enabled=True)")
    if not {"primaryKey", "secondaryKey"} <= service.keys.keys():
        raise WebserviceException(
            f"the keys of service {service.name} are not readable here (see the log for why: a keys file of another "
            "user, or a database role without access to service_keys): regen_key('Primary') and regen_key('Secondary') "
            "set new ones"
        )
    return service.keys["primaryKey"], service.keys["secondaryKey"]


def regen_key(ws: Workspace, service: ServiceRecord, key: str, set_key: str | None = None) -> None:
    """Replace the ``"Primary"`` or ``"Secondary"`` key (with ``set_key`` or a random one):
    the target first, then the store; the old key stops working. The other key is the stored
    one (on a shared database, what another folder last set)."""
    if not service.auth_enabled:
        raise WebserviceException(f"service {service.name} has auth disabled: no keys to regenerate")
    k = {"primary": "primaryKey", "secondary": "secondaryKey"}.get(str(key).lower())
    if k is None:
        raise ValidationError(f"key must be 'Primary' or 'Secondary', got {key!r}")
    keys = dict(service_store.get(ws, service.name).keys)  # as stored now: a teammate may have changed the other
    keys[k] = set_key or secrets.token_urlsafe(24)
    get_target(service.compute_type).set_keys(service.name, service.runtime, keys)
    service_store.set_keys(ws, service.name, keys, k)
    service.keys = keys


def list_services(
    ws: Workspace,
    compute_type: str | None = None,
    model_name: str | None = None,
    tags: Sequence[Any] | None = None,
    refresh: bool = True,
) -> list[ServiceRecord]:
    """Services by name; ``refresh`` reads each one's live state from its target."""
    f = parse_filter(tags, "tags")
    out = []
    for n in service_store.names(ws):
        try:
            s = service_store.get(ws, n)
        except ServiceNotFoundError:  # deleted meanwhile
            continue
        if compute_type and s.compute_type != compute_type.lower():
            continue
        if model_name and not any(m.split(":")[0] == model_name for m in s.models):
            continue
        if not match_filter(dict(s.config.get("tags") or {}), f):
            continue
        if refresh:
            refresh_state(ws, s)
        out.append(s)
    return out


def dry_run_text(
    ws: Workspace, name: str, models: Sequence[ModelRecord | str], inference_config: InferenceConfig, cfg: DeploymentConfig
) -> str:
    """What a deploy would do, for ``--dry-run`` (CLI and ``%deploy``): Kubernetes manifests
    (YAML) for kubernetes, else the image (``version`` 0 when it would be new) and the
    configuration as JSON. Validates everything a deploy validates; writes nothing to the
    workspace (no image row, no build context) and starts nothing."""
    validate_service_name(name)
    cfg = _check_config(cfg)
    img = images.plan_image(ws, name, model_records(ws, models), inference_config).preview()
    if cfg.compute_type in ("kubernetes", "aks"):
        from mlmanage_jupyter.core.targets import kubernetes  # needs the optional kubernetes client

        return kubernetes.dry_run(name, images.image_spec(img, ws), cfg)
    return json.dumps(
        {"name": name, "computeType": cfg.compute_type, "image": images.to_dict(img), "deploymentConfig": cfg.to_dict()},
        indent=2,
        default=str,
    )
