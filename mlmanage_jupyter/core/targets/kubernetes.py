"""The ``kubernetes`` target (Azure's AKS target) on any cluster, through the official
``kubernetes`` client (``pip install 'mlmanage-jupyter[kubernetes]'``).

``deploy`` pushes the image to ``config.registry`` with the docker SDK (or runs
``config.image`` as given), then applies the objects of
:func:`~mlmanage_jupyter.core.targets.k8s_manifests.render_manifests`: Namespace, Secret
(the auth keys, mounted as ``MLMANAGE_KEYS_FILE``), Service, Deployment (rolling update,
``maxUnavailable: 0``), HorizontalPodAutoscaler. ``status`` reads the Deployment's
conditions and its pods and turns ImagePullBackOff, CrashLoopBackOff and Unschedulable
into plain messages; ``update`` patches and waits (bounded) for the rollout, rolling back
if the new pods fail; ``delete`` removes only objects named after the service *and*
labelled ``app.kubernetes.io/managed-by: mlmanage-jupyter``.

Jobs by module: :mod:`.k8s_manifests` (config, manifest rendering, labels),
:mod:`.k8s_client` (API client, errors), :mod:`.k8s_images` (build and push the image),
:mod:`.k8s_diagnostics` (pod/Deployment problems as messages), :mod:`.k8s_portforward`
(local port forward); this module holds the target (CRUD, rollout, status, logs). The
container's environment is ``req.settings`` rendered by ``Settings.to_env()``
(:func:`~.k8s_manifests.pod_settings`).

The cluster is chosen by kubeconfig (``config.kubeconfig`` or ``$KUBECONFIG`` or
``~/.kube/config``; context ``config.context`` or the current one), or the in-cluster
service account when running inside a pod.

The ``runtime`` dict stored with the service: ``{"namespace", "context", "kubeconfig",
"image", "namespace_created", "service_type", "port_forward", "local_port"}``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from mlmanage_jupyter.core.errors import DeploymentFailedError, ValidationError, WebserviceException
from mlmanage_jupyter.core.targets.base import (
    FAILED,
    HEALTHY,
    TRANSITIONING,
    UNHEALTHY,
    DeployRequest,
    DeployResult,
    Target,
    TargetStatus,
    engine_settings,
    register_target,
)
from mlmanage_jupyter.core.targets.k8s_client import Clients, api_message, call
from mlmanage_jupyter.core.targets.k8s_config import (
    KubernetesDeploymentConfig,
    config_from_aks_json,
    deploy_configuration,
)
from mlmanage_jupyter.core.targets.k8s_diagnostics import (
    deployment_problem,
    pod_hash,
    pod_ready,
    pods_problem,
)
from mlmanage_jupyter.core.targets.k8s_images import (
    build_and_push,
    image_models,
    pod_image_settings,
    push_ref,
)
from mlmanage_jupyter.core.targets.k8s_manifests import (
    ANNOTATION_TEMPLATE_HASH,
    CONTAINER_NAME,
    KEYS_FILE_NAME,
    LABEL_MANAGED_BY,
    LABEL_SERVICE,
    MANAGED_BY,
    SERVICE_PORT,
    is_ours,
    keys_json,
    labels_of,
    manifests_yaml,
    object_labels,
    render_manifests,
)
from mlmanage_jupyter.core.targets.k8s_portforward import start_forward, stop_forward

__all__ = [
    "KubernetesDeploymentConfig",
    "KubernetesTarget",
    "config_from_aks_json",
    "deploy_configuration",
    "manifests_yaml",
    "render_manifests",
    "dry_run",
]

MERGE_PATCH = "application/merge-patch+json"
_POLL_S = 1.0


def dry_run(
    name: str,
    image: Any,
    config: KubernetesDeploymentConfig,
    keys: Mapping[str, str] | None = None,
    *,
    show_secrets: bool = False,
) -> str:
    """What ``deploy`` would apply, as YAML, without a cluster (for ``--dry-run``).

    ``image`` is an image reference string or an :class:`ImageSpec` (its reference is then the one
    ``deploy`` would push: ``config.image``, or ``<registry>/<name>:<content hash[:12]>``,
    or the local tag ``mlmanage/<name>:<hash[:12]>`` when no registry is set).
    """
    if isinstance(image, str):
        return manifests_yaml(name, image, [], config, keys, show_secrets=show_secrets)
    ref = config.image or push_ref(config, name, image)
    settings = pod_image_settings(image, engine_settings(name, image, config))
    return manifests_yaml(name, ref, image_models(image), config, keys, show_secrets=show_secrets, settings=settings)


# ---------------------------------------------------------------------------------------
# the target


class KubernetesTarget(Target):
    """Deploys services to a Kubernetes cluster (see the module docstring)."""

    compute_type = "kubernetes"

    # --- deploy / update -----------------------------------------------------------------

    def deploy(self, req: DeployRequest) -> DeployResult:
        config = self._config(req)
        runtime = self._runtime(config)
        cl = Clients(runtime)
        ref, built = build_and_push(req, config)
        runtime["image"] = ref
        objs = render_manifests(
            req.name, ref, image_models(req.image), config, req.keys, settings=pod_image_settings(req.image, req.engine)
        )
        existing = self._read(cl, "Deployment", req.name, runtime["namespace"])
        if existing is not None and not is_ours(existing.to_dict(), req.name):
            raise ValidationError(
                f"a Deployment named {req.name!r} already exists in namespace {runtime['namespace']!r} and "
                "was not created by mlmanage-jupyter; choose another service name or namespace"
            )
        for obj in objs:
            if obj["kind"] == "Namespace":
                runtime["namespace_created"] = self._ensure_namespace(cl, obj, req.progress)
            else:
                self._apply(cl, obj, req.progress)
        uri = self._base_url(cl, req.name, runtime, config)
        return DeployResult(scoring_uri=f"{uri}/score", swagger_uri=f"{uri}/swagger.json", runtime=runtime, docker_image=built)

    def update(self, req: DeployRequest, runtime: dict[str, Any]) -> DeployResult:
        config = self._config(req)
        new_runtime = {**runtime, **self._runtime(config)}
        new_runtime["namespace_created"] = runtime.get("namespace_created", False)
        cl = Clients(new_runtime)
        ns = new_runtime["namespace"]
        before = self._read(cl, "Deployment", req.name, ns)
        if before is None:
            raise WebserviceException(
                f"service {req.name!r} has no Deployment in namespace {ns!r}; deploy it again"
            )
        old_template = cl.api.sanitize_for_serialization(before.spec.template)
        ref, built = build_and_push(req, config)
        new_runtime["image"] = ref
        objs = render_manifests(
            req.name, ref, image_models(req.image), config, req.keys, settings=pod_image_settings(req.image, req.engine)
        )
        new_hash = ""
        for obj in objs:
            if obj["kind"] == "Namespace":
                continue
            if obj["kind"] == "Deployment":
                new_hash = obj["spec"]["template"]["metadata"]["annotations"][ANNOTATION_TEMPLATE_HASH]
                if config.autoscaling:
                    obj["spec"].pop("replicas")  # the HPA owns the replica count
            self._apply(cl, obj, req.progress)
        if not config.autoscaling:
            self._delete_one(cl, "HorizontalPodAutoscaler", req.name, ns)
        if not (config.auth_enabled or config.token_auth_enabled):
            self._delete_one(cl, "Secret", f"{req.name}-keys", ns)
        req.progress(f"waiting for the rollout of {req.name} (at most {config.rollout_timeout_seconds} s)")
        try:
            self.wait_for_rollout(req.name, new_runtime, new_hash, timeout_s=config.rollout_timeout_seconds)
        except DeploymentFailedError as e:
            logs = self._pod_logs(cl, req.name, ns, tail=200, template_hash=new_hash)
            req.progress("the new version failed; rolling back to the previous one")
            call(
                cl,
                f"roll back Deployment {req.name}",
                cl.apps.patch_namespaced_deployment,
                req.name,
                ns,
                {"spec": {"template": old_template}},
                _content_type=MERGE_PATCH,
            )
            raise DeploymentFailedError(str(e), logs=logs or e.logs)
        uri = self._base_url(cl, req.name, new_runtime, config)
        return DeployResult(
            scoring_uri=f"{uri}/score", swagger_uri=f"{uri}/swagger.json", runtime=new_runtime, docker_image=built
        )

    def wait_for_rollout(self, name: str, runtime: dict[str, Any], template_hash: str, *, timeout_s: float) -> None:
        """Wait until every replica runs the pod template with ``template_hash`` and is ready,
        and no pod of an older template is left (``kubectl rollout status`` plus pods).

        Raises DeploymentFailedError when a new pod cannot start (image pull, crash loop,
        unschedulable, progress deadline) or after ``timeout_s`` seconds.
        """
        cl = Clients(runtime)
        ns = runtime["namespace"]
        deadline = time.monotonic() + timeout_s
        last = "no status yet"
        while True:
            dep = self._read(cl, "Deployment", name, ns)
            if dep is None:
                raise DeploymentFailedError(f"Deployment {name} disappeared from namespace {ns} during the rollout")
            pods = self._pods(cl, name, ns)
            new_pods = [p for p in pods if pod_hash(p) == template_hash]
            problem = pods_problem(new_pods) or deployment_problem(dep)
            if problem:
                raise DeploymentFailedError(f"the new version of {name} cannot run: {problem}")
            desired = dep.spec.replicas if dep.spec.replicas is not None else 1
            st = dep.status
            gen_ok = dep.metadata.generation is None or (
                st is not None and (st.observed_generation or 0) >= dep.metadata.generation
            )
            ready_new = sum(1 for p in new_pods if pod_ready(p))
            old_left = sum(1 for p in pods if pod_hash(p) != template_hash and not p.metadata.deletion_timestamp)
            if gen_ok and ready_new >= desired and old_left == 0:
                return
            last = f"{ready_new}/{desired} new replicas ready, {old_left} old left"
            if time.monotonic() >= deadline:
                raise DeploymentFailedError(f"the rollout of {name} did not finish in {timeout_s:g} s ({last})")
            time.sleep(_POLL_S)

    # --- status / logs / keys / delete ---------------------------------------------------

    def status(self, name: str, runtime: dict[str, Any]) -> TargetStatus:
        cl = Clients(runtime)
        ns = runtime.get("namespace", "default")
        dep = self._read(cl, "Deployment", name, ns)
        if dep is None:
            return TargetStatus(FAILED, f"the Deployment {name} no longer exists in namespace {ns}")
        pods = self._pods(cl, name, ns)
        problem = pods_problem(pods) or deployment_problem(dep)
        st = dep.status
        ready = (st.ready_replicas or 0) if st is not None else 0
        ready = max(ready, sum(1 for p in pods if pod_ready(p)))
        if problem:
            return TargetStatus(UNHEALTHY if ready else FAILED, problem)
        desired = dep.spec.replicas if dep.spec.replicas is not None else 1
        if ready >= max(desired, 1):
            return TargetStatus(HEALTHY)
        if ready:
            return TargetStatus(UNHEALTHY, f"{ready} of {desired} replicas ready")
        return TargetStatus(TRANSITIONING)

    def logs(self, name: str, runtime: dict[str, Any], *, tail: int | None = None) -> str:
        cl = Clients(runtime)
        return self._pod_logs(cl, name, runtime.get("namespace", "default"), tail=tail)

    def set_keys(self, name: str, runtime: dict[str, Any], keys: dict[str, str]) -> None:
        """Write the keys into the service's Secret; the kubelet refreshes the mounted file
        (within about a minute) and the scoring engine re-reads it."""
        cl = Clients(runtime)
        ns = runtime.get("namespace", "default")
        body = {"stringData": {KEYS_FILE_NAME: keys_json(keys)}}
        secret = self._read(cl, "Secret", f"{name}-keys", ns)
        if secret is None or not is_ours(secret.to_dict(), name):
            raise WebserviceException(f"service {name} has no keys Secret in namespace {ns}: is auth_enabled on?")
        call(cl, f"update Secret {name}-keys", cl.core.patch_namespaced_secret, f"{name}-keys", ns, body, _content_type=MERGE_PATCH)

    def delete(self, name: str, runtime: dict[str, Any]) -> None:
        stop_forward(name, runtime)
        cl = Clients(runtime)
        ns = runtime.get("namespace", "default")
        for kind, obj_name in (
            ("HorizontalPodAutoscaler", name),
            ("Service", name),
            ("Deployment", name),
            ("Secret", f"{name}-keys"),
        ):
            self._delete_one(cl, kind, obj_name, ns)
        # pods go with their Deployment (garbage collection); remove stragglers that are ours
        for pod in self._pods(cl, name, ns):
            self._delete_one(cl, "Pod", pod.metadata.name, ns)
        if runtime.get("namespace_created") and ns != "default":
            others = call(cl, f"list Deployments in {ns}", cl.apps.list_namespaced_deployment, ns).items
            if not any(labels_of(d).get(LABEL_MANAGED_BY) == MANAGED_BY for d in others):
                try:
                    call(cl, f"delete Namespace {ns}", cl.core.delete_namespace, ns)
                except cl.ApiException as e:
                    if e.status != 404:
                        raise

    # --- internals ------------------------------------------------------------------------

    @staticmethod
    def _config(req: DeployRequest) -> KubernetesDeploymentConfig:
        config = req.config
        if not isinstance(config, KubernetesDeploymentConfig):
            raise ValidationError(
                f"the kubernetes target needs a KubernetesDeploymentConfig (AksWebservice.deploy_configuration), "
                f"got {type(config).__name__}"
            )
        config.validate()
        return config

    @staticmethod
    def _runtime(config: KubernetesDeploymentConfig) -> dict[str, Any]:
        return {
            "namespace": config.resolved_namespace,
            "context": config.context,
            "kubeconfig": config.kubeconfig,
            "namespace_created": False,
            "service_type": config.service_type,
            "port_forward": config.port_forward,
        }

    def _api(self, cl: Clients, kind: str) -> dict[str, Callable[..., Any]]:
        core, apps, hpa = cl.core, cl.apps, cl.autoscaling
        return {
            "Secret": dict(read=core.read_namespaced_secret, create=core.create_namespaced_secret,
                           patch=core.patch_namespaced_secret, delete=core.delete_namespaced_secret),
            "Service": dict(read=core.read_namespaced_service, create=core.create_namespaced_service,
                            patch=core.patch_namespaced_service, delete=core.delete_namespaced_service),
            "Deployment": dict(read=apps.read_namespaced_deployment, create=apps.create_namespaced_deployment,
                               patch=apps.patch_namespaced_deployment, delete=apps.delete_namespaced_deployment),
            "HorizontalPodAutoscaler": dict(
                read=hpa.read_namespaced_horizontal_pod_autoscaler,
                create=hpa.create_namespaced_horizontal_pod_autoscaler,
                patch=hpa.patch_namespaced_horizontal_pod_autoscaler,
                delete=hpa.delete_namespaced_horizontal_pod_autoscaler),
            "Pod": dict(read=core.read_namespaced_pod, delete=core.delete_namespaced_pod),
        }[kind]

    def _read(self, cl: Clients, kind: str, name: str, ns: str) -> Any:
        try:
            return call(cl, f"read {kind} {name}", self._api(cl, kind)["read"], name, ns)
        except cl.ApiException as e:
            if e.status == 404:
                return None
            raise WebserviceException(f"reading {kind} {name} in {ns} failed ({e.status}): {api_message(e)}")

    def _apply(self, cl: Clients, obj: dict[str, Any], progress: Callable[[str], None]) -> None:
        """Create, or merge-patch an existing object of ours (lists are replaced whole)."""
        kind, name, ns = obj["kind"], obj["metadata"]["name"], obj["metadata"]["namespace"]
        ops = self._api(cl, kind)
        try:
            call(cl, f"create {kind} {name} in namespace {ns}", ops["create"], ns, obj)
            progress(f"created {kind} {ns}/{name}")
            return
        except cl.ApiException as e:
            if e.status == 404:
                raise WebserviceException(
                    f"cannot create {kind} {name}: namespace {ns!r} does not exist and could not be created"
                )
            if e.status != 409:
                raise WebserviceException(f"creating {kind} {name} in {ns} failed ({e.status}): {api_message(e)}")
        current = self._read(cl, kind, name, ns)
        if current is not None and not is_ours(current.to_dict(), obj["metadata"]["labels"][LABEL_SERVICE]):
            raise ValidationError(
                f"a {kind} named {name!r} already exists in namespace {ns!r} and was not created by "
                "mlmanage-jupyter; choose another service name or namespace"
            )
        try:
            call(cl, f"update {kind} {name}", ops["patch"], name, ns, obj, _content_type=MERGE_PATCH)
        except cl.ApiException as e:
            raise WebserviceException(f"updating {kind} {name} in {ns} failed ({e.status}): {api_message(e)}")
        progress(f"updated {kind} {ns}/{name}")

    def _ensure_namespace(self, cl: Clients, obj: dict[str, Any], progress: Callable[[str], None]) -> bool:
        """Create the namespace when it is missing; True when this call created it.

        A namespace we may not create (403: namespace-scoped rights) or that the API refuses
        for another reason is not fatal: the namespaced creates that follow tell clearly
        whether it exists."""
        ns = obj["metadata"]["name"]
        try:
            call(cl, f"create Namespace {ns}", cl.core.create_namespace, obj)
            progress(f"created Namespace {ns}")
            return True
        except WebserviceException as e:
            progress(f"could not create Namespace {ns} ({e}); assuming it exists")
        except cl.ApiException as e:
            if e.status != 409:
                progress(f"could not create Namespace {ns} ({e.status}: {api_message(e)}); assuming it exists")
        return False

    def _delete_one(self, cl: Clients, kind: str, obj_name: str, ns: str) -> None:
        current = self._read(cl, kind, obj_name, ns)
        if current is None:
            return
        service = obj_name[: -len("-keys")] if kind == "Secret" else None
        labels = labels_of(current.to_dict())
        if labels.get(LABEL_MANAGED_BY) != MANAGED_BY or (service and labels.get(LABEL_SERVICE) != service):
            return  # not ours: leave it
        try:
            call(cl, f"delete {kind} {obj_name}", self._api(cl, kind)["delete"], obj_name, ns,
                  propagation_policy="Background")
        except cl.ApiException as e:
            if e.status != 404:
                raise WebserviceException(f"deleting {kind} {obj_name} in {ns} failed ({e.status}): {api_message(e)}")

    def _pods(self, cl: Clients, name: str, ns: str) -> list[Any]:
        sel = f"{LABEL_SERVICE}={name},{LABEL_MANAGED_BY}={MANAGED_BY}"
        items = call(cl, f"list pods of {name}", cl.core.list_namespaced_pod, ns, label_selector=sel).items
        return [p for p in items if is_ours(p.to_dict(), name)]  # also filter here: some API stand-ins ignore selectors

    def _pod_logs(self, cl: Clients, name: str, ns: str, *, tail: int | None = None, template_hash: str = "") -> str:
        pods = self._pods(cl, name, ns)
        if template_hash:
            pods = [p for p in pods if pod_hash(p) == template_hash]
        parts = []
        for p in sorted(pods, key=lambda p: p.metadata.name):
            kwargs: dict[str, Any] = {"container": CONTAINER_NAME}
            if tail is not None:
                kwargs["tail_lines"] = tail
            try:
                text = cl.core.read_namespaced_pod_log(p.metadata.name, ns, **kwargs)
            except cl.ApiException as e:
                text = f"(no logs: {api_message(e)})\n"
            if len(pods) > 1:
                text = "".join(f"[{p.metadata.name}] {line}\n" for line in str(text).splitlines())
            parts.append(str(text))
        return "".join(parts)

    def _base_url(self, cl: Clients, name: str, runtime: dict[str, Any], config: KubernetesDeploymentConfig) -> str:
        ns = runtime["namespace"]
        if config.port_forward:
            port = start_forward(cl, name, ns, runtime.get("local_port"))
            runtime["local_port"] = port
            return f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + config.service_address_timeout_seconds
        while True:
            svc = self._read(cl, "Service", name, ns)
            if svc is not None:
                if config.service_type == "LoadBalancer":
                    ingress = (svc.status and svc.status.load_balancer and svc.status.load_balancer.ingress) or []
                    for ing in ingress:
                        host = ing.ip or ing.hostname
                        if host:
                            return f"http://{host}:{SERVICE_PORT}"
                elif config.service_type == "NodePort":
                    node_port = next((p.node_port for p in svc.spec.ports or [] if p.node_port), None)
                    host = self._node_address(cl)
                    if node_port and host:
                        return f"http://{host}:{node_port}"
                else:
                    break
            if time.monotonic() >= deadline:
                break
            time.sleep(_POLL_S)
        return f"http://{name}.{ns}.svc.cluster.local:{SERVICE_PORT}"

    def _node_address(self, cl: Clients) -> str | None:
        try:
            nodes = cl.core.list_node().items
        except Exception:
            return None
        for want in ("ExternalIP", "InternalIP", "Hostname"):
            for n in nodes:
                for a in (n.status and n.status.addresses) or []:
                    if a.type == want:
                        return a.address
        return None


# ---------------------------------------------------------------------------------------
# registration

register_target("kubernetes", KubernetesTarget)
register_target("aks", KubernetesTarget)

# object_labels is part of this module's surface for callers that look objects up
__all__ += ["object_labels"]
