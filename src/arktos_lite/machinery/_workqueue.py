"""A fair, stingy, rate-limited work queue of keys, and workers that drain it.

Guarantees, as client-go's workqueue gives them:

* Fair: distinct keys come out in the order they were first added (FIFO).
* Stingy: a key waiting in the queue is held once however often it is added; a key is
  never handed to two workers at once; a key added while a worker holds it is handed out
  once more after that worker calls `done`.
* Delays (`add_after`, `add_rate_limited`) run on trio's clock, so tests drive them with
  `trio.testing.MockClock`. The default rate limiter is client-go's default controller
  rate limiter: the larger of a per-key exponential backoff (5 ms doubling to 1000 s) and
  an overall token bucket (10 per second, burst 100).
* After `shutdown`, adds are ignored, keys already queued are still handed out, delayed
  ones are dropped, and `get` raises `ShutDown` once the queue is empty.
"""

from __future__ import annotations

import collections
import dataclasses
import heapq
import itertools
import logging
import math
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, Protocol, TypeVar

import trio
import trio.lowlevel

logger = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
K_contra = TypeVar("K_contra", bound=Hashable, contravariant=True)


class ShutDown(Exception):
    """The queue was shut down and holds nothing more to hand out."""


class Requeue(Exception):
    """Raised by a handler to have its key retried later, without logging an error.

    `after` is the delay in seconds; None leaves it to the queue's rate limiter.
    """

    def __init__(self, after: float | None = None) -> None:
        super().__init__(after)
        self.after = after


class RateLimiter(Protocol[K_contra]):
    """How long a key waits before its next retry."""

    def when(self, key: K_contra) -> float:
        """The delay before `key` is retried; counts one more retry."""
        ...

    def forget(self, key: K_contra) -> None:
        """Stop tracking `key`: its next failure starts the backoff afresh."""
        ...

    def num_requeues(self, key: K_contra) -> int: ...


class ItemExponentialRateLimiter(Generic[K]):
    """`base * 2**failures` per key, capped at `cap`."""

    def __init__(self, *, base: float = 0.005, cap: float = 1000.0) -> None:
        self._base = base
        self._cap = cap
        self._failures: dict[K, int] = {}

    def when(self, key: K) -> float:
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        # Past 2**64 the float product is meaningless; the cap has long been reached.
        if failures >= 64:
            return self._cap
        return min(self._base * 2.0**failures, self._cap)

    def forget(self, key: K) -> None:
        self._failures.pop(key, None)

    def num_requeues(self, key: K) -> int:
        return self._failures.get(key, 0)


class BucketRateLimiter(Generic[K]):
    """An overall token bucket: `qps` tokens a second, at most `burst` saved up.

    Like golang.org/x/time/rate's reservations, a caller always gets a token, possibly
    one from the future: the delay says when it becomes valid.
    """

    def __init__(self, *, qps: float = 10.0, burst: int = 100) -> None:
        self._qps = qps
        self._burst = burst
        self._tokens = float(burst)
        self._last: float | None = None

    def when(self, key: K) -> float:
        now = trio.current_time()
        if self._last is not None:
            self._tokens = min(float(self._burst), self._tokens + (now - self._last) * self._qps)
        self._last = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self._qps

    def forget(self, key: K) -> None:
        return None

    def num_requeues(self, key: K) -> int:
        return 0


class MaxOfRateLimiter(Generic[K]):
    """The longest delay any of its limiters asks for."""

    def __init__(self, *limiters: RateLimiter[K]) -> None:
        self._limiters = limiters

    def when(self, key: K) -> float:
        # Every limiter must see the request, so no short-circuit.
        return max([limiter.when(key) for limiter in self._limiters], default=0.0)

    def forget(self, key: K) -> None:
        for limiter in self._limiters:
            limiter.forget(key)

    def num_requeues(self, key: K) -> int:
        return max((limiter.num_requeues(key) for limiter in self._limiters), default=0)


def default_rate_limiter() -> MaxOfRateLimiter[K]:
    """client-go's default controller rate limiter."""
    return MaxOfRateLimiter[K](
        ItemExponentialRateLimiter[K](base=0.005, cap=1000.0),
        BucketRateLimiter[K](qps=10.0, burst=100),
    )


@dataclasses.dataclass(order=True, slots=True)
class _Delayed(Generic[K]):
    due: float
    seq: int
    key: K = dataclasses.field(compare=False)


