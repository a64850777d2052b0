"""Manifests, config and deploymentconfig.json: no cluster; every manifest is checked
against the Kubernetes OpenAPI schemas (kubernetes-validate, strict, offline)."""

from __future__ import annotations

import json

import pytest
import yaml

from mlmanage_jupyter.core.errors import ValidationError
from mlmanage_jupyter.core.targets.base import config_from_json, get_target
from mlmanage_jupyter.core.targets.kubernetes import (
    KubernetesDeploymentConfig,
    KubernetesTarget,
    deploy_configuration,
    manifests_yaml,
    render_manifests,
)

kubernetes_validate = pytest.importorskip("kubernetes_validate")
pytestmark = pytest.mark.kubernetes

K8S_VERSION = "1.30.0"
KEYS = {"primaryKey": "pk-0123456789abcdef", "secondaryKey": "sk-fedcba9876543210"}
MODELS = ["sklearn_mnist:3", {"name": "encoder", "version": 12}]


def by_kind(objs):
    return {o["kind"]: o for o in objs}


CONFIGS = [
    KubernetesDeploymentConfig(),
    KubernetesDeploymentConfig(namespace="team-a", num_replicas=3, auth_enabled=False, service_type="NodePort"),
    KubernetesDeploymentConfig(
        cpu_cores=0.5,
        memory_gb=1.5,
        cpu_cores_limit=2,
        memory_gb_limit=4,
        autoscale_min_replicas=2,
        autoscale_max_replicas=7,
        autoscale_target_utilization=55,
        autoscale_refresh_seconds=15,
        image_pull_secrets=["regcred"],
        service_type="ClusterIP",
        namespace="ml",
    ),
]


@pytest.mark.parametrize("config", CONFIGS, ids=["defaults", "fixed-replicas", "autoscale-limits"])
def test_every_manifest_validates_strictly(config):
    objs = render_manifests("mnist-svc", "registry.example:5000/ml/mnist-svc:0123abcd", MODELS, config, KEYS)
    assert objs
    for obj in objs:
        # raises kubernetes_validate.ValidationError / SchemaNotFoundError on any problem
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    # the YAML the dry run prints holds the same objects
    docs = list(yaml.safe_load_all(manifests_yaml("mnist-svc", "r/i:1", MODELS, config, KEYS)))
    assert [d["kind"] for d in docs] == [o["kind"] for o in objs]


