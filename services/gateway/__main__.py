"""``python -m services.gateway``: the public HTTP edge on ``IPAAS_HTTP_PORT`` (default 8080)."""

from __future__ import annotations

from aiohttp import web

from libs.common.http.serve import run
from libs.common.logs import configure_logging
from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings


def main() -> None:
    settings = GatewaySettings()
    configure_logging("gateway", settings.log_level, settings.trace_url_template)

    async def factory() -> web.Application:
        return create_app(settings)

    run(factory, settings.http, drain_delay=settings.drain_delay_seconds)


if __name__ == "__main__":
    main()
