"""The Kubernetes manifests render and validate offline, and the validator catches real mistakes.

At the edge, the client address survives ingress -> gateway -> auth, and /metrics is scraped on its own port only.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest.mock import Mock

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from deploy.k8s import nats_auth, nats_tls, validate
from deploy.k8s.kustomize import RenderError, render
from libs.common.http.client_ip import client_address, parse_networks
from tests.helpers.k8s_resources import Resources, container, resource

K8S = validate.K8S_DIR


def test_prod_overlay_renders_namespace_images_replicas_and_patches(prod: Resources) -> None:
    assert all(r["metadata"].get("namespace") == "ipaas" for r in prod if r["kind"] != "Namespace")
    deployments = {r["metadata"]["name"]: r for r in prod if r["kind"] == "Deployment"}
    assert {"gateway", "auth", "scheduler", "executor", "otel-collector"} <= set(deployments)
    assert deployments["gateway"]["spec"]["replicas"] == 3
    assert deployments["scheduler"]["spec"]["replicas"] == 2
    gw = deployments["gateway"]["spec"]["template"]["spec"]["containers"][0]
    assert gw["image"] == "registry.example.com/ipaas/ipaas:0.1.0"
    assert gw["resources"]["requests"]["cpu"] == "500m"
    assert gw["readinessProbe"]["httpGet"]["path"] == "/health/ready"  # the patch merged, did not replace
    ex = deployments["executor"]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in ex["env"]}
    assert env["IPAAS_EXECUTOR_MAX_IN_FLIGHT"]["value"] == "512"
    assert env["DATABASE_URL"]["value"] == "postgresql://ipaas_executor:$(PG_PASSWORD)@ipaas-pg-rw:5432/ipaas"
    assert env["PG_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "ipaas-pg-executor", "key": "password"}
    so = resource(prod, "ScaledObject", "executor")
    trigger = so["spec"]["triggers"][0]
    assert trigger["type"] == "nats-jetstream"
    assert trigger["metadata"]["stream"] == "EVENTS" and trigger["metadata"]["consumer"] == "executor"
    assert trigger["metadata"]["natsServerMonitoringEndpoint"] == "nats.ipaas.svc.cluster.local:8222"
    assert resource(prod, "Cluster", "ipaas-pg")["spec"]["storage"]["size"] == "100Gi"
    assert _job_container(prod, "migrate")["command"] == ["python", "-m", "libs.common.db.migrate"]
    migrate_url = _named(_job_container(prod, "migrate")["env"], "DATABASE_URL")
    assert migrate_url["valueFrom"]["secretKeyRef"] == {"name": "ipaas-pg-app", "key": "uri"}
    assert {r["name"]: r["passwordSecret"]["name"] for r in _roles(prod)} == {
        f"ipaas_{s}": f"ipaas-pg-{s}" for s in ("auth", "gateway", "executor", "scheduler")
    }
    provision = _job_container(prod, "provision-nats")
    assert provision["command"] == ["python", "-m", "deploy.provision"]
    assert provision["image"] == _job_container(prod, "migrate")["image"] == gw["image"]


def test_dev_overlay_differs_where_it_should() -> None:
    dev = render(K8S / "overlays" / "dev")
    assert resource(dev, "ConfigMap", "ipaas-config")["data"]["LOG_LEVEL"] == "DEBUG"
    assert resource(dev, "ConfigMap", "ipaas-config")["data"]["IPAAS_AUTH_URL"] == "http://auth:8081"  # merged, kept
    assert resource(dev, "Deployment", "gateway")["spec"]["replicas"] == 1
    assert resource(dev, "Cluster", "ipaas-pg")["spec"]["instances"] == 1
    assert all(r["metadata"].get("namespace") == "ipaas-dev" for r in dev if r["kind"] != "Namespace")


def _named(items: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """The one of ``items`` (containers, env variables, roles, volumes) whose ``name`` is ``name``."""
    found: dict[str, Any] = next(i for i in items if i["name"] == name)
    return found


def _env_var(rs: Resources, deployment: str, name: str) -> dict[str, Any]:
    return _named(container(rs, deployment)["env"], name)


def _job_container(rs: Resources, name: str) -> dict[str, Any]:
    return _named(_pod(rs, "Job", "ipaas-migrate")["spec"]["containers"], name)


def _pod(rs: Resources, kind: str, name: str) -> dict[str, Any]:
    """The pod template of the ``kind`` (Deployment or Job) named ``name``."""
    template: dict[str, Any] = resource(rs, kind, name)["spec"]["template"]
    return template


def _roles(rs: Resources) -> list[dict[str, Any]]:
    roles: list[dict[str, Any]] = resource(rs, "Cluster", "ipaas-pg")["spec"]["managed"]["roles"]
    return roles


def _egress(rs: Resources) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = resource(rs, "NetworkPolicy", "executor-egress")["spec"]["egress"]
    return rules


def _ip_block(rs: Resources, cidr: str) -> dict[str, Any]:
    block: dict[str, Any] = next(
        peer["ipBlock"]
        for rule in _egress(rs)
        for peer in rule.get("to", [])
        if peer.get("ipBlock", {}).get("cidr") == cidr
    )
    return block


def _ingress(rs: Resources, policy: str, port: int) -> dict[str, Any]:
    rule: dict[str, Any] = next(
        r for r in resource(rs, "NetworkPolicy", policy)["spec"]["ingress"] if r["ports"][0]["port"] == port
    )
    return rule


def _taken_out(block: str, hole: str) -> Callable[[Resources], None]:
    """Takes ``hole`` out of the exceptions of the executor's public ipBlock ``block``: a range it then reaches."""
    return lambda rs: _ip_block(rs, block)["except"].remove(hole)