def test_strict_validation_catches_a_bad_manifest():
    obj = by_kind(render_manifests("a1", "r/i:1", [], KubernetesDeploymentConfig()))["Deployment"]
    obj["spec"]["strategy"]["rollingUpdate"]["maxUnavailabel"] = 0
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_resources_and_hpa_come_from_the_config():
    cfg = CONFIGS[2]
    objs = by_kind(render_manifests("mnist-svc", "r/i:1", MODELS, cfg, KEYS))
    c = objs["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert c["resources"] == {
        "requests": {"cpu": "500m", "memory": "1536Mi"},
        "limits": {"cpu": "2000m", "memory": "4096Mi"},
    }
    hpa = objs["HorizontalPodAutoscaler"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["minReplicas"] == 2 and hpa["spec"]["maxReplicas"] == 7
    assert hpa["spec"]["metrics"][0]["resource"]["target"] == {"type": "Utilization", "averageUtilization": 55}
    assert hpa["spec"]["behavior"]["scaleUp"]["policies"][0]["periodSeconds"] == 15
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "mnist-svc"}
    assert objs["Deployment"]["spec"]["replicas"] == 2
    assert objs["Deployment"]["spec"]["template"]["spec"]["imagePullSecrets"] == [{"name": "regcred"}]
    # Azure's defaults: 0.1 cores, 0.5 GiB, limits = requests, autoscale 1..10 at 70 %
    d = by_kind(render_manifests("x1", "r/i:1", [], KubernetesDeploymentConfig()))
    res = d["Deployment"]["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert res == {"requests": {"cpu": "100m", "memory": "512Mi"}, "limits": {"cpu": "100m", "memory": "512Mi"}}
    assert (d["HorizontalPodAutoscaler"]["spec"]["minReplicas"], d["HorizontalPodAutoscaler"]["spec"]["maxReplicas"]) == (1, 10)


def test_fixed_replicas_means_no_hpa():
    objs = by_kind(render_manifests("a1", "r/i:1", [], CONFIGS[1]))
    assert "HorizontalPodAutoscaler" not in objs
    assert objs["Deployment"]["spec"]["replicas"] == 3
    assert objs["Namespace"]["metadata"]["name"] == "team-a"
    assert all(o["metadata"].get("namespace") == "team-a" for o in objs.values() if o["kind"] != "Namespace")


def test_rolling_update_never_drops_below_the_replica_count_and_probes_are_azures():
    dep = by_kind(render_manifests("a1", "r/i:1", [], KubernetesDeploymentConfig(initial_delay_seconds=5)))["Deployment"]
    assert dep["spec"]["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
    c = dep["spec"]["template"]["spec"]["containers"][0]
    assert c["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "http"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/", "port": "http"}
    assert (c["livenessProbe"]["periodSeconds"], c["livenessProbe"]["initialDelaySeconds"]) == (10, 5)
    assert (c["livenessProbe"]["timeoutSeconds"], c["livenessProbe"]["failureThreshold"]) == (2, 3)
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env["MLMANAGE_HOST"] == "0.0.0.0" and env["MLMANAGE_PORT"] == "5001"
    assert c["ports"][0]["containerPort"] == 5001


def test_keys_live_only_in_the_secret_mounted_as_the_keys_file():
    objs = render_manifests("mnist-svc", "r/i:1", MODELS, KubernetesDeploymentConfig(), KEYS)
    kinds = by_kind(objs)
    secret = kinds["Secret"]
    assert json.loads(secret["stringData"]["keys.json"]) == KEYS
    for obj in objs:
        if obj["kind"] != "Secret":
            text = json.dumps(obj)
            assert KEYS["primaryKey"] not in text and KEYS["secondaryKey"] not in text, obj["kind"]
    pod = kinds["Deployment"]["spec"]["template"]["spec"]
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    assert env["MLMANAGE_AUTH_ENABLED"] == "1"
    assert env["MLMANAGE_KEYS_FILE"] == "/etc/mlmanage/keys/keys.json"
    assert "MLMANAGE_PRIMARY_KEY" not in env
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "keys")
    assert mount["mountPath"] == "/etc/mlmanage/keys" and mount["readOnly"] is True
    assert next(v for v in pod["volumes"] if v["name"] == "keys")["secret"]["secretName"] == secret["metadata"]["name"]
    # the dry run redacts unless asked
    redacted = manifests_yaml("mnist-svc", "r/i:1", MODELS, KubernetesDeploymentConfig(), KEYS)
    assert KEYS["primaryKey"] not in redacted and "<redacted>" in redacted
    shown = manifests_yaml("mnist-svc", "r/i:1", MODELS, KubernetesDeploymentConfig(), KEYS, show_secrets=True)
    assert KEYS["primaryKey"] in shown
    # auth off: no Secret, no keys file
    objs = by_kind(render_manifests("a1", "r/i:1", [], KubernetesDeploymentConfig(auth_enabled=False), KEYS))
    assert "Secret" not in objs and KEYS["primaryKey"] not in json.dumps(list(objs.values()))


def test_labels_say_which_models_and_image_each_object_carries():
    objs = render_manifests("mnist-svc", "reg.io/ml/mnist-svc:abc123", MODELS, KubernetesDeploymentConfig(), KEYS)
    for obj in objs:
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "mlmanage-jupyter"
        if obj["kind"] == "Namespace":
            continue
        assert labels["mlmanage.io/service"] == "mnist-svc"
        assert labels["app.kubernetes.io/name"] == "mnist-svc"
    dep = by_kind(objs)["Deployment"]
    assert dep["metadata"]["labels"]["model.mlmanage.io/sklearn_mnist"] == "3"
    assert dep["metadata"]["labels"]["model.mlmanage.io/encoder"] == "12"
    assert dep["metadata"]["labels"]["mlmanage.io/image-tag"] == "abc123"
    assert dep["metadata"]["annotations"]["mlmanage.io/models"] == "sklearn_mnist:3,encoder:12"
    assert dep["metadata"]["annotations"]["mlmanage.io/image"] == "reg.io/ml/mnist-svc:abc123"
    tmpl = dep["spec"]["template"]["metadata"]["labels"]
    assert set(dep["spec"]["selector"]["matchLabels"].items()) <= set(tmpl.items())
    env = {e["name"]: e["value"] for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MLMANAGE_MODELS"] == "sklearn_mnist:3,encoder:12"


def test_deploymentconfig_json_with_compute_type_aks_parses_to_the_same_config(tmp_path):
    doc = {
        "computeType": "AKS",
        "containerResourceRequirements": {"cpu": 0.5, "memoryInGB": 1.0, "cpuLimit": 1, "memoryInGBLimit": 2.0},
        "autoScaler": {
            "autoscaleEnabled": True,
            "minReplicas": 2,
            "maxReplicas": 6,
            "targetUtilization": 60,
            "refreshPeriodInSeconds": 10,
        },
        "authEnabled": True,
        "scoringTimeoutMs": 5000,
        "livenessProbeRequirements": {
            "periodSeconds": 20,
            "initialDelaySeconds": 30,
            "timeoutSeconds": 4,
            "successThreshold": 1,
            "failureThreshold": 5,
        },
        "namespace": "ml-prod",
        "appInsightsEnabled": True,
        "maxConcurrentRequestsPerContainer": 2,
    }
    p = tmp_path / "deploymentconfig.json"
    p.write_text(json.dumps(doc))
    from_json = config_from_json(p)
    from_api = deploy_configuration(
        cpu_cores=0.5,
        memory_gb=1.0,
        cpu_cores_limit=1.0,
        memory_gb_limit=2.0,
        autoscale_enabled=True,
        autoscale_min_replicas=2,
        autoscale_max_replicas=6,
        autoscale_target_utilization=60,
        autoscale_refresh_seconds=10,
        auth_enabled=True,
        scoring_timeout_ms=5000,
        period_seconds=20,
        initial_delay_seconds=30,
        timeout_seconds=4,
        success_threshold=1,
        failure_threshold=5,
        namespace="ml-prod",
        enable_app_insights=True,
    )
    assert isinstance(from_json, KubernetesDeploymentConfig)
    assert from_json == from_api
    assert config_from_json({"computeType": "kubernetes", "numReplicas": 2}).autoscaling is False
    assert isinstance(get_target("aks"), KubernetesTarget)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"cpu_cores": 0}, "cpu_cores"),
        ({"memory_gb": 1, "memory_gb_limit": 0.5}, "memory_gb_limit"),
        ({"autoscale_min_replicas": 5, "autoscale_max_replicas": 2}, "autoscale_min_replicas"),
        ({"autoscale_target_utilization": 150}, "autoscale_target_utilization"),
        ({"num_replicas": 2, "autoscale_enabled": True}, "num_replicas"),
        ({"namespace": "Bad_NS"}, "namespace"),
        ({"service_type": "Ingress"}, "service_type"),
        ({"registry": "r.io", "image": "r.io/x:1"}, "registry"),
        ({"cpu_core": 1}, "cpu_core"),
    ],
)
def test_bad_config_names_the_field(kwargs, words):
    with pytest.raises(ValidationError, match=words):
        deploy_configuration(**kwargs)


