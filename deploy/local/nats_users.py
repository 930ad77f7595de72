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

from pathlib import Path
from urllib.parse import quote

from deploy.local.nats_authz import stored_passwords, write_config
from libs.common.bus.permissions import LOCAL_IDENTITIES, Layout


def with_user(url: str, user: str, password: str) -> str:
    """``nats://host:port`` -> ``nats://user:password@host:port`` (both percent-encoded)."""
    scheme, rest = url.split("://", 1)
    rest = rest.rsplit("@", 1)[-1]
    return f"{scheme}://{quote(user, safe='')}:{quote(password, safe='')}@{rest}"


def prepare(passwords_file: Path, config_file: Path, layout: Layout | None = None) -> dict[str, str]:
    """Load (or create) the passwords and write the server's authorization config for ``layout``."""
    passwords = stored_passwords(passwords_file, LOCAL_IDENTITIES)
    write_config(config_file, passwords, layout)
    return passwords
