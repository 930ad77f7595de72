"""The quick start ``make up`` prints (and the README shows) runs as printed, offline, to a succeeded
execution whose ``http_request`` reached the gateway's ``/dev/echo`` with the rendered body."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from deploy.local.quickstart import quickstart_lines
from tests.helpers.launcher import REPO_ROOT

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def _printed_quickstart(output: str) -> list[str]:
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Quick start ("))
    block: list[str] = []
    for line in lines[start + 2 :]:
        if not line.startswith("  "):
            break
        block.append(line[2:])
    return block


def _python_as_printed() -> str:
    exe = Path(sys.executable)
    return str(exe.relative_to(REPO_ROOT)) if exe.is_relative_to(REPO_ROOT) else str(exe)


def test_the_printed_quick_start_runs_line_by_line_to_a_succeeded_execution(launch: Any) -> None:
    run = launch()
    state = run.wait_ready()
    gateway = state["services"]["gateway"]
    printed = _printed_quickstart(run.output())
    assert printed == quickstart_lines(gateway, _python_as_printed())
    assert "/dev/echo" in "\n".join(printed) and "httpbin" not in run.output()

    # One shell reads the lines one by one, as a terminal would; it stops at the first failure.
    script = "set -e -o pipefail\n" + "\n".join(printed) + "\n"
    done = subprocess.run(
        ["bash"], input=script, cwd=REPO_ROOT, capture_output=True, text=True, timeout=150, check=False
    )
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}\n{run.output()[-3000:]}"
    execution = json.loads(done.stdout.strip().splitlines()[-1])["data"]
    assert execution["status"] == "succeeded", execution
    echoed = execution["output"]["body"]["data"]
    assert echoed["method"] == "POST" and echoed["path"] == "/dev/echo"
    assert echoed["body"] == {"order": 42}  # the template rendered the webhook's payload, typed
    assert echoed["headers"]["Idempotency-Key"] == execution["event_id"]
    assert run.terminate() == 0
