"""``python -m services.scheduler``: one scheduler replica (Postgres, the bus, the runtime's loops).

SIGTERM starts the runtime's drain at once (not only when the HTTP server has closed), so the
replica stops starting slots as soon as readiness turns 503.  The rest is the service kit's
(:mod:`libs.common.kit`).
"""

from __future__ import annotations

import gc
import sys

from libs.common import kit
from libs.common.http.keys import METRICS
from services.scheduler.clock import SystemClock
from services.scheduler.runtime import SchedulerRuntime
from services.scheduler.settings import SchedulerSettings


async def start(service: kit.Kit[SchedulerSettings]) -> None:
    settings = service.settings
    registry = service.app[METRICS].registry
    runtime = SchedulerRuntime(
        service.bus, service.pool, SystemClock(), settings.scheduler, registry, inbox_prefix=settings.nats_inbox_prefix
    )

    async def ready() -> bool:
        return runtime.ready

    async def freeze_after_load() -> None:
        # The schedules loaded at start live as long as the process: keep them out of the
        # garbage collector's generations, so a collection never walks ten thousand of them.
        await runtime.sync.loaded.wait()
        gc.freeze()

    service.check("scheduler", ready)
    await runtime.start()
    service.on_sigterm(runtime.stop)  # publishes in flight and progress, within IPAAS_SCHEDULER_DRAIN_SECONDS
    service.task(freeze_after_load(), name="scheduler-gc-freeze")


def main() -> int:
    settings = SchedulerSettings()
    return kit.main(settings, lambda: kit.service_app(settings, start))


if __name__ == "__main__":
    sys.exit(main())
