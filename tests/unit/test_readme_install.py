"""The README's install commands say what the repository does: the quick start is the one ``make up``
prints, and every command of the Kubernetes install is checked as far as it can be without a cluster
(the rendered overlay has what the commands name; the files, targets and modules exist)."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest

from deploy.k8s import secrets
from deploy.local.quickstart import quickstart_lines
from tests.helpers.k8s_resources import resource

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end]


def _commands(block: str) -> list[list[str]]:
    """The block's commands, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", block)
    return [
        shlex.split(line.replace(";", " ; "), comments=True)
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def _sh_block(section: str) -> str:
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, "no ```sh block"
    return match.group(1)


def test_the_readme_quick_start_is_the_one_make_up_prints() -> None:
    block = _sh_block(_section("Quick start"))
    assert block.rstrip("\n").splitlines() == quickstart_lines("http://127.0.0.1:8080", ".venv/bin/python")


def test_the_readme_states_the_first_run_needs() -> None:
    assert "sudo apt-get install python3-venv" in README
    for lock in ("requirements/runtime.lock", "requirements/local.lock", "requirements/dev.lock"):
        assert lock in README and (REPO / lock).is_file()


@pytest.fixture(scope="module")
def k8s_commands() -> list[list[str]]:
    return _commands(_sh_block(_section("Kubernetes")))


def _names(resources: list[dict[str, Any]], kind: str) -> set[str]:
    return {r["metadata"]["name"] for r in resources if r["kind"] == kind}


def _make_targets() -> set[str]:
    out = subprocess.run(
        ["make", "-pRrq", "-f", "Makefile"], cwd=REPO, capture_output=True, text=True, check=False
    ).stdout
    return set(re.findall(r"^([a-z][a-z0-9-]*):", out, re.M))


def test_every_kubernetes_command_is_one_the_repository_backs(
    k8s_commands: list[list[str]], prod: list[dict[str, Any]]
) -> None:
    namespace = next(r["metadata"]["name"] for r in prod if r["kind"] == "Namespace")
    targets = _make_targets()
    checked: list[str] = []
    for argv in k8s_commands:
        line = " ".join(argv)
        flags = {argv[i]: argv[i + 1] for i in range(len(argv) - 1) if argv[i] in ("-n", "--namespace")}
        assert set(flags.values()) <= {namespace}, f"{line}: not the overlay's namespace {namespace}"
        match argv:
            case ["make", target, *args]:
                assert target in targets, line
                assert all("=" in a for a in args), line
            case ["kubectl", "create", "namespace", name]:
                assert name == namespace
            case [".venv/bin/python", "-m", "deploy.k8s.secrets", "--namespace", name, "|", *pipe]:
                assert pipe == ["kubectl", "create", "-f", "-"], line
                assert name == namespace and secrets.generate(name)  # checked in full by test_k8s_secrets
            case ["kubectl", "apply", "-k", path]:
                assert path == "deploy/k8s/overlays/prod" and (REPO / path / "kustomization.yaml").is_file()
            case ["kubectl", "-n", _, "wait", "--for=condition=Ready", ref, timeout]:
                kind, name = ref.split("/")
                assert kind == "certificate" and name in _names(prod, "Certificate") and timeout.startswith("--")
            case ["kubectl", "-n", _, "wait", "--for=condition=complete", ref, _]:
                assert ref.split("/")[0] == "job" and ref.split("/")[1] in _names(prod, "Job")
            case ["kubectl", "-n", _, "wait", "--for=condition=Available", "deployment", "--all", _]:
                assert {"gateway", "auth", "scheduler", "executor"} <= _names(prod, "Deployment")
            case ["helm", "repo", "add", "nats", url]:
                assert url == "https://nats-io.github.io/k8s/helm/charts/"
            case ["helm", "repo", "update", "nats"]:
                pass
            case ["helm", "upgrade", "--install", "nats", "nats/nats", *rest]:
                files = [rest[i + 1] for i, a in enumerate(rest) if a == "-f"]
                assert files == ["deploy/k8s/nats/values.yaml", "deploy/k8s/overlays/prod/nats-values.yaml"]
                assert all((REPO / f).is_file() for f in files)
            case ["kubectl", "-n", _, "port-forward", ref, ports, "&"]:
                kind, name = ref.split("/")
                service = resource(prod, "Service", name)
                assert kind == "service" and int(ports.split(":")[1]) in {p["port"] for p in service["spec"]["ports"]}
                forwarded = ports.split(":")[0]
            case ["curl", "-s", url, ";", "echo"]:
                assert url == f"http://127.0.0.1:{forwarded}/health/ready"
            case _:
                raise AssertionError(f"a command the test does not know how to check: {line}")
        checked.append(argv[0] if argv[0] != "kubectl" else " ".join(argv[:3]))
    assert {"make", "helm", ".venv/bin/python", "curl"} <= set(checked)
    assert "make" in [a[0] for a in k8s_commands] and ["make", "k8s-validate"] in k8s_commands
