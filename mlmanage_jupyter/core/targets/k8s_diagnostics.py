"""Pod and Deployment diagnostics of the kubernetes target: ImagePullBackOff,
CrashLoopBackOff, Unschedulable, failed rollouts, turned into plain messages."""

from __future__ import annotations

from typing import Any

from mlmanage_jupyter.core.targets.k8s_manifests import ANNOTATION_TEMPLATE_HASH

IMAGE_PULL_REASONS = {"ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull"}
CONFIG_REASONS = {"CreateContainerConfigError", "CreateContainerError", "RunContainerError"}

def pod_hash(pod: Any) -> str | None:
    return (pod.metadata.annotations or {}).get(ANNOTATION_TEMPLATE_HASH)


def pod_ready(pod: Any) -> bool:
    if pod.metadata.deletion_timestamp:
        return False
    conds = (pod.status and pod.status.conditions) or []
    if any(c.type == "Ready" and c.status == "True" for c in conds):
        return True
    cs = (pod.status and pod.status.container_statuses) or []
    return bool(cs) and all(c.ready for c in cs) and pod.status.phase == "Running"


def pods_problem(pods: list[Any]) -> str | None:
    """A plain message for the first pod that cannot run, or None."""
    for pod in pods:
        st = pod.status
        if st is None:
            continue
        for c in st.conditions or []:
            if c.type == "PodScheduled" and c.status == "False" and c.reason == "Unschedulable":
                return (
                    f"pod {pod.metadata.name} cannot be scheduled: no node has room for it ({c.message or 'Unschedulable'}); "
                    "lower cpu_cores / memory_gb or add nodes"
                )
        for cs in st.container_statuses or []:
            waiting = cs.state and cs.state.waiting
            if waiting and waiting.reason in IMAGE_PULL_REASONS:
                return (
                    f"the cluster cannot pull image {cs.image} ({waiting.reason}: {waiting.message or 'no detail'}); "
                    "check registry= / image= and image_pull_secrets"
                )
            if waiting and waiting.reason == "CrashLoopBackOff":
                return (
                    f"the scoring server in pod {pod.metadata.name} keeps crashing (restarted {cs.restart_count} "
                    "times); see the service logs for init() errors"
                )
            if waiting and waiting.reason in CONFIG_REASONS:
                return f"pod {pod.metadata.name} cannot start its container ({waiting.reason}: {waiting.message})"
            term = cs.last_state and cs.last_state.terminated
            if term and term.reason == "OOMKilled" and not cs.ready:
                return (
                    f"the scoring server in pod {pod.metadata.name} ran out of memory (OOMKilled); raise memory_gb"
                )
    return None


def deployment_problem(dep: Any) -> str | None:
    for c in (dep.status and dep.status.conditions) or []:
        if c.type == "Progressing" and c.status == "False" and c.reason == "ProgressDeadlineExceeded":
            return f"the Deployment made no progress: {c.message or c.reason}"
        if c.type == "ReplicaFailure" and c.status == "True":
            return f"the cluster cannot create pods: {c.message or c.reason}"
    return None


