"""``python -m services.auth`` serves the API; ``python -m services.auth rotate-keys`` re-wraps data keys."""

from __future__ import annotations

import logging
import sys

from aiohttp import web

from libs.common.http.serve import run
from libs.common.logs import configure_logging
from libs.common.telemetry import setup_tracing, shutdown_tracing
from services.auth.settings import AuthSettings
from services.auth.signing_keys import KeyConfigError

log = logging.getLogger("services.auth")

USAGE = "usage: python -m services.auth [serve | rotate-keys]"


def serve() -> int:
    settings = AuthSettings()
    configure_logging("auth", settings.log_level, settings.trace_url_template)
    setup_tracing("auth")

    async def factory() -> web.Application:
        from services.auth.app import create_app

        return await create_app(settings)

    try:
        run(factory, settings.http)
    except KeyConfigError as exc:
        log.error("auth cannot start", extra={"reason": str(exc)})
        return 2
    finally:
        shutdown_tracing()
    return 0


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "serve"
    if command == "serve":
        return serve()
    if command == "rotate-keys":
        from services.auth.rotate import main as rotate_main

        return rotate_main()
    sys.stderr.write(USAGE + "\n")
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
