"""``python -m services.scheduler``: run one scheduler replica."""

from __future__ import annotations

from aiohttp import web

from libs.common.http.serve import run
from libs.common.logs import configure_logging
from libs.common.telemetry import setup_tracing
from services.scheduler.app import build_app
from services.scheduler.settings import SchedulerSettings


def main() -> None:
    settings = SchedulerSettings()
    configure_logging("scheduler", settings.log_level, settings.trace_url_template)
    setup_tracing("scheduler")

    async def factory() -> web.Application:
        return build_app(settings)

    run(factory, settings.http)


if __name__ == "__main__":
    main()
