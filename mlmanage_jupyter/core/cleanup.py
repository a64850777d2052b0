"""Cleanup like Azure's: what a deleted service, a deleted model or a profiling run leaves
behind is removed with it.

- :func:`delete_service_images`: after a service is deleted, the image versions made for it
  (named after the service by ``deploy``/``update``) that no other service runs are deleted,
  with their build contexts and, when no remaining image version names it, their Docker image
  (``docker_image`` tag) on the local engine. Images created explicitly under another name
  (``Image.create``, ``Model.package``) are kept.
- :func:`delete_model`: a model version can be deleted unless a service uses it; the image
  versions built from it (none running) are deleted first.
- :func:`collect_garbage`: unreferenced artifact objects, build-context folders no image
  version records, and abandoned temporary folders (``.tmp-*``) under ``images/``.
"""

from __future__ import annotations

import shutil
from typing import Any

from mlmanage_jupyter.core import images, registry
from mlmanage_jupyter.core.entities.records import ImageRecord, ModelRecord
from mlmanage_jupyter.core.errors import InUseError
from mlmanage_jupyter.core.fsutil import collect_temp
from mlmanage_jupyter.core.store import images as image_store
from mlmanage_jupyter.core.workspace import Workspace


def remove_docker_image(tag: str) -> bool:
    """Remove ``tag`` from the local Docker Engine; True when removed. Nothing happens (False)
    without the docker SDK, without a reachable engine, when the tag is gone, or while a
    container still uses it."""
    try:
        import docker  # optional: only the docker/kubernetes targets need it
    except ImportError:
        return False
    try:
        client = docker.from_env(timeout=60)
    except docker.errors.DockerException:
        return False
    try:
        client.images.remove(tag, noprune=False)
        return True
    except (docker.errors.ImageNotFound, docker.errors.APIError):
        return False  # gone already, or a container (another service) uses it
    finally:
        client.close()


def delete_image_version(ws: Workspace, image: ImageRecord) -> None:
    """Delete one image version, its build context when no other version shares it, and its
    Docker image when no remaining version names it. Raises InUseError while a service runs it."""
    images.delete_image(ws, image)
    tag = image.docker_image
    if tag and not any(r.docker_image == tag for r in image_store.list_records(ws)):
        remove_docker_image(tag)


def delete_service_images(ws: Workspace, service_name: str, current_image_pk: int | None) -> list[str]:
    """After service ``service_name`` was deleted: delete the image versions made for it that
    no other service runs (see the module docstring). Returns their ids."""
    candidates = {r.pk: r for r in image_store.list_records(ws, service_name)}
    if current_image_pk is not None and current_image_pk not in candidates:
        current = images.get_by_pk(ws, current_image_pk)
        if current is not None and current.name == service_name:
            candidates[current.pk] = current
    deleted = []
    for rec in candidates.values():
        if images.services_of(ws, rec):
            continue  # another service runs it
        delete_image_version(ws, rec)
        deleted.append(rec.id)
    return deleted


def delete_model(ws: Workspace, model: ModelRecord) -> list[str]:
    """Delete a model version and the image versions built from it. Raises InUseError
    naming the services when a service uses it (nothing is deleted then). Returns the ids of
    the deleted image versions."""
    users = registry.users(ws, model)
    running = sorted(set(users["services"]) | {s for i in users["images"] for s in _services_of_id(ws, i)})
    if running:
        raise InUseError(
            f"model {model.id} is used by service {', '.join(running)}; delete those services first "
            "(service.delete()), then the model"
        )
    deleted = []
    for image_id in users["images"]:
        name, _, version = image_id.rpartition(":")
        rec = images.get(ws, name, int(version))
        delete_image_version(ws, rec)
        deleted.append(image_id)
    registry.delete(ws, model)
    return deleted


def _services_of_id(ws: Workspace, image_id: str) -> list[str]:
    name, _, version = image_id.rpartition(":")
    return images.services_of(ws, images.get(ws, name, int(version)))


def collect_garbage(ws: Workspace) -> dict[str, Any]:
    """Reclaim what nothing references: artifact objects no model version uses and temporary
    files of killed registrations (:func:`registry.collect_garbage`), build-context folders
    under ``images/`` that no image version records, and abandoned ``.tmp-*`` folders there.
    Temporary entries of a process that still runs are kept (their names carry an owner
    marker, :func:`~mlmanage_jupyter.core.fsutil.owner_marker`), but objects and contexts of a
    registration or build in flight are not yet referenced: run it while nothing registers or
    deploys in this workspace. Returns counts:
    ``{"objects_deleted", "bytes_freed", "contexts_deleted", "temp_deleted"}``."""
    out: dict[str, Any] = dict(registry.collect_garbage(ws))
    known = {r.context_path.resolve() for r in image_store.list_records(ws)}
    contexts = 0
    root = ws.path / "images"
    if root.is_dir():
        temp, temp_bytes = collect_temp(root, (".tmp",), unmarked_max_age_s=None)
        out["temp_deleted"] = out.get("temp_deleted", 0) + temp
        out["bytes_freed"] = out.get("bytes_freed", 0) + temp_bytes
        for p in root.iterdir():
            if not p.is_dir() or p.name.startswith(".tmp") or p.resolve() in known:
                continue
            shutil.rmtree(p, ignore_errors=True)
            contexts += 1
    out.update(contexts_deleted=contexts)
    out.setdefault("temp_deleted", 0)
    return {k: out[k] for k in ("objects_deleted", "bytes_freed", "contexts_deleted", "temp_deleted")}
