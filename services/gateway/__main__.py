"""``python -m services.gateway``: the public HTTP edge on ``IPAAS_HTTP_PORT`` (default 8080)."""

from __future__ import annotations

import logging
import sys

from aiohttp import web

from libs.common.http.serve import run
from libs.common.keyring import KeyConfigError
from libs.common.logs import configure_logging
from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings

log = logging.getLogger("services.gateway")


def main() -> int:
    settings = GatewaySettings()
    configure_logging("gateway", settings.log_level, settings.trace_url_template)

    async def factory() -> web.Application:
        return create_app(settings)

    try:
        run(factory, settings.http, drain_delay=settings.drain_delay_seconds)
    except KeyConfigError as exc:
        log.error("gateway cannot start", extra={"reason": str(exc)})
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
