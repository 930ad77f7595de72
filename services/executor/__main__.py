"""``python -m services.executor``: one executor replica.

It needs Postgres, the bus, and the EVENTS stream with its durable consumer
(:func:`services.executor.provisioning.needs`); it runs :func:`services.executor.app.start`.
Start-up, readiness and the drain on SIGTERM are the service kit's (:mod:`libs.common.kit`).
"""

from __future__ import annotations

import gc
import sys

from libs.common import kit
from services.executor import provisioning
from services.executor.app import start
from services.executor.settings import ExecutorSettings

# Cyclic GC thresholds (CPython's defaults: 700, 10, 10).  A replica keeps up to a few hundred events
# in flight, and their objects outlive 700 allocations: with the defaults every young collection walks
# them and promotes them, and the middle generation walks them again.  In a drain that was 17-20 % of a
# replica's CPU; with 10,000 it is about 8 % (docs/benchmarks.md).  Cycles are still collected.
GC_THRESHOLDS = (10_000, 10, 10)


def tune_gc() -> None:
    gc.set_threshold(*GC_THRESHOLDS)


def main() -> int:
    tune_gc()
    settings = ExecutorSettings()
    return kit.main(settings, lambda: kit.service_app(settings, start, streams=provisioning.needs(settings)))


if __name__ == "__main__":
    sys.exit(main())
