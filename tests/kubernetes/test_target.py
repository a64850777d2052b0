"""The kubernetes target through the real ``kubernetes`` client, against kmock's API
emulator (or a real cluster when MLMANAGE_TEST_KUBECONFIG is set; see conftest.py).

On kmock there is no controller: tests marked ``fake_controller`` write Deployment status
and Pods themselves, as the Deployment controller and kubelet would."""

from __future__ import annotations

import os
import threading
import time

import pytest

from mlmanage_jupyter.core.errors import DeploymentFailedError, ValidationError
from mlmanage_jupyter.core.images import image_spec
from mlmanage_jupyter.core.targets.base import FAILED, HEALTHY, TRANSITIONING, UNHEALTHY, DeployRequest
from mlmanage_jupyter.core.targets.kubernetes import KubernetesDeploymentConfig, KubernetesTarget
from mlmanage_jupyter.core.workspace import Workspace

pytest.importorskip("kubernetes")
pytestmark = pytest.mark.kubernetes

KEYS = {"primaryKey": "pk-0123456789abcdef", "secondaryKey": "sk-fedcba9876543210"}
IMAGE_V1 = os.environ.get("MLMANAGE_TEST_K8S_IMAGE", "registry.example:5000/ml/mnist:v1")
TEMPLATE_HASH = "mlmanage.io/template-hash"


@pytest.fixture
def image(tmp_path):
    """A real Image (registered model + entry script) in a tmp workspace."""
    from mlmanage_jupyter.core.environment import InferenceConfig
    from mlmanage_jupyter.core.image import Image
    from mlmanage_jupyter.core.model import Model

    ws = Workspace(tmp_path / "ws")
    (tmp_path / "model.txt").write_text("weights")
    model = Model.register(ws, tmp_path / "model.txt", "mnist")
    src = tmp_path / "src"
    src.mkdir()
    (src / "score.py").write_text("def init():\n    pass\n\ndef run(data):\n    return data\n")
    ic = InferenceConfig(entry_script="score.py", source_directory=str(src))
    return ws, Image.create(ws, "mnist-image", [model], ic)


def config(kube, namespace, **kw):
    kw.setdefault("image", IMAGE_V1)
    kw.setdefault("service_type", "ClusterIP")
    return KubernetesDeploymentConfig(namespace=namespace, kubeconfig=kube.kubeconfig, **kw)


def request(image, name, cfg, progress=None):
    ws, img = image
    return DeployRequest(
        name=name,
        image=image_spec(img),
        config=cfg,
        service_dir=ws.path / "services" / name,
        cache_dir=ws.path / "cache",
        keys=dict(KEYS),
        progress=progress or (lambda m: None),
    )


# --- playing the controller (kmock) ------------------------------------------------------


def fake_pod(kube, ns, dep_name, pod_name, *, ready=True, waiting=None, unschedulable=None):
    """Write a Pod from the Deployment's current template, with the given status."""
    core, apps, _ = kube.clients()
    dep = apps.read_namespaced_deployment(dep_name, ns)
    tmpl = dep.spec.template.metadata
    status = {"phase": "Running" if ready else "Pending", "conditions": []}
    image = dep.spec.template.spec.containers[0].image
    if ready:
        status["conditions"].append({"type": "Ready", "status": "True"})
        status["containerStatuses"] = [
            {"name": "scoring", "ready": True, "restartCount": 0, "image": image, "imageID": "", "state": {"running": {}}}
        ]
    if waiting:
        reason, message = waiting
        status["containerStatuses"] = [
            {
                "name": "scoring",
                "ready": False,
                "restartCount": 4 if reason == "CrashLoopBackOff" else 0,
                "image": image,
                "imageID": "",
                "state": {"waiting": {"reason": reason, "message": message}},
            }
        ]
    if unschedulable:
        status["conditions"].append(
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": unschedulable}
        )
    core.create_namespaced_pod(
        ns,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": pod_name,
                "namespace": ns,
                "labels": dict(tmpl.labels),
                "annotations": dict(tmpl.annotations or {}),
            },
            "spec": {"containers": [{"name": "scoring", "image": image}]},
            "status": status,
        },
    )


def fake_deployment_status(kube, ns, name, ready):
    _, apps, _ = kube.clients()
    apps.patch_namespaced_deployment_status(
        name,
        ns,
        {"status": {"replicas": ready, "updatedReplicas": ready, "readyReplicas": ready, "availableReplicas": ready}},
    )


