"""HTTP load from ``wrk``, a C load generator faster than the servers it measures.

A Python client on the same two cores caps both servers and compresses their
ratio; ``wrk`` spends far less CPU per request.  Requests are pre-signed
Standard Webhooks requests, each with its own ``webhook-id`` (so every one is
a new event), held in a data file that the Lua script reads: thread ``t`` of
``T`` takes every ``T``-th request, starting at ``t``, formats them once, and
cycles through them.  The script's
``done`` hook prints one JSON line with the totals and the latency
percentiles (microseconds).

``wrk`` comes from the OS packages (Debian/Ubuntu ``wrk``); ``make bench``
installs it when it is missing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.helpers.webhooks import signed

LUA_TEMPLATE = """
-- The requests are read from a data file (a Lua table literal this large exceeds LuaJIT's
-- constant limit): one per line, tab-separated path, webhook-id, timestamp, signature, body.
local threads = {}
local id = 0

function setup(thread)
  id = id + 1
  thread:set("tid", id)
  table.insert(threads, thread)
end

function init(args)
  reqs = {}
  local step = %(threads)d
  local i = 0
  for line in io.lines("%(data)s") do
    if i %% step == tid - 1 then
      local path, msg_id, ts, sig, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
      reqs[#reqs + 1] = wrk.format("POST", path, {["Content-Type"] = "application/json", ["webhook-id"] = msg_id,
        ["webhook-timestamp"] = ts, ["webhook-signature"] = sig}, body)
    end
    i = i + 1
  end
  n = #reqs
  counter = 0
end

function request()
  counter = counter + 1
  if counter > n then counter = 1 end
  return reqs[counter]
end

function done(summary, latency, requests)
  local non2xx = summary.errors.status
  io.write(string.format(
    '{"requests": %%d, "duration_us": %%d, "connect_errors": %%d, "read_errors": %%d, "write_errors": %%d, ' ..
    '"timeouts": %%d, "non2xx": %%d, "p50_us": %%d, "p90_us": %%d, "p99_us": %%d, "max_us": %%d}\\n',
    summary.requests, summary.duration, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.timeout, non2xx, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max))
end
"""


def presigned_script(path: Path, secret: str, url_path: str, count: int, threads: int) -> Path:
    """Write ``count`` signed requests to ``url_path`` (a data file beside ``path``) and the Lua script
    that sends them; returns the script's path."""
    now = datetime.now(UTC)
    lines = []
    for i in range(count):
        body = json.dumps({"order_id": i, "amount": 42})
        headers = signed(secret, body, at=now)
        fields = (headers["webhook-id"], headers["webhook-timestamp"], headers["webhook-signature"])
        lines.append("\t".join((url_path, *fields, body)))
    data = path.with_suffix(".tsv")
    data.write_text("\n".join(lines) + "\n")
    path.write_text(LUA_TEMPLATE % {"data": str(data.resolve()), "threads": threads})
    return path


def run_wrk(base_url: str, script: Path, *, duration: float, connections: int = 50, threads: int = 2) -> dict[str, Any]:
    """Run ``wrk`` against ``base_url`` and return its summary (rates, latency percentiles in ms)."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed: `make bench` installs it (Debian/Ubuntu package `wrk`)")
    out = subprocess.run(
        [
            wrk,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{duration:g}s",
            "--timeout",
            "5s",
            "-s",
            str(script),
            base_url,
        ],
        capture_output=True,
        check=True,
        text=True,
        timeout=duration + 60,
    )
    line = next(x for x in reversed(out.stdout.splitlines()) if x.startswith("{"))
    raw = json.loads(line)
    seconds = raw["duration_us"] / 1e6
    errors = raw["connect_errors"] + raw["read_errors"] + raw["write_errors"] + raw["timeouts"]
    ok = raw["requests"] - raw["non2xx"] - errors
    return {
        "requests": raw["requests"],
        "rps": round(ok / seconds, 1) if seconds else 0.0,
        "non2xx": raw["non2xx"],
        "errors": errors,
        **{f"{p}_ms": round(raw[f"{p}_us"] / 1000, 2) for p in ("p50", "p90", "p99", "max")},
        "seconds": round(seconds, 2),
    }
