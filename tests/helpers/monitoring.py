"""The metric names that deploy/k8s/monitoring's dashboard and alert rules read."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

MONITORING = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "monitoring"
_METRIC = re.compile(r"\bipaas_[a-z0-9_]+")
_SUFFIX = re.compile(r"_(?:bucket|count|sum)$")


def dashboard() -> dict[str, Any]:
    return dict(json.loads((MONITORING / "dashboard.json").read_text()))


def rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())
    return [rule for group in doc["spec"]["groups"] for rule in group["rules"]]


def metric_names() -> set[str]:
    """Every metric an expression of the dashboard or a rule reads, histogram series named by their histogram."""
    exprs = [str(t["expr"]) for panel in dashboard()["panels"] for t in panel["targets"]]
    exprs += [str(rule["expr"]) for rule in rules()]
    return {_SUFFIX.sub("", name) for expr in exprs for name in _METRIC.findall(expr)}
