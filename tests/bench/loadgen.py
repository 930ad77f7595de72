"""A small closed-loop HTTP load generator, run as its own process.

``python -m tests.bench.loadgen --url URL --secret whsec_... --concurrency 32 --duration 10``
sends Standard-Webhooks-signed JSON bodies (a fresh ``webhook-id`` each) and
prints one JSON line: requests, errors, status counts, throughput, p50/p90/p99 ms.
``--rate`` switches to an open loop at a fixed request rate.  ``--dump PATH``
writes one JSON line per accepted request, ``{"event_id", "t_sent", "t202"}``:
wall-clock unix times (``time.time()``) just before the request was sent and
just after its 202 was read.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import sys
import time
import uuid
from collections import Counter

import aiohttp

from tests.bench.stand_in import install_uvloop


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


class Stats:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.statuses: Counter[int] = Counter()
        self.errors = 0
        self.accepted: list[tuple[str, float, float]] = []  # (event_id, wall-clock sent, wall-clock 202)
        self.keep_accepted = False

    def summary(self, elapsed: float) -> dict[str, object]:
        lat = sorted(self.latencies)

        def pct(p: float) -> float:
            return round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 2) if lat else 0.0

        return {
            "requests": len(lat),
            "errors": self.errors,
            "statuses": dict(self.statuses),
            "elapsed_s": round(elapsed, 2),
            "rps": round(len(lat) / elapsed, 1) if elapsed else 0.0,
            "p50_ms": pct(0.50),
            "p90_ms": pct(0.90),
            "p99_ms": pct(0.99),
        }


async def one(session: aiohttp.ClientSession, url: str, secret: str | None, stats: Stats) -> None:
    msg_id = f"msg_{uuid.uuid4().hex}"
    body = json.dumps({"order_id": msg_id, "amount": 42}).encode()
    headers = {"Content-Type": "application/json", "webhook-id": msg_id}
    if secret:
        ts = int(time.time())
        headers["webhook-timestamp"] = str(ts)
        headers["webhook-signature"] = sign(secret, msg_id, ts, body)
    sent = time.time()
    started = time.perf_counter()
    try:
        async with session.post(url, data=body, headers=headers) as resp:
            answer = await resp.read()
            stats.statuses[resp.status] += 1
            if stats.keep_accepted and resp.status == 202:
                stats.accepted.append((json.loads(answer)["data"]["event_id"], sent, time.time()))
    except aiohttp.ClientError:
        stats.errors += 1
        return
    stats.latencies.append(time.perf_counter() - started)


async def closed_loop(
    url: str, secret: str | None, concurrency: int, duration: float, stats: Stats | None = None
) -> dict[str, object]:
    stats = stats or Stats()
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        deadline = time.monotonic() + duration

        async def worker() -> None:
            while time.monotonic() < deadline:
                await one(session, url, secret, stats)

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return stats.summary(time.monotonic() - started)


async def open_loop(
    url: str, secret: str | None, rate: float, duration: float, stats: Stats | None = None
) -> dict[str, object]:
    stats = stats or Stats()
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
    parser.add_argument("--secret", default=None)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=0.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--dump", default=None, help="write event_id and 202 time per accepted request here")
    args = parser.parse_args(argv)
    install_uvloop()
    if args.warmup > 0:
        asyncio.run(closed_loop(args.url, args.secret, min(args.concurrency, 8), args.warmup))
    stats = Stats()
    stats.keep_accepted = args.dump is not None
    if args.rate > 0:
        result = asyncio.run(open_loop(args.url, args.secret, args.rate, args.duration, stats))
    else:
        result = asyncio.run(closed_loop(args.url, args.secret, args.concurrency, args.duration, stats))
    if args.dump is not None:
        with open(args.dump, "w") as out:
            out.writelines(json.dumps({"event_id": e, "t_sent": s, "t202": t}) + "\n" for e, s, t in stats.accepted)
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