def _pdb_blocks_evictions(rs: Resources) -> None:
    spec = resource(rs, "PodDisruptionBudget", "scheduler")["spec"]
    del spec["maxUnavailable"]
    spec["minAvailable"] = 2


def _gateway_autoscaled(rs: Resources) -> None:
    rs.append(
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "gateway", "namespace": "ipaas"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "gateway"},
                "minReplicas": 3,
                "maxReplicas": 6,
            },
        }
    )


def _env_order(rs: Resources) -> None:
    env = container(rs, "gateway")["env"]
    env.append(env.pop(next(i for i, e in enumerate(env) if e["name"] == "POD_NAME")))


def _dns_over_udp_only(rs: Resources) -> None:
    dns = next(r for r in _egress(rs) if r["ports"][0].get("port") == 53)
    dns["ports"] = [{"port": 53, "protocol": "UDP"}]


def _no_provisioning(rs: Resources) -> None:
    spec = _pod(rs, "Job", "ipaas-migrate")["spec"]
    spec["containers"] = [c for c in spec["containers"] if c["name"] != "provision-nats"]


def _service_as_owner(rs: Resources) -> None:
    var = _env_var(rs, "executor", "DATABASE_URL")
    del var["value"]
    var["valueFrom"] = {"secretKeyRef": {"name": "ipaas-pg-app", "key": "uri"}}


