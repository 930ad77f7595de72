"""The Secrets the Kubernetes manifests need, freshly generated, for ``kubectl create -f -``.

    .venv/bin/python -m deploy.k8s.secrets --namespace ipaas | kubectl create -f -

Prints one JSON ``List`` (which ``kubectl`` reads like YAML) of every Secret an operator does not
make: auth's signing key (an Ed25519 PEM named by the UTC time it becomes active) and vault
key-encryption key (32 random bytes in base64), one NATS password per identity the NATS servers
and the workloads read (``ipaas-nats-<identity>``), and one Postgres role and password per service
(``ipaas-pg-<service>``, ``kubernetes.io/basic-auth``, labelled ``cnpg.io/reload`` so that
CloudNativePG sets a changed password).  Passwords are 48 hex characters: they go into URLs
unescaped.  ``ipaas-pg-app`` (CloudNativePG) and ``nats-server-tls`` (cert-manager) are made by
their operators.

Use ``kubectl create``, never ``apply``: a Secret that exists is refused (AlreadyExists) and
kept, so running it again fills in only what is missing and changes no password in use.
Nothing is written to disk; keep the output out of files and shells' history.
"""

from __future__ import annotations

import argparse
import base64
import json
import secrets
import sys
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from deploy.k8s import nats_auth, pg_auth
from libs.common.bus.permissions import IDENTITIES
from libs.common.db.roles import SERVICE_ROLES
from services.auth.signing_keys import pem_of

SIGNING_KEYS = "ipaas-auth-signing-keys"
KEKS = "ipaas-auth-keks"
LABELS = {"app.kubernetes.io/part-of": "ipaas"}


def password() -> str:
    return secrets.token_hex(24)


def _secret(
    name: str, namespace: str, data: dict[str, str], *, kind: str = "Opaque", labels: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": kind,
        "metadata": {"name": name, "namespace": namespace, "labels": {**LABELS, **(labels or {})}},
        "stringData": data,
    }


def generate(namespace: str) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    key_file = now.strftime("%Y%m%dT%H%M%SZ") + ".pem"
    kek_file = now.strftime("kek-%Y-%m") + ".key"
    items = [
        _secret(SIGNING_KEYS, namespace, {key_file: pem_of(Ed25519PrivateKey.generate()).decode()}),
        _secret(KEKS, namespace, {kek_file: base64.b64encode(secrets.token_bytes(32)).decode()}),
    ]
    items += [_secret(nats_auth.secret_name(i), namespace, {"password": password()}) for i in IDENTITIES]
    items += [
        _secret(
            pg_auth.secret_name(service),
            namespace,
            {"username": role, "password": password()},
            kind="kubernetes.io/basic-auth",
            labels={"cnpg.io/reload": "true"},
        )
        for service, role in SERVICE_ROLES.items()
    ]
    return items


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--namespace", default="ipaas", help="namespace of the Secrets (the overlay's; default ipaas)")
    args = parser.parse_args(argv)
    document = {"apiVersion": "v1", "kind": "List", "items": generate(args.namespace)}
    sys.stdout.write(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
