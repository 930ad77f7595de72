"""``python -m deploy.k8s.secrets`` makes exactly the Secrets the manifests and the NATS chart read,
with every key they read, in a form auth's own loaders accept."""

from __future__ import annotations

import io
import json
import re
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.k8s import nats_tls, secrets, validate
from deploy.k8s.resources import pod_spec
from libs.common.db.roles import SERVICE_ROLES
from libs.common.keyring import load_keks
from services.auth.signing_keys import load_signing_keys
from services.auth.vault import KekRing
from tests.helpers.k8s_resources import Resources, container, resource

K8S = validate.K8S_DIR
Generated = dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def generated() -> Generated:
    out = io.StringIO()
    with redirect_stdout(out):
        assert secrets.main(["--namespace", "ipaas"]) == 0
    document = json.loads(out.getvalue())
    assert document["kind"] == "List" and document["apiVersion"] == "v1"
    return {item["metadata"]["name"]: item for item in document["items"]}


def _key_refs(resources: Resources, values: dict[str, Any]) -> set[tuple[str, str]]:
    """(Secret, key) of every secretKeyRef of the workloads and of the NATS servers' environment."""
    specs = [pod_spec(res) or {} for res in resources]
    containers = [c for spec in specs for c in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]]
    env = [var for c in containers for var in c.get("env") or []]
    env += ((values.get("container") or {}).get("env") or {}).values()
    refs = [(var.get("valueFrom") or {}).get("secretKeyRef") for var in env]
    return {(ref["name"], ref["key"]) for ref in refs if ref}


def _operator_made(resources: Resources) -> set[str]:
    made = {f"{r['metadata']['name']}-app" for r in resources if r["kind"] == "Cluster"}  # CloudNativePG
    made |= {r["spec"]["secretName"] for r in resources if r["kind"] == "Certificate"}  # cert-manager
    return made


def test_it_makes_every_secret_the_manifests_and_the_nats_chart_read_and_nothing_else(
    prod: Resources, generated: Generated
) -> None:
    _, referenced = validate.validate_resources(prod, overlay=True)
    values = nats_tls.overlay_values(yaml.safe_load(validate.NATS_VALUES.read_text()), K8S / "overlays" / "prod")
    refs = _key_refs(prod, values)
    needed = (referenced | {name for name, _ in refs}) - _operator_made(prod)
    assert set(generated) == needed
    for name, key in refs:
        if name in generated:
            assert key in generated[name]["stringData"], f"{name} has no key {key}"
    assert all(s["metadata"]["namespace"] == "ipaas" for s in generated.values())


def test_passwords_are_url_safe_distinct_and_the_postgres_ones_name_their_role(generated: Generated) -> None:
    passwords = [s["stringData"]["password"] for s in generated.values() if "password" in s["stringData"]]
    assert len(passwords) == 9 and len(set(passwords)) == 9
    assert all(re.fullmatch(r"[0-9a-f]{48}", p) for p in passwords)
    for service, role in SERVICE_ROLES.items():
        pg = generated[f"ipaas-pg-{service}"]
        assert pg["type"] == "kubernetes.io/basic-auth" and pg["stringData"]["username"] == role
        assert pg["metadata"]["labels"]["cnpg.io/reload"] == "true"


def test_auth_loads_the_generated_signing_key_and_kek_as_kubernetes_mounts_them(
    generated: Generated, tmp_path: Path
) -> None:
    dirs = {}
    for name in (secrets.SIGNING_KEYS, secrets.KEKS):
        directory = tmp_path / name
        directory.mkdir()
        for file, content in generated[name]["stringData"].items():  # a Secret volume: one file per key
            (directory / file).write_text(content)
        dirs[name] = directory
    ring = load_signing_keys(
        env_pem=None, keys_dir=dirs[secrets.SIGNING_KEYS], dev_mode=False, dev_dir=tmp_path / "unused"
    )
    keks = KekRing(load_keks(env_spec=None, keys_dir=dirs[secrets.KEKS], dev_mode=False, dev_dir=tmp_path / "unused"))
    assert ring is not None and keks is not None
    (key_file,) = generated[secrets.SIGNING_KEYS]["stringData"]
    assert re.fullmatch(r"\d{8}T\d{6}Z\.pem", key_file)  # active from now (docs/auth.md's rotation rules)


def test_the_mounted_secrets_are_where_auth_reads_them(prod: Resources) -> None:
    auth = container(prod, "auth")
    env = {e["name"]: e.get("value") for e in auth["env"]}
    mounts = {m["name"]: m["mountPath"] for m in auth["volumeMounts"]}
    spec = resource(prod, "Deployment", "auth")["spec"]["template"]["spec"]
    volumes = {v["name"]: v.get("secret", {}).get("secretName") for v in spec["volumes"]}
    by_secret = {volumes[name]: path for name, path in mounts.items() if volumes.get(name)}
    assert by_secret[secrets.SIGNING_KEYS] == env["IPAAS_AUTH_SIGNING_KEYS_DIR"]
    assert by_secret[secrets.KEKS] == env["IPAAS_AUTH_KEKS_DIR"]
