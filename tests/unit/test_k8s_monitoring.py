"""deploy/k8s/monitoring: a valid dashboard, alert rules and ServiceMonitor, reading only metrics the
services expose."""

from __future__ import annotations

import re

from prometheus_client import generate_latest

from deploy.k8s.kustomize import render
from libs.common.http.metrics import Metrics
from services.executor.breakers import Breakers
from services.executor.metrics import ExecutorMetrics
from services.gateway.hooks.publish_metrics import PublishLatency
from services.gateway.outbox import OutboxMetrics
from services.scheduler.metrics import SchedulerMetrics
from tests.helpers.monitoring import MONITORING, dashboard, metric_names, rules

ALERTS = {
    "IpaasConsumerLagGrowing",
    "IpaasDeadLettersGrowing",
    "IpaasBreakerOpen",
    "IpaasIngestErrors",
    "IpaasSchedulerLate",
    "IpaasStreamNearlyFull",
}


def exposed() -> set[str]:
    """Every metric family the four services register, as named in their /metrics."""
    executor, gateway, scheduler, auth = Metrics("executor"), Metrics("gateway"), Metrics("scheduler"), Metrics("auth")
    ExecutorMetrics(executor).watch_breakers(Breakers(fail_max=1, reset_seconds=1))
    PublishLatency(gateway.registry)
    OutboxMetrics(gateway.registry)
    SchedulerMetrics(scheduler.registry)
    names: set[str] = set()
    for metrics in (executor, gateway, scheduler, auth):
        text = generate_latest(metrics.registry).decode()
        names |= set(re.findall(r"^# TYPE (\S+) ", text, re.MULTILINE))
    return names | {n + "_total" for n in names}  # counters: the family and its sample name


def test_the_kustomization_renders_a_servicemonitor_a_rule_and_the_dashboard_configmap() -> None:
    resources = render(MONITORING)
    kinds = {(r["apiVersion"], r["kind"]) for r in resources}
    assert kinds == {
        ("v1", "ConfigMap"),
        ("monitoring.coreos.com/v1", "ServiceMonitor"),
        ("monitoring.coreos.com/v1", "PrometheusRule"),
    }
    (configmap,) = [r for r in resources if r["kind"] == "ConfigMap"]
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert configmap["data"]["ipaas.json"].strip() == (MONITORING / "dashboard.json").read_text().strip()
    (monitor,) = [r for r in resources if r["kind"] == "ServiceMonitor"]
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"  # the Services' port serving /metrics only
    assert monitor["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/part-of": "ipaas"}


def test_the_dashboard_covers_what_an_sre_watches() -> None:
    board = dashboard()
    assert board["uid"] and board["title"]
    titles = " ".join(p["title"].lower() for p in board["panels"])
    for topic in (
        "webhooks",
        "lag",
        "in flight",
        "outcomes",
        "connector latency",
        "breakers",
        "dead letters",
        "scheduler lateness",
    ):
        assert topic in titles, topic
    for panel in board["panels"]:
        assert panel["targets"] and all(t["expr"] and t["refId"] for t in panel["targets"])


def test_every_alert_has_an_expression_a_severity_and_a_runbook() -> None:
    found = rules()
    assert {r["alert"] for r in found} == ALERTS
    for rule in found:
        assert rule["expr"] and rule["for"] and rule["labels"]["severity"] in ("info", "warning", "critical")
        assert len(rule["annotations"]["runbook"]) > 100 and rule["annotations"]["summary"]


def test_every_metric_in_the_dashboard_the_rules_and_the_readmes_sre_table_is_exposed_by_a_service() -> None:
    readme = (MONITORING.parents[2] / "README.md").read_text(encoding="utf-8")
    start = readme.index("### Metrics and the alerts they back")
    section = readme[start : readme.index("\n## ", start)]
    exposed_names = exposed()
    for where, names in (
        ("deploy/k8s/monitoring", metric_names()),
        ("the README's SRE table", set(re.findall(r"\bipaas_[a-z0-9_]+", section))),
    ):
        assert len(names) >= 15, where
        missing = sorted(n for n in names if n not in exposed_names)
        assert not missing, f"named in {where} but exposed by no service: {missing}"
    # and every alert of the rules is named in the table
    assert all(alert in section for alert in ALERTS)
