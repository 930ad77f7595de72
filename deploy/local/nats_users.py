"""The embedded NATS's users: one random password per identity, kept across restarts.

``make up`` turns on NATS authorization when it starts NATS itself.  The
passwords live in ``<local dir>/nats-users.json`` (mode 0600, created on the
first start, reused after that, so tools holding a password keep working; ``make
clean`` or deleting the file makes new ones).  The server config
``<local dir>/nats-authz.conf`` (0600) is rewritten on every start from
:mod:`libs.common.bus.permissions` (for the stream names of this environment), so a changed
permission table applies at once.
Each service instance gets a ``NATS_URL`` with its own identity's user and password;
nothing prints them.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from urllib.parse import quote

from deploy.local.nats_authz import write_config, write_private
from libs.common.bus.permissions import LOCAL_IDENTITIES, Layout

PASSWORD_BYTES = 24


def _read(path: Path) -> dict[str, str]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(raw, dict):
        return {}
    return {k: v for k, v in raw.items() if k in LOCAL_IDENTITIES and isinstance(v, str) and v}


def load_or_create(path: Path) -> dict[str, str]:
    """Every local identity's password: the stored one, or a new random one (then stored)."""
    stored = _read(path)
    passwords = {i: stored.get(i) or secrets.token_urlsafe(PASSWORD_BYTES) for i in LOCAL_IDENTITIES}
    path.parent.mkdir(parents=True, exist_ok=True)
    if passwords != stored:
        write_private(path, json.dumps(passwords, indent=2, sort_keys=True) + "\n")
    else:
        path.chmod(0o600)
    return passwords


def with_user(url: str, user: str, password: str) -> str:
    """``nats://host:port`` -> ``nats://user:password@host:port`` (both percent-encoded)."""
    scheme, rest = url.split("://", 1)
    rest = rest.rsplit("@", 1)[-1]
    return f"{scheme}://{quote(user, safe='')}:{quote(password, safe='')}@{rest}"


def prepare(passwords_file: Path, config_file: Path, layout: Layout | None = None) -> dict[str, str]:
    """Load (or create) the passwords and write the server's authorization config for ``layout``."""
    passwords = load_or_create(passwords_file)
    write_config(config_file, passwords, layout)
    return passwords
