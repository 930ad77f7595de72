"""``make up`` gives every instance its own metrics port, apart from every service port."""

from __future__ import annotations

from pathlib import Path

from deploy.local.config import load
from deploy.local.ports import PortPicker
from deploy.local.services import plan


def test_each_instance_gets_a_distinct_metrics_port_next_to_its_own(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    for name in ("auth", "gateway", "scheduler", "executor"):
        (root / "services" / name).mkdir(parents=True)
        (root / "services" / name / "__main__.py").write_text("")
    cfg = load({"IPAAS_LOCAL_DIR": str(tmp_path / "data"), "IPAAS_LOCAL_BASE_PORT": "21080"})
    notes: list[str] = []
    picker = PortPicker(notes.append)
    picker.taken.add(22083)  # executor-1's preferred metrics port is taken: it moves, and says so
    specs, _ = plan(cfg, picker, nats_url="nats://n:1", database_url="postgresql://d/ipaas", root=root)
    service_ports = {s.port for s in specs}
    metrics = {s.name: int(s.env["IPAAS_HTTP_METRICS_PORT"]) for s in specs}
    assert len(set(metrics.values())) == len(specs) and not set(metrics.values()) & service_ports
    assert metrics["executor-1"] != 22083 and any("executor-1 metrics takes free port" in n for n in notes)
    for spec in specs:  # the others sit 1000 above their service port, unless that one was taken too
        if not any(f"{spec.name} metrics takes" in n for n in notes):
            assert spec.port is not None and metrics[spec.name] == spec.port + 1000, spec.name