def _migrations_as_a_service(rs: Resources) -> None:
    env = _job_container(rs, "migrate")["env"]
    env[:] = [
        {"name": "PG_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "ipaas-pg-gateway", "key": "password"}}},
        {"name": "DATABASE_URL", "value": "postgresql://ipaas_gateway:$(PG_PASSWORD)@ipaas-pg-rw:5432/ipaas"},
    ]


# case id: (the edit that breaks the prod overlay, a problem the validator must report for it)
MUTATIONS: dict[str, tuple[Callable[[Resources], object], str]] = {
    "drop_readiness": (
        lambda rs: container(rs, "gateway").pop("readinessProbe"),
        "Deployment/gateway container gateway: no readinessProbe",
    ),
    "wrong_live_path": (
        lambda rs: container(rs, "auth")["livenessProbe"]["httpGet"].update(path="/healthz"),
        "livenessProbe must GET /health/live",
    ),
    "service_selector_typo": (
        lambda rs: resource(rs, "Service", "auth")["spec"]["selector"].update({"app.kubernetes.io/component": "authn"}),
        "Service/auth: selector",
    ),
    "service_bad_target_port": (
        lambda rs: resource(rs, "Service", "gateway")["spec"]["ports"][0].update(targetPort="web"),
        "Service/gateway: targetPort web",
    ),
    "selector_mismatch": (
        lambda rs: resource(rs, "Deployment", "scheduler")["spec"]["selector"]["matchLabels"].update(tier="x"),
        "Deployment/scheduler: selector",
    ),
    "latest_image": (
        lambda rs: container(rs, "executor").update(image="registry.example.com/ipaas/ipaas:latest"),
        "mutable tag 'latest'",
    ),
    "no_limits": (
        lambda rs: container(rs, "gateway")["resources"].pop("limits"),
        "resources.limits.cpu is not set",
    ),
    "short_grace": (
        lambda rs: _pod(rs, "Deployment", "gateway")["spec"].update(terminationGracePeriodSeconds=12),
        "terminationGracePeriodSeconds 12",
    ),
    "no_prestop": (lambda rs: container(rs, "executor").pop("lifecycle"), "no preStop"),
    "pdb_blocks_evictions": (_pdb_blocks_evictions, "blocks every eviction of scheduler"),
    "no_migration_job": (lambda rs: rs.remove(resource(rs, "Job", "ipaas-migrate")), "libs.common.db.migrate"),
    "wrong_consumer": (
        lambda rs: resource(rs, "ScaledObject", "executor")["spec"]["triggers"][0]["metadata"].update(
            consumer="workers"
        ),
        "consumer 'executor' of stream EVENTS",
    ),
    "executor_consumer_renamed": (
        lambda rs: container(rs, "executor")["env"].append({"name": "IPAAS_EXECUTOR_CONSUMER", "value": "workers"}),
        "the trigger reads consumer 'executor' of stream 'EVENTS', the executors consume 'workers'",
    ),
    "gateway_replicas_drift": (
        lambda rs: resource(rs, "Deployment", "gateway")["spec"].update(replicas=4),
        "Deployment/gateway: 4 replicas but IPAAS_GATEWAY_REPLICAS=3",
    ),
    "gateway_autoscaled": (_gateway_autoscaled, "HorizontalPodAutoscaler/gateway: scales the gateway"),
    "missing_configmap": (
        lambda rs: rs.remove(resource(rs, "ConfigMap", "ipaas-config")),
        "ConfigMap ipaas-config is not declared",
    ),
    "env_order": (_env_order, "refers to $(POD_NAME) before it is defined"),
    "port_drift": (
        lambda rs: _env_var(rs, "gateway", "IPAAS_HTTP_PORT").update(value="9090"),
        "IPAAS_HTTP_PORT 9090 is not a container port",
    ),
    "metrics_scraped_on_the_service_port": (
        lambda rs: _pod(rs, "Deployment", "gateway")["metadata"]["annotations"].update({"prometheus.io/port": "8080"}),
        "prometheus.io/port 8080 is not IPAAS_HTTP_METRICS_PORT (9080)",
    ),
    "metrics_port_drift": (
        lambda rs: _env_var(rs, "gateway", "IPAAS_HTTP_METRICS_PORT").update(value="9999"),
        "IPAAS_HTTP_METRICS_PORT 9999 is not a container port",
    ),
    "auth_url_port": (
        lambda rs: resource(rs, "ConfigMap", "ipaas-config")["data"].update(IPAAS_AUTH_URL="http://auth:9999"),
        "IPAAS_AUTH_URL uses port 9999",
    ),
    "one_scheduler": (
        lambda rs: resource(rs, "Deployment", "scheduler")["spec"].update(replicas=1),
        "Deployment/scheduler: needs at least 2 replicas",
    ),
    "bad_api_version": (
        lambda rs: resource(rs, "Deployment", "auth").update(apiVersion="extensions/v1beta1"),
        "apiVersion extensions/v1beta1",
    ),
    "no_namespace": (
        lambda rs: resource(rs, "Service", "gateway")["metadata"].pop("namespace"),
        "Service/gateway: no namespace",
    ),
    **{
        f"egress_reaches_{case}": (
            _taken_out(block, hole),
            f"NetworkPolicy/executor-egress: ipBlock {block} lets the executor reach {reached}",
        )
        for case, block, hole, reached in [
            ("private", "0.0.0.0/0", "10.0.0.0/8", "10.0.0.0/8"),
            ("metadata", "0.0.0.0/0", "169.254.0.0/16", "169.254.169.254/32"),
            ("azure_host", "0.0.0.0/0", "168.63.129.16/32", "168.63.129.16/32"),
            ("ipv6_ula", "::/0", "fc00::/7", "fd00:ec2::254/128"),
        ]
    },
    "no_executor_egress_policy": (
        lambda rs: rs.remove(resource(rs, "NetworkPolicy", "executor-egress")),
        "NetworkPolicy: none restricts the executor's egress",
    ),
    "egress_open_rule": (
        lambda rs: _egress(rs).append({"ports": [{"port": 443, "protocol": "TCP"}]}),
        "an egress rule without 'to' lets the executor reach everything",
    ),
    "egress_any_namespace": (
        lambda rs: _egress(rs).append({"to": [{"namespaceSelector": {}}]}),
        "lets the executor reach every pod of every namespace",
    ),
    "egress_without_nats": (
        lambda rs: _egress(rs).remove(next(r for r in _egress(rs) if r["ports"][0].get("port") == 4222)),
        "the executor cannot reach NATS on 4222/TCP",
    ),
    "dns_over_udp_only": (_dns_over_udp_only, "the executor cannot reach DNS (kube-dns) on 53/TCP"),
    "nats_open_to_all": (
        lambda rs: _ingress(rs, "nats", 4222).pop("from"),
        "NetworkPolicy/nats: an ingress rule without 'from' opens NATS to every source",
    ),
    "nats_clients_from_another_namespace": (
        lambda rs: _ingress(rs, "nats", 4222)["from"].append({"namespaceSelector": {"matchLabels": {"team": "x"}}}),
        "NetworkPolicy/nats: port 4222 of NATS is open to",
    ),
    "nats_routes_open": (
        lambda rs: _ingress(rs, "nats", 6222).update(
            {"from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/part-of": "ipaas"}}}]}
        ),
        "NATS routes (6222) must be open to NATS servers only",
    ),
    "nats_policy_selects_nothing": (
        lambda rs: resource(rs, "NetworkPolicy", "nats")["spec"]["podSelector"]["matchLabels"].update(
            {"app.kubernetes.io/name": "natz"}
        ),
        "NetworkPolicy/nats: podSelector",
    ),
    "no_postgres_policy": (
        lambda rs: rs.remove(resource(rs, "NetworkPolicy", "postgres")),
        "NetworkPolicy: none restricts who reaches Postgres (ipaas-pg)",
    ),
    "postgres_from_anywhere": (
        lambda rs: _ingress(rs, "postgres", 5432)["from"].append({"ipBlock": {"cidr": "0.0.0.0/0"}}),
        "NetworkPolicy/postgres: port 5432 of Postgres (ipaas-pg) is open to",
    ),
    "borrowed_nats_secret": (
        lambda rs: _env_var(rs, "gateway", "NATS_PASSWORD")["valueFrom"]["secretKeyRef"].update(
            name="ipaas-nats-executor"
        ),
        "Deployment/gateway container gateway: env NATS_PASSWORD must come from Secret ipaas-nats-gateway",
    ),
    "borrowed_nats_user": (
        lambda rs: _env_var(rs, "gateway", "NATS_URL").update(value="nats://executor:$(NATS_PASSWORD)@nats:4222"),
        "NATS_URL must connect as NATS user gateway",
    ),
    "anonymous_nats": (
        lambda rs: container(rs, "scheduler")["env"].remove(_env_var(rs, "scheduler", "NATS_URL")),
        "Deployment/scheduler container scheduler: no NATS_URL of its own",
    ),
    "foreign_inbox": (
        lambda rs: _env_var(rs, "auth", "IPAAS_AUTH_NATS_INBOX_PREFIX").update(value="_INBOX"),
        "reply inboxes must use _INBOX_auth",
    ),
    "no_provisioning": (_no_provisioning, "Job: none runs python -m deploy.provision"),
    "provisioning_as_a_service": (
        lambda rs: _named(_job_container(rs, "provision-nats")["env"], "NATS_URL").update(
            value="nats://executor:$(NATS_PASSWORD)@nats:4222"
        ),
        "container provision-nats: NATS_URL must connect as NATS user provisioner",
    ),
    "service_provisions": (
        lambda rs: container(rs, "gateway")["env"].append({"name": "IPAAS_NATS_PROVISION", "value": "true"}),
        "Deployment/gateway container gateway: IPAAS_NATS_PROVISION must stay false",
    ),
    "config_provisions": (
        lambda rs: resource(rs, "ConfigMap", "ipaas-config")["data"].update(IPAAS_NATS_PROVISION="true"),
        "ConfigMap/ipaas-config: IPAAS_NATS_PROVISION must stay false",
    ),
    "borrowed_pg_secret": (
        lambda rs: _env_var(rs, "gateway", "PG_PASSWORD")["valueFrom"]["secretKeyRef"].update(name="ipaas-pg-auth"),
        "Deployment/gateway container gateway: env PG_PASSWORD must come from Secret ipaas-pg-gateway",
    ),
    "borrowed_pg_role": (
        lambda rs: _env_var(rs, "gateway", "DATABASE_URL").update(
            value="postgresql://ipaas_auth:$(PG_PASSWORD)@ipaas-pg-rw:5432/ipaas"
        ),
        "DATABASE_URL must connect as Postgres role ipaas_gateway",
    ),
    "service_as_owner": (_service_as_owner, "Deployment/executor container executor: reads Secret ipaas-pg-app"),
    "owner_secret_mounted": (
        lambda rs: container(rs, "scheduler")["envFrom"].append({"secretRef": {"name": "ipaas-pg-app"}}),
        "Deployment/scheduler container scheduler: reads Secret ipaas-pg-app",
    ),
    "migrations_as_a_service": (
        _migrations_as_a_service,
        "container migrate: the migrations must run as the owner ipaas",
    ),
    "unmanaged_role": (
        lambda rs: _roles(rs).remove(_named(_roles(rs), "ipaas_scheduler")),
        "Cluster/ipaas-pg: managed.roles lacks ipaas_scheduler",
    ),
    "privileged_role": (
        lambda rs: _named(_roles(rs), "ipaas_executor").update(superuser=True),
        "managed role ipaas_executor must hold no attribute or membership (superuser)",
    ),
    "database_of_another_owner": (
        lambda rs: resource(rs, "Cluster", "ipaas-pg")["spec"]["bootstrap"]["initdb"].update(owner="app"),
        "bootstrap.initdb must create database ipaas owned by ipaas",
    ),
    "shared_database_url": (
        lambda rs: resource(rs, "ConfigMap", "ipaas-config")["data"].update(
            DATABASE_URL="postgresql://ipaas@ipaas-pg-rw/ipaas"
        ),
        "ConfigMap/ipaas-config: holds a DATABASE_URL",
    ),
}


