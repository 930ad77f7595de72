"""The metric names that deploy/k8s/monitoring's dashboard and alert rules read."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

MONITORING = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "monitoring"
_METRIC = re.compile(r"\bipaas_[a-z0-9_]+")
_SUFFIXES = ("_bucket", "_count", "_sum")


def dashboard() -> dict[str, Any]:
    return dict(json.loads((MONITORING / "dashboard.json").read_text()))


def rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())
    return [rule for group in doc["spec"]["groups"] for rule in group["rules"]]


def expressions() -> list[str]:
    exprs = [str(t["expr"]) for panel in dashboard()["panels"] for t in panel["targets"]]
    return exprs + [str(rule["expr"]) for rule in rules()]


def metric_names() -> set[str]:
    """Every metric an expression reads, histogram series named by their histogram."""
    names: set[str] = set()
    for expr in expressions():
        for name in _METRIC.findall(expr):
            for suffix in _SUFFIXES:
                if name.endswith(suffix):
                    name = name[: -len(suffix)]
            names.add(name)
    return names
