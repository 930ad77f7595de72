"""The write-behind batcher: one flush per batch, and rows gathered while every flush is busy go out together."""

from __future__ import annotations

import asyncio

import pytest

from services.executor.batcher import Batcher


async def test_items_submitted_while_the_flush_is_busy_go_out_as_one_batch() -> None:
    batches: list[list[int]] = []
    gate = asyncio.Event()
    flushing = asyncio.Event()

    async def flush(items: list[int]) -> list[int]:
        batches.append(list(items))
        flushing.set()
        if len(batches) == 1:
            await gate.wait()
        return [i * 10 for i in items]

    batcher: Batcher[int, int] = Batcher("t", flush, max_items=100, linger=0.0, concurrency=1)
    first = asyncio.create_task(batcher.submit(0))
    await flushing.wait()
    rest = [asyncio.create_task(batcher.submit(i)) for i in range(1, 11)]
    for _ in range(20):  # many loop turns: every zero-linger timer has fired by now
        await asyncio.sleep(0)
    assert batches == [[0]]  # nothing else is sent while the only flush is busy
    gate.set()
    assert await first == 0
    assert await asyncio.gather(*rest) == [i * 10 for i in range(1, 11)]
    assert batches == [[0], list(range(1, 11))]
    await batcher.close()


async def test_a_batch_never_exceeds_max_items_and_every_caller_gets_its_own_result() -> None:
    batches: list[list[int]] = []

    async def flush(items: list[int]) -> list[int]:
        batches.append(list(items))
        await asyncio.sleep(0)
        return [-i for i in items]

    batcher: Batcher[int, int] = Batcher("t", flush, max_items=7, linger=0.001, concurrency=2)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(50)))
    assert results == [-i for i in range(50)]
    assert max(len(b) for b in batches) <= 7
    assert sorted(i for b in batches for i in b) == list(range(50))
    await batcher.close()


async def test_a_failed_flush_fails_every_caller_of_that_batch() -> None:
    async def flush(items: list[int]) -> list[int]:
        raise OSError("database went away")

    batcher: Batcher[int, int] = Batcher("t", flush, max_items=10, linger=0.001)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(3)), return_exceptions=True)
    assert all(isinstance(r, OSError) for r in results)
    with pytest.raises(OSError):
        await batcher.submit(99)
    await batcher.close()