@pytest.mark.parametrize(("mutate", "expected"), MUTATIONS.values(), ids=MUTATIONS.keys())
def test_validator_reports_each_mistake(prod: Resources, mutate: Callable[[Resources], object], expected: str) -> None:
    broken = copy.deepcopy(prod)
    mutate(broken)
    problems, _ = validate.validate_resources(broken, overlay=True)
    assert any(expected in p for p in problems), problems


def test_external_secrets_are_listed(prod: Resources) -> None:
    _, secrets = validate.validate_resources(prod, overlay=True)
    assert secrets == {
        "ipaas-pg-app",
        "ipaas-auth-signing-keys",
        "ipaas-auth-keks",
        "ipaas-nats-auth",
        "ipaas-nats-gateway",
        "ipaas-nats-executor",
        "ipaas-nats-scheduler",
        "ipaas-nats-provisioner",
        "ipaas-pg-auth",
        "ipaas-pg-gateway",
        "ipaas-pg-executor",
        "ipaas-pg-scheduler",
        "nats-server-tls",
    }  # issued by cert-manager (overlays/prod/nats-tls.yaml)


def test_nats_values_need_jetstream_a_cluster_of_three_and_monitoring(prod: Resources) -> None:
    values = yaml.safe_load(validate.NATS_VALUES.read_text())
    assert validate.validate_nats_values(values, prod) == []
    broken = copy.deepcopy(values)
    broken["config"]["jetstream"]["enabled"] = False
    broken["config"]["cluster"]["replicas"] = 1
    broken["config"]["monitor"]["port"] = 9000
    del broken["config"]["jetstream"]["merge"]["sync_interval"]
    problems = validate.validate_nats_values(broken, prod)
    assert any("jetstream.enabled" in p for p in problems)
    assert any("sync_interval must be always" in p for p in problems)
    assert any("at least 3 servers" in p for p in problems)
    assert any("not on port 9000" in p for p in problems)


