"""The quick start ``make up`` prints (the README shows the same lines), and the two small helpers it uses.

It needs no internet: its workflow's ``http_request`` posts to the gateway's ``/dev/echo``
(development mode only), and ``make up`` lets its executors reach the gateway's loopback address
(:data:`LOOPBACK`, added to ``IPAAS_EGRESS_ALLOW_CIDRS`` by :mod:`deploy.local.services`).

``python -m deploy.local.quickstart get data.id`` reads a JSON document on stdin
and prints the value at a dotted path.  ``python -m deploy.local.quickstart sign
SECRET MSG_ID TIMESTAMP BODY`` prints a Standard Webhooks ``webhook-signature``
header value (``v1,<base64 HMAC-SHA256>`` over ``id.timestamp.body``, keyed by
the base64 part of the ``whsec_`` secret).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from deploy.local.config import REPO_ROOT
from deploy.local.state import redact_url
from ipaas_cli import signing
from ipaas_cli.errors import UsageError

ECHO_PATH = "/dev/echo"
# What make up lets the executors reach on top of IPAAS_EGRESS_ALLOW_CIDRS: the gateway's address.
LOOPBACK = "127.0.0.1/32"


def get_path(document: Any, path: str) -> Any:
    value = document
    for part in path.split("."):
        if isinstance(value, list):
            value = value[int(part)]
        elif isinstance(value, dict):
            value = value[part]
        else:
            raise KeyError(path)
    return value


def python_command() -> str:
    exe = Path(sys.executable)
    try:
        return str(exe.relative_to(REPO_ROOT))
    except ValueError:
        return str(exe)


def quickstart_lines(api: str, py: str) -> list[str]:
    """The quick start's shell lines, as ``make up`` prints them and the README shows them (``api`` the
    gateway's URL, ``py`` the virtualenv's Python): register, log in, create a workflow whose
    ``http_request`` action posts to the gateway's ``/dev/echo``, send it a signed webhook, wait for
    its execution and show it (its output holds the echoed, rendered body)."""
    workflow = json.dumps(
        {
            "name": "hello",
            "trigger": {"type": "webhook"},
            "action": {
                "type": "http_request",
                "config": {"method": "POST", "url": f"{api}{ECHO_PATH}", "body": {"order": "{{ payload.order_id }}"}},
            },
        }
    )
    auth = '-H "Authorization: Bearer $TOKEN"'
    executions = f'curl -s "$API/api/executions?workflow_id=$WF_ID" {auth}'
    return [
        f"API={api}",
        'CREDS=\'{"email": "dev@example.com", "password": "correct-horse-battery"}\'',
        "curl -s -X POST $API/api/auth/register -H 'Content-Type: application/json' -d \"$CREDS\"; echo",
        "TOKEN=$(curl -s -X POST $API/api/auth/login -H 'Content-Type: application/json' -d \"$CREDS\" \\",
        f"        | {py} -m deploy.local.quickstart get data.access_token)",
        f"WF=$(curl -s -X POST $API/api/workflows {auth} \\",
        f"        -H 'Content-Type: application/json' -d '{workflow}')",
        f'WF_ID=$(echo "$WF" | {py} -m deploy.local.quickstart get data.id)',
        f'SECRET=$(echo "$WF" | {py} -m deploy.local.quickstart get data.webhook.secret)',
        "BODY='{\"order_id\": 42}'; MSG_ID=msg_$(date +%s%N); TS=$(date +%s)",
        f'SIG=$({py} -m deploy.local.quickstart sign "$SECRET" "$MSG_ID" "$TS" "$BODY")',
        'curl -s -X POST $API/hooks/$WF_ID -H "webhook-id: $MSG_ID" -H "webhook-timestamp: $TS" \\',
        '        -H "webhook-signature: $SIG" -H \'Content-Type: application/json\' -d "$BODY"; echo',
        f'until {executions} | grep -Eq \'"status":"(succeeded|dead|skipped)"\'; do sleep 1; done',
        f"EXEC_ID=$({executions} | {py} -m deploy.local.quickstart get data.0.id)",
        f'curl -s "$API/api/executions/$EXEC_ID" {auth}; echo',
    ]


def banner(
    urls: dict[str, str],
    *,
    nats_url: str,
    database_url: str,
    local_dir: Path,
    nats_users_file: Path | None = None,
    pg_users_file: Path | None = None,
) -> str:
    lines = ["", "ipaas is up.", ""]
    width = max(len(n) for n in [*urls, "Postgres"])
    lines += [f"  {name.ljust(width)}  {url}" for name, url in urls.items()]
    lines += [f"  {'NATS'.ljust(width)}  {redact_url(nats_url)}"]
    if nats_users_file is not None:
        lines += [f"  {''.ljust(width)}  authorization on; user 'admin' for tools, passwords in {nats_users_file}"]
    lines += [f"  {'Postgres'.ljust(width)}  {redact_url(database_url)}"]
    if pg_users_file is not None:
        lines += [
            f"  {''.ljust(width)}  the schema's owner; each service has its own role; passwords in {pg_users_file}"
        ]
    lines += [f"  data in {local_dir} (make clean wipes it)", ""]
    api = urls.get("gateway")
    if api is None or "auth" not in urls:
        lines.append("(the gateway or auth service is not built yet: no quick-start)")
        return "\n".join(lines)
    lines += ["Quick start (from the repository root, with curl; it needs no internet):", ""]
    lines += [f"  {line}" for line in quickstart_lines(api, python_command())]
    lines += [
        "",
        f"The workflow calls {api}{ECHO_PATH}, the gateway's echo route (development mode only); the "
        f"executors may reach {LOOPBACK} for it (IPAAS_EGRESS_ALLOW_CIDRS, under make up only).",
        "Press Ctrl-C to stop everything.",
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "get":
        try:
            value = get_path(json.load(sys.stdin), argv[1])
        except (ValueError, KeyError, IndexError) as exc:
            sys.stderr.write(f"no value at {argv[1]}: {exc}\n")
            return 1
        sys.stdout.write((value if isinstance(value, str) else json.dumps(value)) + os.linesep)
        return 0
    if len(argv) == 5 and argv[0] == "sign":
        try:
            signature = signing.sign(argv[1], argv[2], int(argv[3]), argv[4].encode())
        except (UsageError, ValueError):
            sys.stderr.write("the secret must be whsec_ followed by base64\n")
            return 1
        sys.stdout.write(signature + os.linesep)
        return 0
    sys.stderr.write(
        "usage: python -m deploy.local.quickstart get PATH < doc.json\n"
        "       python -m deploy.local.quickstart sign SECRET MSG_ID TIMESTAMP BODY\n"
    )
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
