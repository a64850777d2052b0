"""The image a kubernetes service runs: built by the docker target, tagged and pushed to
the configured registry (docker SDK), or ``config.image`` as given; plus the image's models
and paths as the manifests need them."""

from __future__ import annotations

from mlmanage_jupyter.core.errors import DeploymentFailedError
from mlmanage_jupyter.core.targets.base import DeployRequest, ImageSpec
from mlmanage_jupyter.core.targets.docker_build import build_image
from mlmanage_jupyter.core.targets.dockerfile import image_settings
from mlmanage_jupyter.core.targets.k8s_config import KubernetesDeploymentConfig
from mlmanage_jupyter.core.targets.k8s_manifests import normalize_models
from mlmanage_jupyter.server.config import Settings


def image_models(image: ImageSpec) -> list[tuple[str, str]]:
    return normalize_models([(m.name, str(m.version)) for m in image.models])


def _image_hash(image: ImageSpec) -> str:
    return str(image.content_hash or image.version or "latest")[:12]


def pod_image_settings(image: ImageSpec, settings: Settings) -> Settings:
    """``settings`` with the image's paths (app root, model folder), as in its Dockerfile."""
    baked = image_settings(image)
    return settings.replace(app_root=baked.app_root, model_dir=baked.model_dir)


def push_ref(config: KubernetesDeploymentConfig, name: str, image: ImageSpec) -> str:
    repo = f"mlmanage/{name}"
    if config.registry:
        repo = f"{config.registry.rstrip('/')}/{name}"
    return f"{repo}:{_image_hash(image)}"


def build_and_push(req: DeployRequest, config: KubernetesDeploymentConfig) -> tuple[str, str | None]:
    """(the image reference the cluster pulls, the local Docker tag built or None):
    ``config.image`` as given, or the image built by the docker target, tagged and pushed to
    ``config.registry`` (docker SDK)."""
    if config.image:
        req.progress(f"using image {config.image} (no build, no push)")
        return config.image, None
    local_tag = build_image(req.image, req.progress, cache_dir=req.cache_dir)
    ref = push_ref(config, req.name, req.image)
    import docker

    try:
        client = docker.from_env()
        repo, tag = ref.rsplit(":", 1)
        client.images.get(local_tag).tag(repo, tag)
        if not config.registry:
            req.progress(f"no registry= given: the cluster must see the local Docker images ({ref})")
            return ref, local_tag
        req.progress(f"pushing {ref}")
        for line in client.images.push(repo, tag=tag, stream=True, decode=True):
            if line.get("error"):
                raise DeploymentFailedError(
                    f"pushing {ref} to {config.registry} failed: {line['error']}; check `docker login {config.registry}`"
                )
            if line.get("status") and line.get("id") is None:
                req.progress(line["status"])
    except docker.errors.DockerException as e:
        raise DeploymentFailedError(f"pushing {ref} failed: {e}")
    return ref, local_tag