# JetStream API verbs no service identity may be granted.
FORBIDDEN_VERBS = (".STREAM.CREATE", ".STREAM.UPDATE", ".DELETE.", ".PURGE.", ".DURABLE.", ".MSG.GET.", ".DIRECT.")


def test_nats_values_grant_exactly_the_permissions_of_the_table(prod: Resources) -> None:
    values = yaml.safe_load(validate.NATS_VALUES.read_text())
    users = {u["user"]: u for u in values["config"]["merge"]["authorization"]["users"]}
    assert set(users) == {"auth", "gateway", "executor", "scheduler", "provisioner"}  # no local-only admin
    assert users["executor"]["password"] == "<< $NATS_EXECUTOR_PASSWORD >>"
    for identity in ("gateway", "scheduler", "executor", "auth"):
        api = [s for s in users[identity]["permissions"]["publish"]["allow"] if s.startswith("$JS.API")]
        assert not [s for s in api if any(verb in s for verb in FORBIDDEN_VERBS)]
        assert not [s for s in api if s.endswith((".>", ".*"))], identity  # nothing by wildcard
    assert "$JS.API.STREAM.CREATE.EVENTS" in users["provisioner"]["permissions"]["publish"]["allow"]
    widened = copy.deepcopy(values)
    gateway = next(u for u in widened["config"]["merge"]["authorization"]["users"] if u["user"] == "gateway")
    gateway["permissions"]["publish"]["allow"].append("$JS.API.>")
    assert any("differ from libs/common/bus/permissions.py" in p for p in validate.validate_nats_values(widened, prod))
    unsourced = copy.deepcopy(values)
    del unsourced["container"]["env"]["NATS_PROVISIONER_PASSWORD"]
    problems = validate.validate_nats_values(unsourced, prod)
    assert any("NATS_PROVISIONER_PASSWORD must come from Secret ipaas-nats-provisioner" in p for p in problems)