class WorkQueue(Generic[K]):
    """Keys to process, handed to workers one at a time per key. See the module docs."""

    def __init__(self, *, rate_limiter: RateLimiter[K] | None = None) -> None:
        self._rate_limiter: RateLimiter[K] = rate_limiter or default_rate_limiter()
        self._queue: collections.deque[K] = collections.deque()
        # Keys that need processing: queued, or re-added while a worker holds them.
        self._dirty: set[K] = set()
        self._processing: set[K] = set()
        # Delayed keys: a heap with lazy removal; `_due` holds each key's live entry.
        self._delayed: list[_Delayed[K]] = []
        self._due: dict[K, float] = {}
        self._seq = itertools.count()
        self._getters = trio.lowlevel.ParkingLot()
        self._shutting_down = False

    def __len__(self) -> int:
        """Keys ready to be handed out (not those delayed or being processed)."""
        return len(self._queue)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def add(self, key: K) -> None:
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        if key in self._processing:
            return
        self._queue.append(key)
        self._getters.unpark()

    def add_after(self, key: K, delay: float) -> None:
        """Add `key` once `delay` seconds have passed; an earlier pending time wins."""
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(key)
            return
        due = trio.current_time() + delay
        pending = self._due.get(key)
        if pending is not None and pending <= due:
            return
        self._due[key] = due
        earliest = self._earliest_due()
        heapq.heappush(self._delayed, _Delayed(due, next(self._seq), key))
        if due < earliest:
            # A parked getter sleeps until the old earliest time; it must look again.
            self._getters.unpark()

    def add_rate_limited(self, key: K) -> None:
        self.add_after(key, self._rate_limiter.when(key))

    def forget(self, key: K) -> None:
        self._rate_limiter.forget(key)

    def num_requeues(self, key: K) -> int:
        return self._rate_limiter.num_requeues(key)

    async def get(self) -> K:
        """The next key; the caller must call `done(key)` when finished with it."""
        await trio.lowlevel.checkpoint()
        while True:
            try:
                return self.get_nowait()
            except trio.WouldBlock:
                pass
            with trio.move_on_at(self._earliest_due()):
                await self._getters.park()

    def get_nowait(self) -> K:
        """Like `get`, but raises `trio.WouldBlock` instead of waiting."""
        self._promote_due()
        if not self._queue:
            if self._shutting_down:
                raise ShutDown
            raise trio.WouldBlock
        key = self._queue.popleft()
        self._processing.add(key)
        self._dirty.discard(key)
        if self._queue:
            # Several keys may have become ready at once; wake the next getter too.
            self._getters.unpark()
        return key

    def done(self, key: K) -> None:
        """The worker holding `key` is finished with it."""
        self._processing.discard(key)
        if key in self._dirty:
            self._queue.append(key)
            self._getters.unpark()

    def shutdown(self) -> None:
        self._shutting_down = True
        self._delayed.clear()
        self._due.clear()
        self._getters.unpark_all()

    def _earliest_due(self) -> float:
        while self._delayed and self._due.get(self._delayed[0].key) != self._delayed[0].due:
            heapq.heappop(self._delayed)
        return self._delayed[0].due if self._delayed else math.inf

    def _promote_due(self) -> None:
        if not self._delayed:
            return
        now = trio.current_time()
        while self._earliest_due() <= now:
            entry = heapq.heappop(self._delayed)
            del self._due[entry.key]
            self.add(entry.key)


Handler = Callable[[K], Awaitable[None]]


async def run_workers(
    queue: WorkQueue[K],
    handler: Handler[K],
    *,
    workers: int,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run `workers` tasks that each take a key, await `handler(key)`, and mark it done.

    A handler that returns has its key forgotten by the rate limiter; one that raises is
    logged and its key retried with backoff; one that raises `Requeue` is retried later
    without a log line. Returns once the queue is shut down and drained; on cancellation
    every held key is still marked done.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    async with trio.open_nursery() as nursery:
        for _ in range(workers):
            nursery.start_soon(_work, queue, handler)
        task_status.started()


async def _work(queue: WorkQueue[K], handler: Handler[K]) -> None:
    while True:
        try:
            key = await queue.get()
        except ShutDown:
            return
        try:
            await handler(key)
        except Requeue as requeue:
            if requeue.after is None:
                queue.add_rate_limited(key)
            else:
                queue.forget(key)
                queue.add_after(key, requeue.after)
        except Exception:
            logger.exception("handling %r failed; will retry", key)
            queue.add_rate_limited(key)
        else:
            queue.forget(key)
        finally:
            queue.done(key)
