"""``python -m services.executor``: one executor replica."""

from __future__ import annotations

from libs.common.http.serve import run
from services.executor.app import create_app
from services.executor.settings import ExecutorSettings


def main() -> None:
    settings = ExecutorSettings()
    run(lambda: create_app(settings), settings.http)


if __name__ == "__main__":
    main()
