"""Kubernetes, at the edge: the client address survives ingress -> gateway -> auth, and /metrics is
scraped on its own port only."""

from __future__ import annotations

from unittest.mock import Mock

from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from libs.common.http.client_ip import client_address, parse_networks
from tests.helpers.k8s_resources import Resources, container, resource


def _env(resources: Resources, name: str) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container(resources, name).get("env", [])}


def _request(peer: str, forwarded_for: str | None):
    transport = Mock()
    transport.get_extra_info.return_value = (peer, 40000)
    headers = CIMultiDict({"X-Forwarded-For": forwarded_for} if forwarded_for else {})
    return make_mocked_request("POST", "/api/auth/login", headers=headers, transport=transport)


def test_the_client_address_survives_ingress_gateway_and_auth_in_the_cluster(prod: Resources) -> None:
    gateway_trusts = parse_networks(_env(prod, "gateway")["IPAAS_GATEWAY_TRUSTED_PROXIES"])
    auth_trusts = parse_networks(_env(prod, "auth")["IPAAS_AUTH_TRUSTED_PROXIES"])
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
        dep = resource(prod, "Deployment", name)
        annotations = dep["spec"]["template"]["metadata"]["annotations"]
        env = _env(prod, name)
        assert (env["IPAAS_HTTP_PORT"], env["IPAAS_HTTP_METRICS_PORT"]) == (str(port), str(metrics))
        assert annotations["prometheus.io/port"] == str(metrics)
        ports = {p["name"]: p["containerPort"] for p in container(prod, name)["ports"]}
        assert ports == {"http": port, "metrics": metrics}
    policies = {r["metadata"]["name"]: r for r in prod if r["kind"] == "NetworkPolicy"}
    assert [p["port"] for p in policies["gateway-public"]["spec"]["ingress"][0]["ports"]] == [8080]
    assert [p["port"] for p in policies["metrics-from-monitoring"]["spec"]["ingress"][0]["ports"]] == ["metrics"]
