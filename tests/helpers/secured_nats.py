"""A private nats-server enforcing the permission table (libs/common/bus/permissions.py).

Every identity gets a password (the services, ``provisioner`` and ``admin``); unless told
otherwise the streams and the executor's consumer are provisioned as ``provisioner``, the
way the Kubernetes migrate Job does it, before any service starts.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import nats
from nats.aio.client import Client

from deploy.local.infra import NatsServer, free_port
from deploy.local.nats_authz import write_config
from deploy.provision import provision_platform
from libs.common.bus import Bus
from libs.common.bus.permissions import ALL_IDENTITIES, PROVISIONER, inbox_prefix
from libs.common.settings import NatsSettings


@dataclass
class SecuredNats:
    server: NatsServer
    passwords: dict[str, str] = field(default_factory=dict)

    @property
    def port(self) -> int:
        return self.server.port

    def url_for(self, identity: str) -> str:
        """``NATS_URL`` for a process connecting as ``identity``."""
        return f"nats://{identity}:{self.passwords[identity]}@127.0.0.1:{self.server.port}"

    def service_env(self, identity: str) -> dict[str, str]:
        """What a service needs to run as ``identity`` here: its URL, its inbox, no self-provisioning."""
        return {
            "NATS_URL": self.url_for(identity),
            "IPAAS_NATS_PROVISION": "false",
            f"IPAAS_{identity.upper()}_NATS_INBOX_PREFIX": inbox_prefix(identity),
        }

    async def provision(self) -> list[str]:
        return await provision_platform(
            self.url_for(PROVISIONER), inbox=inbox_prefix(PROVISIONER), connect_deadline_seconds=10
        )

    async def client(self, identity: str, errors: list[str] | None = None) -> Client:
        """A plain nats-py client as ``identity``; the server's refusals are appended to ``errors``."""

        async def on_error(exc: Exception) -> None:
            if errors is not None:
                errors.append(str(exc))

        return await nats.connect(
            self.url_for(identity),
            inbox_prefix=inbox_prefix(identity),
            error_cb=on_error,
            allow_reconnect=False,
            connect_timeout=5,
        )

    @asynccontextmanager
    async def connected(self, identity: str) -> AsyncIterator[Bus]:
        """The platform's own client as ``identity`` (``admin`` for inspecting streams in tests) for the
        ``async with`` block, drained at its end."""
        settings = NatsSettings(NATS_URL=self.url_for(identity), provision=False)
        bus = await Bus.connect(
            settings, name=f"test-{identity}", inbox_prefix=inbox_prefix(identity), connect_deadline_seconds=10
        )
        try:
            yield bus
        finally:
            await bus.drain()


@contextmanager
def start_secured_nats(directory: Path, *, provision: bool = True) -> Iterator[SecuredNats]:
    """The server for the ``with`` block, killed at its end (provisioned first unless told otherwise)."""
    passwords = {name: secrets.token_urlsafe(12) for name in ALL_IDENTITIES}
    config = write_config(directory / "authz.conf", passwords)
    server = NatsServer(directory / "nats", free_port(), config_file=config)
    server.start()
    secured = SecuredNats(server=server, passwords=passwords)
    try:
        if provision:
            asyncio.run(secured.provision())
        yield secured
    finally:
        server.kill()