def test_the_values_file_holds_the_generated_users_block() -> None:
    text = validate.NATS_VALUES.read_text()
    assert nats_auth.check_values_file(text) == []
    assert nats_auth.main([]) == 0
    stale = text.replace('"$JS.API.STREAM.INFO.EVENTS", ', '"$JS.API.>", ', 1)
    assert stale != text
    assert nats_auth.check_values_file(stale) == [
        "nats values: the users block is stale: run python -m deploy.k8s.nats_auth --write"
    ]
    unmarked = text.replace(nats_auth.BEGIN, "# users")
    assert "users block (its BEGIN/END markers) is missing" in nats_auth.check_values_file(unmarked)[0]


def test_kustomize_refuses_a_broken_kustomization(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: [missing.yaml]\n")
    with pytest.raises(RenderError, match="missing.yaml"):
        render(tmp_path)
    with pytest.raises(RenderError, match="no kustomization.yaml"):
        render(tmp_path / "nowhere")


def test_prod_keeps_each_password_above_the_url_that_refers_to_it(prod: Resources) -> None:
    """kustomize puts a patch's list entries first: the TLS patches repeat NATS_PASSWORD so it stays above."""
    for name in ("auth", "gateway", "scheduler", "executor"):
        names = [e["name"] for e in container(prod, name)["env"]]
        assert names.index("NATS_PASSWORD") < names.index("NATS_URL"), name
        assert names.index("PG_PASSWORD") < names.index("DATABASE_URL"), name
    names = [e["name"] for e in _job_container(prod, "provision-nats")["env"]]
    assert names.index("NATS_PASSWORD") < names.index("NATS_URL")


def test_the_executor_reaches_dns_nats_postgres_and_public_addresses_only(prod: Resources) -> None:
    policy = resource(prod, "NetworkPolicy", "executor-egress")
    assert policy["metadata"]["namespace"] == "ipaas" and policy["spec"]["policyTypes"] == ["Egress"]
    v4, v6 = _ip_block(prod, "0.0.0.0/0")["except"], _ip_block(prod, "::/0")["except"]
    assert {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10"} <= set(v4)
    assert {"fc00::/7", "fe80::/10"} <= set(v6)
    by_port = {r["ports"][0].get("port"): r["to"] for r in _egress(prod)}
    assert by_port[4222] == [
        {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "nats", "app.kubernetes.io/component": "nats"}}}
    ]
    assert by_port[5432] == [{"podSelector": {"matchLabels": {"cnpg.io/cluster": "ipaas-pg"}}}]
    assert by_port[53][0]["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}
    # NATS and Postgres take their clients from the platform's pods only.
    assert _ingress(prod, "nats", 4222)["from"] == [
        {"podSelector": {"matchLabels": {"app.kubernetes.io/part-of": "ipaas"}}}
    ]
    assert {"podSelector": {"matchLabels": {"app.kubernetes.io/part-of": "ipaas"}}} in _ingress(prod, "postgres", 5432)[
        "from"
    ]


@pytest.fixture(scope="module")
def prod_nats_values() -> dict[str, Any]:
    return nats_tls.overlay_values(yaml.safe_load(validate.NATS_VALUES.read_text()), K8S / "overlays" / "prod")


def test_prod_runs_nats_over_tls_with_a_certificate_and_every_client_verifies_it(
    prod: Resources,
    prod_nats_values: dict[str, Any],
) -> None:
    assert nats_tls.check_nats_tls(prod, prod_nats_values, required=True) == []
    assert prod_nats_values["config"]["nats"]["tls"] == {"enabled": True, "secretName": "nats-server-tls"}
    assert prod_nats_values["config"]["jetstream"]["enabled"] is True  # the base's values are kept
    cert = resource(prod, "Certificate", "nats-server-tls")["spec"]
    assert "nats" in cert["dnsNames"] and cert["issuerRef"]["name"] == "ipaas-nats-ca"
    assert _env_var(prod, "executor", "NATS_URL")["value"] == "tls://executor:$(NATS_PASSWORD)@nats:4222"
    assert resource(prod, "ConfigMap", "ipaas-config")["data"]["IPAAS_NATS_TLS_CA_FILE"] == "/etc/ipaas/nats-ca/ca.crt"
    assert _named(_job_container(prod, "provision-nats")["env"], "NATS_URL")["value"].startswith("tls://provisioner:")
    dev = render(K8S / "overlays" / "dev")
    dev_values = nats_tls.overlay_values(yaml.safe_load(validate.NATS_VALUES.read_text()), K8S / "overlays" / "dev")
    assert nats_tls.check_nats_tls(dev, dev_values, required=False) == []  # dev stays plain
    assert nats_tls.check_nats_tls(dev, dev_values, required=True) == [
        "nats values: config.nats.tls must be enabled in this overlay (clients in the clear)"
    ]


# case id: (the edit that breaks the prod overlay or its NATS values, a problem the TLS check must report)
TLS_MUTATIONS: dict[str, tuple[Callable[[Resources, dict[str, Any]], object], str]] = {
    "plaintext_client": (
        lambda rs, _v: _env_var(rs, "gateway", "NATS_URL").update(value="nats://gateway:$(NATS_PASSWORD)@nats:4222"),
        "Deployment/gateway container gateway: NATS_URL must be tls://",
    ),
    "no_ca_file": (
        lambda rs, _v: resource(rs, "ConfigMap", "ipaas-config")["data"].pop("IPAAS_NATS_TLS_CA_FILE"),
        "container executor: no IPAAS_NATS_TLS_CA_FILE",
    ),
    "whole_secret_mounted": (
        lambda rs, _v: _named(_pod(rs, "Deployment", "scheduler")["spec"]["volumes"], "nats-ca")["secret"].pop("items"),
        "Deployment/scheduler container scheduler: mounts all of Secret nats-server-tls",
    ),
    "no_certificate": (
        lambda rs, _v: rs.remove(resource(rs, "Certificate", "nats-server-tls")),
        "Certificate: none issues Secret nats-server-tls",
    ),
    "wrong_name_in_certificate": (
        lambda rs, _v: resource(rs, "Certificate", "nats-server-tls")["spec"]["dnsNames"].remove("nats"),
        "NATS_URL host nats is not among the certificate's dnsNames",
    ),
    "tls_off": (
        lambda _rs, values: values["config"]["nats"]["tls"].update(enabled=False),
        "config.nats.tls must be enabled in this overlay",
    ),
    "routes_in_the_clear": (
        lambda _rs, values: values["config"]["cluster"]["tls"].update(enabled=False),
        "config.cluster.tls must be enabled too",
    ),
}


@pytest.mark.parametrize(("mutate", "expected"), TLS_MUTATIONS.values(), ids=TLS_MUTATIONS.keys())
def test_the_tls_check_reports_each_mistake(
    prod: Resources,
    prod_nats_values: dict[str, Any],
    mutate: Callable[[Resources, dict[str, Any]], object],
    expected: str,
) -> None:
    broken, values = copy.deepcopy(prod), copy.deepcopy(prod_nats_values)
    mutate(broken, values)
    problems = nats_tls.check_nats_tls(broken, values, required=True)
    assert any(expected in p for p in problems), problems


def _request(peer: str, forwarded_for: str | None) -> web.Request:
    transport = Mock()
    transport.get_extra_info.return_value = (peer, 40000)
    headers = CIMultiDict({"X-Forwarded-For": forwarded_for} if forwarded_for else {})
    return make_mocked_request("POST", "/api/auth/login", headers=headers, transport=transport)


def test_the_client_address_survives_ingress_gateway_and_auth_in_the_cluster(prod: Resources) -> None:
    gateway_trusts = parse_networks(_env_var(prod, "gateway", "IPAAS_GATEWAY_TRUSTED_PROXIES")["value"])
    auth_trusts = parse_networks(_env_var(prod, "auth", "IPAAS_AUTH_TRUSTED_PROXIES")["value"])
    for pod_network, client in (("10.244", "203.0.113.5"), ("172.20", "198.51.100.23"), ("192.168", "2001:db8:44::9")):
        ingress_pod, gateway_pod = f"{pod_network}.3.4", f"{pod_network}.1.7"
        # The client forges a hop; the ingress appends the address it saw.
        at_gateway = client_address(_request(ingress_pod, f"192.0.2.1, {client}"), gateway_trusts)
        assert at_gateway == client
        # The gateway sends auth exactly that one hop, from its pod address.
        assert client_address(_request(gateway_pod, at_gateway), auth_trusts) == client
        # Before: auth trusted loopback only, so every login counted against the gateway pod.
        assert client_address(_request(gateway_pod, at_gateway), parse_networks("127.0.0.1/32,::1/128")) == gateway_pod


def test_every_service_is_scraped_on_its_metrics_port_and_only_monitoring_reaches_it(prod: Resources) -> None:
    for name, port, metrics in (
        ("gateway", 8080, 9080),
        ("auth", 8081, 9081),
        ("scheduler", 8082, 9082),
        ("executor", 8083, 9083),
    ):
        env = {e["name"]: e.get("value", "") for e in container(prod, name)["env"]}
        assert (env["IPAAS_HTTP_PORT"], env["IPAAS_HTTP_METRICS_PORT"]) == (str(port), str(metrics))
        assert _pod(prod, "Deployment", name)["metadata"]["annotations"]["prometheus.io/port"] == str(metrics)
        ports = {p["name"]: p["containerPort"] for p in container(prod, name)["ports"]}
        assert ports == {"http": port, "metrics": metrics}
    policies = {r["metadata"]["name"]: r for r in prod if r["kind"] == "NetworkPolicy"}
    assert [p["port"] for p in policies["gateway-public"]["spec"]["ingress"][0]["ports"]] == [8080]
    assert [p["port"] for p in policies["metrics-from-monitoring"]["spec"]["ingress"][0]["ports"]] == ["metrics"]
