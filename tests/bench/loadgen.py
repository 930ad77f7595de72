"""A small open-loop HTTP load generator, run as its own process.

``python -m tests.bench.loadgen --url URL --secret whsec_... --rate 500 --duration 10``
sends Standard-Webhooks-signed JSON bodies (a fresh ``webhook-id`` each) at a fixed
request rate and prints one JSON line: requests, errors, status counts, throughput,
p50/p90/p99 ms.  ``--dump PATH``
writes one JSON line per accepted request, ``{"event_id", "t_sent", "t202"}``:
wall-clock unix times (``time.time()``) just before the request was sent and
just after its 202 was read.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from collections import Counter

import aiohttp

from tests.bench.harness import percentile
from tests.bench.stand_in import install_uvloop
from tests.helpers.webhooks import signed


class Stats:
    def __init__(self, keep_accepted: bool) -> None:
        self.latencies: list[float] = []
        self.statuses: Counter[int] = Counter()
        self.errors = 0
        self.accepted: list[tuple[str, float, float]] = []  # (event_id, wall-clock sent, wall-clock 202)
        self.keep_accepted = keep_accepted

    def summary(self, elapsed: float) -> dict[str, object]:
        ms = [seconds * 1000 for seconds in self.latencies]
        return {
            "requests": len(ms),
            "errors": self.errors,
            "statuses": dict(self.statuses),
            "elapsed_s": round(elapsed, 2),
            "rps": round(len(ms) / elapsed, 1) if elapsed else 0.0,
            **{f"p{round(p * 100)}_ms": percentile(ms, p, 2) for p in (0.50, 0.90, 0.99)},
        }


async def one(session: aiohttp.ClientSession, url: str, secret: str, stats: Stats) -> None:
    msg_id = f"msg_{uuid.uuid4().hex}"
    body = json.dumps({"order_id": msg_id, "amount": 42})
    headers = signed(secret, body, msg_id=msg_id)
    sent = time.time()
    started = time.perf_counter()
    try:
        async with session.post(url, data=body.encode(), headers=headers) as resp:
            answer = await resp.read()
            stats.statuses[resp.status] += 1
            if stats.keep_accepted and resp.status == 202:
                stats.accepted.append((json.loads(answer)["data"]["event_id"], sent, time.time()))
    except aiohttp.ClientError:
        stats.errors += 1
        return
    stats.latencies.append(time.perf_counter() - started)


async def open_loop(url: str, secret: str, rate: float, duration: float, stats: Stats) -> dict[str, object]:
    connector = aiohttp.TCPConnector(limit=512)
    async with aiohttp.ClientSession(connector=connector) as session:
        tasks: set[asyncio.Task[None]] = set()
        started = time.monotonic()
        n = 0
        while (now := time.monotonic()) - started < duration:
            due = int((now - started) * rate)
            while n < due:
                task = asyncio.create_task(one(session, url, secret, stats))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                n += 1
            await asyncio.sleep(0.001)
        await asyncio.gather(*tasks)
        return stats.summary(time.monotonic() - started)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--dump", default=None, help="write event_id and 202 time per accepted request here")
    args = parser.parse_args(argv)
    install_uvloop()
    stats = Stats(keep_accepted=args.dump is not None)
    result = asyncio.run(open_loop(args.url, args.secret, args.rate, args.duration, stats))
    if args.dump is not None:
        with open(args.dump, "w") as out:
            out.writelines(json.dumps({"event_id": e, "t_sent": s, "t202": t}) + "\n" for e, s, t in stats.accepted)
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
