"""``python -m services.gateway``: the public HTTP edge on ``IPAAS_HTTP_PORT`` (default 8080).

It needs Postgres, the bus and the EVENTS and WORKFLOW_CHANGES streams, and runs
:func:`services.gateway.app.start` behind the routes of :func:`services.gateway.app.create_app`.
Start-up, readiness and the drain on SIGTERM are the service kit's (:mod:`libs.common.kit`);
the listener stays open ``IPAAS_GATEWAY_DRAIN_DELAY_SECONDS`` after SIGTERM.  A keyring it
cannot use stops it at start, exit code 2.
"""

from __future__ import annotations

import sys

from libs.common import kit
from libs.common.keyring import KeyConfigError
from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings


def main() -> int:
    settings = GatewaySettings()
    return kit.main(
        settings, lambda: create_app(settings), fatal=(KeyConfigError,), drain_delay=settings.drain_delay_seconds
    )


if __name__ == "__main__":
    sys.exit(main())