def names_of(kube, ns):
    core, apps, hpa = kube.clients()
    return {
        "Deployment": {d.metadata.name for d in apps.list_namespaced_deployment(ns).items},
        "Service": {s.metadata.name for s in core.list_namespaced_service(ns).items},
        "Secret": {s.metadata.name for s in core.list_namespaced_secret(ns).items},
        "HorizontalPodAutoscaler": {h.metadata.name for h in hpa.list_namespaced_horizontal_pod_autoscaler(ns).items},
        "Pod": {p.metadata.name for p in core.list_namespaced_pod(ns).items},
    }


@pytest.fixture
def target():
    return KubernetesTarget()


# --- tests ---------------------------------------------------------------------------------


@pytest.mark.fake_controller
def test_deploy_applies_every_object_and_status_follows_the_pods(kube, namespace, image, target):
    msgs: list[str] = []
    cfg = config(kube, namespace, autoscale_max_replicas=4)
    res = target.deploy(request(image, "mnist-svc", cfg, msgs.append))
    assert res.scoring_uri == f"http://mnist-svc.{namespace}.svc.cluster.local:80/score"
    assert res.swagger_uri.endswith("/swagger.json")
    assert res.runtime["namespace"] == namespace and res.runtime["image"] == IMAGE_V1
    # kmock refuses Namespace creation: reported, not fatal, and not claimed as ours
    assert res.runtime["namespace_created"] is False
    assert any("Namespace" in m for m in msgs)

    core, apps, hpa = kube.clients()
    dep = apps.read_namespaced_deployment("mnist-svc", namespace)
    assert dep.spec.strategy.rolling_update.max_unavailable == 0
    assert dep.metadata.labels["model.mlmanage.io/mnist"] == "1"
    assert dep.spec.template.spec.containers[0].image == IMAGE_V1
    secret = core.read_namespaced_secret("mnist-svc-keys", namespace)
    assert KEYS["primaryKey"] in str(secret.string_data or secret.data)
    assert hpa.read_namespaced_horizontal_pod_autoscaler("mnist-svc", namespace).spec.max_replicas == 4
    assert core.read_namespaced_service("mnist-svc", namespace).spec.type == "ClusterIP"

    assert target.status("mnist-svc", res.runtime).state == TRANSITIONING
    fake_pod(kube, namespace, "mnist-svc", "mnist-svc-a")
    fake_deployment_status(kube, namespace, "mnist-svc", 1)
    assert target.status("mnist-svc", res.runtime).state == HEALTHY
    fake_pod(kube, namespace, "mnist-svc", "mnist-svc-b")
    logs = target.logs("mnist-svc", res.runtime, tail=50)
    assert "[mnist-svc-a] " in logs and "[mnist-svc-b] " in logs  # one block per pod, labelled

    # deploying the same service again updates in place (merge patch), no 409
    target.deploy(request(image, "mnist-svc", config(kube, namespace, autoscale_max_replicas=6)))
    assert hpa.read_namespaced_horizontal_pod_autoscaler("mnist-svc", namespace).spec.max_replicas == 6


@pytest.mark.fake_controller
@pytest.mark.parametrize(
    "pod_status, words",
    [
        ({"waiting": ("ImagePullBackOff", "Back-off pulling image")}, "cannot pull image"),
        ({"waiting": ("ErrImagePull", "manifest unknown")}, "cannot pull image"),
        ({"waiting": ("CrashLoopBackOff", "back-off 40s restarting")}, "keeps crashing"),
        ({"unschedulable": "0/3 nodes are available: 3 Insufficient cpu."}, "cannot be scheduled"),
    ],
    ids=["ImagePullBackOff", "ErrImagePull", "CrashLoopBackOff", "Unschedulable"],
)
def test_pod_failures_become_plain_errors(kube, namespace, image, target, pod_status, words):
    res = target.deploy(request(image, "bad-svc", config(kube, namespace)))
    fake_pod(kube, namespace, "bad-svc", "bad-svc-a", ready=False, **pod_status)
    st = target.status("bad-svc", res.runtime)
    assert st.state == FAILED
    assert words in st.error
    if "pull" in words:
        assert IMAGE_V1 in st.error and "image_pull_secrets" in st.error
    if "scheduled" in words:
        assert "Insufficient cpu" in st.error and "cpu_cores" in st.error
    # with one ready replica beside the broken one the service is Unhealthy, not Failed
    fake_pod(kube, namespace, "bad-svc", "bad-svc-b")
    assert target.status("bad-svc", res.runtime).state == UNHEALTHY


