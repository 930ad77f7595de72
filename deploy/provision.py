"""``python -m deploy.provision``: create or update the platform's JetStream streams and durable consumers.

The provisioning step, run with an identity that may manage them: the Kubernetes migrate
Job as ``provisioner``, ``make up`` as ``admin`` (before it starts the services), the test
fixtures as ``provisioner``.  Services, whose identities may not create or update anything,
wait until it has run (see :mod:`libs.common.bus.provision`).

It reads the same variables as the services: ``NATS_URL`` (with the identity's user and
password), ``IPAAS_NATS_*`` (stream names, subjects, limits, replicas) and the executor's
consumer values (``IPAAS_EXECUTOR_CONSUMER``, ``_MAX_ACK_PENDING``, ``_ACK_WAIT_SECONDS``,
``_MAX_DELIVER``, ``_MAX_ATTEMPTS``).  Idempotent and safe while services run; exit status 0
when everything exists with these values, 1 otherwise (the reason is logged).
"""

from __future__ import annotations

import asyncio
import logging
import sys

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from libs.common.bus import Bus
from libs.common.bus.permissions import PROVISIONER, Layout, inbox_prefix
from libs.common.bus.provision import provision
from libs.common.logs import configure_logging
from libs.common.settings import NatsSettings
from services.executor.provisioning import consumer_spec
from services.executor.settings import ExecutorSettings

log = logging.getLogger(__name__)


class ProvisionerSettings(BaseSettings):
    """``IPAAS_PROVISIONER_*``: how the provisioning step connects (``NATS_URL`` carries the identity)."""

    model_config = SettingsConfigDict(env_prefix="IPAAS_PROVISIONER_", extra="ignore")

    nats_inbox_prefix: str = inbox_prefix(PROVISIONER)
    connect_deadline_seconds: float = Field(default=60.0, gt=0)
    log_level: str = Field(default="INFO", validation_alias="LOG_LEVEL")


def platform_layout() -> Layout:
    """The stream and consumer names of this environment, for the authorization ``make up`` renders."""
    return Layout.of(NatsSettings(), consumer=ExecutorSettings().consumer)


async def provision_platform(
    nats_url: str | None = None, *, inbox: str | None = None, connect_deadline_seconds: float = 60.0
) -> list[str]:
    """Connect (to ``nats_url``, else ``NATS_URL``), provision, disconnect; returns what it touched."""
    nats = NatsSettings() if nats_url is None else NatsSettings(NATS_URL=nats_url)
    consumer = consumer_spec(ExecutorSettings())
    bus = await Bus.connect(
        nats, name="provision", inbox_prefix=inbox, connect_deadline_seconds=connect_deadline_seconds
    )
    try:
        return await provision(bus, [consumer])
    finally:
        await bus.drain()


def main() -> int:
    settings = ProvisionerSettings()
    configure_logging("provision", settings.log_level)
    try:
        done = asyncio.run(
            provision_platform(
                inbox=settings.nats_inbox_prefix, connect_deadline_seconds=settings.connect_deadline_seconds
            )
        )
    except Exception as exc:  # noqa: BLE001 - unreachable, refused, a stream to migrate: say which, exit 1
        # A timeout usually means this identity may not manage streams (nats-server drops the request).
        log.error("provisioning failed", extra={"error": type(exc).__name__, "detail": str(exc)[:300]})
        return 1
    log.info("NATS provisioned", extra={"provisioned": ", ".join(done)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
