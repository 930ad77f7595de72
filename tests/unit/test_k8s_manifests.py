"""The Kubernetes manifests render and validate offline, and the validator catches real mistakes."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.k8s import nats_auth, nats_tls, validate
from deploy.k8s.kustomize import RenderError, render
from tests.helpers.k8s_resources import Resources, container, resource

K8S = validate.K8S_DIR


@pytest.mark.slow
def test_every_overlay_and_the_base_validate_cleanly() -> None:
    report = validate.validate_all()
    assert {"base", "overlays/dev", "overlays/prod"} <= set(report)
    assert report == {target: [] for target in report}
    assert validate.main([]) == 0


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
    migrate_env = {e["name"]: e for e in _job_container(prod, "migrate")["env"]}
    assert migrate_env["DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "ipaas-pg-app", "key": "uri"}
    roles = resource(prod, "Cluster", "ipaas-pg")["spec"]["managed"]["roles"]
    assert {r["name"]: r["passwordSecret"]["name"] for r in roles} == {
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


def _drop_readiness(rs: Resources) -> None:
    del container(rs, "gateway")["readinessProbe"]


def _wrong_live_path(rs: Resources) -> None:
    container(rs, "auth")["livenessProbe"]["httpGet"]["path"] = "/healthz"


def _service_selector_typo(rs: Resources) -> None:
    resource(rs, "Service", "auth")["spec"]["selector"]["app.kubernetes.io/component"] = "authn"


def _service_bad_target_port(rs: Resources) -> None:
    resource(rs, "Service", "gateway")["spec"]["ports"][0]["targetPort"] = "web"


def _selector_mismatch(rs: Resources) -> None:
    resource(rs, "Deployment", "scheduler")["spec"]["selector"]["matchLabels"]["tier"] = "x"


def _latest_image(rs: Resources) -> None:
    container(rs, "executor")["image"] = "registry.example.com/ipaas/ipaas:latest"


def _no_limits(rs: Resources) -> None:
    del container(rs, "gateway")["resources"]["limits"]


def _short_grace(rs: Resources) -> None:
    resource(rs, "Deployment", "gateway")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 12


def _no_prestop(rs: Resources) -> None:
    del container(rs, "executor")["lifecycle"]


def _pdb_blocks_evictions(rs: Resources) -> None:
    spec = resource(rs, "PodDisruptionBudget", "scheduler")["spec"]
    del spec["maxUnavailable"]
    spec["minAvailable"] = 2


def _no_migration_job(rs: Resources) -> None:
    rs.remove(resource(rs, "Job", "ipaas-migrate"))


def _wrong_consumer(rs: Resources) -> None:
    resource(rs, "ScaledObject", "executor")["spec"]["triggers"][0]["metadata"]["consumer"] = "workers"


def _executor_consumer_renamed(rs: Resources) -> None:
    container(rs, "executor")["env"].append({"name": "IPAAS_EXECUTOR_CONSUMER", "value": "workers"})


def _gateway_replicas_drift(rs: Resources) -> None:
    resource(rs, "Deployment", "gateway")["spec"]["replicas"] = 4


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


def _missing_configmap(rs: Resources) -> None:
    rs.remove(resource(rs, "ConfigMap", "ipaas-config"))


def _env_order(rs: Resources) -> None:
    env = container(rs, "gateway")["env"]
    env.append(env.pop(next(i for i, e in enumerate(env) if e["name"] == "POD_NAME")))


def _port_drift(rs: Resources) -> None:
    _env_var(rs, "gateway", "IPAAS_HTTP_PORT")["value"] = "9090"


def _auth_url_port(rs: Resources) -> None:
    resource(rs, "ConfigMap", "ipaas-config")["data"]["IPAAS_AUTH_URL"] = "http://auth:9999"


def _one_scheduler(rs: Resources) -> None:
    resource(rs, "Deployment", "scheduler")["spec"]["replicas"] = 1


def _bad_api_version(rs: Resources) -> None:
    resource(rs, "Deployment", "auth")["apiVersion"] = "extensions/v1beta1"


def _env_var(rs: Resources, deployment: str, name: str) -> dict[str, Any]:
    var: dict[str, Any] = next(e for e in container(rs, deployment)["env"] if e["name"] == name)
    return var


def _borrowed_nats_secret(rs: Resources) -> None:
    _env_var(rs, "gateway", "NATS_PASSWORD")["valueFrom"]["secretKeyRef"]["name"] = "ipaas-nats-executor"


def _borrowed_nats_user(rs: Resources) -> None:
    _env_var(rs, "gateway", "NATS_URL")["value"] = "nats://executor:$(NATS_PASSWORD)@nats:4222"


def _anonymous_nats(rs: Resources) -> None:
    container(rs, "scheduler")["env"].remove(_env_var(rs, "scheduler", "NATS_URL"))


def _foreign_inbox(rs: Resources) -> None:
    _env_var(rs, "auth", "IPAAS_AUTH_NATS_INBOX_PREFIX")["value"] = "_INBOX"


def _job_container(rs: Resources, name: str) -> dict[str, Any]:
    spec = resource(rs, "Job", "ipaas-migrate")["spec"]["template"]["spec"]
    found: dict[str, Any] = next(c for c in spec["containers"] if c["name"] == name)
    return found


def _no_provisioning(rs: Resources) -> None:
    spec = resource(rs, "Job", "ipaas-migrate")["spec"]["template"]["spec"]
    spec["containers"] = [c for c in spec["containers"] if c["name"] != "provision-nats"]


def _provisioning_as_a_service(rs: Resources) -> None:
    env = _job_container(rs, "provision-nats")["env"]
    next(e for e in env if e["name"] == "NATS_URL")["value"] = "nats://executor:$(NATS_PASSWORD)@nats:4222"


def _service_provisions(rs: Resources) -> None:
    container(rs, "gateway")["env"].append({"name": "IPAAS_NATS_PROVISION", "value": "true"})


def _config_provisions(rs: Resources) -> None:
    resource(rs, "ConfigMap", "ipaas-config")["data"]["IPAAS_NATS_PROVISION"] = "true"


def _borrowed_pg_secret(rs: Resources) -> None:
    _env_var(rs, "gateway", "PG_PASSWORD")["valueFrom"]["secretKeyRef"]["name"] = "ipaas-pg-auth"


def _borrowed_pg_role(rs: Resources) -> None:
    _env_var(rs, "gateway", "DATABASE_URL")["value"] = "postgresql://ipaas_auth:$(PG_PASSWORD)@ipaas-pg-rw:5432/ipaas"


def _service_as_owner(rs: Resources) -> None:
    var = _env_var(rs, "executor", "DATABASE_URL")
    del var["value"]
    var["valueFrom"] = {"secretKeyRef": {"name": "ipaas-pg-app", "key": "uri"}}


def _owner_secret_mounted(rs: Resources) -> None:
    container(rs, "scheduler")["envFrom"].append({"secretRef": {"name": "ipaas-pg-app"}})


def _migrations_as_a_service(rs: Resources) -> None:
    env = _job_container(rs, "migrate")["env"]
    env[:] = [
        {"name": "PG_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "ipaas-pg-gateway", "key": "password"}}},
        {"name": "DATABASE_URL", "value": "postgresql://ipaas_gateway:$(PG_PASSWORD)@ipaas-pg-rw:5432/ipaas"},
    ]


def _unmanaged_role(rs: Resources) -> None:
    roles = resource(rs, "Cluster", "ipaas-pg")["spec"]["managed"]["roles"]
    roles[:] = [r for r in roles if r["name"] != "ipaas_scheduler"]


def _privileged_role(rs: Resources) -> None:
    roles = resource(rs, "Cluster", "ipaas-pg")["spec"]["managed"]["roles"]
    next(r for r in roles if r["name"] == "ipaas_executor")["superuser"] = True


def _database_of_another_owner(rs: Resources) -> None:
    resource(rs, "Cluster", "ipaas-pg")["spec"]["bootstrap"]["initdb"]["owner"] = "app"


def _shared_database_url(rs: Resources) -> None:
    resource(rs, "ConfigMap", "ipaas-config")["data"]["DATABASE_URL"] = "postgresql://ipaas@ipaas-pg-rw/ipaas"


def _no_namespace(rs: Resources) -> None:
    del resource(rs, "Service", "gateway")["metadata"]["namespace"]


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


def _egress_reaches_private(rs: Resources) -> None:
    _ip_block(rs, "0.0.0.0/0")["except"].remove("10.0.0.0/8")


def _egress_reaches_metadata(rs: Resources) -> None:
    _ip_block(rs, "0.0.0.0/0")["except"].remove("169.254.0.0/16")


def _egress_reaches_azure_host(rs: Resources) -> None:
    _ip_block(rs, "0.0.0.0/0")["except"].remove("168.63.129.16/32")


def _egress_reaches_ipv6_ula(rs: Resources) -> None:
    _ip_block(rs, "::/0")["except"].remove("fc00::/7")


def _no_executor_egress_policy(rs: Resources) -> None:
    rs.remove(resource(rs, "NetworkPolicy", "executor-egress"))


def _egress_open_rule(rs: Resources) -> None:
    _egress(rs).append({"ports": [{"port": 443, "protocol": "TCP"}]})


def _egress_any_namespace(rs: Resources) -> None:
    _egress(rs).append({"to": [{"namespaceSelector": {}}]})


def _egress_without_nats(rs: Resources) -> None:
    _egress(rs).remove(next(r for r in _egress(rs) if r["ports"][0].get("port") == 4222))


def _dns_over_udp_only(rs: Resources) -> None:
    dns = next(r for r in _egress(rs) if r["ports"][0].get("port") == 53)
    dns["ports"] = [{"port": 53, "protocol": "UDP"}]


def _ingress(rs: Resources, policy: str, port: int) -> dict[str, Any]:
    rule: dict[str, Any] = next(
        r for r in resource(rs, "NetworkPolicy", policy)["spec"]["ingress"] if r["ports"][0]["port"] == port
    )
    return rule


def _nats_open_to_all(rs: Resources) -> None:
    del _ingress(rs, "nats", 4222)["from"]


def _nats_clients_from_another_namespace(rs: Resources) -> None:
    _ingress(rs, "nats", 4222)["from"].append({"namespaceSelector": {"matchLabels": {"team": "x"}}})


def _nats_routes_open(rs: Resources) -> None:
    _ingress(rs, "nats", 6222)["from"] = [{"podSelector": {"matchLabels": {"app.kubernetes.io/part-of": "ipaas"}}}]


def _nats_policy_selects_nothing(rs: Resources) -> None:
    resource(rs, "NetworkPolicy", "nats")["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] = "natz"


def _no_postgres_policy(rs: Resources) -> None:
    rs.remove(resource(rs, "NetworkPolicy", "postgres"))


def _postgres_from_anywhere(rs: Resources) -> None:
    _ingress(rs, "postgres", 5432)["from"].append({"ipBlock": {"cidr": "0.0.0.0/0"}})


MUTATIONS: list[tuple[Callable[[Resources], None], str]] = [
    (_drop_readiness, "Deployment/gateway container gateway: no readinessProbe"),
    (_wrong_live_path, "livenessProbe must GET /health/live"),
    (_service_selector_typo, "Service/auth: selector"),
    (_service_bad_target_port, "Service/gateway: targetPort web"),
    (_selector_mismatch, "Deployment/scheduler: selector"),
    (_latest_image, "mutable tag 'latest'"),
    (_no_limits, "resources.limits.cpu is not set"),
    (_short_grace, "terminationGracePeriodSeconds 12"),
    (_no_prestop, "no preStop"),
    (_pdb_blocks_evictions, "blocks every eviction of scheduler"),
    (_no_migration_job, "libs.common.db.migrate"),
    (_wrong_consumer, "consumer 'executor' of stream EVENTS"),
    (
        _executor_consumer_renamed,
        "the trigger reads consumer 'executor' of stream 'EVENTS', the executors consume 'workers'",
    ),
    (_gateway_replicas_drift, "Deployment/gateway: 4 replicas but IPAAS_GATEWAY_REPLICAS=3"),
    (_gateway_autoscaled, "HorizontalPodAutoscaler/gateway: scales the gateway"),
    (_missing_configmap, "ConfigMap ipaas-config is not declared"),
    (_env_order, "refers to $(POD_NAME) before it is defined"),
    (_port_drift, "IPAAS_HTTP_PORT 9090 is not a container port"),
    (_auth_url_port, "IPAAS_AUTH_URL uses port 9999"),
    (_one_scheduler, "Deployment/scheduler: needs at least 2 replicas"),
    (_bad_api_version, "apiVersion extensions/v1beta1"),
    (_no_namespace, "Service/gateway: no namespace"),
    (_egress_reaches_private, "NetworkPolicy/executor-egress: ipBlock 0.0.0.0/0 lets the executor reach 10.0.0.0/8"),
    (_egress_reaches_metadata, "ipBlock 0.0.0.0/0 lets the executor reach 169.254.169.254/32"),
    (_egress_reaches_azure_host, "ipBlock 0.0.0.0/0 lets the executor reach 168.63.129.16/32"),
    (_egress_reaches_ipv6_ula, "ipBlock ::/0 lets the executor reach fd00:ec2::254/128"),
    (_no_executor_egress_policy, "NetworkPolicy: none restricts the executor's egress"),
    (_egress_open_rule, "an egress rule without 'to' lets the executor reach everything"),
    (_egress_any_namespace, "lets the executor reach every pod of every namespace"),
    (_egress_without_nats, "the executor cannot reach NATS on 4222/TCP"),
    (_dns_over_udp_only, "the executor cannot reach DNS (kube-dns) on 53/TCP"),
    (_nats_open_to_all, "NetworkPolicy/nats: an ingress rule without 'from' opens NATS to every source"),
    (_nats_clients_from_another_namespace, "NetworkPolicy/nats: port 4222 of NATS is open to"),
    (_nats_routes_open, "NATS routes (6222) must be open to NATS servers only"),
    (_nats_policy_selects_nothing, "NetworkPolicy/nats: podSelector"),
    (_no_postgres_policy, "NetworkPolicy: none restricts who reaches Postgres (ipaas-pg)"),
    (_postgres_from_anywhere, "NetworkPolicy/postgres: port 5432 of Postgres (ipaas-pg) is open to"),
    (
        _borrowed_nats_secret,
        "Deployment/gateway container gateway: env NATS_PASSWORD must come from Secret ipaas-nats-gateway",
    ),
    (_borrowed_nats_user, "NATS_URL must connect as NATS user gateway"),
    (_anonymous_nats, "Deployment/scheduler container scheduler: no NATS_URL of its own"),
    (_foreign_inbox, "reply inboxes must use _INBOX_auth"),
    (_no_provisioning, "Job: none runs python -m deploy.provision"),
    (_provisioning_as_a_service, "container provision-nats: NATS_URL must connect as NATS user provisioner"),
    (_service_provisions, "Deployment/gateway container gateway: IPAAS_NATS_PROVISION must stay false"),
    (_config_provisions, "ConfigMap/ipaas-config: IPAAS_NATS_PROVISION must stay false"),
    (
        _borrowed_pg_secret,
        "Deployment/gateway container gateway: env PG_PASSWORD must come from Secret ipaas-pg-gateway",
    ),
    (_borrowed_pg_role, "DATABASE_URL must connect as Postgres role ipaas_gateway"),
    (_service_as_owner, "Deployment/executor container executor: reads Secret ipaas-pg-app"),
    (_owner_secret_mounted, "Deployment/scheduler container scheduler: reads Secret ipaas-pg-app"),
    (_migrations_as_a_service, "container migrate: the migrations must run as the owner ipaas"),
    (_unmanaged_role, "Cluster/ipaas-pg: managed.roles lacks ipaas_scheduler"),
    (_privileged_role, "managed role ipaas_executor must hold no attribute or membership (superuser)"),
    (_database_of_another_owner, "bootstrap.initdb must create database ipaas owned by ipaas"),
    (_shared_database_url, "ConfigMap/ipaas-config: holds a DATABASE_URL"),
]


@pytest.mark.parametrize(("mutate", "expected"), MUTATIONS, ids=[m.__name__.strip("_") for m, _ in MUTATIONS])
def test_validator_reports_each_mistake(prod: Resources, mutate: Callable[[Resources], None], expected: str) -> None:
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
    assert any(
        "NATS_PROVISIONER_PASSWORD must come from Secret ipaas-nats-provisioner" in p
        for p in validate.validate_nats_values(unsourced, prod)
    )


def test_the_values_file_holds_the_generated_users_block() -> None:
    text = validate.NATS_VALUES.read_text()
    assert nats_auth.check_values_file(text) == []
    assert nats_auth.main([]) == 0
    stale = text.replace('"$JS.API.STREAM.INFO.EVENTS", ', '"$JS.API.>", ', 1)
    assert stale != text
    assert nats_auth.check_values_file(stale) == [
        "nats values: the users block is stale: run python -m deploy.k8s.nats_auth --write"
    ]
    assert (
        "users block (its BEGIN/END markers) is missing"
        in nats_auth.check_values_file(text.replace(nats_auth.BEGIN, "# users"))[0]
    )


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
    assert next(e for e in _job_container(prod, "provision-nats")["env"] if e["name"] == "NATS_URL")[
        "value"
    ].startswith("tls://provisioner:")
    dev = render(K8S / "overlays" / "dev")
    dev_values = nats_tls.overlay_values(yaml.safe_load(validate.NATS_VALUES.read_text()), K8S / "overlays" / "dev")
    assert nats_tls.check_nats_tls(dev, dev_values, required=False) == []  # dev stays plain
    assert nats_tls.check_nats_tls(dev, dev_values, required=True) == [
        "nats values: config.nats.tls must be enabled in this overlay (clients in the clear)"
    ]


def _plaintext_client(rs: Resources, _v: dict[str, Any]) -> None:
    _env_var(rs, "gateway", "NATS_URL")["value"] = "nats://gateway:$(NATS_PASSWORD)@nats:4222"


def _no_ca_file(rs: Resources, _v: dict[str, Any]) -> None:
    del resource(rs, "ConfigMap", "ipaas-config")["data"]["IPAAS_NATS_TLS_CA_FILE"]


def _whole_secret_mounted(rs: Resources, _v: dict[str, Any]) -> None:
    volumes = resource(rs, "Deployment", "scheduler")["spec"]["template"]["spec"]["volumes"]
    del next(v for v in volumes if v["name"] == "nats-ca")["secret"]["items"]


def _no_certificate(rs: Resources, _v: dict[str, Any]) -> None:
    rs.remove(resource(rs, "Certificate", "nats-server-tls"))


def _wrong_name_in_certificate(rs: Resources, _v: dict[str, Any]) -> None:
    resource(rs, "Certificate", "nats-server-tls")["spec"]["dnsNames"].remove("nats")


def _tls_off(_rs: Resources, values: dict[str, Any]) -> None:
    values["config"]["nats"]["tls"]["enabled"] = False


def _routes_in_the_clear(_rs: Resources, values: dict[str, Any]) -> None:
    values["config"]["cluster"]["tls"]["enabled"] = False


TLS_MUTATIONS: list[tuple[Callable[[Resources, dict[str, Any]], None], str]] = [
    (_plaintext_client, "Deployment/gateway container gateway: NATS_URL must be tls://"),
    (_no_ca_file, "container executor: no IPAAS_NATS_TLS_CA_FILE"),
    (_whole_secret_mounted, "Deployment/scheduler container scheduler: mounts all of Secret nats-server-tls"),
    (_no_certificate, "Certificate: none issues Secret nats-server-tls"),
    (_wrong_name_in_certificate, "NATS_URL host nats is not among the certificate's dnsNames"),
    (_tls_off, "config.nats.tls must be enabled in this overlay"),
    (_routes_in_the_clear, "config.cluster.tls must be enabled too"),
]


@pytest.mark.parametrize(("mutate", "expected"), TLS_MUTATIONS, ids=[m.__name__.strip("_") for m, _ in TLS_MUTATIONS])
def test_the_tls_check_reports_each_mistake(
    prod: Resources,
    prod_nats_values: dict[str, Any],
    mutate: Callable[[Resources, dict[str, Any]], None],
    expected: str,
) -> None:
    broken, values = copy.deepcopy(prod), copy.deepcopy(prod_nats_values)
    mutate(broken, values)
    problems = nats_tls.check_nats_tls(broken, values, required=True)
    assert any(expected in p for p in problems), problems
