"""``python -m services.executor``: one executor replica.

It needs Postgres, the bus, and the EVENTS stream with its durable consumer
(:func:`services.executor.provisioning.needs`); it runs :func:`services.executor.app.start`.
Start-up, readiness and the drain on SIGTERM are the service kit's (:mod:`libs.common.kit`).
"""

from __future__ import annotations

import sys

from libs.common import kit
from services.executor import provisioning
from services.executor.app import start
from services.executor.settings import ExecutorSettings


def main() -> int:
    settings = ExecutorSettings()
    return kit.main(settings, lambda: kit.service_app(settings, start, streams=provisioning.needs(settings)))


if __name__ == "__main__":
    sys.exit(main())