def test_bad_service_name_and_json_section_are_precise():
    with pytest.raises(ValidationError, match="service name 'My_Service'"):
        render_manifests("My_Service", "r/i:1", [], KubernetesDeploymentConfig())
    with pytest.raises(ValidationError, match="autoScaler must be a JSON object"):
        config_from_json({"computeType": "AKS", "autoScaler": [1]})


def test_token_auth_mounts_the_token_secret_and_turns_key_auth_off():
    cfg = deploy_configuration(token_auth_enabled=True)
    assert cfg.token_auth_enabled and not cfg.auth_enabled
    objs = by_kind(render_manifests("tok", "r/i:1", MODELS, cfg, {"tokenSecret": "ts-0123456789"}))
    assert json.loads(objs["Secret"]["stringData"]["keys.json"])["tokenSecret"] == "ts-0123456789"
    env = {e["name"]: e["value"] for e in objs["Deployment"]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MLMANAGE_TOKEN_AUTH_ENABLED"] == "1" and env["MLMANAGE_AUTH_ENABLED"] == "0"
    assert env["MLMANAGE_KEYS_FILE"] == "/etc/mlmanage/keys/keys.json"
    assert "ts-0123456789" not in json.dumps(objs["Deployment"])
    with pytest.raises(ValidationError, match="auth_enabled and token_auth_enabled cannot both be true"):
        deploy_configuration(token_auth_enabled=True, auth_enabled=True)
