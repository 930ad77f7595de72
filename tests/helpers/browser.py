"""The OS's Chromium, driven by Playwright for Python: where it is, and why a test skips without it.

No browser is ever downloaded (``playwright install`` is never run): the
tests drive Debian's ``chromium`` package (``apt-get install chromium``, as
``.ci/run`` does), or the binary named by ``CHROMIUM_PATH``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from typing import Any


def chromium_path() -> str | None:
    named = os.environ.get("CHROMIUM_PATH")
    if named:
        return named if os.access(named, os.X_OK) else None
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    return found or ("/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None)


def skip_reason() -> str | None:
    """Why the browser tests cannot run here (one reason), or None when they can."""
    if chromium_path() is None:
        return "no Chromium found: apt-get install chromium (or set CHROMIUM_PATH); .ci/run installs it"
    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed (it is in the dev set: run make)"
    return None


async def launch(playwright: Any) -> Any:
    """A headless Chromium from the OS (``--no-sandbox`` as root, where the sandbox cannot start)."""
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    return await playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=args)
