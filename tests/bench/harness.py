"""Shared pieces of the benchmarks: subprocess services, the load generator, a results table."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deploy.local.infra import NatsServer, free_port
from tests.helpers.auth_setup import kek_env
from tests.helpers.services import REPO_ROOT, ServiceProcess

RESULTS_DIR = REPO_ROOT / ".local" / "bench"


def run_loadgen(url: str, *, secret: str, duration: float, rate: float, dump: Path | None = None) -> dict[str, Any]:
    """Run the load generator in its own process (its own core), an open loop at ``rate``; return its summary."""
    args = ["--url", url, "--secret", secret, "--duration", str(duration), "--rate", str(rate)]
    if dump is not None:
        args += ["--dump", str(dump)]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    command = [sys.executable, "-m", "tests.bench.loadgen", *args]
    out = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, check=True, timeout=duration + 60)
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


def env_overrides(variable: str) -> dict[str, str]:
    """Extra settings for an experiment, as JSON in ``variable``: ``'{"IPAAS_EXECUTOR_X": "1"}'``."""
    raw = os.environ.get(variable, "")
    return {str(k): str(v) for k, v in json.loads(raw).items()} if raw else {}


def executor_overrides() -> dict[str, str]:
    """Extra executor settings for an experiment: ``BENCH_EXECUTOR_ENV='{"IPAAS_EXECUTOR_X": "1"}'``."""
    return env_overrides("BENCH_EXECUTOR_ENV")


def gateway_env(nats_url: str, database_url: str) -> dict[str, str]:
    """A benchmarked gateway: warnings only, and a webhook rate limit no load reaches."""
    return {
        "NATS_URL": nats_url,
        "DATABASE_URL": database_url,
        "LOG_LEVEL": "WARNING",
        "IPAAS_GATEWAY_WEBHOOK_RATE_PER_SECOND": "1000000000",
        "IPAAS_GATEWAY_WEBHOOK_BURST": "1000000000",
        **kek_env(),
    }


def stand_in(service: Callable[..., ServiceProcess], module: str, *args: str) -> ServiceProcess:
    """Start the stand-in server ``tests.bench.<module>`` on a free port (its ``--port``), with ``args`` after it."""
    port = free_port()
    return service(f"tests.bench.{module}", env={}, port=port, args=("--port", str(port), *args))


def nats_pid(nats_server: NatsServer) -> dict[str, int]:
    """``{"nats-server": pid}`` for a CPU sampler; empty when the server is not a process of this run."""
    return {"nats-server": nats_server.proc.pid} if nats_server.proc is not None else {}


def percentile(values: list[float], p: float, digits: int = 1) -> float:
    """The ``p`` quantile (0 to 1) of ``values`` by rank, to ``digits`` decimals; 0.0 when there are none."""
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], digits) if ordered else 0.0


def free_cpu_note() -> str:
    return f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}"


RESULTS_FILE = REPO_ROOT / "tests" / "bench" / "results" / "latest.json"


def record_result(key: str, fields: dict[str, Any]) -> None:
    """Merge one benchmark's figures into ``tests/bench/results/latest.json`` as ``{"results": {key: ...}}``."""
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    try:
        data: dict[str, Any] = json.loads(RESULTS_FILE.read_text())
    except (OSError, ValueError):  # none yet, or unreadable: start afresh
        data = {}
    data.setdefault("results", {})[key] = {**fields, "machine": free_cpu_note()}
    RESULTS_FILE.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


class CpuSampler:
    """Average CPU per process (percent of one core) over a ``with`` block, sampled every half second."""

    def __init__(self, processes: dict[str, int]) -> None:
        import psutil

        self._procs = {name: psutil.Process(pid) for name, pid in processes.items()}
        self._samples: dict[str, list[float]] = {name: [] for name in processes}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        for proc in self._procs.values():
            proc.cpu_percent(None)
        while not self._stop.wait(0.5):
            for name, proc in self._procs.items():
                with contextlib.suppress(Exception):  # a process that ended has nothing more to say
                    self._samples[name].append(proc.cpu_percent(None))

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2)

    def averages(self) -> dict[str, float]:
        return {name: round(sum(v) / len(v), 1) if v else 0.0 for name, v in self._samples.items()}