@pytest.mark.fake_controller
def test_update_patches_the_deployment_and_waits_for_the_rollout(kube, namespace, image, target):
    res = target.deploy(request(image, "roll-svc", config(kube, namespace, num_replicas=1)))
    fake_pod(kube, namespace, "roll-svc", "roll-svc-old")
    core, apps, _ = kube.clients()
    old_hash = apps.read_namespaced_deployment("roll-svc", namespace).spec.template.metadata.annotations[TEMPLATE_HASH]
    controller_done = threading.Event()

    def controller():
        # wait for the patched template, then start a new pod, make it ready, remove the old one
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            dep = apps.read_namespaced_deployment("roll-svc", namespace)
            if dep.spec.template.metadata.annotations[TEMPLATE_HASH] != old_hash:
                time.sleep(1.5)  # the target must still be waiting here
                fake_pod(kube, namespace, "roll-svc", "roll-svc-new")
                core.delete_namespaced_pod("roll-svc-old", namespace)
                controller_done.set()
                return
            time.sleep(0.1)

    t = threading.Thread(target=controller, daemon=True)
    t.start()
    new_cfg = config(kube, namespace, num_replicas=1, image="registry.example:5000/ml/mnist:v2", cpu_cores=0.25)
    out = target.update(request(image, "roll-svc", new_cfg), res.runtime)
    assert controller_done.is_set(), "update returned before the new pod was ready and the old one gone"
    t.join(timeout=10)
    dep = apps.read_namespaced_deployment("roll-svc", namespace)
    c = dep.spec.template.spec.containers[0]
    assert c.image == "registry.example:5000/ml/mnist:v2"
    assert c.resources.requests["cpu"] == "250m"
    assert dep.spec.strategy.rolling_update.max_unavailable == 0
    assert out.runtime["image"] == "registry.example:5000/ml/mnist:v2"
    assert target.status("roll-svc", out.runtime).state == HEALTHY


@pytest.mark.fake_controller
def test_failed_update_raises_and_rolls_back(kube, namespace, image, target):
    res = target.deploy(request(image, "rb-svc", config(kube, namespace, num_replicas=1)))
    fake_pod(kube, namespace, "rb-svc", "rb-svc-old")
    core, apps, _ = kube.clients()
    old_hash = apps.read_namespaced_deployment("rb-svc", namespace).spec.template.metadata.annotations[TEMPLATE_HASH]

    def controller():
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            dep = apps.read_namespaced_deployment("rb-svc", namespace)
            if dep.spec.template.metadata.annotations[TEMPLATE_HASH] != old_hash:
                fake_pod(kube, namespace, "rb-svc", "rb-svc-new", ready=False, waiting=("ErrImagePull", "not found"))
                return
            time.sleep(0.1)

    t = threading.Thread(target=controller, daemon=True)
    t.start()
    bad = config(kube, namespace, num_replicas=1, image="registry.example:5000/ml/mnist:missing")
    with pytest.raises(DeploymentFailedError, match="cannot pull image registry.example:5000/ml/mnist:missing"):
        target.update(request(image, "rb-svc", bad), res.runtime)
    t.join(timeout=10)
    dep = apps.read_namespaced_deployment("rb-svc", namespace)
    assert dep.spec.template.spec.containers[0].image == IMAGE_V1
    assert dep.spec.template.metadata.annotations[TEMPLATE_HASH] == old_hash


@pytest.mark.fake_controller
def test_update_times_out_boundedly(kube, namespace, image, target):
    res = target.deploy(request(image, "slow-svc", config(kube, namespace, num_replicas=1)))
    cfg = config(kube, namespace, num_replicas=1, image="r.example/x:2", rollout_timeout_seconds=2)
    with pytest.raises(DeploymentFailedError, match="did not finish in 2 s"):
        target.update(request(image, "slow-svc", cfg), res.runtime)


