"""Shared pieces of the benchmarks: subprocess services, the load generator, a results table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.helpers.services import REPO_ROOT

RESULTS_DIR = REPO_ROOT / ".local" / "bench"


def run_loadgen(url: str, *, secret: str | None, duration: float, concurrency: int = 32,
                rate: float = 0.0, warmup: float = 1.0, dump: Path | None = None) -> dict[str, Any]:
    """Run the load generator in its own process (its own core) and return its summary."""
    args = [sys.executable, "-m", "tests.bench.loadgen", "--url", url, "--duration", str(duration),
            "--concurrency", str(concurrency), "--warmup", str(warmup)]
    if secret:
        args += ["--secret", secret]
    if rate:
        args += ["--rate", str(rate)]
    if dump is not None:
        args += ["--dump", str(dump)]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    out = subprocess.run(args, cwd=REPO_ROOT, env=env, capture_output=True, check=True,
                         timeout=duration + warmup + 60)
    result: dict[str, Any] = json.loads(out.stdout.decode().strip().splitlines()[-1])
    return result


def report(name: str, rows: list[dict[str, Any]], verdicts: dict[str, bool]) -> None:
    """Print a table to the terminal and keep a JSON copy under .local/bench/."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / f"{name}.json").write_text(json.dumps({"rows": rows, "verdicts": verdicts}, indent=2))
    keys = sorted({k for r in rows for k in r})
    lines = [f"\n== {name} ==", " | ".join(keys)]
    lines += [" | ".join(str(r.get(k, "")) for k in keys) for r in rows]
    lines += [f"{'PASS' if ok else 'MISS'}: {what}" for what, ok in verdicts.items()]
    sys.stdout.write("\n".join(lines) + "\n")


def executor_overrides() -> dict[str, str]:
    """Extra executor settings for an experiment: ``BENCH_EXECUTOR_ENV='{"IPAAS_EXECUTOR_X": "1"}'``."""
    raw = os.environ.get("BENCH_EXECUTOR_ENV", "")
    return {str(k): str(v) for k, v in json.loads(raw).items()} if raw else {}


def free_cpu_note() -> str:
    return f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}"


def path_exists(p: Path) -> bool:
    return p.exists()
