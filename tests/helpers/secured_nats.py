"""A private nats-server running the service identities' authorization (deploy/local/nats_authz.py)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path

from deploy.local.infra import NatsServer, free_port
from deploy.local.nats_authz import write_config

IDENTITIES = ("auth", "gateway", "executor", "scheduler")


@dataclass
class SecuredNats:
    server: NatsServer
    passwords: dict[str, str] = field(default_factory=dict)

    @property
    def port(self) -> int:
        return self.server.port

    def url_for(self, identity: str) -> str:
        """``NATS_URL`` for a service connecting as ``identity``."""
        return f"nats://{identity}:{self.passwords[identity]}@127.0.0.1:{self.server.port}"


def start_secured_nats(directory: Path) -> SecuredNats:
    passwords = {name: secrets.token_urlsafe(12) for name in IDENTITIES}
    config = write_config(directory / "authz.conf", passwords)
    server = NatsServer(directory / "nats", free_port(), config_file=config)
    server.start()
    return SecuredNats(server=server, passwords=passwords)