def test_delete_removes_what_it_created_and_nothing_else(kube, namespace, image, target):
    core, apps, _ = kube.clients()
    # neighbours: same namespace, one even named like our secret but not ours
    core.create_namespaced_secret(
        namespace, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "keep-me", "namespace": namespace}}
    )
    res = target.deploy(request(image, "del-svc", config(kube, namespace)))
    other = target.deploy(request(image, "other-svc", config(kube, namespace)))
    if not kube.real:
        fake_pod(kube, namespace, "del-svc", "del-svc-a")
        fake_pod(kube, namespace, "other-svc", "other-svc-a")
    target.delete("del-svc", res.runtime)
    left = names_of(kube, namespace)
    for kind, names in left.items():
        assert not any(n.startswith("del-svc") for n in names), (kind, names)
    assert "keep-me" in left["Secret"] and "other-svc-keys" in left["Secret"]
    assert "other-svc" in left["Deployment"] and "other-svc" in left["HorizontalPodAutoscaler"]
    target.delete("del-svc", res.runtime)  # twice is fine
    target.delete("other-svc", other.runtime)
    left = names_of(kube, namespace)
    assert left["Deployment"] == set() and left["HorizontalPodAutoscaler"] == set()
    assert left["Secret"] - {"default-token"} <= {"keep-me"} or kube.real


def test_a_deployment_we_did_not_create_is_not_taken_over(kube, namespace, image, target):
    _, apps, _ = kube.clients()
    labels = {"app": "theirs"}
    apps.create_namespaced_deployment(
        namespace,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "theirs", "namespace": namespace, "labels": labels},
            "spec": {
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}},
            },
        },
    )
    with pytest.raises(ValidationError, match="not created by mlmanage-jupyter"):
        target.deploy(request(image, "theirs", config(kube, namespace)))
    target.delete("theirs", {"namespace": namespace, "kubeconfig": kube.kubeconfig})
    assert "theirs" in names_of(kube, namespace)["Deployment"]


def test_set_keys_rewrites_the_secret(kube, namespace, image, target):
    core, _, _ = kube.clients()
    res = target.deploy(request(image, "keys-svc", config(kube, namespace)))
    new = {"primaryKey": "new-primary-000", "secondaryKey": "new-secondary-111"}
    target.set_keys("keys-svc", res.runtime, new)
    secret = core.read_namespaced_secret("keys-svc-keys", namespace)
    text = str(secret.string_data or secret.data)
    assert "new-primary-000" in text and KEYS["primaryKey"] not in text


def test_unreachable_cluster_and_bad_kubeconfig_are_one_clear_error(tmp_path, image, target):
    from mlmanage_jupyter.core.errors import WebserviceException

    with pytest.raises(ValidationError, match="kubeconfig"):
        target.deploy(request(image, "x-svc", KubernetesDeploymentConfig(image="r/i:1", kubeconfig=str(tmp_path / "nope"))))
    kc = tmp_path / "kc"
    kc.write_text(
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'http://127.0.0.1:9'}}]\n"
        "users: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n"
        "current-context: x\n"
    )
    with pytest.raises(WebserviceException, match="cannot reach the Kubernetes API at http://127.0.0.1:9"):
        target.status("x-svc", {"namespace": "default", "kubeconfig": str(kc)})


@pytest.mark.real_cluster
@pytest.mark.slow
def test_real_cluster_image_pull_failure_and_unschedulable(kube, namespace, image, target):
    res = target.deploy(request(image, "pull-svc", config(kube, namespace, image="registry.invalid/none:1")))
    big = target.deploy(request(image, "big-svc", config(kube, namespace, cpu_cores=512, memory_gb=1)))
    deadline = time.monotonic() + 180
    states = {}
    while time.monotonic() < deadline:
        states = {n: target.status(n, r.runtime) for n, r in (("pull-svc", res), ("big-svc", big))}
        if all(s.state == FAILED for s in states.values()):
            break
        time.sleep(2)
    assert "cannot pull image" in (states["pull-svc"].error or "")
    assert "cannot be scheduled" in (states["big-svc"].error or "")


def test_dry_run_needs_no_cluster_and_names_the_pushed_image(image):
    from mlmanage_jupyter.core.targets.kubernetes import dry_run

    _, img = image
    cfg = KubernetesDeploymentConfig(registry="registry.example:5000/team", namespace="ml", kubeconfig="/nonexistent")
    text = dry_run("mnist-svc", image_spec(img), cfg, KEYS)
    ref = f"registry.example:5000/team/mnist-svc:{img.content_hash[:12]}"
    assert f"image: {ref}" in text
    assert "model.mlmanage.io/mnist: '1'" in text
    assert KEYS["primaryKey"] not in text and "<redacted>" in text
