"""argon2id password hashing, run on a bounded thread pool so the event loop never waits on it.

Each hash carries its own random salt (argon2-cffi makes one per call), and
verification compares in constant time.  Logins for unknown emails verify
against a dummy hash with the same parameters, so both paths cost the same.

The pool bounds CPU and memory (at most ``workers`` hashes run at once), and
``max_pending`` bounds the queue in front of it: hashes queued or running.
When it is full, :class:`HashingBusy` is raised at once instead of queueing
(the caller answers 503 with ``Retry-After``), so a burst of logins cannot
build a queue whose tail waits for minutes, or hold a request (and its
memory) per queued password.  A job leaves the count when its thread is done
with it, or when it is cancelled before it started, not when the request that
asked for it goes away.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

T = TypeVar("T")


class HashingBusy(Exception):
    """``max_pending`` hashes are already queued or running; try again shortly."""


class Passwords:
    def __init__(
        self, *, time_cost: int, memory_kib: int, parallelism: int, workers: int, max_pending: int = 1_000_000
    ) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="argon2")
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))
        self._max_pending = max_pending
        self._pending = 0
        self._lock = threading.Lock()  # the count drops in the pool's threads

    @property
    def pending(self) -> int:
        """Hashes queued or running now."""
        return self._pending

    def _submit(self, fn: Callable[..., T], *args: str) -> asyncio.Future[T]:
        with self._lock:
            if self._pending >= self._max_pending:
                raise HashingBusy(f"{self._pending} password hashes are already queued or running")
            self._pending += 1
        future = self._pool.submit(fn, *args)
        future.add_done_callback(self._done)
        return asyncio.wrap_future(future)

    def _done(self, _: Future[Any]) -> None:
        with self._lock:
            self._pending -= 1

    async def hash(self, password: str) -> str:
        return await self._submit(self._hasher.hash, password)

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        """True when ``password`` matches; with no stored hash, spends the same time and says False."""
        matched = await self._submit(self._check, self._dummy_hash if stored_hash is None else stored_hash, password)
        return stored_hash is not None and matched

    def needs_rehash(self, stored_hash: str) -> bool:
        """True when the hash was made with other parameters than the current ones."""
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except (InvalidHashError, ValueError):
            return True

    def _check(self, stored_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
