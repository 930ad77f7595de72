"""``python -m services.auth`` serves the API; ``python -m services.auth rotate-keys`` re-wraps data keys.

Serving: auth needs Postgres and the bus and runs :func:`services.auth.app.start`; start-up,
readiness and the drain on SIGTERM are the service kit's (:mod:`libs.common.kit`).  Keys it
cannot use stop it at start, exit code 2.
"""

from __future__ import annotations

import sys

from aiohttp import web

from libs.common import kit
from services.auth.settings import AuthSettings
from services.auth.signing_keys import KeyConfigError

USAGE = "usage: python -m services.auth [serve | rotate-keys]"


def serve() -> int:
    settings = AuthSettings()

    async def factory() -> web.Application:
        from services.auth.app import create_app

        return await create_app(settings)

    return kit.main(settings, factory, fatal=(KeyConfigError,))


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
